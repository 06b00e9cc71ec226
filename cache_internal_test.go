package dojob

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCacheURL: the request to a cache host is the origin's URL with the
// cache's host and port and cacheHostOrigin appended (the origin's port
// kept unless it is 80, its colon unescaped); user information and the
// fragment are dropped; an https URL has none.
func TestCacheURL(t *testing.T) {
	for _, tc := range []struct{ remote, host, want string }{
		{"http://origin.example/a/b.cab", "cache:80", "http://cache/a/b.cab?cacheHostOrigin=origin.example"},
		{"http://Origin.example:80/a", "cache:8080", "http://cache:8080/a?cacheHostOrigin=origin.example"},
		{"http://127.0.0.1:9000/a?x=1&y=%20", "10.0.0.5:81", "http://10.0.0.5:81/a?x=1&y=%20&cacheHostOrigin=127.0.0.1:9000"},
		{"http://user:secret@origin/a#frag", "cache:80", "http://cache/a?cacheHostOrigin=origin"},
		{"http://[::1]:9000/a", "[fe80::1]:80", "http://[fe80::1]/a?cacheHostOrigin=%5B::1%5D:9000"},
		{"https://origin.example/a", "cache:80", ""},
	} {
		assert.Equal(t, tc.want, cacheURL(tc.remote, tc.host), tc.remote)
	}
}

// TestParseCacheHost: the normal form of a cache host.
func TestParseCacheHost(t *testing.T) {
	for in, want := range map[string]string{
		"Cache.Example": "cache.example:80", "cache:8080": "cache:8080", "10.0.0.1": "10.0.0.1:80",
		"::1": "[::1]:80", "[::1]": "[::1]:80", "[::1]:81": "[::1]:81",
	} {
		got, err := ParseCacheHost(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

// TestCacheDial: dojob's own transport dials a request marked as one to a
// cache host with the 3 s dialer — the mark reaches DialContext through
// net/http — and others with the transport's own.
func TestCacheDial(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer s.Close()
	assert.Equal(t, cacheConnectTimeout, cacheDialer.Timeout)
	var marked []bool
	c, tr := newHTTPClient(nil, &netCache{})
	defer tr.CloseIdleConnections()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		marked = append(marked, ctx.Value(cacheDialKey{}) != nil)
		return dial(ctx, network, addr)
	}
	tr.DisableKeepAlives = true
	for _, ctx := range []context.Context{t.Context(), withCacheDial(t.Context())} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	assert.Equal(t, []bool{false, true}, marked)
}
