// Command fileserver serves a directory over HTTP on the loopback interface
// for bench/compare.sh: GET and HEAD with Range support (http.FileServer),
// keep-alive, no logging. It prints its base URL as the first line on
// stdout once it is listening, and stops on SIGINT or SIGTERM.
//
// Usage:
//
//	fileserver -dir DIR [-addr 127.0.0.1:0]
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
)

func main() {
	os.Exit(run())
}

// run serves until told to stop and returns the exit status.
func run() int {
	dir := flag.String("dir", "", "directory to serve (required)")
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on (port 0: any free port)")
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
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
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
