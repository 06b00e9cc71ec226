package dojob_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stateMoves lists the recorded state changes as "FROM->TO".
func stateMoves(rec *dojobtest.Recorder) []string {
	var out []string
	for _, e := range rec.Events() {
		if e.Kind == dojobtest.EventStateChanged {
			out = append(out, e.From.String()+"->"+e.To.String())
		}
	}
	return out
}

// TestParallelFiles: six files whose answers each take 1 s, three at a time,
// take 2 s (one after another they take 6 s). The job moves through
// CONNECTING and TRANSFERRING once, each file is reported transferred once,
// and every file ends with the server's bytes.
func TestParallelFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		paths := []string{"/a", "/b", "/c", "/d", "/e", "/f"}
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(100<<10), dojobtest.Always(dojobtest.Delay(time.Second)))
		j := r.job("parallel", paths...)
		require.Equal(t, 1, j.MaxParallelFiles(), "one file at a time by default")
		require.NoError(t, j.SetMaxParallelFiles(3))
		require.Equal(t, 3, j.MaxParallelFiles())
		rec := dojobtest.NewRecorder()
		require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyFileTransferred|dojob.NotifyJobModification))
		require.NoError(t, j.SetNotifyInterface(rec))
		start := time.Now()
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		assert.Equal(t, 2*time.Second, time.Since(start), "three files at a time")
		synctest.Wait()
		assert.Equal(t, []string{"SUSPENDED->QUEUED", "QUEUED->CONNECTING", "CONNECTING->TRANSFERRING", "TRANSFERRING->TRANSFERRED"}, stateMoves(rec))
		seen := map[string]int{}
		for _, e := range rec.Events() {
			if e.Kind == dojobtest.EventFileTransferred {
				seen[e.File.LocalPath]++
			}
		}
		require.Len(t, seen, len(paths))
		for _, p := range paths {
			assert.Equal(t, 1, seen[r.local(p)], "FileTransferred once for %s", p)
		}
		require.NoError(t, j.Complete())
		for _, p := range paths {
			r.requireFile(p)
		}
	})
}

// TestParallelFileFailureFailsTheAttempt: one file of three answers 404
// after 1 s while the other two are arriving. The attempt fails as a whole
// at that moment: the job goes to ERROR with the 404 of that file, and the
// other two stop, keeping the bytes they had.
func TestParallelFileFailureFailsTheAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 64 << 10
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.WithRate(16<<10),
			dojobtest.AlwaysFor("/c", dojobtest.Delay(time.Second).And(dojobtest.Status(http.StatusNotFound))))
		j := r.job("fail", "/a", "/b", "/c")
		require.NoError(t, j.SetMaxParallelFiles(3))
		start := time.Now()
		require.Equal(t, dojob.StateError, resumeWait(t, j))
		assert.Equal(t, time.Second, time.Since(start), "the others stop when one fails")
		jerr := mustJobError(t, j)
		assert.Equal(t, dojob.HTTPStatus(http.StatusNotFound), jerr.Code)
		require.NotNil(t, jerr.File)
		assert.Equal(t, r.local("/c"), jerr.File.LocalPath)
		synctest.Wait()
		files := j.Files()
		for _, f := range files[:2] {
			assert.False(t, f.Transferred)
			assert.Greater(t, f.BytesTransferred, int64(0), "%s keeps its bytes", f.LocalPath)
			assert.Less(t, f.BytesTransferred, int64(size))
		}
		assert.Len(t, tempFiles(t, r.dir), 2, "the partial files are kept")
	})
}

// TestParallelStallIsWatched: of two files transferring together, the one
// whose body stops after 1000 bytes is abandoned after the stall timeout
// (the watchdog watches every active file, not only one) and resumed with
// a Range request, and the job ends TRANSFERRED.
func TestParallelStallIsWatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 256 << 10
		r := newRig(t, dojob.Config{StallTimeout: 30 * time.Second}, dojobtest.WithSize(size),
			dojobtest.ScriptFor("/b", dojobtest.StallAfter(1000), dojobtest.OK()))
		j := r.job("stall", "/a", "/b")
		require.NoError(t, j.SetMaxParallelFiles(2))
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour) // fake time: fails a watchdog that never fires
		defer cancel()
		start := time.Now()
		require.NoError(t, j.Resume())
		st, err := j.Wait(ctx)
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
		reqs := r.tr.RequestsFor("/b")
		require.Len(t, reqs, 2)
		assert.Equal(t, "bytes=1000-", reqs[1].Range)
		retry := reqs[1].Time.Sub(start)
		assert.GreaterOrEqual(t, retry, 32*time.Second)
		assert.LessOrEqual(t, retry, 32*time.Second+30*time.Second/8)
		require.Len(t, r.tr.RequestsFor("/a"), 1, "/a was transferred before /b stalled: not fetched again")
		require.NoError(t, j.Complete())
		r.requireFile("/a")
		r.requireFile("/b")
	})
}

