package dojob_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/stretchr/testify/require"
)

// hostileContent is the 16 KiB body the hostile server sends for path p.
func hostileContent(p string) []byte {
	seed := sha256.Sum256([]byte(p))
	return bytes.Repeat(seed[:], 16<<10/len(seed))
}

// hostileHeaders fills h as a hostile server would, within what dojob's
// transport reads (256 KiB): 5,000 lines of junk, 300 Vary lines, a 32 KiB
// Content-Disposition and a 2 KiB cookie — about 235 KB of headers.
func hostileHeaders(h http.Header) {
	for i := range 5000 {
		h.Set(fmt.Sprintf("X-Junk-%04d", i), "abcdefghijklmnopqrstuvwx")
	}
	for i := range 300 {
		h.Add("Vary", fmt.Sprintf("Accept-%03d", i))
	}
	h.Set("Content-Disposition", `attachment; filename="`+strings.Repeat("a", 32<<10)+`"`)
	h.Set("Set-Cookie", "session="+strings.Repeat("c", 2<<10))
}

// hostileServer serves hostileContent for every path, with ranges, an
// ETag, and hostileHeaders.
func hostileServer(tb testing.TB) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hostileHeaders(w.Header())
		w.Header().Set("ETag", `"`+r.URL.Path+`"`)
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", time.Unix(1700000000, 0), bytes.NewReader(hostileContent(r.URL.Path)))
	}))
	tb.Cleanup(s.Close)
	return s
}

// hostileJob downloads n files of 16 KiB from a hostile server into a job
// of a Manager with a state directory, closes that Manager, and reopens the
// directory. It returns the reopened job and the size of the job's record
// as the first Manager's Close left it.
func hostileJob(tb testing.TB, n int) (j *dojob.Job, recordBytes int64) {
	tb.Helper()
	s := hostileServer(tb)
	state, dir := tb.TempDir(), tb.TempDir()
	m, err := dojob.NewManager(dojob.Config{StateDir: state})
	require.NoError(tb, err)
	j, err = m.CreateJob("hostile")
	require.NoError(tb, err)
	specs := make([]dojob.FileSpec, n)
	for i := range specs {
		specs[i] = dojob.FileSpec{RemoteURL: fmt.Sprintf("%s/f%03d", s.URL, i), LocalPath: filepath.Join(dir, fmt.Sprintf("f%03d", i))}
	}
	require.NoError(tb, j.AddFileSet(specs))
	require.NoError(tb, j.Resume())
	st, err := j.Wait(tb.Context())
	require.NoError(tb, err)
	require.Equal(tb, dojob.StateTransferred, st)
	id := j.ID()
	require.NoError(tb, m.Close())

	recs, err := filepath.Glob(filepath.Join(state, "jobs", "*.json"))
	require.NoError(tb, err)
	require.Len(tb, recs, 1)
	fi, err := os.Stat(recs[0])
	require.NoError(tb, err)

	m, err = dojob.NewManager(dojob.Config{StateDir: state})
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, m.Close()) })
	j, err = m.Job(id)
	require.NoError(tb, err)
	return j, fi.Size()
}

// TestHostileHeadersBounded: a server that sends ~235 KB of headers with
// each of 200 files makes a job record of less than 200 KiB, FileInfo keeps
// only the allow-listed headers within their bounds, and every file
// arrives intact.
func TestHostileHeadersBounded(t *testing.T) {
	// 40 files keep the test cheap under -race (each response carries
	// ~235 KB of headers); BenchmarkFilesHostileHeaders measures 200.
	const n = 40
	j, size := hostileJob(t, n)
	// Under 1 KiB a file: its paths and sizes take ~380 bytes, the headers
	// kept ~260 (a release that kept every header wrote 50.9 MB for 200).
	require.Less(t, size, int64(n<<10), "record size")
	files := j.Files()
	require.Len(t, files, n)
	for i, fi := range files {
		h := fi.ResponseHeaders
		require.Equal(t, `"/`+fmt.Sprintf("f%03d", i)+`"`, h.Get("ETag"), "file %d", i)
		require.Equal(t, "16384", h.Get("Content-Length"))
		require.Equal(t, "application/octet-stream", h.Get("Content-Type"))
		require.Len(t, h["Vary"], 4, "at most 4 values of a name")
		require.Empty(t, h["Content-Disposition"], "a value over 1 KiB is dropped")
		require.Empty(t, h["Set-Cookie"])
		require.Empty(t, h["X-Junk-0000"])
		var n int
		for k, vs := range h {
			for _, v := range vs {
				n += len(k) + len(v)
			}
		}
		require.LessOrEqual(t, n, 8<<10)
	}
	require.NoError(t, j.Complete())
	for _, fi := range files {
		data, err := os.ReadFile(fi.LocalPath)
		require.NoError(t, err)
		want := sha256.Sum256(hostileContent("/" + filepath.Base(fi.LocalPath)))
		got := sha256.Sum256(data)
		require.Equal(t, hex.EncodeToString(want[:]), hex.EncodeToString(got[:]), fi.LocalPath)
	}
}

