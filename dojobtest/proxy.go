package dojobtest

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// ProxyRequest is one request a Proxy received.
type ProxyRequest struct {
	// Method is the request's method: GET (or another) for an
	// absolute-URI request, CONNECT for a tunnel.
	Method string
	// Host is the target's host and port as the client named it (the URL's
	// host, or the CONNECT authority), before the Proxy sent it to
	// 127.0.0.1.
	Host string
	// URL is the absolute URI asked for, or the CONNECT authority.
	URL string
	// Range is the request's Range header, if any (empty for CONNECT).
	Range string
	// ProxyAuthorization is the Proxy-Authorization header the Proxy got,
	// if any.
	ProxyAuthorization string
}

// Proxy is a forward HTTP proxy on a real loopback listener (127.0.0.1, a
// port chosen by the system) for tests of code that uses a proxy. It
// serves absolute-URI requests (plain HTTP: it forwards them without their
// Proxy-Authorization and Proxy-Connection headers) and CONNECT tunnels
// (HTTPS), and records each request it receives (see Requests).
//
// It never connects anywhere but loopback: every connection it makes goes
// to 127.0.0.1 at the port asked, whatever the host name (see
// DialLoopback). So a test can name a file by a host that does not resolve,
// such as "files.invalid:port", which only the Proxy can reach. It asks
// for no credentials. Its methods are safe for concurrent use.
type Proxy struct {
	srv *httptest.Server
	tr  *http.Transport // to the targets of absolute-URI requests

	mu      sync.Mutex
	reqs    []ProxyRequest
	conns   map[net.Conn]struct{} // both ends of every open tunnel
	closed  bool
	tunnels sync.WaitGroup // two copy goroutines per tunnel

	closeOnce sync.Once
}

// NewProxy starts a Proxy on 127.0.0.1 and registers tb.Cleanup(p.Close).
// It calls tb.Fatal if it cannot listen, and sends the http.Server's error
// log to tb.Log.
func NewProxy(tb testing.TB) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("dojobtest: listening on 127.0.0.1: %v", err)
	}
	p := &Proxy{tr: &http.Transport{DialContext: DialLoopback, Proxy: nil}, conns: make(map[net.Conn]struct{})}
	p.srv = httptest.NewUnstartedServer(p)
	p.srv.Listener.Close() // httptest's own; ours is 127.0.0.1 only
	p.srv.Listener = ln
	p.srv.Config.ErrorLog = log.New(logWriter{tb}, "dojobtest: proxy: ", 0)
	p.srv.Start()
	tb.Cleanup(p.Close)
	return p
}

// DialLoopback dials 127.0.0.1 over TCP at the port of addr ("host:port"),
// whatever its host: as the DialContext of an http.Transport, it makes
// every host name reach a server of the test (a Server, a Proxy) and
// nothing else.
func DialLoopback(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp4", "127.0.0.1:"+port)
}

// URL returns the Proxy's URL, "http://127.0.0.1:port".
func (p *Proxy) URL() string { return strings.TrimSuffix(p.srv.URL, "/") }

// Requests returns a copy of the log of the requests the Proxy received, in
// arrival order.
func (p *Proxy) Requests() []ProxyRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProxyRequest(nil), p.reqs...)
}

// Close stops the Proxy: it closes its listener and every tunnel, and
// returns when every handler and tunnel goroutine has ended. It is safe to
// call more than once; NewProxy already registers it with tb.Cleanup.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		p.srv.CloseClientConnections()
		p.srv.Close()
		p.mu.Lock()
		p.closed = true
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.tunnels.Wait()
		p.tr.CloseIdleConnections()
	})
}

// ServeHTTP serves one proxy request; it is the Proxy's http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := ProxyRequest{Method: r.Method, Host: r.Host, URL: r.URL.String(),
		Range: r.Header.Get("Range"), ProxyAuthorization: r.Header.Get("Proxy-Authorization")}
	if r.Method == http.MethodConnect {
		rec.URL = r.Host
	}
	p.mu.Lock()
	p.reqs = append(p.reqs, rec)
	p.mu.Unlock()
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	if !r.URL.IsAbs() {
		http.Error(w, "dojobtest: not a proxy request", http.StatusBadRequest)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Authorization")
	out.Header.Del("Proxy-Connection")
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body) // a body cut short upstream is cut short here
}

// connect opens a tunnel to 127.0.0.1 at the port of r.Host.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	up, err := DialLoopback(r.Context(), "tcp", r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "dojobtest: no hijacking", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	down, buf, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	p.mu.Lock()
	if p.closed { // Close has run: nothing may outlive it
		p.mu.Unlock()
		up.Close()
		down.Close()
		return
	}
	p.conns[up], p.conns[down] = struct{}{}, struct{}{}
	p.tunnels.Add(2)
	p.mu.Unlock()
	end := func() {
		up.Close()
		down.Close()
		p.mu.Lock()
		delete(p.conns, up)
		delete(p.conns, down)
		p.mu.Unlock()
	}
	go func() {
		defer p.tunnels.Done()
		io.Copy(up, buf) // what the client sent, buffered bytes first
		end()
	}()
	go func() {
		defer p.tunnels.Done()
		io.Copy(down, up)
		end()
	}()
}
