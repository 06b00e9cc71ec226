package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRun: with -d every URL lands in the directory under its last path
// segment, with the server's bytes; with -o the one URL lands in the file;
// a failing status, a URL off the loopback interface and bad flags are
// errors.
func TestRun(t *testing.T) {
	body := func(name string) []byte { return bytes.Repeat([]byte(name), 20000) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body(r.URL.Path))
	}))
	defer srv.Close()

	dir := t.TempDir()
	var urls []string
	for i := range 20 {
		urls = append(urls, srv.URL+"/f"+strconv.Itoa(i))
	}
	require.NoError(t, run("", dir, 3, urls))
	for i := range 20 {
		got, err := os.ReadFile(filepath.Join(dir, "f"+strconv.Itoa(i)))
		require.NoError(t, err)
		assert.Equal(t, body("/f"+strconv.Itoa(i)), got)
	}

	out := filepath.Join(t.TempDir(), "one")
	require.NoError(t, run(out, "", 8, []string{srv.URL + "/one"}))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, body("/one"), got)

	assert.ErrorContains(t, run("", t.TempDir(), 2, []string{srv.URL + "/a", srv.URL + "/missing"}), "404")
	assert.ErrorContains(t, run(out, "", 1, []string{"http://example.com/x"}), "not a loopback URL")
	assert.Error(t, run("", "", 1, urls), "neither -o nor -d")
	assert.Error(t, run(out, dir, 1, urls[:1]), "both -o and -d")
	assert.Error(t, run(out, "", 1, urls), "-o with several URLs")
	assert.Error(t, run("", dir, 0, urls), "-parallel 0")
	assert.Error(t, run("", dir, 1, nil), "no URL")
}
