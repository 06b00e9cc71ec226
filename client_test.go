package dojob_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hopServer redirects /hop/N to /hop/N-1, and /hop/1 to final: a request
// for /hop/N reaches final after exactly N redirects. It records the paths
// asked for.
type hopServer struct {
	*httptest.Server
	mu   sync.Mutex
	hits []string
}

func newHopServer(t *testing.T, final string) *hopServer {
	h := &hopServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.mu.Lock()
		h.hits = append(h.hits, req.URL.Path)
		h.mu.Unlock()
		n, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/hop/"))
		switch {
		case err != nil || n < 1:
			http.NotFound(w, req)
		case n == 1:
			http.Redirect(w, req, final, http.StatusFound)
		default:
			http.Redirect(w, req, "/hop/"+strconv.Itoa(n-1), http.StatusFound)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hopServer) url(n int) string { return h.URL + "/hop/" + strconv.Itoa(n) }

func (h *hopServer) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.hits)
}

// redirectJob makes a one-file job for url on r's Manager, with fast
// retries and a short no-progress timeout, so a refusal wrongly taken as
// transient ends in ErrNoProgress (and an ErrorCount above 1) instead of
// hanging.
func redirectJob(t *testing.T, r *netRig, url string) (*dojob.Job, *dojobtest.Recorder) {
	t.Helper()
	j, err := r.m.CreateJob("redirect")
	require.NoError(t, err)
	require.NoError(t, j.AddFile(url, r.local("/f")))
	require.NoError(t, j.SetMinimumRetryDelay(fastRetry))
	require.NoError(t, j.SetNoProgressTimeout(time.Second))
	rec := dojobtest.NewRecorder()
	require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
	require.NoError(t, j.SetNotifyInterface(rec))
	return j, rec
}

// requireRefusedAtOnce checks that j went to ERROR with
// ERROR_WINHTTP_REDIRECT_FAILED at its first error, never passing through
// TRANSIENT_ERROR.
func requireRefusedAtOnce(t *testing.T, r *netRig, j *dojob.Job, rec *dojobtest.Recorder) *dojob.JobError {
	t.Helper()
	require.Equal(t, dojob.StateError, r.run(j))
	jerr, err := j.Error()
	require.NoError(t, err)
	assert.Equal(t, dojob.ErrRedirectFailed, jerr.Code, jerr.Error())
	assert.Equal(t, uint32(0x80072F7C), uint32(jerr.Code))
	assert.Equal(t, dojob.ErrorContextGeneralTransport, jerr.Context)
	assert.False(t, jerr.Transient())
	assert.Equal(t, 1, j.ErrorCount())
	_, err = rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
	require.NoError(t, err)
	assert.NotContains(t, rec.States(), dojob.StateTransientError)
	return jerr
}

// TestTenRedirectsFollowed: exactly 10 redirects are followed (WinHTTP's
// default).
func TestTenRedirectsFollowed(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(64<<10))
	hops := newHopServer(t, r.s.FileURL("/f"))
	j, _ := redirectJob(t, r, hops.url(10))
	require.Equal(t, dojob.StateTransferred, r.run(j))
	assert.Equal(t, 10, hops.count(), "/hop/10 … /hop/1")
	assert.Len(t, r.s.RequestsFor("/f"), 1)
	assert.Equal(t, 0, j.ErrorCount())
	r.complete(j, "/f")
}

// TestEleventhRedirectRefused: the 11th redirect is refused, fatally, and
// its target is never fetched.
func TestEleventhRedirectRefused(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(64<<10))
	hops := newHopServer(t, r.s.FileURL("/f"))
	j, rec := redirectJob(t, r, hops.url(11))
	jerr := requireRefusedAtOnce(t, r, j, rec)
	assert.Contains(t, jerr.Error(), "stopped after 10 redirects")
	assert.Equal(t, 11, hops.count(), "the first request and 10 redirects followed")
	assert.Empty(t, r.s.RequestsFor("/f"), "the 11th redirect is not followed")
	assert.Empty(t, dirEntries(t, r.dir), "nothing on disk")
}

