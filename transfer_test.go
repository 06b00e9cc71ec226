package dojob_test

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests in this file run over real loopback connections to dojobtest
// servers on 127.0.0.1, with short timeouts; timing-heavy cases live in the
// synctest tests.

// netRig is a Manager wired to a dojobtest Server over loopback.
type netRig struct {
	t   *testing.T
	s   *dojobtest.Server
	m   *dojob.Manager
	dir string
}

// fastRetry makes retries quick for real-time tests.
const fastRetry = 10 * time.Millisecond

func newNetRig(t *testing.T, cfg dojob.Config, opts ...dojobtest.Option) *netRig {
	t.Helper()
	dir := t.TempDir() // removed after the Manager is closed (see newRig)
	s := dojobtest.NewServer(t, opts...)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = s.Client()
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = 2 * time.Second // a bound, so a broken test fails instead of hanging
	}
	m, err := dojob.NewManager(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return &netRig{t: t, s: s, m: m, dir: dir}
}

func (r *netRig) local(path string) string {
	return filepath.Join(r.dir, strings.TrimPrefix(path, "/"))
}

// job makes a job for the paths with fast retries and a Recorder.
func (r *netRig) job(paths ...string) (*dojob.Job, *dojobtest.Recorder) {
	r.t.Helper()
	j, err := r.m.CreateJob(strings.Join(paths, " "))
	require.NoError(r.t, err)
	for _, p := range paths {
		require.NoError(r.t, j.AddFile(r.s.FileURL(p), r.local(p)))
	}
	require.NoError(r.t, j.SetMinimumRetryDelay(fastRetry))
	rec := dojobtest.NewRecorder()
	require.NoError(r.t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
	require.NoError(r.t, j.SetNotifyInterface(rec))
	return j, rec
}

// run resumes j and waits for its end state.
func (r *netRig) run(j *dojob.Job) dojob.State {
	r.t.Helper()
	require.NoError(r.t, j.Resume())
	ctx, cancel := context.WithTimeout(r.t.Context(), 20*time.Second)
	defer cancel()
	st, err := j.Wait(ctx)
	require.NoError(r.t, err)
	return st
}

// complete completes j and checks the destination of each path against
// what the server serves now.
func (r *netRig) complete(j *dojob.Job, paths ...string) {
	r.t.Helper()
	require.NoError(r.t, j.Complete())
	for _, p := range paths {
		require.Equal(r.t, r.s.SHA256(p), fileSHA256(r.t, r.local(p)), "SHA-256 of %s", p)
	}
	assert.Empty(r.t, tempFiles(r.t, r.dir))
}

func TestDropMidBodyResumes(t *testing.T) {
	const size = 1 << 20
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.Script(dojobtest.DropAfter(300<<10), dojobtest.OK()))
	j, _ := r.job("/f")
	require.Equal(t, dojob.StateTransferred, r.run(j))
	reqs := r.s.RequestsFor("/f")
	require.Len(t, reqs, 2)
	assert.Equal(t, "", reqs[0].Range)
	assert.Equal(t, "bytes="+strconv.FormatInt(reqs[0].BodyBytes, 10)+"-", reqs[1].Range)
	assert.NotEmpty(t, reqs[1].IfRange)
	assert.Equal(t, 206, reqs[1].Status)
	assert.InDelta(t, size, r.s.BodyBytes("/f"), 64<<10, "bytes served ≈ the file's size")
	assert.Equal(t, 1, j.ErrorCount())
	r.complete(j, "/f")
}

func TestStallThenRecoverOverLoopback(t *testing.T) {
	r := newNetRig(t, dojob.Config{StallTimeout: 200 * time.Millisecond}, dojobtest.WithSize(256<<10),
		dojobtest.Script(dojobtest.StallAfter(64<<10), dojobtest.OK()))
	j, _ := r.job("/f")
	require.Equal(t, dojob.StateTransferred, r.run(j))
	reqs := r.s.RequestsFor("/f")
	require.Len(t, reqs, 2)
	assert.Equal(t, "bytes="+strconv.FormatInt(reqs[0].BodyBytes, 10)+"-", reqs[1].Range)
	r.complete(j, "/f")
}

