package dojob

import (
	"slices"
	"sync"
	"sync/atomic"
)

// The segment table of a file fetched over several connections
// (SetMaxConnections). The file's bytes are spans: the ones already in the
// temporary file, and segments still to fetch, each fetched by at most one
// connection at a time. A connection that is free takes a segment nobody
// fetches, else splits the largest segment being fetched at its middle when
// each half is at least the minimum segment — aria2's way — so the
// connections that finish early help the slow ones until the file is done.
// A file with a Checksum is fetched in pieces taken in order instead (take,
// newSegTable).
//
// A connection claims the bytes of its segment before it writes them
// (claim), so a split never gives away a byte that is being written; it
// notes them as written after the write (wrote). Only written bytes are
// recorded at a checkpoint.

// segment is one span of a file still being fetched, or fetched.
type segment struct {
	start int64 // its first byte
	// pos is the next byte to claim, end one past the last byte to fetch (a
	// split lowers it); owned: a connection fetches it. Guarded by the
	// table's mu.
	pos, end int64
	owned    bool
	// written: bytes [start, written) are in the file. Stored by the owner
	// after each write; read by checkpoints.
	written atomic.Int64
}

// segTable is the segments of one file. It is safe for concurrent use.
type segTable struct {
	mu      sync.Mutex
	size    int64      // the file's size
	min     int64      // the smallest half a split may leave
	piece   int64      // > 0: the size of the pieces taken in order (a file with a Checksum)
	conns   int        // the connections running (begin, end)
	segs    []*segment // sorted by start; together they tile the file
	noSplit bool       // fall back: no segment is split any more
}

// newSegTable makes the table of a file of size bytes whose temporary file
// already holds the given spans ([start, end) pairs, sorted, disjoint):
// every gap between them is a segment nobody fetches yet. With piece > 0
// the file is fetched in pieces taken in order (take).
//
// Pieces are for a file with a Checksum. Its digest can only take the
// bytes in order, so it follows the contiguous prefix of the file (the
// prefixHasher). Halving the largest segment gives n connections n far
// apart segments that all end at about the same time: the prefix stays at
// the first one's front until the very end, and the rest of the file is
// hashed after the download, on top of it (a 1 GiB file over 4
// connections: 0.87 s without a Checksum, 1.68 s with one). Pieces taken
// in order keep the prefix near the front, so the digest is computed while
// the bytes arrive. A piece is asked for exactly, so its connection is
// kept alive for the next one.
func newSegTable(size, minSeg, piece int64, have [][2]int64) *segTable {
	t := &segTable{size: size, min: max(minSeg, 1), piece: piece}
	pos := int64(0)
	add := func(from, to int64, written bool) {
		if from >= to {
			return
		}
		s := &segment{start: from, pos: from, end: to}
		if written {
			s.pos = to
			s.written.Store(to)
		} else {
			s.written.Store(from)
		}
		t.segs = append(t.segs, s)
	}
	for _, sp := range have {
		a, b := max(sp[0], pos), min(sp[1], size)
		add(pos, a, false)
		add(a, b, true)
		pos = max(pos, b)
	}
	add(pos, size, false)
	return t
}

// begin and end count a connection of the fetch in or out: with pieces, a
// connection that runs alone takes whole gaps (one request each), and
// pieces are cut only while others run beside it.
func (t *segTable) begin() { t.mu.Lock(); t.conns++; t.mu.Unlock() }
func (t *segTable) end()   { t.mu.Lock(); t.conns--; t.mu.Unlock() }

// take gives a free connection a segment to fetch: one nobody fetches, else
// the second half of the largest segment being fetched, if each half is at
// least min bytes and splitting is allowed. nil means there is nothing to
// take.
//
// With pieces (a file with a Checksum), a free connection beside others
// takes the first piece of the first gap nobody fetches (the rest of the
// gap stays free); with no gap free, it cuts the segment being fetched that
// is earliest in the file a piece after its owner's position and takes the
// piece that follows (the rest is free again); only near the end, with
// less than that left anywhere, it halves the largest segment, as without
// pieces: then what matters is when the last byte comes, and the digest
// has little left to catch up. A cut never leaves a rest under the
// minimum: the gap is then taken whole, or a segment halved. Pieces are cut as they are taken, so the
// table holds the pieces taken so far, not the file's size in pieces.
func (t *segTable) take() *segment {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, s := range t.segs {
		if !s.owned && s.pos < s.end {
			if t.piece > 0 && t.conns > 1 && s.end-s.pos >= t.piece+t.min {
				return t.cutLocked(i, s.pos)
			}
			s.owned = true
			return s
		}
	}
	if t.noSplit {
		return nil
	}
	if t.piece > 0 {
		for i, s := range t.segs {
			if s.owned && s.end-s.pos >= 2*t.piece+t.min {
				return t.cutLocked(i, s.pos+t.piece)
			}
		}
	}
	var big *segment
	for _, s := range t.segs {
		if s.owned && (big == nil || s.end-s.pos > big.end-big.pos) {
			big = s
		}
	}
	if big == nil {
		return nil
	}
	half := (big.end - big.pos) / 2
	if half < t.min {
		return nil
	}
	return t.halveLocked(slices.Index(t.segs, big))
}

