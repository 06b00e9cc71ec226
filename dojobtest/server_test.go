package dojobtest_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dojob/dojob/dojobtest"
)

// The Server's own behaviour over real loopback connections. (Behaviour it
// shares with the Transport is tested in conformance_test.go.)

func TestServerListensOnLoopback(t *testing.T) {
	s := dojobtest.NewServer(t)
	u, err := url.Parse(s.URL)
	require.NoError(t, err)
	assert.Equal(t, "http", u.Scheme)
	assert.Equal(t, "127.0.0.1", u.Hostname())
	assert.NotEmpty(t, u.Port())
	assert.False(t, strings.HasSuffix(s.URL, "/"))
	assert.Equal(t, s.URL+"/a/b.bin", s.FileURL("/a/b.bin"))
}

func TestTLSServer(t *testing.T) {
	s := dojobtest.NewTLSServer(t, dojobtest.WithSize(1000), dojobtest.Script(dojobtest.DropAfter(100)))
	u, err := url.Parse(s.URL)
	require.NoError(t, err)
	assert.Equal(t, "https", u.Scheme)
	assert.Equal(t, "127.0.0.1", u.Hostname())

	tg := serverTarget(s)
	resp, part, err := fetch(t.Context(), t, tg, http.MethodGet, "/f")
	require.NotNil(t, resp)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Len(t, part, 100)
	assert.NotNil(t, resp.TLS)
	resp, rest := get(t, tg, "/f", "Range", "bytes=100-", "If-Range", resp.Header.Get("ETag"))
	assert.Equal(t, 206, resp.StatusCode)
	assert.Equal(t, s.SHA256("/f"), sha(append(part, rest...)))

	// A client that does not trust the certificate fails.
	_, err = (&http.Client{Transport: &http.Transport{}}).Get(s.FileURL("/f"))
	assert.ErrorContains(t, err, "certificate")
}

func TestServerCloseEndsWaitsAndLeaksNothing(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := dojobtest.NewServer(t,
		dojobtest.ScriptFor("/headers", dojobtest.StallHeaders()),
		dojobtest.ScriptFor("/body", dojobtest.StallAfter(10)),
		dojobtest.ScriptFor("/delay", dojobtest.Delay(time.Hour)),
		dojobtest.ScriptFor("/unread", dojobtest.Drip(1<<30)), // fast, but nobody reads
	)
	client := s.Client()
	type result struct {
		path string
		err  error
	}
	results := make(chan result, 4)
	started := make(chan struct{}, 4)
	for _, p := range []string{"/headers", "/body", "/delay", "/unread"} {
		go func() {
			started <- struct{}{}
			resp, err := client.Get(s.FileURL(p)) // no deadline: only Close ends these
			if err == nil {
				defer resp.Body.Close()
				if p != "/unread" {
					_, err = io.ReadAll(resp.Body)
				} else {
					_, err = io.ReadFull(resp.Body, make([]byte, 10))
					if err == nil {
						err = io.ErrUnexpectedEOF // stop reading here: the handler blocks writing
					}
				}
			}
			results <- result{p, err}
		}()
	}
	for range 4 {
		<-started
	}
	// Wait until the four requests wait in the server.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := s.AwaitRequests(ctx, func(rs []dojobtest.Request) bool {
		n := 0
		for _, r := range rs {
			if r.Path == "/headers" || r.Path == "/delay" || r.BodyBytes >= 10 {
				n++
			}
		}
		return n == 4
	})
	require.NoError(t, err)

	s.Close()
	s.Close() // twice is fine
	for range 4 {
		r := <-results
		assert.Error(t, r.err, r.path)
	}
	for _, r := range s.Requests() {
		assert.False(t, r.End.IsZero(), "%s: Close waited for the handler", r.Path)
	}
	_, err = client.Get(s.FileURL("/after"))
	assert.Error(t, err, "a closed server refuses connections")
}
