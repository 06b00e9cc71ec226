package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:0":    true,
		"127.0.0.2:8080": true,
		"[::1]:0":        true,
		"0.0.0.0:0":      false,
		":0":             false,
		"localhost:0":    false,
		"192.168.1.1:80": false,
		"127.0.0.1":      false, // no port
	} {
		assert.Equal(t, want, isLoopback(addr), addr)
	}
}

// TestServeRange checks that serve answers a Range request with exactly
// those bytes (dojob resumes with Range) and stops cleanly when its context
// ends.
func TestServeRange(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), data, 0o644))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	client := startServe(t, ln, dir)
	req, err := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/f", nil)
	require.NoError(t, err)
	req.Header.Set("Range", "bytes=1234-5677")
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, "bytes 1234-5677/10000", resp.Header.Get("Content-Range"))
	assert.Equal(t, data[1234:5678], body)
}

// TestSlowLink: with -delay and -conn-rate a response costs a round trip
// (two for a new connection) before its first byte and comes no faster
// than the cap; the bytes are the file's.
func TestSlowLink(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("abcdefghij"), 50_000) // 500 kB
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), data, 0o644))
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	const delay, rate = 20 * time.Millisecond, 1_000_000
	client := startServe(t, &slowListener{Listener: inner, delay: delay, rate: rate}, dir)
	start := time.Now()
	resp, err := client.Get("http://" + inner.Addr().String() + "/f")
	require.NoError(t, err)
	first := time.Since(start)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	took := time.Since(start)
	assert.Equal(t, data, body)
	// Lower bounds only: the emulation never makes the link faster.
	assert.GreaterOrEqual(t, first, 4*delay, "handshake and request: two round trips")
	assert.GreaterOrEqual(t, took, 4*delay+time.Duration(float64(len(data)-rate/100)/rate*float64(time.Second)))
}

// startServe serves dir on ln until the test ends (then checks that serve
// stopped cleanly) and returns a client of its own for it.
func startServe(t *testing.T, ln net.Listener, dir string) *http.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- serve(ctx, ln, dir) }()
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		cancel()
		assert.Equal(t, 0, <-done)
	})
	return client
}
