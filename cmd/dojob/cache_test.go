package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testCache is a small HTTP cache in the way of a DO cache host: a request
// for /path?cacheHostOrigin=ORIGIN is answered from memory, fetched from
// http://ORIGIN/path the first time (the library's tests use nginx).
type testCache struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	hits  int
}

func newTestCache(t *testing.T) *testCache {
	c := &testCache{files: make(map[string][]byte)}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("cacheHostOrigin") + r.URL.Path
		c.mu.Lock()
		data, ok := c.files[key]
		if ok {
			c.hits++
		}
		c.mu.Unlock()
		if !ok {
			resp, err := http.Get("http://" + key)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			data, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			c.mu.Lock()
			c.files[key] = data
			c.mu.Unlock()
		}
		w.Header().Set("ETag", `"cached"`)
		http.ServeContent(w, r, "", time.Unix(0, 0), strings.NewReader(string(data)))
	}))
	t.Cleanup(c.Close)
	return c
}

// TestGetCacheHost: get --cache-host fetches the URL through the cache (the
// second get is a hit and the origin serves the file once), reports the
// cache host in --json, and info shows it as the file's source.
func TestGetCacheHost(t *testing.T) {
	origin := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	cache := newTestCache(t)
	host := strings.TrimPrefix(cache.URL, "http://")
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "out.bin")
	ctx := testCtx(t, 10*time.Second)
	for i := range 2 {
		r := runCmd(t, ctx, "--json", "--state-dir", state, "get", "--force", "--cache-host", host, "-o", dest, origin.FileURL("/file.bin"))
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, origin.SHA256("/file.bin"), fileSHA256(t, dest))
		var res resultJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
		require.Len(t, res.Files, 1)
		assert.Equal(t, host, res.Files[0].CacheHost, "get %d", i)
	}
	assert.Len(t, origin.RequestsFor("/file.bin"), 1)
	assert.Equal(t, 1, cache.hits)

	// info: the job of a Manager that went through the cache, transferred.
	m, err := dojob.NewManager(dojob.Config{StateDir: state, CacheHosts: []string{host}})
	require.NoError(t, err)
	j, err := m.CreateJob("cached")
	require.NoError(t, err)
	require.NoError(t, j.AddFile(origin.FileURL("/file.bin"), filepath.Join(dir, "other.bin")))
	require.NoError(t, j.Resume())
	st, err := j.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, dojob.StateTransferred, st)
	id := j.ID().String()
	require.NoError(t, m.Close())
	r := runCmd(t, ctx, "--state-dir", state, "info", id)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "\n     source: cache host "+host+"\n")
}

// TestGetCacheHostDown: a cache host where nothing listens is left for the
// URL itself at once.
func TestGetCacheHostDown(t *testing.T) {
	origin := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	dead := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(dead.URL, "http://")
	dead.Close()
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "out.bin")
	r := runCmd(t, testCtx(t, 10*time.Second), "--json", "--state-dir", state, "get", "--cache-host", host, "-o", dest, origin.FileURL("/file.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, origin.SHA256("/file.bin"), fileSHA256(t, dest))
	var res resultJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.Empty(t, res.Files[0].CacheHost)
	assert.Zero(t, res.ErrorCount)
}

// TestGetCacheHostUsage: a --cache-host that is not HOST[:PORT], or a bad
// --cache-fallback, is a usage error before anything is requested.
func TestGetCacheHostUsage(t *testing.T) {
	s := dojobtest.NewServer(t)
	for _, args := range [][]string{
		{"--cache-host", "http://cache"},
		{"--cache-host", "cache:0"},
		{"--cache-host", "a,,b"},
		{"--cache-host", "cache", "--cache-fallback", "soon"},
	} {
		args = append(append([]string{"--state-dir", t.TempDir(), "get"}, args...), "-d", t.TempDir(), s.FileURL("/a"))
		r := runCmd(t, testCtx(t, 10*time.Second), args...)
		assert.Equal(t, exitUsage, r.code, "%q", args)
		assert.Contains(t, r.stderr, "--cache-", "%q", args)
	}
	assert.Empty(t, s.Requests())
}
