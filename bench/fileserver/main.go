// Command fileserver serves a directory over HTTP on the loopback interface
// for bench/compare.sh: GET and HEAD with Range support (http.FileServer),
// keep-alive, no logging. It prints its base URL as the first line on
// stdout once it is listening, and stops on SIGINT or SIGTERM.
//
// Usage:
//
//	fileserver -dir DIR [-addr 127.0.0.1:0] [-delay D] [-conn-rate BYTES]
//
// With -delay and -conn-rate it stands for a far server that throttles each
// connection (the profile of many CDNs and object stores), for
// bench/throttled.sh: -delay is a one-way delay, paid twice before each
// response (a round trip) and twice more before the first request of a
// new connection is read (its handshake); -conn-rate caps each connection's
// bytes per second towards the client (a pacing of its writes, with a burst
// of 10 ms of the rate). Unlike a link emulator it caps nothing shared by
// connections, and it delays only on the server's side.
//
// The address must be a loopback address: the benchmark never leaves the
// machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(run())
}

// run serves until told to stop and returns the exit status.
func run() int {
	dir := flag.String("dir", "", "directory to serve (required)")
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on (port 0: any free port)")
	delay := flag.Duration("delay", 0, "one-way delay of the emulated link (a round trip before each response, one more for a new connection)")
	rate := flag.Int64("conn-rate", 0, "bytes per second each connection may send (0: no cap)")
	flag.Parse()
	if *dir == "" || flag.NArg() != 0 {
		flag.Usage()
		return 2
	}
	if fi, err := os.Stat(*dir); err != nil || !fi.IsDir() {
		fmt.Fprintf(os.Stderr, "fileserver: %s is not a directory\n", *dir)
		return 2
	}
	if !isLoopback(*addr) {
		fmt.Fprintf(os.Stderr, "fileserver: %s is not a loopback address\n", *addr)
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fileserver:", err)
		return 1
	}
	if *delay < 0 || *rate < 0 {
		fmt.Fprintln(os.Stderr, "fileserver: -delay and -conn-rate must not be negative")
		return 2
	}
	ln = &slowListener{Listener: ln, delay: *delay, rate: *rate}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, ln, *dir)
}

// isLoopback reports whether addr is host:port with a loopback IP address
// as the host (a name such as localhost is refused: it could resolve to
// anything).
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

// serve serves dir on ln until ctx ends, having printed the base URL.
func serve(ctx context.Context, ln net.Listener, dir string) int {
	var h http.Handler = http.FileServer(http.Dir(dir))
	if sl, ok := ln.(*slowListener); ok && sl.delay > 0 {
		files := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The request's way here and the response's way back.
			t := time.NewTimer(2 * sl.delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
			files.ServeHTTP(w, r)
		})
	}
	srv := &http.Server{Handler: h}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("http://%s\n", ln.Addr())
	select {
	case <-ctx.Done():
		_ = srv.Close()
		err := <-served
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "fileserver:", err)
			return 1
		}
		return 0
	case err := <-served:
		fmt.Fprintln(os.Stderr, "fileserver:", err)
		return 1
	}
}

// slowListener hands out connections that emulate a far, throttled link
// (-delay, -conn-rate).
type slowListener struct {
	net.Listener
	delay time.Duration
	rate  int64
}

// Accept returns the next connection, slowed down.
func (l *slowListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil || (l.delay == 0 && l.rate == 0) {
		return c, err
	}
	return &slowConn{Conn: c, delay: l.delay, rate: l.rate, start: time.Now()}, nil
}

// slowConn delays its first read by a round trip (the handshake) and paces
// its writes at rate bytes per second.
type slowConn struct {
	net.Conn
	delay   time.Duration
	rate    int64
	start   time.Time // when the pacing started
	sent    int64     // bytes written since start
	greeted bool      // the handshake's round trip was paid
}

// Read reads from the client, the first time after a round trip.
func (c *slowConn) Read(p []byte) (int, error) {
	if !c.greeted {
		c.greeted = true
		time.Sleep(2 * c.delay) // the server's own pace: the emulated handshake
	}
	return c.Conn.Read(p)
}

// Write sends p at no more than rate bytes per second, in slices of 10 ms
// of the rate.
func (c *slowConn) Write(p []byte) (int, error) {
	if c.rate <= 0 {
		return c.Conn.Write(p)
	}
	burst := max(int(c.rate/100), 1)
	n := 0
	for n < len(p) {
		k := min(len(p)-n, burst)
		due := c.start.Add(time.Duration(float64(c.sent) / float64(c.rate) * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait) // pacing the link, as its cap does
		} else if wait < -10*time.Millisecond {
			// Idle for a while: no credit for the time the connection
			// did not send beyond one burst (a token bucket's depth).
			c.start, c.sent = time.Now(), 0
		}
		w, err := c.Conn.Write(p[n : n+k])
		n += w
		c.sent += int64(w)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
