package dojob

import (
	"cmp"
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

// TestSegTablePieces: with pieces, every gap is cut into pieces taken in
// the file's order (the spans held are kept); a split once no piece is
// left goes right after the segment it splits, so the segments stay sorted
// and prefixLen finds the contiguous prefix in one walk.
func TestSegTablePieces(t *testing.T) {
	tb := newSegTable(1000, 50, 200, [][2]int64{{300, 400}})
	var got [][2]int64
	for range 5 {
		s := tb.take()
		require.NotNil(t, s)
		got = append(got, [2]int64{s.start, s.end})
	}
	assert.Equal(t, [][2]int64{{0, 200}, {200, 300}, {400, 600}, {600, 800}, {800, 1000}}, got)
	assert.Equal(t, int64(0), tb.prefixLen())

	write := func(s *segment, n int64) {
		off, k := tb.claim(s, n)
		s.written.Store(off + k)
	}
	first, second := tb.segs[0], tb.segs[1]
	write(first, 200)
	assert.Equal(t, int64(200), tb.prefixLen())
	write(second, 40)
	assert.Equal(t, int64(240), tb.prefixLen())
	split := tb.take() // no piece left: halves the largest remainder (one of 200)
	require.NotNil(t, split)
	assert.Equal(t, [2]int64{500, 600}, [2]int64{split.start, split.end})
	assert.True(t, slices.IsSortedFunc(tb.segs, func(a, b *segment) int { return cmp.Compare(a.start, b.start) }), "sorted after a split")
	for i := 1; i < len(tb.segs); i++ {
		assert.Equal(t, tb.segs[i-1].end, tb.segs[i].start, "the segments tile the file")
	}
	write(second, 60)
	assert.Equal(t, int64(400), tb.prefixLen(), "through the span held")
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
