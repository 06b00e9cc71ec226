package dojob

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSegTableSplits: a free connection takes a segment nobody fetches,
// then splits the largest one being fetched at its middle, down to the
// minimum; bytes claimed are never given away.
func TestSegTableSplits(t *testing.T) {
	const mib = 1 << 20
	tb := newSegTable(8*mib, mib, 0, nil)
	a := tb.take()
	require.NotNil(t, a)
	assert.Equal(t, int64(0), a.start)
	off, k := tb.claim(a, 256<<10)
	assert.Equal(t, int64(0), off)
	assert.Equal(t, int64(256<<10), k)
	a.written.Store(off + k)

	b := tb.take() // splits a: [256K, 8M) in halves
	require.NotNil(t, b)
	assert.Equal(t, int64(256<<10+(8*mib-256<<10)/2), b.start)
	assert.Equal(t, b.start, a.end)
	assert.Equal(t, int64(8*mib), b.end)

	_, k = tb.claim(b, 1<<20)
	b.written.Store(b.start + k)
	c := tb.take() // a has the most left now: its second half
	require.NotNil(t, c)
	assert.Equal(t, b.start, c.end)
	assert.Equal(t, c.start, a.end)

	// a's owner stops: the rest of a is free, and taken before any split.
	tb.release(a)
	d := tb.take()
	assert.Same(t, a, d)
	assert.Equal(t, int64(256<<10), d.pos, "from the first byte not written")

	tb.stopSplitting()
	assert.Nil(t, tb.take(), "no free segment, no split")
	spans, total := tb.spans()
	assert.Equal(t, [][2]int64{{0, 256 << 10}, {b.start, b.start + 1<<20}}, spans)
	assert.Equal(t, int64(256<<10+1<<20), total)
}

// TestSegTableResumes: the spans a file holds are kept, the gaps become
// segments; the minimum stops splits of small remainders.
func TestSegTableResumes(t *testing.T) {
	tb := newSegTable(1000, 100, 0, [][2]int64{{0, 100}, {300, 400}, {900, 1000}})
	spans, total := tb.spans()
	assert.Equal(t, [][2]int64{{0, 100}, {300, 400}, {900, 1000}}, spans)
	assert.Equal(t, int64(300), total)
	g1 := tb.take()
	assert.Equal(t, [2]int64{100, 300}, [2]int64{g1.start, g1.end})
	g2 := tb.take()
	assert.Equal(t, [2]int64{400, 900}, [2]int64{g2.start, g2.end})
	g3 := tb.take() // splits g2: 250 each
	assert.Equal(t, [2]int64{650, 900}, [2]int64{g3.start, g3.end})
	for tb.take() != nil {
	}
	for _, s := range tb.segs {
		assert.Less(t, s.end-s.pos, int64(200), "no remainder left that splits into halves of 100: %+v", s)
	}
	assert.False(t, tb.done())
}