func TestStallForeverOverLoopback(t *testing.T) {
	r := newNetRig(t, dojob.Config{StallTimeout: 100 * time.Millisecond}, dojobtest.Always(dojobtest.StallHeaders()))
	j, rec := r.job("/f")
	require.NoError(t, j.SetNoProgressTimeout(500*time.Millisecond))
	start := time.Now()
	require.Equal(t, dojob.StateError, r.run(j))
	assert.GreaterOrEqual(t, time.Since(start), 600*time.Millisecond, "first stall after 100 ms, then the 500 ms window")
	jerr, err := j.Error()
	require.NoError(t, err)
	assert.Equal(t, dojob.ErrNoProgress, jerr.Code)
	assert.ErrorIs(t, jerr, dojob.ErrTimeout)
	_, err = rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
	require.NoError(t, err)
	require.NoError(t, r.m.Close()) // waits for every callback
	assert.Equal(t, 1, rec.Count(dojobtest.EventError), "JobError once")
}

func TestRetryAfterOverLoopback(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(10<<10),
		dojobtest.Script(dojobtest.StatusRetryAfter(503, "1"), dojobtest.OK()))
	j, _ := r.job("/f")
	require.Equal(t, dojob.StateTransferred, r.run(j))
	reqs := r.s.RequestsFor("/f")
	require.Len(t, reqs, 2)
	assert.GreaterOrEqual(t, reqs[1].Time.Sub(reqs[0].Time), time.Second, "Retry-After is a floor on the retry delay")
	r.complete(j, "/f")
}

func TestFatalHTTPStatus(t *testing.T) {
	for _, code := range []int{403, 404, 410, 501, 505} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			r := newNetRig(t, dojob.Config{}, dojobtest.Always(dojobtest.Status(code)))
			j, rec := r.job("/f")
			require.Equal(t, dojob.StateError, r.run(j))
			jerr, err := j.Error()
			require.NoError(t, err)
			assert.Equal(t, dojob.HTTPStatus(code), jerr.Code)
			assert.Equal(t, uint32(0x80190000+code), uint32(jerr.Code))
			assert.Equal(t, dojob.ErrorContextRemoteFile, jerr.Context)
			assert.False(t, jerr.Transient())
			require.NotNil(t, jerr.File)
			assert.Equal(t, r.local("/f"), jerr.File.LocalPath)
			assert.Len(t, r.s.RequestsFor("/f"), 1, "no retry")
			assert.Equal(t, 1, j.ErrorCount())
			assert.Empty(t, dirEntries(t, r.dir), "nothing on disk")
			_, err = rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
			require.NoError(t, err)
			require.NoError(t, r.m.Close())
			assert.Equal(t, 1, rec.Count(dojobtest.EventError))
		})
	}
}

func TestTransientHTTPStatus(t *testing.T) {
	for _, code := range []int{408, 425, 429, 500, 502, 503, 504} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(1000), dojobtest.Script(dojobtest.Status(code)))
			j, _ := r.job("/f")
			require.Equal(t, dojob.StateTransferred, r.run(j))
			assert.Len(t, r.s.RequestsFor("/f"), 2)
			r.complete(j, "/f")
		})
	}
}

func TestServerIgnoresRangeAfterDrop(t *testing.T) {
	const size = 512 << 10
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(size),
		dojobtest.Script(dojobtest.DropAfter(100<<10), dojobtest.IgnoreRange()))
	j, _ := r.job("/f")
	require.Equal(t, dojob.StateTransferred, r.run(j))
	reqs := r.s.RequestsFor("/f")
	require.Len(t, reqs, 2)
	assert.NotEmpty(t, reqs[1].Range)
	assert.Equal(t, 200, reqs[1].Status)
	assert.Equal(t, int64(size), reqs[1].BodyBytes, "the whole file again")
	r.complete(j, "/f")
	assert.Equal(t, int64(size), j.Files()[0].BytesTotal)
}