// halveLocked gives the second half of segment i, being fetched, to a new
// owner.
func (t *segTable) halveLocked(i int) *segment {
	big := t.segs[i]
	mid := big.end - (big.end-big.pos)/2
	s := &segment{start: mid, pos: mid, end: big.end, owned: true}
	s.written.Store(mid)
	big.end = mid
	t.segs = slices.Insert(t.segs, i+1, s)
	return s
}

// cutLocked ends segment i at off (a byte it has not claimed) and returns
// a piece from off, owned by the caller; the bytes after the piece, if
// any, become a segment nobody fetches. Segment i keeps its owner, if any,
// and its bytes before off.
func (t *segTable) cutLocked(i int, off int64) *segment {
	s := t.segs[i]
	p := &segment{start: off, pos: off, end: min(off+t.piece, s.end), owned: true}
	p.written.Store(off)
	ins := []*segment{p}
	if p.end < s.end {
		rest := &segment{start: p.end, pos: p.end, end: s.end}
		rest.written.Store(p.end)
		ins = append(ins, rest)
	}
	s.end = off
	t.segs = slices.Insert(t.segs, i+1, ins...)
	if s.start == s.end { // nothing of it before off: a free gap cut at its start
		t.segs = slices.Delete(t.segs, i, i+1)
	}
	return p
}

// claim reserves the next n bytes (at most) of s for its owner to write:
// it returns their offset and how many; k = 0 means the segment is done.
func (t *segTable) claim(s *segment, n int64) (off, k int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	off = s.pos
	k = min(n, s.end-s.pos)
	s.pos += k
	return off, k
}

// release gives s up: its owner stopped (an error, a stop). Bytes claimed
// and not written are to be fetched again; another connection may take the
// rest.
func (t *segTable) release(s *segment) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.owned = false
	s.pos = s.written.Load()
}

// stopSplitting makes take hand out only segments nobody fetches.
func (t *segTable) stopSplitting() {
	t.mu.Lock()
	t.noSplit = true
	t.mu.Unlock()
}

// done reports whether every byte of the file is written.
func (t *segTable) done() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.segs {
		if s.written.Load() < s.end {
			return false
		}
	}
	return true
}

// spans returns the written bytes of the file as sorted, disjoint, merged
// [start, end) spans, and their total.
func (t *segTable) spans() (out [][2]int64, total int64) {
	t.mu.Lock()
	for _, s := range t.segs {
		if w := s.written.Load(); w > s.start {
			out = append(out, [2]int64{s.start, w})
		}
	}
	t.mu.Unlock()
	return mergeSpans(out)
}

// mergeSpans sorts spans and merges the ones that touch or overlap.
func mergeSpans(in [][2]int64) (out [][2]int64, total int64) {
	slices.SortFunc(in, func(a, b [2]int64) int {
		switch {
		case a[0] < b[0]:
			return -1
		case a[0] > b[0]:
			return 1
		}
		return 0
	})
	for _, sp := range in {
		if sp[1] <= sp[0] {
			continue
		}
		if n := len(out); n > 0 && sp[0] <= out[n-1][1] {
			if sp[1] > out[n-1][1] {
				total += sp[1] - out[n-1][1]
				out[n-1][1] = sp[1]
			}
			continue
		}
		out = append(out, sp)
		total += sp[1] - sp[0]
	}
	return out, total
}

// prefixLen is the length of the contiguous bytes written from byte 0:
// one walk of the segments, which tile the file in order, up to the first
// that is not all written.
func (t *segTable) prefixLen() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := int64(0)
	for _, s := range t.segs {
		if s.start > cur {
			break
		}
		w := s.written.Load()
		cur = max(cur, w)
		if w < s.end {
			break
		}
	}
	return cur
}

// prefix is the length of the contiguous bytes from byte 0 of spans.
func prefix(spans [][2]int64) int64 {
	if len(spans) == 0 || spans[0][0] != 0 {
		return 0
	}
	return spans[0][1]
}