// TestSegTablePieces: with pieces, a connection alone takes a whole gap;
// beside others it takes the first piece of the first free gap, and with no
// gap free it cuts the earliest segment being fetched a piece after its
// owner's position and takes the next piece (the rest is free again), and
// near the end halves the largest segment; the spans held are kept, the
// segments stay sorted and tile the file, and prefixLen follows them.
func TestSegTablePieces(t *testing.T) {
	sorted := func(tb *segTable) {
		t.Helper()
		assert.True(t, slices.IsSortedFunc(tb.segs, func(a, b *segment) int { return cmp.Compare(a.start, b.start) }))
		for i := 1; i < len(tb.segs); i++ {
			assert.Equal(t, tb.segs[i-1].end, tb.segs[i].start, "the segments tile the file")
		}
		assert.Equal(t, tb.size, tb.segs[len(tb.segs)-1].end)
	}
	write := func(tb *segTable, s *segment, n int64) {
		off, k := tb.claim(s, n)
		s.written.Store(off + k)
	}
	bounds := func(s *segment) [2]int64 { return [2]int64{s.start, s.end} }

	t.Run("gaps", func(t *testing.T) {
		tb := newSegTable(1000, 50, 200, [][2]int64{{300, 400}})
		first := tb.take() // alone: the whole gap, as asked by the first request
		assert.Equal(t, [2]int64{0, 300}, bounds(first))
		tb.begin()
		tb.begin()
		var got [][2]int64
		for range 3 {
			got = append(got, bounds(tb.take()))
		}
		assert.Equal(t, [][2]int64{{400, 600}, {600, 800}, {800, 1000}}, got, "pieces of the free gap, in order")
		sorted(tb)
		split := tb.take() // none free, none with two pieces left: the largest is halved
		require.NotNil(t, split)
		assert.Equal(t, [2]int64{150, 300}, bounds(split))
		sorted(tb)
		write(tb, first, 150)
		assert.Equal(t, int64(150), tb.prefixLen())
		write(tb, split, 150)
		assert.Equal(t, int64(400), tb.prefixLen(), "through the span held")
	})
	t.Run("cut", func(t *testing.T) {
		tb := newSegTable(2000, 50, 200, nil)
		first := tb.take()
		assert.Equal(t, [2]int64{0, 2000}, bounds(first))
		tb.begin()
		tb.begin()
		write(tb, first, 30)
		second := tb.take() // the first is cut a piece after its position
		assert.Equal(t, [2]int64{230, 430}, bounds(second))
		assert.Equal(t, int64(230), first.end)
		third := tb.take() // the rest is free again: its first piece
		assert.Equal(t, [2]int64{430, 630}, bounds(third))
		sorted(tb)
		write(tb, first, 200)
		write(tb, third, 200)
		assert.Equal(t, int64(230), tb.prefixLen(), "the second piece is not written yet")
		write(tb, second, 200)
		assert.Equal(t, int64(630), tb.prefixLen())
		tb.end()
		tb.end()
		rest := tb.take() // alone again: the whole free rest
		assert.Equal(t, [2]int64{630, 2000}, bounds(rest))
	})
}

// TestSegTableConcurrent: connections claiming, writing, splitting and
// giving up at random cover every byte exactly once.
func TestSegTableConcurrent(t *testing.T) {
	const size = 10_000_000
	tb := newSegTable(size, 10_000, 0, nil)
	var mu sync.Mutex
	cover := make([]uint8, size)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for {
				s := tb.take()
				if s == nil {
					return
				}
				for {
					off, k := tb.claim(s, int64(1+r.IntN(100_000)))
					if k == 0 {
						break
					}
					if r.IntN(50) == 0 { // give up before writing
						tb.release(s)
						break
					}
					mu.Lock()
					for p := off; p < off+k; p++ {
						cover[p]++
					}
					mu.Unlock()
					s.written.Store(off + k)
				}
			}
		})
	}
	wg.Wait()
	// Segments released with bytes left are fetched by nobody now.
	for s := tb.take(); s != nil; s = tb.take() {
		for {
			off, k := tb.claim(s, 1<<20)
			if k == 0 {
				break
			}
			for p := off; p < off+k; p++ {
				cover[p]++
			}
			s.written.Store(off + k)
		}
	}
	require.True(t, tb.done())
	for p, c := range cover {
		if c != 1 {
			t.Fatalf("byte %d written %d times", p, c)
		}
	}
	spans, total := tb.spans()
	assert.Equal(t, [][2]int64{{0, size}}, spans)
	assert.Equal(t, int64(size), total)
}

// TestHashPiece: pieces are 4 minimum segments, at least 1 MiB, at most
// 64 MiB or one minimum segment, and a huge minimum does not overflow.
func TestHashPiece(t *testing.T) {
	for minSeg, want := range map[int64]int64{
		1:             1 << 20,
		256 << 10:     1 << 20,
		1 << 20:       4 << 20,
		16 << 20:      64 << 20,
		100 << 20:     100 << 20,
		math.MaxInt64: math.MaxInt64,
	} {
		assert.Equal(t, want, hashPiece(minSeg), "MinSegmentSize %d", minSeg)
	}
}