// BenchmarkFilesHostileHeaders measures one Files call on a job of 200
// files whose server sent ~235 KB of headers with each, and reports the
// size of the job's record (record-B).
func BenchmarkFilesHostileHeaders(b *testing.B) {
	j, size := hostileJob(b, 200)
	b.ReportAllocs()
	for b.Loop() {
		if len(j.Files()) != 200 {
			b.Fatal("files missing")
		}
	}
	b.ReportMetric(float64(size), "record-B") // after the loop, which resets metrics
}

// TestResponseHeaderCap: response headers over what the transport reads
// (256 KiB for dojob's own; the caller's MaxResponseHeaderBytes for its
// own transport) are a fatal ErrHeaderSizeOverflow in REMOTE_FILE, and a
// file with a mirror moves on to it.
func TestResponseHeaderCap(t *testing.T) {
	var huge, sane atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/huge") {
			huge.Add(1)
			for i := range 8000 { // ~312 KB
				w.Header().Set(fmt.Sprintf("X-Junk-%04d", i), "abcdefghijklmnopqrstuvwx")
			}
		} else {
			sane.Add(1)
			hostileHeaders(w.Header()) // ~235 KB: under dojob's cap
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "", time.Unix(1700000000, 0), bytes.NewReader(hostileContent("/f")))
	}))
	defer s.Close()
	want := sha256.Sum256(hostileContent("/f"))

	for _, tc := range []struct {
		name    string
		client  *http.Client
		url     string
		mirrors []string
		want    dojob.State
		huge    int64 // requests to /huge
		sane    int64 // requests to /sane
	}{
		{"over 256 KiB", nil, s.URL + "/huge", nil, dojob.StateError, 1, 0},
		{"over 256 KiB, mirror", nil, s.URL + "/huge", []string{s.URL + "/sane"}, dojob.StateTransferred, 1, 1},
		{"under 256 KiB", nil, s.URL + "/sane", nil, dojob.StateTransferred, 0, 1},
		{"caller's transport's cap", &http.Client{Transport: &http.Transport{MaxResponseHeaderBytes: 64 << 10}},
			s.URL + "/sane", nil, dojob.StateError, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			huge.Store(0)
			sane.Store(0)
			if tc.client != nil {
				defer tc.client.CloseIdleConnections()
			}
			m, err := dojob.NewManager(dojob.Config{HTTPClient: tc.client})
			require.NoError(t, err)
			defer m.Close()
			j, err := m.CreateJob(tc.name)
			require.NoError(t, err)
			local := filepath.Join(t.TempDir(), "f")
			require.NoError(t, j.AddFileSet([]dojob.FileSpec{{RemoteURL: tc.url, LocalPath: local, Mirrors: tc.mirrors}}))
			require.Equal(t, tc.want, resumeWait(t, j))
			require.Equal(t, tc.huge, huge.Load(), "requests with huge headers")
			require.Equal(t, tc.sane, sane.Load(), "requests with headers under the cap")
			if tc.want == dojob.StateError {
				e := mustJobError(t, j)
				require.Equal(t, dojob.ErrHeaderSizeOverflow, e.Code)
				require.Equal(t, "ERROR_WINHTTP_HEADER_SIZE_OVERFLOW", e.Code.Name())
				require.Equal(t, dojob.ErrorContextRemoteFile, e.Context)
				require.False(t, e.Transient())
				require.Equal(t, 1, j.ErrorCount())
				require.NoError(t, j.Cancel())
				return
			}
			require.NoError(t, j.Complete())
			require.Equal(t, hex.EncodeToString(want[:]), fileSHA256(t, local))
		})
	}
}
