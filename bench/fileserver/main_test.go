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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- serve(ctx, ln, dir) }()
	defer func() {
		cancel()
		assert.Equal(t, 0, <-done)
	}()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
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
