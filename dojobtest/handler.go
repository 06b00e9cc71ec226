package dojobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/bits"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Request is one request the handler saw, as logged in arrival order by
// Server.Requests and Transport.Requests. Fields that describe the answer
// (Status, BodyBytes, End) are updated while it is sent.
type Request struct {
	Method, Path   string      // the request line
	Range, IfRange string      // the request's Range and If-Range headers, as received
	Header         http.Header // a copy of all the request's headers, as received
	URL            string      // the request's URL (path and query, as received)
	N              int         // index of the request among those for Path, from 0 (the Script position)
	Status         int         // status answered; 0 if no headers were sent (e.g. StallHeaders)
	BodyBytes      int64       // body bytes written to the client (counted before the client can read them)
	Fault          string      // Fault.String() of the fault applied
	Time           time.Time   // time.Now() when it arrived (fake time inside a synctest bubble)

	// End is time.Now() when the handler returned; zero while it runs. On
	// the Transport a client that reads a body to its end (io.EOF or an
	// error) sees it only after End is set. On the Server, and for a client
	// that stops reading at the Content-Length and closes the body, the
	// handler may end a moment later: assert on End after AwaitRequests,
	// synctest.Wait or Close.
	End time.Time
}

// errClosed is the cause of the requests that a closing Server or Transport
// stops waiting.
var errClosed = errors.New("dojobtest: closed")

// handler is the fault-injecting file server shared by Server (over a real
// loopback listener) and Transport (in memory). It is safe for concurrent
// use. It never holds mu while it waits or writes.
type handler struct {
	cfg config // read-only after newHandler

	mu     sync.Mutex
	paths  map[string]*pathState           // by URL path
	log    []Request                       // every request, in arrival order
	active map[int]context.CancelCauseFunc // requests being answered, by log index
	closed bool                            // close has run: no request waits any more

	// changed is closed and cleared at each change of the log. A waiter
	// makes it (so that inside a synctest bubble it belongs to the bubble).
	changed chan struct{}
}

// pathState is what the handler knows about one path. Guarded by handler.mu.
type pathState struct {
	count int      // requests seen so far
	cur   *version // the version served now; nil until first needed
}

// version is one version of the file at a path. Its fields are fixed once
// it is published, except for the lazily computed data and sum.
type version struct {
	n       int
	seed    string // the Content seed of generated data; "" for a WithFile file
	size    int64
	etag    string    // strong form, `"<n>-<16 hex>"`
	lastMod time.Time // whole seconds

	dataOnce sync.Once
	data     []byte
	sumOnce  sync.Once
	sum      string // hex SHA-256 of data
}

// bytes returns the version's data, generating it on first use.
func (v *version) bytes() []byte {
	v.dataOnce.Do(func() {
		if v.data == nil {
			v.data = Content(v.seed, v.size)
		}
	})
	return v.data
}

// sha256 returns the hex SHA-256 of the version's data.
func (v *version) sha256() string {
	v.sumOnce.Do(func() {
		s := sha256.Sum256(v.bytes())
		v.sum = hex.EncodeToString(s[:])
	})
	return v.sum
}

// lastModified is the fixed Last-Modified of version n: one hour apart, so
// that every version has a distinct date at the one-second resolution of
// HTTP dates.
func lastModified(n int) time.Time {
	return time.Date(2024, time.January, 1, n, 0, 0, 0, time.UTC)
}

func newHandler(opts []Option) *handler {
	return &handler{
		cfg:    newConfig(opts),
		paths:  make(map[string]*pathState),
		active: make(map[int]context.CancelCauseFunc),
	}
}

// pathLocked returns the state of path, creating it.
func (h *handler) pathLocked(path string) *pathState {
	ps := h.paths[path]
	if ps == nil {
		ps = &pathState{}
		h.paths[path] = ps
	}
	return ps
}

// versionLocked returns the current version of path, creating version 0.
func (h *handler) versionLocked(path string) *version {
	ps := h.pathLocked(path)
	if ps.cur == nil {
		if data, ok := h.cfg.files[path]; ok {
			sum := sha256.Sum256(data)
			ps.cur = &version{n: 0, size: int64(len(data)), data: data, lastMod: lastModified(0),
				etag: `"0-` + hex.EncodeToString(sum[:8]) + `"`}
		} else {
			ps.cur = generated(path, 0, h.cfg.size)
		}
	}
	return ps.cur
}

// generated describes version n of the generated file at path. Its ETag
// hashes what determines the bytes (seed and size), so that it costs nothing
// however large the file is.
func generated(path string, n int, size int64) *version {
	seed := path + "#v" + strconv.Itoa(n)
	sum := sha256.Sum256([]byte(seed + "\x00" + strconv.FormatInt(size, 10)))
	return &version{n: n, seed: seed, size: size, lastMod: lastModified(n),
		etag: `"` + strconv.Itoa(n) + "-" + hex.EncodeToString(sum[:8]) + `"`}
}