// TestMaxParallelFilesValidatedAndPersisted: values outside 1 to
// MaxParallelFilesLimit are refused with ErrInvalidArg; a value set survives
// a restart of the Manager.
func TestMaxParallelFilesValidatedAndPersisted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	m, err := dojob.NewManager(dojob.Config{StateDir: dir})
	require.NoError(t, err)
	j, err := m.CreateJob("p")
	require.NoError(t, err)
	for _, n := range []int{0, -1, dojob.MaxParallelFilesLimit + 1} {
		err := j.SetMaxParallelFiles(n)
		require.True(t, errors.Is(err, dojob.ErrInvalidArg), "SetMaxParallelFiles(%d): %v", n, err)
	}
	require.Equal(t, 1, j.MaxParallelFiles())
	require.NoError(t, j.SetMaxParallelFiles(8))
	id := j.ID()
	require.NoError(t, m.Close())

	m, err = dojob.NewManager(dojob.Config{StateDir: dir})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	j, err = m.Job(id)
	require.NoError(t, err)
	assert.Equal(t, 8, j.MaxParallelFiles())
}

// TestParallelSetRemoteName: SetRemoteName of a file that one of the
// parallel files is transferring switches it to the new URL at once (the
// attempt stops, every file keeps its bytes, and the new request resumes
// with a Range), as it does for a job that transfers one file at a time.
func TestParallelSetRemoteName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 256 << 10
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.WithRate(64<<10))
		j, err := r.m.CreateJob("switch")
		require.NoError(t, err)
		require.NoError(t, j.AddFile(r.tr.FileURL("/f"), r.local("/f")))
		require.NoError(t, j.AddFile(r.tr.FileURL("/g")+"?sig=first", r.local("/g")))
		require.NoError(t, j.SetMaxParallelFiles(2))
		require.NoError(t, j.Resume())
		_, err = r.tr.AwaitRequests(t.Context(), func(reqs []dojobtest.Request) bool {
			for _, q := range reqs {
				if q.Path == "/g" && q.BodyBytes >= 64<<10 {
					return true
				}
			}
			return false
		})
		require.NoError(t, err)
		require.NoError(t, j.SetRemoteName(1, r.tr.FileURL("/g")+"?sig=second"))
		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
		reqs := r.tr.RequestsFor("/g")
		requireSwitchedAtOffset(t, reqs, "/g")
		assert.Equal(t, 0, j.ErrorCount())
		require.NoError(t, j.Complete())
		r.requireFile("/f")
		r.requireFile("/g")
	})
}

// TestParallelChecksums: files with a Checksum transferred three at a time,
// with checkpoints (a state directory) and one file stalling halfway, are
// each verified as their last byte arrives — the stalled one's digest
// carried over its resume — and the job reaches TRANSFERRED with every
// file Verified and holding the server's bytes.
func TestParallelChecksums(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 256 << 10
		paths := []string{"/a", "/b", "/c"}
		r := newRig(t, dojob.Config{StateDir: filepath.Join(t.TempDir(), "state"), CheckpointInterval: 100 * time.Millisecond, StallTimeout: 10 * time.Second},
			dojobtest.WithSize(size), dojobtest.WithRate(64<<10), dojobtest.ScriptFor("/b", dojobtest.StallAfter(128<<10), dojobtest.OK()))
		j, err := r.m.CreateJob("sums")
		require.NoError(t, err)
		var specs []dojob.FileSpec
		for _, p := range paths {
			specs = append(specs, dojob.FileSpec{RemoteURL: r.tr.FileURL(p), LocalPath: r.local(p), Checksum: sha256Of(r.tr.Content(p)), Size: size})
		}
		require.NoError(t, j.AddFileSet(specs))
		require.NoError(t, j.SetMaxParallelFiles(3))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		reqs := r.tr.RequestsFor("/b")
		require.Len(t, reqs, 2)
		assert.Equal(t, "bytes=131072-", reqs[1].Range, "resumed after the bytes it had")
		for _, f := range j.Files() {
			assert.True(t, f.Verified, f.LocalPath)
		}
		require.NoError(t, j.Complete())
		for _, p := range paths {
			r.requireFile(p)
		}
	})
}

// TestParallelMirrorFailover: a file of a parallel run whose primary
// answers 503 moves to its mirror at once, as it does one file at a time:
// the job never leaves the attempt (no TRANSIENT_ERROR, no error counted)
// and every file ends with the server's bytes.
func TestParallelMirrorFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 64 << 10
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.AlwaysFor("/a", dojobtest.Status(http.StatusServiceUnavailable)))
		j, err := r.m.CreateJob("mirrors")
		require.NoError(t, err)
		require.NoError(t, j.AddFileSet([]dojob.FileSpec{
			{RemoteURL: r.tr.FileURL("/a"), LocalPath: r.local("/a"), Mirrors: []string{r.tr.FileURL("/a-mirror")}},
			{RemoteURL: r.tr.FileURL("/b"), LocalPath: r.local("/b")},
		}))
		require.NoError(t, j.SetMaxParallelFiles(2))
		rec := dojobtest.NewRecorder()
		require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
		require.NoError(t, j.SetNotifyInterface(rec))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		synctest.Wait()
		assert.NotContains(t, stateMoves(rec), "TRANSFERRING->TRANSIENT_ERROR")
		assert.NotContains(t, stateMoves(rec), "CONNECTING->TRANSIENT_ERROR")
		assert.Zero(t, j.ErrorCount())
		assert.Len(t, r.tr.RequestsFor("/a"), 1)
		assert.Len(t, r.tr.RequestsFor("/a-mirror"), 1)
		assert.Equal(t, 1, j.Files()[0].Source)
		require.NoError(t, j.Complete())
		assert.Equal(t, r.tr.SHA256("/a-mirror"), fileSHA256(t, r.local("/a")))
		r.requireFile("/b")
	})
}
