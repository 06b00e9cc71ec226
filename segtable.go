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
	segs    []*segment // sorted by start; together they tile the file
	noSplit bool       // fall back: no segment is split any more
}

// newSegTable makes the table of a file of size bytes whose temporary file
// already holds the given spans ([start, end) pairs, sorted, disjoint):
// every gap between them is a segment nobody fetches yet — or, with piece
// > 0, a run of segments of piece bytes (the last may be shorter), which
// take hands out in the file's order.
//
// Pieces are for a file with a Checksum. Its digest can only take the
// bytes in order, so it follows the contiguous prefix of the file (the
// prefixHasher). Halving the largest segment gives n connections n far
// apart segments that all end at about the same time: the prefix stays at
// the first one's front until the very end, and the rest of the file is
// hashed after the download, on top of it (a 1 GiB file over 4
// connections: 0.87 s without a Checksum, 1.68 s with one). Pieces taken
// in order keep the prefix within n pieces of the front, so the digest is
// computed while the bytes arrive. Each piece is one request, ranged
// exactly, on a kept-alive connection.
func newSegTable(size, minSeg, piece int64, have [][2]int64) *segTable {
	t := &segTable{size: size, min: max(minSeg, 1)}
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
	gap := func(from, to int64) {
		for piece > 0 && to-from > piece {
			add(from, from+piece, false)
			from += piece
		}
		add(from, to, false)
	}
	for _, sp := range have {
		a, b := max(sp[0], pos), min(sp[1], size)
		gap(pos, a)
		add(a, b, true)
		pos = max(pos, b)
	}
	gap(pos, size)
	return t
}

// take gives a free connection a segment to fetch: one nobody fetches, else
// the second half of the largest segment being fetched, if each half is at
// least min bytes and splitting is allowed. nil means there is nothing to
// take.
func (t *segTable) take() *segment {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.segs {
		if !s.owned && s.pos < s.end {
			s.owned = true
			return s
		}
	}
	if t.noSplit {
		return nil
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
	mid := big.end - half
	s := &segment{start: mid, pos: mid, end: big.end, owned: true}
	s.written.Store(mid)
	big.end = mid
	t.segs = slices.Insert(t.segs, slices.Index(t.segs, big)+1, s)
	return s
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