func TestContentChangesBetweenAttempts(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []dojobtest.Option
	}{
		{"etag", nil},
		{"last-modified only", []dojobtest.Option{dojobtest.WithoutETag()}},
		{"weak etag", []dojobtest.Option{dojobtest.WithWeakETag()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const size = 256 << 10
			opts := append([]dojobtest.Option{dojobtest.WithSize(size),
				dojobtest.Script(dojobtest.DropAfter(100<<10), dojobtest.ChangeContent())}, tc.opts...)
			r := newNetRig(t, dojob.Config{}, opts...)
			first := r.s.SHA256("/f")
			j, _ := r.job("/f")
			require.Equal(t, dojob.StateTransferred, r.run(j))
			reqs := r.s.RequestsFor("/f")
			require.Len(t, reqs, 2)
			assert.NotEmpty(t, reqs[1].IfRange, "the resume carries a validator")
			assert.Equal(t, 200, reqs[1].Status, "If-Range failed: the whole new file")
			assert.NotEqual(t, first, r.s.SHA256("/f"))
			r.complete(j, "/f") // the new content, not a splice of both
		})
	}
}

// TestNoValidatorStartsOver: without ETag or Last-Modified a resume could
// splice two versions of a file, so a partial file starts over.
func TestNoValidatorStartsOver(t *testing.T) {
	const size = 256 << 10
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.WithoutETag(), dojobtest.WithoutLastModified(),
		dojobtest.Script(dojobtest.DropAfter(100<<10), dojobtest.ChangeContent()))
	j, _ := r.job("/f")
	require.Equal(t, dojob.StateTransferred, r.run(j))
	reqs := r.s.RequestsFor("/f")
	require.Len(t, reqs, 2)
	assert.Equal(t, "", reqs[1].Range, "no blind resume")
	r.complete(j, "/f")
}

// Test416AtFullSize: the whole body arrived but the connection broke before
// the end could be confirmed (no Content-Length); the resume gets 416 with
// the full size, which means the file is complete.
func Test416AtFullSize(t *testing.T) {
	const size = 64 << 10
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.WithoutContentLength(),
		dojobtest.Script(dojobtest.DropAfter(size), dojobtest.OK()))
	j, _ := r.job("/f")
	require.Equal(t, dojob.StateTransferred, r.run(j))
	reqs := r.s.RequestsFor("/f")
	require.Len(t, reqs, 2)
	assert.Equal(t, "bytes="+strconv.Itoa(size)+"-", reqs[1].Range)
	assert.Equal(t, 416, reqs[1].Status)
	r.complete(j, "/f")
	assert.Equal(t, int64(size), j.Progress().BytesTotal)
}

// TestUnwritableDestination: a destination folder this process may not
// create files in fails the job at once: LOCAL_FILE E_ACCESSDENIED, fatal.
func TestUnwritableDestination(t *testing.T) {
	dir := unwritableDir(t)
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(1000))
	j, err := r.m.CreateJob("unwritable")
	require.NoError(t, err)
	dest := filepath.Join(dir, "dojob-test-file")
	require.NoError(t, j.AddFile(r.s.FileURL("/f"), dest))
	require.Equal(t, dojob.StateError, r.run(j))
	jerr, err := j.Error()
	require.NoError(t, err)
	assert.Equal(t, dojob.ErrorContextLocalFile, jerr.Context)
	assert.Equal(t, dojob.ErrAccessDenied, jerr.Code)
	assert.False(t, jerr.Transient())
	require.NoError(t, j.Complete())
	_, err = os.Stat(dest)
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing promoted")
}