// TestRedirectToOtherSchemeRefused: a redirect to file:// or ftp:// fails
// at once (it used to be retried as a connection error until the
// no-progress timeout).
func TestRedirectToOtherSchemeRefused(t *testing.T) {
	for _, target := range []string{"file:///etc/passwd", "ftp://127.0.0.1/f", "FILE:///etc/hostname"} {
		t.Run(target, func(t *testing.T) {
			r := newNetRig(t, dojob.Config{})
			hops := newHopServer(t, target)
			j, rec := redirectJob(t, r, hops.url(3))
			jerr := requireRefusedAtOnce(t, r, j, rec)
			assert.Contains(t, jerr.Error(), "scheme other than http or https")
			assert.Equal(t, 3, hops.count(), "one attempt, no retry")
			assert.Empty(t, dirEntries(t, r.dir), "nothing on disk")
		})
	}
}

// TestCallerRedirectPolicy: a caller's own CheckRedirect decides the count
// and the https→http rule, and its refusal is a refused redirect (fatal,
// with the caller's error reachable); but it cannot allow another scheme.
func TestCallerRedirectPolicy(t *testing.T) {
	t.Run("allows more than 10", func(t *testing.T) {
		r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(8<<10))
		hops := newHopServer(t, r.s.FileURL("/f"))
		client := r.s.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return nil }
		m, err := dojob.NewManager(dojob.Config{HTTPClient: client})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, m.Close()) })
		r.m = m
		j, _ := redirectJob(t, r, hops.url(12))
		require.Equal(t, dojob.StateTransferred, r.run(j))
		assert.Equal(t, 12, hops.count())
		r.complete(j, "/f")
	})
	t.Run("refuses: fatal with the caller's error", func(t *testing.T) {
		r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(8<<10))
		hops := newHopServer(t, r.s.FileURL("/f"))
		stop := errors.New("one redirect is enough")
		client := r.s.Client()
		client.CheckRedirect = func(_ *http.Request, via []*http.Request) error {
			if len(via) > 1 {
				return stop
			}
			return nil
		}
		m, err := dojob.NewManager(dojob.Config{HTTPClient: client})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, m.Close()) })
		r.m = m
		j, rec := redirectJob(t, r, hops.url(3))
		jerr := requireRefusedAtOnce(t, r, j, rec)
		assert.ErrorIs(t, jerr, stop)
		assert.Equal(t, 2, hops.count())
	})
	t.Run("cannot allow file://", func(t *testing.T) {
		r := newNetRig(t, dojob.Config{})
		hops := newHopServer(t, "file:///etc/passwd")
		client := r.s.Client()
		var called atomic.Int32
		client.CheckRedirect = func(*http.Request, []*http.Request) error { called.Add(1); return nil }
		m, err := dojob.NewManager(dojob.Config{HTTPClient: client})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, m.Close()) })
		r.m = m
		j, rec := redirectJob(t, r, hops.url(2))
		requireRefusedAtOnce(t, r, j, rec)
		assert.Equal(t, int32(1), called.Load(), "the caller's policy decided the http redirect, not the file:// one")
	})
}

// TestCallerClientNotModified: dojob wraps the redirect policy in a copy of
// the caller's client; the client itself keeps its own CheckRedirect.
func TestCallerClientNotModified(t *testing.T) {
	plain := &http.Client{}
	mine := errors.New("the caller's policy")
	own := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return mine }}
	for _, c := range []*http.Client{plain, own} {
		m, err := dojob.NewManager(dojob.Config{HTTPClient: c})
		require.NoError(t, err)
		require.NoError(t, m.Close())
	}
	assert.Nil(t, plain.CheckRedirect)
	require.NotNil(t, own.CheckRedirect)
	assert.Same(t, mine, own.CheckRedirect(nil, nil), "the caller's own function, not a wrapper")
}
