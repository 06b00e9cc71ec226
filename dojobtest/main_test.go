package dojobtest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dojob/dojob/dojobtest"
)

// TestMain fails the package if any goroutine outlives the tests: every
// Server and Transport must leave nothing behind once closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// target is a Server or a Transport, seen through what the tests use.
type target struct {
	fake      bool // a Transport in a synctest bubble: time is fake and exact
	client    *http.Client
	url       func(path string) string
	content   func(path string) []byte
	sha       func(path string) string
	requests  func(path string) []dojobtest.Request
	bodyBytes func(path string) int64
}

func serverTarget(s *dojobtest.Server) target {
	return target{client: s.Client(), url: s.FileURL, content: s.Content, sha: s.SHA256,
		requests: s.RequestsFor, bodyBytes: s.BodyBytes}
}

func transportTarget(tr *dojobtest.Transport) target {
	return target{fake: true, client: tr.Client(), url: tr.FileURL, content: tr.Content, sha: tr.SHA256,
		requests: tr.RequestsFor, bodyBytes: tr.BodyBytes}
}

// both runs fn against a Server on loopback and against a Transport inside
// a synctest bubble, configured by the same options: they must behave the
// same.
func both(t *testing.T, opts []dojobtest.Option, fn func(t *testing.T, tg target)) {
	t.Helper()
	t.Run("Server", func(t *testing.T) {
		fn(t, serverTarget(dojobtest.NewServer(t, opts...)))
	})
	t.Run("Transport", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fn(t, transportTarget(dojobtest.NewTestTransport(t, opts...)))
		})
	})
}

// fetch GETs (or sends method to) path with the given headers and reads the
// whole body. It returns the response (body closed), the bytes read, and
// the error of Do or of reading the body.
func fetch(ctx context.Context, t *testing.T, tg target, method, path string, hdr ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, tg.url(path), nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := tg.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp, data, err
}

func get(t *testing.T, tg target, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	resp, data, err := fetch(t.Context(), t, tg, http.MethodGet, path, hdr...)
	require.NoError(t, err)
	return resp, data
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