func TestDiskFull(t *testing.T) {
	const size = 256 << 10
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(size))
	dojob.FailWritesAfter(r.m, 100<<10, syscall.ENOSPC)
	j, rec := r.job("/a", "/b")
	require.Equal(t, dojob.StateError, r.run(j))
	jerr, err := j.Error()
	require.NoError(t, err)
	assert.Equal(t, dojob.ErrDiskFull, jerr.Code)
	assert.Equal(t, dojob.ErrorContextLocalFile, jerr.Context)
	assert.Equal(t, r.local("/a"), jerr.File.LocalPath)
	assert.Len(t, r.s.RequestsFor("/a"), 1, "a local error is not retried")
	assert.Empty(t, r.s.RequestsFor("/b"), "later files wait")
	_, err = rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
	require.NoError(t, err)
	require.NoError(t, j.Complete())
	assert.Empty(t, dirEntries(t, r.dir), "nothing promoted, the partial file deleted")
}

// TestManyJobsInParallel: 50 jobs of 4 files each, with callbacks that
// complete them.
func TestManyJobsInParallel(t *testing.T) {
	r := newNetRig(t, dojob.Config{MaxForegroundJobs: 8, MaxBackgroundJobs: 4}, dojobtest.WithSize(32<<10))
	rec := dojobtest.NewRecorder(dojobtest.CompleteOnTransferred())
	var jobs []*dojob.Job
	var paths []string
	for i := range 50 {
		j, err := r.m.CreateJob(fmt.Sprint("job ", i))
		require.NoError(t, err)
		for k := range 4 {
			p := fmt.Sprintf("/j%d/f%d", i, k)
			require.NoError(t, os.MkdirAll(filepath.Dir(r.local(p)), 0o755))
			require.NoError(t, j.AddFile(r.s.FileURL(p), r.local(p)))
			paths = append(paths, p)
		}
		require.NoError(t, j.SetPriority(dojob.Priority(i%4)))
		require.NoError(t, j.SetNotifyInterface(rec))
		jobs = append(jobs, j)
	}
	for _, j := range jobs {
		require.NoError(t, j.Resume())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := rec.AwaitCount(ctx, dojobtest.EventTransferred, 50)
	require.NoError(t, err)
	for _, e := range rec.Events() {
		require.NoError(t, e.Returned)
	}
	for _, j := range jobs {
		assert.Equal(t, dojob.StateAcknowledged, j.State())
	}
	for _, p := range paths {
		assert.Equal(t, r.s.SHA256(p), fileSHA256(t, r.local(p)), p)
	}
	assert.Empty(t, r.m.Jobs())
}

func TestRanges(t *testing.T) {
	const size = 4096
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.Script(dojobtest.DropAfter(50), dojobtest.OK()))
	j, err := r.m.CreateJob("ranges")
	require.NoError(t, err)
	ranges := []dojob.FileRange{{Offset: 100, Length: 100}, {Offset: 900, Length: 100}, {Offset: 400, Length: 100}, {Offset: size - 50, Length: dojob.LengthToEOF}}
	require.NoError(t, j.AddFileWithRanges(r.s.FileURL("/f"), r.local("/f"), ranges))
	require.NoError(t, j.SetMinimumRetryDelay(fastRetry))
	require.Equal(t, dojob.StateTransferred, r.run(j))
	assert.Equal(t, int64(350), j.Progress().BytesTotal)
	require.NoError(t, j.Complete())
	content := r.s.Content("/f")
	want := string(content[100:200]) + string(content[900:1000]) + string(content[400:500]) + string(content[size-50:])
	got, err := os.ReadFile(r.local("/f"))
	require.NoError(t, err)
	assert.Equal(t, want, string(got), "ranges written one after another in the order given")
	var rs []string
	for _, q := range r.s.RequestsFor("/f") {
		rs = append(rs, q.Range)
	}
	assert.Equal(t, []string{"bytes=100-199", "bytes=150-199", "bytes=900-999", "bytes=400-499", "bytes=4046-"}, rs, "resumed inside the first range after the drop")
}

