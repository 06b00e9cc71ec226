package dojob_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// Sources that change or lie: a file is never spliced from two contents,
// a mirror's bad bytes do not poison a job, and FileSpec.Size bounds every
// body.

// liar is a server that honours Range but sends no validator (no ETag, no
// Last-Modified) and ignores If-Range: many simple servers, object-store
// gateways and caches do. It serves data at every path.
type liar struct {
	data []byte
	mu   sync.Mutex
	reqs []liarRequest
}

type liarRequest struct{ Range, IfRange string }

func newLiar(t *testing.T, data []byte) (*liar, string) {
	t.Helper()
	l := &liar{data: data}
	s := httptest.NewServer(l)
	t.Cleanup(func() {
		// A handler may still be writing a body the client stopped reading
		// and closed. Under Wine 8 that write is not always failed (about
		// one run in five), and Close would wait for it for ever: close the
		// connections from this side first.
		s.CloseClientConnections()
		s.Close()
	})
	return l, s.URL + "/f"
}

func (l *liar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.reqs = append(l.reqs, liarRequest{r.Header.Get("Range"), r.Header.Get("If-Range")})
	l.mu.Unlock()
	off := 0
	if rg, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes="); ok && strings.HasSuffix(rg, "-") {
		n, err := strconv.Atoi(strings.TrimSuffix(rg, "-"))
		if err == nil && n < len(l.data) {
			off = n
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(l.data)-off))
	if off > 0 {
		w.Header().Set("Content-Range", "bytes "+strconv.Itoa(off)+"-"+strconv.Itoa(len(l.data)-1)+"/"+strconv.Itoa(len(l.data)))
		w.WriteHeader(http.StatusPartialContent)
	}
	_, _ = w.Write(l.data[off:])
}

func (l *liar) requests() []liarRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]liarRequest(nil), l.reqs...)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestMirrorWithoutValidatorsIsNotSpliced: the primary drops the connection
// half-way and then answers 503; the mirror serves other bytes of the same
// size with no validator and ignores If-Range. Its 206 proves nothing, so
// the file starts over on the mirror: the installed file is wholly the
// mirror's, never half of each.
func TestMirrorWithoutValidatorsIsNotSpliced(t *testing.T) {
	const size, half = 1 << 20, 512 << 10
	primary := dojobtest.NewServer(t, dojobtest.WithSize(size), dojobtest.Script(dojobtest.DropAfter(half)), dojobtest.Always(dojobtest.Status(503)))
	other := dojobtest.Content("another file", size)
	mirror, mirrorURL := newLiar(t, other)
	require.NotEqual(t, primary.SHA256("/f"), sha256Hex(other))

	m := newMirrorManager(t, dojob.Config{})
	j, local := mirrorJob(t, m, dojob.FileSpec{RemoteURL: primary.FileURL("/f"), Mirrors: []string{mirrorURL}})
	require.Equal(t, dojob.StateTransferred, resumeWait(t, j))

	reqs := mirror.requests()
	require.Len(t, reqs, 2, "a Range request that proved nothing, then the whole file")
	assert.Equal(t, "bytes=524288-", reqs[0].Range)
	assert.NotEmpty(t, reqs[0].IfRange, "the primary's ETag was sent")
	assert.Empty(t, reqs[1].Range, "the file started over on the mirror")
	fi := j.Files()[0]
	assert.Equal(t, 1, fi.Restarts)
	assert.Equal(t, "answer without the same ETag", fi.RestartReason)
	assert.Equal(t, 1, fi.Source)
	require.NoError(t, j.Complete())
	assert.Equal(t, sha256Hex(other), fileSHA256(t, local), "the mirror's file, whole")
}

// TestSetRemoteNameIsNotSpliced: mid-download the file moves to a URL that
// serves other bytes of the same size without validators and ignores
// If-Range: the file starts over there instead of continuing at its offset.
func TestSetRemoteNameIsNotSpliced(t *testing.T) {
	const size = 1 << 20
	primary := dojobtest.NewServer(t, dojobtest.WithSize(size), dojobtest.WithRate(512<<10))
	other := dojobtest.Content("moved", size)
	moved, movedURL := newLiar(t, other)

	m := newMirrorManager(t, dojob.Config{})
	j, local := mirrorJob(t, m, dojob.FileSpec{RemoteURL: primary.FileURL("/f")})
	require.NoError(t, j.Resume())
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for j.Progress().BytesTransferred < 64<<10 {
		_, err := primary.AwaitRequests(ctx, func(reqs []dojobtest.Request) bool {
			return len(reqs) == 1 && reqs[0].BodyBytes >= 64<<10
		})
		require.NoError(t, err)
	}
	require.NoError(t, j.SetRemoteName(0, movedURL))
	st, err := j.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, dojob.StateTransferred, st)

	reqs := moved.requests()
	require.Len(t, reqs, 2)
	assert.Regexp(t, `^bytes=\d+-$`, reqs[0].Range, "asked to continue at the offset")
	assert.NotEmpty(t, reqs[0].IfRange)
	assert.Empty(t, reqs[1].Range, "then the whole file")
	assert.Equal(t, 1, j.Files()[0].Restarts)
	require.NoError(t, j.Complete())
	assert.Equal(t, sha256Hex(other), fileSHA256(t, local))
}

