package dojobtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Host is the host of the URLs a Transport serves: the .invalid top-level
// domain never resolves (RFC 6761), so a request that escapes the Transport
// fails instead of reaching a network.
const Host = "dojobtest.invalid"

// Errors of the in-memory Transport.
var (
	// ErrTransportClosed is returned by RoundTrip after Close, and is the
	// cause seen by requests that Close interrupts.
	ErrTransportClosed = errors.New("dojobtest: transport closed")

	errBodyClosed       = errors.New("dojobtest: response body closed")
	errReadOnClosedBody = errors.New("http: read on closed response body")
)

// Transport is an http.RoundTripper that answers every request in memory
// with the same fault-injecting handler as Server: it never dials. Each
// request runs the handler on a goroutine that the Transport owns and that
// Close waits for; the body streams through a synchronous in-memory pipe.
//
// The handler's waits (Delay, Drip, WithRate, StallAfter, StallHeaders) are
// timers and channels only, so inside a testing/synctest bubble the
// goroutines are durably blocked and fake time advances: a minute of retries
// takes microseconds. Create, use and Close a Transport inside a single
// bubble: synctest binds its channels and timers to the bubble.
//
// The request's host is not checked: every URL is answered by path (use
// FileURL to build them). A Transport is safe for concurrent use. Its
// methods other than Close and RoundTrip are those of Server too: both types
// embed the same implementation.
type Transport struct {
	core

	mu     sync.Mutex
	closed bool
	calls  map[*call]struct{} // requests whose handler still runs
	wg     sync.WaitGroup     // one per handler goroutine
}

// call is one request in flight.
type call struct {
	cancel context.CancelCauseFunc // of the context the handler sees
}

// NewTransport returns a Transport that serves files as the options say.
// The caller must Close it; NewTestTransport does that with tb.Cleanup.
func NewTransport(opts ...Option) *Transport {
	t := &Transport{calls: make(map[*call]struct{})}
	t.core = core{h: newHandler(opts), client: &http.Client{Transport: t}, base: "http://" + Host}
	return t
}

// NewTestTransport is NewTransport in the style of NewServer: it registers
// tb.Cleanup(t.Close). Inside a testing/synctest bubble pass the bubble's
// own *testing.T, so that Close runs inside the bubble. tb may be nil: the
// caller must then Close the Transport.
func NewTestTransport(tb testing.TB, opts ...Option) *Transport {
	t := NewTransport(opts...)
	if tb != nil {
		tb.Cleanup(t.Close)
	}
	return t
}

// URL returns FileURL(path).
//
// Deprecated: use FileURL, the name Server has too.
func (t *Transport) URL(path string) string { return t.FileURL(path) }

// Close ends every request still being answered (their clients see
// ErrTransportClosed) and waits for every handler goroutine the Transport
// started. Later requests fail with ErrTransportClosed. It is safe to call
// more than once.
func (t *Transport) Close() {
	t.mu.Lock()
	t.closed = true
	for c := range t.calls {
		c.cancel(ErrTransportClosed)
	}
	t.mu.Unlock()
	t.h.close()
	t.wg.Wait()
}

// RoundTrip answers req in memory. It starts the handler on a goroutine with
// a copy of req whose context is derived from req's and is also cancelled
// when the response body is closed, and returns when the handler has written
// the headers. If req's context ends first, it returns the context's cause,
// as net/http does. The response's ContentLength comes from its
// Content-Length header (-1 when there is none); reading its body returns
// the bytes as the handler writes them, io.ErrUnexpectedEOF after a
// DropAfter, or the context's cause when the request is cancelled.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("dojobtest: request has no URL")
	}
	if s := req.URL.Scheme; s != "http" && s != "https" {
		closeBody(req)
		return nil, fmt.Errorf("dojobtest: unsupported protocol scheme %q", s)
	}
	if err := context.Cause(req.Context()); err != nil {
		closeBody(req)
		return nil, err // as net/http: a request already cancelled is not sent
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	c := &call{cancel: cancel}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		cancel(ErrTransportClosed)
		closeBody(req)
		return nil, ErrTransportClosed
	}
	t.calls[c] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()

	sreq := req.Clone(ctx)
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "127.0.0.1:1"
	sreq.Proto, sreq.ProtoMajor, sreq.ProtoMinor = "HTTP/1.1", 1, 1
	if sreq.Host == "" {
		sreq.Host = req.URL.Host
	}
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	w := &memWriter{
		hdr:      make(http.Header),
		head:     req.Method == http.MethodHead,
		p:        newPipe(ctx),
		cl:       -1,
		headerCh: make(chan struct{}),
		done:     make(chan struct{}),
	}
	go t.serve(c, w, req, sreq)

	select {
	case <-w.headerCh:
	case <-w.done:
		select {
		case <-w.headerCh: // written as the handler returned
		default:
			if err := context.Cause(req.Context()); err != nil {
				return nil, err
			}
			return nil, w.err
		}
	case <-req.Context().Done():
		err := context.Cause(req.Context())
		cancel(err)
		return nil, err
	}
	return w.response(req, cancel), nil
}