func TestRangesNeedRangeSupport(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(4096), dojobtest.Always(dojobtest.IgnoreRange()))
	j, err := r.m.CreateJob("ranges")
	require.NoError(t, err)
	require.NoError(t, j.AddFileWithRanges(r.s.FileURL("/f"), r.local("/f"), []dojob.FileRange{{Offset: 10, Length: 10}}))
	require.Equal(t, dojob.StateError, r.run(j))
	jerr := mustJobError(t, j)
	assert.Equal(t, dojob.ErrInsufficientRangeSupport, jerr.Code)
	assert.False(t, jerr.Transient())
}

func TestRangeOutsideFile(t *testing.T) {
	for _, rg := range []dojob.FileRange{{Offset: 5000, Length: 10}, {Offset: 4000, Length: 200}} {
		t.Run(fmt.Sprint(rg), func(t *testing.T) {
			r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(4096))
			j, err := r.m.CreateJob("ranges")
			require.NoError(t, err)
			require.NoError(t, j.AddFileWithRanges(r.s.FileURL("/f"), r.local("/f"), []dojob.FileRange{rg}))
			require.Equal(t, dojob.StateError, r.run(j))
			jerr := mustJobError(t, j)
			assert.Equal(t, dojob.ErrInvalidRange, jerr.Code)
		})
	}
}

// TestCompleteKeepsFinishedFiles: Complete on file 3 of 5 keeps files 1–2.
func TestCompleteKeepsFinishedFiles(t *testing.T) {
	r := newNetRig(t, dojob.Config{StallTimeout: time.Minute}, dojobtest.WithSize(8<<10),
		dojobtest.AlwaysFor("/3", dojobtest.StallAfter(100)))
	j, _ := r.job("/1", "/2", "/3", "/4", "/5")
	require.NoError(t, j.Resume())
	_, err := r.s.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool {
		return len(rs) == 3 && rs[2].BodyBytes == 100
	})
	require.NoError(t, err)
	require.NoError(t, j.Complete())
	assert.Equal(t, []string{"1", "2"}, dirEntries(t, r.dir))
	for _, p := range []string{"/1", "/2"} {
		assert.Equal(t, r.s.SHA256(p), fileSHA256(t, r.local(p)))
	}
	files := j.Files()
	assert.True(t, files[0].Completed && files[1].Completed)
	assert.False(t, files[2].Completed || files[3].Completed || files[4].Completed)
}

// TestCompleteRenameFails: if a rename fails, Complete returns the error,
// the job stays TRANSFERRED, and a later Complete succeeds.
func TestCompleteRenameFails(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(8<<10))
	j, _ := r.job("/a", "/b")
	require.Equal(t, dojob.StateTransferred, r.run(j))
	// Something puts a non-empty directory where /b must go.
	require.NoError(t, os.MkdirAll(filepath.Join(r.local("/b"), "x"), 0o755))
	err := j.Complete()
	require.Error(t, err)
	var jerr *dojob.JobError
	require.ErrorAs(t, err, &jerr)
	assert.Equal(t, dojob.ErrorContextLocalFile, jerr.Context)
	assert.Equal(t, r.local("/b"), jerr.File.LocalPath)
	assert.Equal(t, dojob.StateTransferred, j.State())
	files := j.Files()
	assert.True(t, files[0].Completed, "renamed before the failure")
	assert.False(t, files[1].Completed)
	require.NoError(t, os.RemoveAll(r.local("/b")))
	r.complete(j, "/a", "/b")
	assert.Equal(t, dojob.StateAcknowledged, j.State())
}

