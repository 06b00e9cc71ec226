package dojob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ifRange304Server serves content with a strong ETag, but answers 304 to
// every request carrying If-Range, as a server does that takes If-Range for
// a conditional GET. Its first request is cut off after dropAt body bytes
// (0: not cut). With always304 it answers 304 to every request after the
// first, If-Range or not.
type ifRange304Server struct {
	*httptest.Server
	content []byte
	mu      sync.Mutex
	reqs    []seenRequest
}

type seenRequest struct {
	rng, ifRange string
	status       int
}

func newIfRange304Server(t *testing.T, content []byte, dropAt int, always304 bool) *ifRange304Server {
	s := &ifRange304Server{content: content}
	modTime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, seenRequest{rng: req.Header.Get("Range"), ifRange: req.Header.Get("If-Range")})
		s.mu.Unlock()
		status := func(code int) {
			s.mu.Lock()
			s.reqs[n].status = code
			s.mu.Unlock()
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", modTime.Format(http.TimeFormat))
		switch {
		case n == 0 && dropAt > 0:
			status(http.StatusOK)
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			w.WriteHeader(http.StatusOK)
			w.Write(content[:dropAt])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection drops mid-body
		case req.Header.Get("If-Range") != "", always304 && n > 0:
			status(http.StatusNotModified)
			w.WriteHeader(http.StatusNotModified)
		default:
			sw := &statusWriter{ResponseWriter: w}
			http.ServeContent(sw, req, "", modTime, bytes.NewReader(content))
			status(sw.code)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *ifRange304Server) requests() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.reqs...)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// run304Job transfers url to a new file with fast retries and returns the
// job in its end state.
func run304Job(t *testing.T, add func(j *dojob.Job, dest string) error) (*dojob.Job, string) {
	t.Helper()
	m, err := dojob.NewManager(dojob.Config{StallTimeout: 2 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	j, err := m.CreateJob("304")
	require.NoError(t, err)
	dest := filepath.Join(t.TempDir(), "f")
	require.NoError(t, add(j, dest))
	require.NoError(t, j.SetMinimumRetryDelay(fastRetry))
	require.NoError(t, j.SetNoProgressTimeout(5*time.Second))
	require.NoError(t, j.Resume())
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err = j.Wait(ctx)
	require.NoError(t, err)
	return j, dest
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestResume304StartsOverOnce: a 304 to a resume with If-Range starts the
// file over once, with a fresh request without If-Range (it used to fail the
// job with BG_E_HTTP_ERROR_304, and Resume repeated it).
func TestResume304StartsOverOnce(t *testing.T) {
	content := dojobtest.Content("304", 256<<10)
	s := newIfRange304Server(t, content, 100<<10, false)
	j, dest := run304Job(t, func(j *dojob.Job, dest string) error { return j.AddFile(s.URL+"/f", dest) })
	require.Equal(t, dojob.StateTransferred, j.State())
	reqs := s.requests()
	require.Len(t, reqs, 3, "%+v", reqs)
	assert.Equal(t, seenRequest{status: 200}, reqs[0], "cut off mid-body")
	assert.Regexp(t, `^bytes=\d+-$`, reqs[1].rng)
	assert.Equal(t, `"v1"`, reqs[1].ifRange)
	assert.Equal(t, 304, reqs[1].status)
	assert.Equal(t, seenRequest{status: 200}, reqs[2], "one fresh request from byte 0, without If-Range")
	assert.Equal(t, 1, j.ErrorCount(), "the drop only; the 304 is not an error")
	require.NoError(t, j.Complete())
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	assert.Equal(t, sum(content), sum(got))
}

// TestResume304FailsIfFreshRequestFails: if the fresh request is answered
// with 304 too, the job fails with BG_E_HTTP_ERROR_304 — after exactly one
// restart, not in a loop.
func TestResume304FailsIfFreshRequestFails(t *testing.T) {
	content := dojobtest.Content("304", 256<<10)
	s := newIfRange304Server(t, content, 100<<10, true)
	j, _ := run304Job(t, func(j *dojob.Job, dest string) error { return j.AddFile(s.URL+"/f", dest) })
	require.Equal(t, dojob.StateError, j.State())
	jerr, err := j.Error()
	require.NoError(t, err)
	assert.Equal(t, dojob.HTTPStatus(304), jerr.Code)
	assert.False(t, jerr.Transient())
	reqs := s.requests()
	require.Len(t, reqs, 3, "%+v", reqs)
	assert.NotEmpty(t, reqs[1].ifRange)
	assert.Equal(t, seenRequest{status: 304}, reqs[2], "the fresh request carried no Range and no If-Range")
	assert.Equal(t, 2, j.ErrorCount(), "the drop, then the final 304")
}

// TestRanges304StartsOverOnce: a file added with ranges whose later range
// request gets 304 to its If-Range starts over once, and its remaining
// requests carry no If-Range.
func TestRanges304StartsOverOnce(t *testing.T) {
	content := dojobtest.Content("304", 8<<10)
	s := newIfRange304Server(t, content, 0, false)
	ranges := []dojob.FileRange{{Offset: 100, Length: 100}, {Offset: 1000, Length: 100}, {Offset: 5000, Length: dojob.LengthToEOF}}
	j, dest := run304Job(t, func(j *dojob.Job, dest string) error { return j.AddFileWithRanges(s.URL+"/f", dest, ranges) })
	require.Equal(t, dojob.StateTransferred, j.State())
	reqs := s.requests()
	want := []seenRequest{
		{rng: "bytes=100-199", status: 206},
		{rng: "bytes=1000-1099", ifRange: `"v1"`, status: 304},
		{rng: "bytes=100-199", status: 206},
		{rng: "bytes=1000-1099", status: 206},
		{rng: "bytes=5000-", status: 206},
	}
	assert.Equal(t, want, reqs)
	assert.Equal(t, 0, j.ErrorCount())
	require.NoError(t, j.Complete())
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	assert.Equal(t, string(content[100:200])+string(content[1000:1100])+string(content[5000:]), string(got))
}
