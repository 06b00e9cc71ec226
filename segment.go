package dojob

import (
	"context"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// A file over several connections (SetMaxConnections). The worker's first
// response, a validated 206, becomes the first connection; up to n-1 more
// are opened beside it, each taking a segment of the segment table
// (segtable.go) — a gap nobody fetches, or the second half of the largest
// segment still to come; for a file with a Checksum, pieces in the file's
// order (hashPiece). Every byte is written at its offset (WriteAt) into
// the one temporary file, which is sized to the whole file first. The file
// records its written spans (file.spans) at checkpoints and when the
// connections stop, so a restart resumes every gap. A file with a Checksum
// is hashed from the temporary file as its contiguous prefix grows.
//
// What a segment's answer may do: carry exactly the range asked, the total
// and the validator the file has — accepted; prove another content (a
// changed validator or total) — the file starts over (errSegRestart); any
// other answer it cannot use (a 200, no validator, another range, a 416) —
// the splitting stops and the file ends over the connections it has
// (errSegFallback). A connection that fails otherwise (a network error, a
// status, a stall) gives its segment back; the attempt fails only when
// every connection has stopped with bytes left, with the last error.

// segRestart is a segment's answer that proved the content changed: the
// file starts over, for the reason given.
type segRestart struct{ reason string }

func (e *segRestart) Error() string { return "the file changed: " + e.reason }

// errSegFallback is a segment's answer the file cannot use: no more splits.
var errSegFallback = errors.New("the server cannot serve this file in segments")

// segConn is one connection of a file fetched in segments, as the watchdog
// sees it: its cancel (a stall stops it alone) and how many bytes it wrote.
type segConn struct {
	cancel context.CancelCauseFunc
	moved  atomic.Int64
	seen   int64         // moved at the last tick (guarded by the job's mu)
	seenAt time.Duration // when moved last changed (guarded by the job's mu)
}

// segRun is the state of one fetch in segments, shared by its connections.
type segRun struct {
	x      *worker
	f      *file
	tf     tempFile
	tb     *segTable
	size   int64
	remote string
	host   string
	opts   *reqOpts
	etag   string
	lastM  string
	ph     *prefixHasher // nil without a Checksum

	progressed atomic.Bool  // a new byte arrived (x.progressed, for the connections)
	wrote      atomic.Int64 // bytes written by this fetch
	kick       chan struct{}

	mu      sync.Mutex
	lastErr error // the last error that stopped a connection
}

// segmentable reports whether the response just accepted for f (v, to a
// request for sp) lets the file be fetched over several connections. A
// stream needs a writer that takes bytes at offsets (and, with a Checksum,
// gives them back for the prefix hasher).
func (x *worker) segmentableLocked(tf *lazyTemp, f *file, status int, v verdict) bool {
	if s := tf.sink(); f.Stream && (s == nil || !s.segmentable(f.sum != nil)) {
		return false
	}
	if f.Spans != nil {
		return true // already in segments
	}
	return x.j.maxConnsLocked() > 1 && !x.noSplit && f.Ranges == nil &&
		status == http.StatusPartialContent && v.remoteSize > 0 &&
		(f.ETag != "" || f.LastModified != "") && v.remoteSize/2 >= x.j.m.cfg.MinSegmentSize
}

// fetchSegments fetches the rest of f over up to n connections, the first
// of which is body, the accepted answer to a request for sp. It returns
// when every byte is written (f.spans is then nil again: the file is one
// prefix), or with the error that stopped it; a *segRestart means the file
// must start over.
func (x *worker) fetchSegments(tf *lazyTemp, f *file, body io.Reader, sp span, n int) error {
	j, m := x.j, x.j.m
	j.mu.Lock()
	spans := f.Spans
	if spans == nil && f.done.Load() > 0 {
		spans = [][2]int64{{0, f.done.Load()}}
	}
	if spans == nil {
		spans = [][2]int64{}
	}
	f.Spans = spans
	r := &segRun{x: x, f: f, tf: tf.tempFile, size: f.Size, remote: j.requestURLLocked(f), etag: f.ETag, lastM: f.LastModified,
		opts: j.reqOptsLocked(f.Remote), kick: make(chan struct{}, 1)}
	minSeg := m.cfg.MinSegmentSize
	j.mu.Unlock()
	r.host = hostOf(r.remote)
	split := !x.noSplit && n > 1
	var piece int64
	if f.sum != nil && split {
		piece = hashPiece(minSeg) // in order, for the digest (segtable.go)
	}
	r.tb = newSegTable(r.size, minSeg, piece, spans)
	if !split {
		// One connection (the server cannot serve the file in segments):
		// each gap in one request, not in pieces.
		r.tb.stopSplitting()
		n = 1
	}
	if err := x.presize(tf, r.size); err != nil {
		return err
	}
	if f.sum != nil {
		r.ph = r.startPrefixHasher(spans)
	}

	g, gctx := errgroup.WithContext(x.attemptCtx())
	first := r.tb.take()
	if first == nil || first.start != sp.off {
		// The table and the request disagree: cannot happen, as both come
		// from the spans; be safe and use the answer for nothing.
		if first != nil {
			r.tb.release(first)
		}
		first = nil
	}
	if first == nil {
		body = nil // step closes it
	}
	g.Go(func() error { return r.conn(gctx, first, body, false) })
	for range n - 1 {
		if !m.hosts.try(r.host) {
			break
		}
		g.Go(func() error {
			defer m.hosts.give(r.host)
			return r.conn(gctx, nil, nil, true)
		})
	}
	err := g.Wait()
	if r.ph != nil {
		r.ph.stop()
	}
	// Record what the connections wrote, durably, whatever happens next.
	_ = x.bg.wait()
	done := r.tb.done()
	var restart *segRestart
	if !errors.As(err, &restart) {
		if serr := tf.Sync(); serr != nil && err == nil {
			err = localError(serr)
		}
		r.record(true)
	}
	switch {
	case err != nil:
		return err
	case done:
		j.mu.Lock()
		f.Spans = nil // the file is one prefix again: every byte
		j.changedLocked()
		j.mu.Unlock()
		if r.ph != nil {
			x.h, x.hf = r.ph.h, f
		}
		return nil
	}
	r.mu.Lock()
	err = r.lastErr
	r.mu.Unlock()
	if err == nil || errors.Is(err, errSegFallback) {
		x.noSplit = true // the rest over one connection, from the next step
		return nil
	}
	if r.wrote.Load() > 0 {
		// The last connections failed with bytes left, but this fetch
		// moved the file on: the next step asks for the gaps again (a
		// fetch that moves nothing ends the attempt with its error).
		return nil
	}
	return err
}

// hashPiece is the size of the pieces of a file with a Checksum fetched in
// segments: 4 minimum segments (Config.MinSegmentSize, 1 MiB by default:
// pieces of 4 MiB), at least 1 MiB — a request per piece, and no more —
// and at most 64 MiB or one minimum segment, whichever is larger. With
// every connection as fast as the others, the digest trails the front of
// the download by about a piece per connection; a slow connection holding
// an early piece holds it back until the connections that run out of
// pieces split that piece (segTable.take).
func hashPiece(minSeg int64) int64 {
	const lo, hi = 1 << 20, 64 << 20
	if minSeg > hi/4 {
		return max(minSeg, hi)
	}
	return min(max(4*minSeg, lo), hi)
}

// presize makes the temporary file as long as the whole file, so every
// segment can be written at its offset.
func (x *worker) presize(tf *lazyTemp, size int64) error {
	end, err := tf.Seek(0, io.SeekEnd)
	if err != nil {
		return localError(err)
	}
	if end < size {
		if err := tf.Truncate(size); err != nil {
			return localError(err)
		}
	}
	return nil
}

// conn is one connection: it writes body (the answer for seg) if given,
// then takes segments and fetches each with a request of its own until
// there is nothing left to take or it fails. An extra connection (beyond the
// worker's own) also ends when a file waits for room at the host
// (hostBudget.contended), giving its segment back.
func (r *segRun) conn(ctx context.Context, seg *segment, body io.Reader, extra bool) error {
	x, j, m := r.x, r.x.j, r.x.j.m
	r.tb.begin()
	defer r.tb.end()
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c := &segConn{cancel: cancel}
	j.mu.Lock()
	c.seenAt = m.now()
	x.segConns = append(x.segConns, c)
	j.mu.Unlock()
	defer func() {
		j.mu.Lock()
		for i, o := range x.segConns {
			if o == c {
				x.segConns = append(x.segConns[:i], x.segConns[i+1:]...)
				break
			}
		}
		j.mu.Unlock()
	}()
	if rc, ok := body.(io.Closer); ok {
		// The first connection's body came with the worker's request, not
		// with this connection's context: closing it is what stops a
		// read when the watchdog stops this connection alone.
		stop := context.AfterFunc(cctx, func() { rc.Close() })
		defer stop()
	}
	bufp := m.bufs.Get().(*[]byte)
	defer m.bufs.Put(bufp)
	buf := *bufp

	for {
		if seg == nil {
			if cctx.Err() != nil || extra && m.hosts.contended(r.host) {
				return nil
			}
			seg = r.tb.take()
			if seg == nil {
				return nil
			}
			var err error
			body, err = r.request(cctx, seg)
			if err != nil {
				r.tb.release(seg)
				return r.stopped(cctx, err)
			}
		}
		err := r.copy(cctx, c, seg, body, buf, extra)
		if rc, ok := body.(io.Closer); ok {
			rc.Close()
		}
		seg, body = nil, nil
		if err != nil {
			return r.stopped(cctx, err)
		}
	}
}

// stopped ends a connection with err: a local error or a proven change
// stops every connection; anything else stops this one alone (noted as the
// attempt's last error). A connection stopped by the watchdog (a stall)
// reports that.
func (r *segRun) stopped(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && c != context.Canceled {
		err = c // errStalled, or the run's own stop
	}
	var restart *segRestart
	var je *JobError
	switch {
	case errors.As(err, &restart):
		return err
	case errors.As(err, &je) && je.Context == ErrorContextLocalFile:
		return err
	case errors.Is(err, errSegFallback):
		r.tb.stopSplitting()
	}
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
	return nil
}

// request asks for seg's bytes and checks the answer; it returns the body
// to copy.
func (r *segRun) request(ctx context.Context, seg *segment) (io.ReadCloser, error) {
	r.tb.mu.Lock()
	off, end := seg.pos, seg.end
	r.tb.mu.Unlock()
	if r.opts != nil {
		ctx = context.WithValue(ctx, reqOptsKey{}, r.opts)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.remote, nil)
	if err != nil {
		return nil, protocolError(ErrInvalidArg, "building the request: %v", redactErr(err))
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(end-1, 10))
	ifRange := r.etag
	if ifRange == "" {
		ifRange = r.lastM
	}
	req.Header.Set("If-Range", ifRange)
	resp, err := r.x.j.m.client.Do(req)
	if err != nil {
		return nil, &sourceError{redactErr(err)}
	}
	a := ask{sp: span{off: off, end: end - 1, ranged: true}, ifRange: true, etag: r.etag, lastMod: r.lastM, size: r.size, cont: true}
	v := check(a, resp.StatusCode, resp.Header, resp.ContentLength, time.Now())
	switch {
	case v.err != nil:
		resp.Body.Close()
		return nil, &sourceError{v.err}
	case v.restart && v.changed:
		resp.Body.Close()
		return nil, &segRestart{v.reason}
	case v.restart, v.truncate, v.complete:
		resp.Body.Close()
		return nil, errSegFallback
	case v.length != end-off:
		resp.Body.Close()
		return nil, errSegFallback
	}
	return resp.Body, nil
}

// copy writes body into seg at its offsets until the segment ends (a split
// may end it early) or the body does. A body that ends before its segment
// is an error; the rest of the segment goes back to the table.
func (r *segRun) copy(ctx context.Context, c *segConn, seg *segment, body io.Reader, buf []byte, extra bool) error {
	x, f, tb := r.x, r.f, r.tb
	for {
		if extra && x.j.m.hosts.contended(r.host) {
			tb.release(seg) // a file waits for room at the host
			return nil
		}
		rb := buf
		pb, paced := x.pace() // a bandwidth limit (pace.go), as in worker.copy
		if paced {
			rb = buf[:pb.readLen(len(buf))]
		}
		nr, rerr := body.Read(rb)
		if nr > 0 && paced {
			if err := x.pay(ctx, pb, nr); err != nil {
				tb.release(seg)
				return err
			}
		}
		if nr > 0 {
			off, k := tb.claim(seg, int64(nr))
			if k > 0 {
				if _, err := r.tf.(io.WriterAt).WriteAt(buf[:k], off); err != nil {
					tb.release(seg)
					return localError(err)
				}
				seg.written.Store(off + k)
				c.moved.Add(k)
				r.wrote.Add(k)
				if done := f.done.Add(k); done > x.mark && !r.progressed.Load() && r.progressed.CompareAndSwap(false, true) {
					x.firstByteShared()
				}
				if r.ph != nil && !r.ph.feed(off, buf[:k]) {
					// Bytes past the digest's end: the hasher reads them
					// back once the prefix reaches them.
					select {
					case r.kick <- struct{}{}:
					default:
					}
				}
				if x.ckptDue.Load() && x.ckptDue.CompareAndSwap(true, false) {
					if err := x.bg.failed(); err != nil {
						tb.release(seg)
						return localError(err)
					}
					r.record(false)
				}
			}
			if k < int64(nr) {
				tb.release(seg) // the segment ended (a split gave its rest away)
				return nil
			}
		}
		switch {
		case rerr == io.EOF:
			tb.release(seg)
			tb.mu.Lock()
			short := seg.written.Load() < seg.end
			tb.mu.Unlock()
			if short {
				return &sourceError{fmt.Errorf("segment body ended early: %w", io.ErrUnexpectedEOF)}
			}
			return nil
		case rerr != nil:
			tb.release(seg)
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return &sourceError{redactErr(rerr)}
		}
	}
}

// record notes the written spans (and the digest of the prefix) as f's
// durable state: at once when sync (the caller fsynced), else after an fsync
// off the connection (a checkpoint).
func (r *segRun) record(sync bool) {
	x, j, f := r.x, r.x.j, r.f
	var hs []byte
	var hl int64
	if r.ph != nil {
		hs, hl = r.ph.state() // first: the prefix it covers only grows
	}
	spans, total := r.tb.spans()
	note := func() {
		j.mu.Lock()
		if f.Spans != nil {
			f.Spans, f.Durable = spans, total
			if hs != nil {
				f.HashState, f.HashLen = hs, hl
			}
			j.changedLocked()
		}
		j.mu.Unlock()
	}
	if sync {
		note()
		return
	}
	x.bg.start(r.tf, note)
}

// firstByteShared is firstByte for the connections of a segmented fetch,
// which share x: the caller won the race to report the first new byte.
func (x *worker) firstByteShared() {
	j := x.j
	j.mu.Lock()
	if x.liveLocked() {
		j.noteProgressLocked()
	}
	j.mu.Unlock()
}

// prefixHasher hashes a file fetched in segments from its temporary file as
// its contiguous prefix grows, on a goroutine of its own.
type prefixHasher struct {
	mu   sync.Mutex
	h    hash.Hash
	n    int64 // bytes hashed
	quit chan struct{}
	done chan struct{}

	readBack *atomic.Int64 // the Manager's count of bytes read back to be hashed
}

// feed hashes b, just written at off, on the writing connection if it is
// the digest's next bytes (the connection at the front of the prefix feeds
// it as a single connection would); it reports whether it did. Other
// bytes are read back by the hasher once the prefix reaches them.
func (p *prefixHasher) feed(off int64, b []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if off != p.n {
		return false
	}
	p.h.Write(b)
	p.n += int64(len(b))
	return true
}

// startPrefixHasher starts hashing the file's temporary file from where a
// digest of its prefix is known: the run's own, the checkpointed state, or
// byte 0. spans are the bytes the file holds.
func (r *segRun) startPrefixHasher(spans [][2]int64) *prefixHasher {
	x, f, tf := r.x, r.f, r.tf
	j := x.j
	p := &prefixHasher{quit: make(chan struct{}), done: make(chan struct{}), readBack: &x.j.m.readBack}
	pre := prefix(spans)
	j.mu.Lock()
	switch {
	case x.hf == f && x.h != nil && f.done.Load() == pre:
		p.h, p.n = x.h, pre
	case f.HashState != nil && f.HashLen <= pre:
		h := f.newDigest()
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(f.HashState); err == nil {
			p.h, p.n = h, f.HashLen
		}
	}
	if p.h == nil {
		p.h = f.newDigest()
	}
	f.digest = nil
	j.mu.Unlock()
	x.h, x.hf = nil, nil // the hasher owns the digest until the file is done
	m := x.j.m
	go func() {
		defer close(p.done)
		bufp := m.bufs.Get().(*[]byte)
		defer m.bufs.Put(bufp)
		for {
			stopping := false
			select {
			case <-r.kick:
			case <-p.quit:
				stopping = true
			}
			_ = p.catchUp(tf, r.tb.prefixLen(), *bufp)
			if stopping {
				return
			}
		}
	}()
	return p
}

// catchUp hashes the file's bytes from p.n to upTo.
func (p *prefixHasher) catchUp(tf tempFile, upTo int64, buf []byte) error {
	ra := tf.(io.ReaderAt)
	for {
		p.mu.Lock()
		n := p.n
		p.mu.Unlock()
		if n >= upTo {
			return nil
		}
		k := min(int64(len(buf)), upTo-n)
		got, err := ra.ReadAt(buf[:k], n)
		p.mu.Lock()
		if p.n == n { // else a connection fed them meanwhile
			p.h.Write(buf[:got])
			p.n += int64(got)
			p.readBack.Add(int64(got))
		}
		p.mu.Unlock()
		if err != nil && got == 0 {
			return err
		}
	}
}

// state is the digest's serialised state and the bytes it covers.
func (p *prefixHasher) state() ([]byte, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, err := p.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, 0
	}
	return s, p.n
}

// stop makes the hasher hash what the prefix has now and exit, and waits.
func (p *prefixHasher) stop() {
	close(p.quit)
	<-p.done
}