// TestCompleteRenameFailsAmongMany: Complete renames several files at once;
// when two of forty cannot be renamed, the error names the first of them
// in the job's order, every file before it is installed, every file marked
// Completed is installed with its bytes and no other is, and a later
// Complete installs the rest.
func TestCompleteRenameFailsAmongMany(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(4<<10))
	paths := make([]string, 40)
	for i := range paths {
		paths[i] = fmt.Sprintf("/f%02d", i)
	}
	j, _ := r.job(paths...)
	require.Equal(t, dojob.StateTransferred, r.run(j))
	for _, p := range []string{"/f10", "/f25"} { // non-empty directories in the way
		require.NoError(t, os.MkdirAll(filepath.Join(r.local(p), "x"), 0o755))
	}
	err := j.Complete()
	var jerr *dojob.JobError
	require.ErrorAs(t, err, &jerr)
	assert.Equal(t, dojob.ErrorContextLocalFile, jerr.Context)
	assert.Equal(t, r.local("/f10"), jerr.File.LocalPath, "the first failing file in the job's order")
	assert.Equal(t, dojob.StateTransferred, j.State())
	for i, f := range j.Files() {
		switch {
		case i == 10 || i == 25:
			assert.False(t, f.Completed, paths[i])
		case f.Completed:
			assert.Equal(t, r.s.SHA256(paths[i]), fileSHA256(t, r.local(paths[i])), paths[i])
		default:
			assert.Less(t, 10, i, "%s: files before the failure are installed", paths[i])
			_, err := os.Lstat(r.local(paths[i]))
			assert.ErrorIs(t, err, fs.ErrNotExist, "%s is not Completed, so not installed", paths[i])
		}
	}
	for _, p := range []string{"/f10", "/f25"} {
		require.NoError(t, os.RemoveAll(r.local(p)))
	}
	r.complete(j, paths...)
	assert.Equal(t, dojob.StateAcknowledged, j.State())
}

// TestCompleteReplacesDestination: the finished file replaces what was at
// the destination in one rename, with the mode of an ordinary download.
func TestCompleteReplacesDestination(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(8<<10))
	require.NoError(t, os.WriteFile(r.local("/app"), []byte("old version"), 0o755))
	j, _ := r.job("/app")
	require.Equal(t, dojob.StateTransferred, r.run(j))
	got, err := os.ReadFile(r.local("/app"))
	require.NoError(t, err)
	assert.Equal(t, "old version", string(got), "untouched until Complete")
	r.complete(j, "/app")
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(r.local("/app"))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	}
}

func TestHTTPSToHTTPRedirectRefused(t *testing.T) {
	plain := dojobtest.NewServer(t, dojobtest.WithSize(1000))
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, plain.FileURL("/f"), http.StatusFound)
	}))
	t.Cleanup(tlsSrv.Close)
	m, err := dojob.NewManager(dojob.Config{HTTPClient: tlsSrv.Client()})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	j, err := m.CreateJob("downgrade")
	require.NoError(t, err)
	dest := filepath.Join(t.TempDir(), "f")
	require.NoError(t, j.AddFile(tlsSrv.URL+"/f", dest))
	st := resumeWait(t, j)
	require.Equal(t, dojob.StateError, st)
	jerr := mustJobError(t, j)
	assert.Equal(t, dojob.ErrRedirectFailed, jerr.Code)
	assert.False(t, jerr.Transient())
	assert.Empty(t, plain.Requests(), "the http URL was never fetched")
}

func TestTLSCertificateVerified(t *testing.T) {
	s := dojobtest.NewTLSServer(t, dojobtest.WithSize(1000))
	m, err := dojob.NewManager(dojob.Config{}) // dojob's own client: the test CA is not trusted
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	j, err := m.CreateJob("tls")
	require.NoError(t, err)
	require.NoError(t, j.AddFile(s.FileURL("/f"), filepath.Join(t.TempDir(), "f")))
	st := resumeWait(t, j)
	require.Equal(t, dojob.StateError, st)
	jerr := mustJobError(t, j)
	assert.Equal(t, dojob.ErrCertValidation, jerr.Code)
	assert.Equal(t, dojob.ErrorContextGeneralTransport, jerr.Context)
	assert.False(t, jerr.Transient())
}

