package dojob_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dojob/dojob"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// errorTexts returns the texts of err and of every error reachable from it
// with errors.Unwrap, single and multiple, each printed with %v, %+v and
// %#v.
func errorTexts(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		out = append(out, e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e))
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

var errRefused = errors.New("refused by policy")

// TestErrorChainRedacted: a redirect to a presigned URL with userinfo that
// then fails shows no secret anywhere a caller can reach — the JobError,
// every error of its chain (errors.Unwrap, single and multiple), its
// FileInfo, the logs and the job's record — while errors.Is and errors.As
// still reach the causes.
func TestErrorChainRedacted(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := closed.Addr().String()
	require.NoError(t, closed.Close()) // connection refused from now on

	const secrets = "token=SECRET1&X-Amz-Signature=SECRET2&X-Amz-Expires=60"
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.TrimPrefix(srv.URL, "http://")
		switch {
		case r.URL.Path == "/refused":
			http.Redirect(w, r, "http://user:SECRETPW@"+closedAddr+"/f?"+secrets, http.StatusFound)
		case r.URL.Path == "/file":
			http.Redirect(w, r, "file://user:SECRETPW@localhost/etc/passwd?"+secrets, http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/r/"): // an endless chain of redirects
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
			http.Redirect(w, r, fmt.Sprintf("http://user:SECRETPW@%s/r/%d?%s", host, n+1, secrets), http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	policy := func(join bool) *http.Client {
		return &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if join {
				return errors.Join(fmt.Errorf("not going to %s", req.URL), errRefused)
			}
			return fmt.Errorf("not going to %s: %w", req.URL, errRefused)
		}}
	}
	for _, tc := range []struct {
		name   string
		client *http.Client
		path   string
		code   dojob.HRESULT
		check  func(t *testing.T, e *dojob.JobError)
	}{
		{"connection refused after a redirect", nil, "/refused", dojob.ErrCannotConnect, func(t *testing.T, e *dojob.JobError) {
			var op *net.OpError
			require.ErrorAs(t, e, &op)
			assert.Equal(t, "dial", op.Op)
			assert.ErrorIs(t, e, errConnRefused)
		}},
		{"redirect to file://", nil, "/file", dojob.ErrRedirectFailed, nil},
		{"11th redirect", nil, "/r/0", dojob.ErrRedirectFailed, nil},
		{"refused by the caller's CheckRedirect", policy(false), "/r/0", dojob.ErrRedirectFailed, func(t *testing.T, e *dojob.JobError) {
			assert.ErrorIs(t, e, errRefused)
		}},
		{"refused by the caller's CheckRedirect, joined", policy(true), "/r/0", dojob.ErrRedirectFailed, func(t *testing.T, e *dojob.JobError) {
			assert.ErrorIs(t, e, errRefused)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			state := t.TempDir()
			m, err := dojob.NewManager(dojob.Config{StateDir: state, HTTPClient: tc.client,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			require.NoError(t, err)
			j, err := m.CreateJob(tc.name)
			require.NoError(t, err)
			require.NoError(t, j.AddFile(srv.URL+tc.path, filepath.Join(t.TempDir(), "f")))
			require.NoError(t, j.SetNoProgressTimeout(0)) // a transient error is final at once
			require.Equal(t, dojob.StateError, resumeWait(t, j))
			e := mustJobError(t, j)
			require.Equal(t, tc.code, e.Code, e.Error())
			if tc.check != nil {
				tc.check(t, e)
			}
			var ue *url.Error
			require.ErrorAs(t, e, &ue)
			assert.Contains(t, ue.URL, "REDACTED", "the *url.Error's URL is redacted")
			assert.Contains(t, ue.URL, "X-Amz-Expires=60", "what is not secret is kept")

			texts := errorTexts(e)
			texts = append(texts, fmt.Sprintf("%+v", *e.File), e.File.String())
			require.NoError(t, m.Close())
			texts = append(texts, logs.String())
			recs, err := filepath.Glob(filepath.Join(state, "jobs", "*.json"))
			require.NoError(t, err)
			require.Len(t, recs, 1)
			rec, err := os.ReadFile(recs[0])
			require.NoError(t, err)
			texts = append(texts, string(rec))
			for _, s := range texts {
				require.NotContains(t, s, "SECRET", "a secret shown")
			}
			require.Greater(t, len(texts), 6, "the chain was walked")
		})
	}
}