// changeLocked replaces the file at path with its next version, of the
// same size.
func (h *handler) changeLocked(path string) {
	cur := h.versionLocked(path)
	h.paths[path].cur = generated(path, cur.n+1, cur.size)
}

// current returns the version of path served now.
func (h *handler) current(path string) *version {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.versionLocked(path)
}

// validators returns the validators sent for v, as the options say.
func (h *handler) validators(v *version) validators {
	var vs validators
	switch {
	case h.cfg.noETag:
	case h.cfg.weakETag:
		vs.etag = "W/" + v.etag
	default:
		vs.etag = v.etag
	}
	if !h.cfg.noLastModified {
		vs.lastMod = v.lastMod
	}
	return vs
}

// close stops every wait of the requests being answered and of those that
// arrive later: a stalled request ends at once.
func (h *handler) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, cancel := range h.active {
		cancel(errClosed)
	}
}

// ServeHTTP answers a request for the file at r.URL.Path with the fault
// that the options give it.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	now := time.Now()

	h.mu.Lock()
	ps := h.pathLocked(path)
	n := ps.count
	ps.count++
	f := h.cfg.fault(path, n)
	if f.changeContent {
		h.changeLocked(path)
	}
	idx := len(h.log)
	h.log = append(h.log, Request{
		Method:  r.Method,
		Path:    path,
		Range:   r.Header.Get("Range"),
		IfRange: r.Header.Get("If-Range"),
		Header:  r.Header.Clone(),
		URL:     r.URL.RequestURI(),
		N:       n,
		Fault:   f.String(),
		Time:    now,
	})
	if h.closed {
		cancel(errClosed)
	} else {
		h.active[idx] = cancel
	}
	h.notifyLocked()
	h.mu.Unlock()

	x := &exchange{h: h, w: w, ctx: ctx, idx: idx}
	defer func() {
		// Runs on an abort's panic too.
		end := time.Now()
		h.mu.Lock()
		delete(h.active, idx)
		h.log[idx].End = end
		h.notifyLocked()
		h.mu.Unlock()
		cancel(nil)
	}()
	x.serve(r, path, f)
}

// exchange is one request being answered.
type exchange struct {
	h           *handler
	w           http.ResponseWriter
	ctx         context.Context // done when the client gives up or the handler closes
	idx         int             // index in h.log
	wroteHeader bool
}

// aborter is implemented by the Transport's in-memory ResponseWriter: abort
// ends the response with err instead of a clean end of body (or instead of
// headers, if none were written).
type aborter interface {
	abort(err error)
}

func (x *exchange) serve(r *http.Request, path string, f Fault) {
	if err := wait(x.ctx, f.delay); err != nil {
		x.abort(err)
		return
	}
	if f.stallHeaders {
		<-x.ctx.Done()
		x.abort(context.Cause(x.ctx))
		return
	}
	hdr := x.w.Header()
	if f.status != 0 {
		if f.retryAfter != "" {
			hdr.Set("Retry-After", f.retryAfter)
		}
		if bodyAllowed(f.status) {
			hdr.Set("Content-Length", "0")
		}
		x.writeHeader(f.status)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		hdr.Set("Content-Length", "0")
		x.writeHeader(http.StatusMethodNotAllowed)
		return
	}

	v := x.h.current(path)
	data := v.bytes()
	vs := x.h.validators(v)
	rangeHdr, ifRange := r.Header.Get("Range"), r.Header.Get("If-Range")
	if f.ignoreRange {
		rangeHdr, ifRange = "", ""
	} else {
		hdr.Set("Accept-Ranges", "bytes")
	}
	a := planAnswer(rangeHdr, ifRange, int64(len(data)), vs)
	hdr.Set("Content-Type", "application/octet-stream")
	if vs.etag != "" {
		hdr.Set("ETag", vs.etag)
	}
	if !vs.lastMod.IsZero() {
		hdr.Set("Last-Modified", vs.lastMod.Format(http.TimeFormat))
	}
	if a.contentRange != "" {
		hdr.Set("Content-Range", a.contentRange)
	}
	body := data[a.start:a.end]
	known := !x.h.cfg.noContentLength || a.status == http.StatusRequestedRangeNotSatisfiable
	if known {
		hdr.Set("Content-Length", strconv.Itoa(len(body)))
	}
	x.writeHeader(a.status)
	if !known {
		x.flush() // commits the headers: the body is chunked whatever its size
	}
	if r.Method == http.MethodHead {
		return
	}
	x.send(body, f, known)
}