// TestCredentialsStayWithTheirHost: credentials in a URL are sent to its
// host only — not to another host a redirect leads to — and never printed.
func TestCredentialsStayWithTheirHost(t *testing.T) {
	var mu sync.Mutex
	var authAtB []string
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		authAtB = append(authAtB, req.Header.Get("Authorization"))
		mu.Unlock()
		http.Error(w, "gone", http.StatusNotFound)
	}))
	t.Cleanup(b.Close)
	otherHost := strings.Replace(b.URL, "127.0.0.1", "localhost", 1) // another host, still loopback
	var authAtA string
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		authAtA = req.Header.Get("Authorization")
		http.Redirect(w, req, otherHost+"/f", http.StatusFound)
	}))
	t.Cleanup(a.Close)
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	j, err := m.CreateJob("creds")
	require.NoError(t, err)
	secretURL := strings.Replace(a.URL, "http://", "http://alice:s3cret@", 1) + "/f"
	require.NoError(t, j.AddFile(secretURL, filepath.Join(t.TempDir(), "f")))
	st := resumeWait(t, j)
	require.Equal(t, dojob.StateError, st)
	assert.True(t, strings.HasPrefix(authAtA, "Basic "), "the URL's own host gets the credentials")
	mu.Lock()
	assert.Equal(t, []string{""}, authAtB, "another host does not")
	mu.Unlock()
	jerr := mustJobError(t, j)
	assert.Equal(t, dojob.HTTPStatus(404), jerr.Code)
	assert.NotContains(t, jerr.Error(), "s3cret")
	assert.NotContains(t, fmt.Sprint(j.Files()), "s3cret")
}

func TestConnectionRefused(t *testing.T) {
	s := httptest.NewServer(http.NotFoundHandler())
	url := s.URL + "/f"
	s.Close() // nothing listens there now
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	j, err := m.CreateJob("refused")
	require.NoError(t, err)
	require.NoError(t, j.AddFile(url, filepath.Join(t.TempDir(), "f")))
	require.NoError(t, j.SetNoProgressTimeout(0)) // fail at the first error
	st := resumeWait(t, j)
	require.Equal(t, dojob.StateError, st)
	jerr := mustJobError(t, j)
	assert.Equal(t, dojob.ErrCannotConnect, jerr.Code)
	assert.Equal(t, dojob.ErrorContextGeneralTransport, jerr.Context)
	assert.True(t, jerr.Transient(), "a refused connection is transient; timeout 0 made it final")
	assert.ErrorIs(t, jerr, errConnRefused, "the cause stays reachable")
}

// TestRedirectLimit: a redirect loop ends in ERROR after 10 redirects
// followed; the 11th is refused.
func TestRedirectLimit(t *testing.T) {
	var hops atomic.Int32
	loop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hops.Add(1)
		http.Redirect(w, req, "/again", http.StatusFound)
	}))
	t.Cleanup(loop.Close)
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	j, err := m.CreateJob("loop")
	require.NoError(t, err)
	require.NoError(t, j.AddFile(loop.URL+"/f", filepath.Join(t.TempDir(), "f")))
	require.Equal(t, dojob.StateError, resumeWait(t, j))
	jerr := mustJobError(t, j)
	assert.Equal(t, dojob.ErrRedirectFailed, jerr.Code)
	assert.Equal(t, int32(11), hops.Load(), "the first request and 10 redirects answered; the 11th redirect refused")
	assert.False(t, jerr.Transient())
	assert.Equal(t, 1, j.ErrorCount())
}

// TestCallerClientMayAllowDowngrade: a client of the caller's with its own
// redirect policy keeps it, even one that allows https to http.
func TestCallerClientMayAllowDowngrade(t *testing.T) {
	plain := dojobtest.NewServer(t, dojobtest.WithSize(1000))
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, plain.FileURL("/f"), http.StatusFound)
	}))
	t.Cleanup(tlsSrv.Close)
	client := tlsSrv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return nil }
	m, err := dojob.NewManager(dojob.Config{HTTPClient: client})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	j, err := m.CreateJob("downgrade allowed")
	require.NoError(t, err)
	dest := filepath.Join(t.TempDir(), "f")
	require.NoError(t, j.AddFile(tlsSrv.URL+"/f", dest))
	require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
	require.NoError(t, j.Complete())
	assert.Equal(t, plain.SHA256("/f"), fileSHA256(t, dest))
}