// serve runs the handler for one request and finishes its response,
// whatever the handler does.
func (t *Transport) serve(c *call, w *memWriter, req, sreq *http.Request) {
	defer t.wg.Done()
	defer func() {
		var err error
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				err = io.ErrUnexpectedEOF
			} else {
				err = fmt.Errorf("dojobtest: handler panicked: %v", r)
			}
		}
		w.finish(err)
		closeBody(req)
		t.mu.Lock()
		delete(t.calls, c)
		t.mu.Unlock()
		c.cancel(context.Canceled) // releases the context; the response is complete
	}()
	t.h.ServeHTTP(w, sreq)
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// memWriter is the http.ResponseWriter of an in-memory request. Only the
// handler goroutine calls its methods; what it publishes (status and
// headers, then the final error) is published by closing headerCh and done.
type memWriter struct {
	hdr  http.Header // the handler's; copied at WriteHeader
	head bool        // a HEAD request: the body is discarded
	p    *pipe

	// Owned by the handler goroutine.
	wroteHeader bool
	bodyOK      bool  // the status allows a body
	cl          int64 // the Content-Length written, -1 if none
	written     int64 // body bytes written
	aborted     error // set by abort: how the response ends

	// Published by closing headerCh.
	status   int
	sent     http.Header
	headerCh chan struct{}

	// Published by closing done.
	err  error // why no headers were written
	done chan struct{}
}

// Header returns the header map the handler fills before WriteHeader.
func (w *memWriter) Header() http.Header { return w.hdr }

// WriteHeader sends the status and a copy of the headers to RoundTrip,
// adding a Date header as net/http does (fake time inside a bubble).
// Informational (1xx) codes are ignored.
func (w *memWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("dojobtest: invalid WriteHeader code %v", code))
	}
	if w.wroteHeader || code < 200 {
		return
	}
	w.wroteHeader = true
	w.status = code
	w.sent = w.hdr.Clone()
	if w.sent.Get("Date") == "" {
		w.sent.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	w.bodyOK = bodyAllowed(code)
	if cl, err := strconv.ParseInt(w.sent.Get("Content-Length"), 10, 64); err == nil && cl >= 0 {
		w.cl = cl
	}
	close(w.headerCh)
}

// Write sends body bytes to the client, blocking until it reads them.
func (w *memWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.aborted != nil:
		return 0, w.aborted
	case !w.bodyOK:
		return 0, http.ErrBodyNotAllowed
	case w.head:
		return len(b), nil
	}
	var err error
	if w.cl >= 0 && w.written+int64(len(b)) > w.cl {
		b, err = b[:w.cl-w.written], http.ErrContentLength
	}
	n, werr := w.p.write(b)
	w.written += int64(n)
	if werr != nil {
		err = werr
	}
	return n, err
}

// Flush does nothing: written bytes are already with the client.
func (w *memWriter) Flush() {}

// abort makes the response end with err instead of a clean end.
func (w *memWriter) abort(err error) {
	if w.aborted == nil {
		w.aborted = err
	}
}