// TestBadMirrorDoesNotPoisonTheJob: the primary (with a Checksum) drops once
// half-way and is healthy afterwards; the mirror serves other bytes. The
// file, which then holds the mirror's bytes, fails its Checksum: as BITS
// does for peers, it is emptied and fetched again from the primary, without
// ERROR, and the mirror is not asked again for it — not even when the
// primary fails once more, until the caller resumes the job.
func TestBadMirrorDoesNotPoisonTheJob(t *testing.T) {
	const size, half = 1 << 20, 512 << 10
	for _, tc := range []struct {
		name  string
		liar  bool // the mirror sends no validator and ignores If-Range
		again bool // the primary drops once more on its second request
	}{
		{name: "mirror-with-its-own-etag"},
		{name: "mirror-ignores-if-range", liar: true},
		{name: "primary-drops-again", again: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := []dojobtest.Fault{dojobtest.DropAfter(half)}
			if tc.again {
				script = append(script, dojobtest.DropAfter(100_000))
			}
			primary := dojobtest.NewServer(t, dojobtest.WithSize(size), dojobtest.Script(script...))
			other := dojobtest.Content("not the file", size)
			var mirrorURL string
			var mirrorReqs func() int
			if tc.liar {
				l, u := newLiar(t, other)
				mirrorURL, mirrorReqs = u, func() int { return len(l.requests()) }
			} else {
				s := dojobtest.NewServer(t, dojobtest.WithFile("/f", other))
				mirrorURL, mirrorReqs = s.FileURL("/f"), func() int { return len(s.RequestsFor("/f")) }
			}
			m := newMirrorManager(t, dojob.Config{})
			j, local := mirrorJob(t, m, dojob.FileSpec{RemoteURL: primary.FileURL("/f"), Mirrors: []string{mirrorURL},
				Checksum: "sha256:" + primary.SHA256("/f")})
			require.NoError(t, j.SetMinimumRetryDelay(10*time.Millisecond))
			var log stateLog
			log.watch(t, j)

			require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
			assert.Zero(t, log.count(dojob.StateError), "never ERROR: %v", log.states)
			fi := j.Files()[0]
			assert.True(t, fi.Verified)
			assert.Equal(t, 0, fi.Source, "back on the primary")
			wantMirror := 1
			if tc.liar {
				wantMirror = 2 // its 206 proved nothing: it served the whole file next
			}
			assert.Equal(t, wantMirror, mirrorReqs(), "the mirror is skipped after its bytes failed")
			preqs := primary.RequestsFor("/f")
			if tc.again {
				require.Len(t, preqs, 3, "drop, drop, resume")
				assert.Equal(t, 1, j.ErrorCount(), "one TRANSIENT_ERROR: the mirror was not tried instead")
				assert.Equal(t, "bytes=100000-", preqs[2].Range)
			} else {
				require.Len(t, preqs, 2)
				assert.Zero(t, j.ErrorCount())
			}
			assert.Empty(t, preqs[1].Range, "the file was fetched again from byte 0")
			require.NoError(t, j.Complete())
			assert.Equal(t, primary.SHA256("/f"), fileSHA256(t, local))
		})
	}
}

// TestPrimaryBytesFailingAreAnError: bytes of the primary alone that fail
// the Checksum are BG_E_VALIDATION_FAILED, as before; Resume downloads the
// file again from the primary.
func TestPrimaryBytesFailingAreAnError(t *testing.T) {
	const size = 64 << 10
	primary := dojobtest.NewServer(t, dojobtest.WithSize(size))
	mirror := dojobtest.NewServer(t, dojobtest.WithSize(size))
	m := newMirrorManager(t, dojob.Config{})
	j, _ := mirrorJob(t, m, dojob.FileSpec{RemoteURL: primary.FileURL("/f"), Mirrors: []string{mirror.FileURL("/f")},
		Checksum: "sha256:" + strings.Repeat("0", 64)})
	require.Equal(t, dojob.StateError, resumeWait(t, j))
	assert.Equal(t, dojob.ErrValidationFailed, mustJobError(t, j).Code)
	require.Equal(t, dojob.StateError, resumeWait(t, j))
	assert.Len(t, primary.RequestsFor("/f"), 2, "Resume fetched it again from the primary")
	assert.Empty(t, mirror.RequestsFor("/f"))
	assert.Equal(t, 0, j.Files()[0].Source)
}