// send writes the body at the fault's rate and cuts it as the fault says.
// known tells whether the client knows the body's length.
func (x *exchange) send(body []byte, f Fault, known bool) {
	rate := f.drip
	if rate == 0 {
		rate = x.h.cfg.rate
	}
	limit, stall, cut := f.cut()
	if cut && limit >= int64(len(body)) {
		// The fault would come after the whole body: it matters only
		// to a client that cannot tell the body is complete.
		cut = !known
	}
	if cut && limit < int64(len(body)) {
		body = body[:limit]
	}
	chunk := int64(256 << 10)
	if rate > 0 {
		chunk = min(max(rate/10, 1), 32<<10)
	}
	start := time.Now()
	var sent int64
	for sent < int64(len(body)) {
		k := min(chunk, int64(len(body))-sent)
		if rate > 0 {
			x.flush() // what was written reaches the client before the wait
			if err := wait(x.ctx, time.Until(start.Add(transferTime(sent+k, rate)))); err != nil {
				x.abort(err)
				return
			}
		}
		// Counted before they are written, so that a client that has
		// read them finds them counted.
		x.countBytes(k)
		n, err := x.w.Write(body[sent : sent+k])
		sent += int64(n)
		if int64(n) < k {
			x.countBytes(int64(n) - k)
		}
		if err != nil {
			x.abort(err)
			return
		}
	}
	if !cut {
		return
	}
	x.flush()
	if stall {
		<-x.ctx.Done()
		x.abort(context.Cause(x.ctx))
		return
	}
	x.abort(io.ErrUnexpectedEOF)
}

// countBytes adds n to the body bytes logged for the request.
func (x *exchange) countBytes(n int64) {
	x.h.mu.Lock()
	x.h.log[x.idx].BodyBytes += n
	x.h.notifyLocked()
	x.h.mu.Unlock()
}

// writeHeader logs the status and writes it.
func (x *exchange) writeHeader(code int) {
	x.h.mu.Lock()
	x.h.log[x.idx].Status = code
	x.h.notifyLocked()
	x.h.mu.Unlock()
	x.wroteHeader = true
	x.w.WriteHeader(code)
}

// flush sends what was written so far to the client.
func (x *exchange) flush() {
	_ = http.NewResponseController(x.w).Flush()
}

// abort ends the answer abruptly: no headers if none were sent, else no
// clean end of the body. On a real connection it flushes what was written
// and panics with http.ErrAbortHandler, which makes net/http close the
// connection without logging; in memory the client sees err.
func (x *exchange) abort(err error) {
	if a, ok := x.w.(aborter); ok {
		a.abort(err)
		return
	}
	if x.wroteHeader {
		x.flush()
	}
	panic(http.ErrAbortHandler)
}

// bodyAllowed reports whether a response with this status may have a body.
func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// wait waits d on a timer (fake time inside a synctest bubble), or until
// ctx is done, when it returns the context's cause.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// transferTime is how long n bytes take at rate bytes per second, rounded
// up to the nanosecond, computed without overflow for any n.
func transferTime(n, rate int64) time.Duration {
	secs, rem := n/rate, n%rate
	hi, lo := bits.Mul64(uint64(rem), uint64(time.Second))
	q, r := bits.Div64(hi, lo, uint64(rate)) // rem < rate, so hi < rate
	if r != 0 {
		q++
	}
	return time.Duration(secs)*time.Second + time.Duration(q)
}

// The handler's accessors, shared by Server and Transport.

// content returns a copy of the bytes served now at path.
func (h *handler) content(path string) []byte {
	return bytes.Clone(h.current(path).bytes())
}

// sha256 returns the hex SHA-256 of the bytes served now at path.
func (h *handler) sha256(path string) string {
	return h.current(path).sha256()
}

// requests returns a copy of the log, of one path if path != "".
func (h *handler) requests(path string) []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Request, 0, len(h.log))
	for _, r := range h.log {
		if path == "" || r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// notifyLocked wakes the waiters of awaitRequests.
func (h *handler) notifyLocked() {
	if h.changed != nil {
		close(h.changed)
		h.changed = nil
	}
}

// awaitRequests blocks until done(log) is true, checking now and after each
// change of the log, or until ctx ends.
func (h *handler) awaitRequests(ctx context.Context, done func([]Request) bool) ([]Request, error) {
	for {
		h.mu.Lock()
		log := slices.Clone(h.log)
		if h.changed == nil {
			h.changed = make(chan struct{})
		}
		changed := h.changed
		h.mu.Unlock()
		if done(log) {
			return log, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return log, ctx.Err()
		}
	}
}

// bodyBytes returns the body bytes sent for path, or for every path if path
// is "".
func (h *handler) bodyBytes(path string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for _, r := range h.log {
		if path == "" || r.Path == path {
			n += r.BodyBytes
		}
	}
	return n
}