// finish ends the response when the handler has returned (err is set if it
// panicked): as net/http does, a handler that wrote nothing answers 200.
func (w *memWriter) finish(err error) {
	if w.aborted != nil {
		err = w.aborted
	}
	if !w.wroteHeader && err == nil {
		w.WriteHeader(http.StatusOK)
	}
	if !w.wroteHeader {
		w.err = err
	}
	w.p.closeWrite(err)
	close(w.done)
}

// response builds the client's view of the response once headers are
// written.
func (w *memWriter) response(req *http.Request, cancel context.CancelCauseFunc) *http.Response {
	resp := &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		ContentLength: w.cl,
		Request:       req,
	}
	if w.head || !w.bodyOK {
		resp.Body = http.NoBody
		if !w.bodyOK {
			resp.ContentLength = 0
		}
		return resp
	}
	if w.cl < 0 {
		resp.TransferEncoding = []string{"chunked"}
	}
	resp.Body = &memBody{p: w.p, remaining: w.cl, cancel: cancel}
	return resp
}

// memBody is the client's side of an in-memory response body. Like a
// net/http body, Close may be called concurrently with Read, which then
// returns.
type memBody struct {
	p         *pipe
	remaining int64 // bytes still due by Content-Length; -1 if unknown
	cancel    context.CancelCauseFunc
}

// Read reads body bytes as the handler writes them. It returns io.EOF only
// once the handler has returned, even when the Content-Length has been
// read: the request log is complete when a client sees the end.
func (b *memBody) Read(buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	if b.remaining > 0 && int64(len(buf)) > b.remaining {
		buf = buf[:b.remaining]
	}
	// With remaining == 0 this waits for the end: the writer never sends
	// more than its Content-Length.
	n, err := b.p.read(buf)
	if b.remaining >= 0 {
		b.remaining -= int64(n)
		if err == io.EOF && b.remaining > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	return n, err
}

// Close ends the response: the handler's context is cancelled and its
// writes fail, so its goroutine returns.
func (b *memBody) Close() error {
	b.p.closeRead()
	b.cancel(errBodyClosed)
	return nil
}

// pipe is a synchronous in-memory pipe, like io.Pipe, except that a write
// also ends when the request's context is done: a handler never blocks on a
// client that went away. Every blocking operation is a select on channels,
// which is durably blocking inside a synctest bubble.
type pipe struct {
	ctx  context.Context
	wrCh chan []byte // a write offers its bytes
	rdCh chan int    // the read answers how many it took

	rOnce sync.Once
	rdone chan struct{} // closed by closeRead

	wdone chan struct{} // closed by closeWrite, after werr is set
	werr  error
}

func newPipe(ctx context.Context) *pipe {
	return &pipe{
		ctx:   ctx,
		wrCh:  make(chan []byte),
		rdCh:  make(chan int),
		rdone: make(chan struct{}),
		wdone: make(chan struct{}),
	}
}

// write blocks until the reader has taken all of b, the reader closes, or
// the context is done.
func (p *pipe) write(b []byte) (n int, err error) {
	for len(b) > 0 {
		select {
		case p.wrCh <- b:
			nw := <-p.rdCh
			b = b[nw:]
			n += nw
		case <-p.rdone:
			return n, errBodyClosed
		case <-p.ctx.Done():
			return n, context.Cause(p.ctx)
		}
	}
	return n, nil
}

// read blocks until a write offers bytes, the writer closes (io.EOF or its
// error), or the reader itself closes.
func (p *pipe) read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	select {
	case <-p.rdone:
		return 0, errReadOnClosedBody
	default:
	}
	select {
	case bw := <-p.wrCh:
		nr := copy(b, bw)
		p.rdCh <- nr
		return nr, nil
	case <-p.wdone:
		return 0, p.werr
	case <-p.rdone:
		return 0, errReadOnClosedBody
	}
}

// closeWrite ends the stream: readers get err, or io.EOF if err is nil.
// It is called once, by the handler goroutine.
func (p *pipe) closeWrite(err error) {
	if err == nil {
		err = io.EOF
	}
	p.werr = err
	close(p.wdone)
}

// closeRead makes pending and later reads and writes fail.
func (p *pipe) closeRead() {
	p.rOnce.Do(func() { close(p.rdone) })
}