// TestRejectedMirrorBytesRefetchedFromPrimary: the primary answers 503
// once, the file comes whole from a mirror that serves other bytes, and
// the caller rejects it (SetValidationState(false)). It is fetched again
// from the primary — the job goes back to QUEUED, not ERROR — and the
// mirror is not asked again.
func TestRejectedMirrorBytesRefetchedFromPrimary(t *testing.T) {
	const size = 256 << 10
	primary := dojobtest.NewServer(t, dojobtest.WithSize(size), dojobtest.Script(dojobtest.Status(503)))
	mirror := dojobtest.NewServer(t, dojobtest.WithFile("/f", dojobtest.Content("impostor", size)))
	m := newMirrorManager(t, dojob.Config{})
	j, local := mirrorJob(t, m, dojob.FileSpec{RemoteURL: primary.FileURL("/f"), Mirrors: []string{mirror.FileURL("/f")}})
	require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
	require.Equal(t, 1, j.Files()[0].Source)

	require.NoError(t, j.SetValidationState(0, false))
	st, err := j.Wait(t.Context())
	require.NoError(t, err)
	require.Equal(t, dojob.StateTransferred, st)
	assert.Zero(t, j.ErrorCount())
	fi := j.Files()[0]
	assert.Equal(t, 0, fi.Source)
	assert.Equal(t, "rejected by the caller with bytes from a mirror", fi.RestartReason)
	assert.Len(t, mirror.RequestsFor("/f"), 1)
	assert.Len(t, primary.RequestsFor("/f"), 2)
	require.NoError(t, j.SetValidationState(0, true))
	require.NoError(t, j.Complete())
	assert.Equal(t, primary.SHA256("/f"), fileSHA256(t, local))
}

// countingTransport counts the body bytes the client reads.
type countingTransport struct {
	rt   http.RoundTripper
	read atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{resp.Body, &c.read}
	}
	return resp, err
}

type countingBody struct {
	rc interface {
		Read([]byte) (int, error)
		Close() error
	}
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}
func (b *countingBody) Close() error { return b.rc.Close() }

// endlessServer starts a server on loopback that answers every request
// with 200, a strong ETag and no Content-Length, and streams 32 KiB chunks
// until it has written stream bytes in all or the client goes away; written
// counts the bytes written. The caller closes it.
func endlessServer(stream int64) (s *httptest.Server, written *atomic.Int64) {
	written = new(atomic.Int64)
	chunk := make([]byte, 32<<10)
	s = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"endless"`)
		w.WriteHeader(http.StatusOK)
		for written.Load() < stream {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	return s, written
}

// TestSizeBoundsAnUnannouncedBody: FileSpec.Size is 64 KiB and the server
// streams 48 MiB with no Content-Length. dojob reads 64 KiB and one byte
// more, fails the file with BG_E_VALIDATION_FAILED, and keeps none of it.
func TestSizeBoundsAnUnannouncedBody(t *testing.T) {
	const size, stream = 64 << 10, 48 << 20
	s, written := endlessServer(stream)
	defer s.Close()
	ct := &countingTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
	m := newMirrorManager(t, dojob.Config{HTTPClient: &http.Client{Transport: ct}})
	j, _ := mirrorJob(t, m, dojob.FileSpec{RemoteURL: s.URL + "/f", Size: size})
	require.Equal(t, dojob.StateError, resumeWait(t, j))
	e := mustJobError(t, j)
	assert.Equal(t, dojob.ErrValidationFailed, e.Code)
	assert.Equal(t, dojob.ErrorContextRemoteFile, e.Context)
	assert.Contains(t, e.Error(), "longer than the expected 65536 bytes")
	assert.Equal(t, int64(size+1), ct.read.Load(), "read up to Size and one byte more")
	assert.Zero(t, j.Progress().BytesTransferred, "the data is discarded")
	assert.Zero(t, j.Files()[0].BytesTransferred)
	s.CloseClientConnections()
	assert.Less(t, written.Load(), int64(stream), "the server was not drained")
	assert.True(t, errors.Is(e, dojob.ErrValidationFailed))
}
