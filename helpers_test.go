package dojob_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rig is a Manager wired to an in-memory dojobtest Transport, for tests that
// run inside a synctest bubble (create it inside the bubble). The Manager and
// the Transport are closed when the test ends, in that order.
type rig struct {
	t   *testing.T
	tr  *dojobtest.Transport
	m   *dojob.Manager
	dir string
}

func newRig(t *testing.T, cfg dojob.Config, opts ...dojobtest.Option) *rig {
	t.Helper()
	// The directory first: cleanups run last-registered first, so the
	// Manager is closed (its temporary files with it) before the directory
	// is removed — Windows deletes no file that is still open.
	dir := t.TempDir()
	tr := dojobtest.NewTransport(opts...)
	t.Cleanup(tr.Close)
	cfg.HTTPClient = tr.Client()
	m, err := dojob.NewManager(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, m.Close())
		require.Zero(t, dojob.StateDefects(m), "state changes the table refused")
	})
	return &rig{t: t, tr: tr, m: m, dir: dir}
}

// job creates a job with one file per path; the file of path "/x" goes to
// r.dir/x.
func (r *rig) job(name string, paths ...string) *dojob.Job {
	r.t.Helper()
	j, err := r.m.CreateJob(name)
	require.NoError(r.t, err)
	for _, p := range paths {
		require.NoError(r.t, j.AddFile(r.tr.FileURL(p), r.local(p)))
	}
	return j
}

func (r *rig) local(path string) string { return filepath.Join(r.dir, strings.TrimPrefix(path, "/")) }

// requireFile checks that the destination of path holds exactly what the
// server serves there now.
func (r *rig) requireFile(path string) {
	r.t.Helper()
	require.Equal(r.t, r.tr.SHA256(path), fileSHA256(r.t, r.local(path)), "SHA-256 of %s", path)
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// dirEntries lists a directory's names, sorted; hidden temporary files
// included.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// tempFiles lists dojob's temporary files in dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, n := range dirEntries(t, dir) {
		if strings.HasPrefix(n, ".dojob-") {
			out = append(out, n)
		}
	}
	return out
}

// resumeWait resumes j and returns the state Wait gives (TRANSFERRED,
// ERROR, ACKNOWLEDGED or CANCELLED).
func resumeWait(t *testing.T, j *dojob.Job) dojob.State {
	t.Helper()
	require.NoError(t, j.Resume())
	st, err := j.Wait(t.Context())
	require.NoError(t, err)
	return st
}

// mustJobError returns j's error object, failing the test if there is none
// (the job is not in ERROR or TRANSIENT_ERROR), so a test never dereferences
// a nil *JobError.
func mustJobError(t *testing.T, j *dojob.Job) *dojob.JobError {
	t.Helper()
	jerr, err := j.Error()
	require.NoError(t, err, "job %s is %s", j.ID(), j.State())
	require.NotNil(t, jerr)
	return jerr
}

// requireSwitchedAtOffset checks the requests for path after SetRemoteName
// moved a running download from ?sig=first to ?sig=second: two requests,
// the second to the new URL, resuming at an offset (not from byte 0).
func requireSwitchedAtOffset(t *testing.T, reqs []dojobtest.Request, path string) {
	t.Helper()
	require.Len(t, reqs, 2)
	assert.Equal(t, path+"?sig=first", reqs[0].URL)
	assert.Equal(t, path+"?sig=second", reqs[1].URL)
	assert.Regexp(t, `^bytes=\d+-$`, reqs[1].Range)
	assert.NotEqual(t, "bytes=0-", reqs[1].Range)
}

// advance lets d of fake time pass inside a synctest bubble — its timers
// fire, as they would over d of real time — and returns once every
// goroutine of the bubble is durably blocked again.
func advance(d time.Duration) {
	<-time.After(d)
	synctest.Wait()
}

// requireOneResume checks a file fetched in two requests, the second
// resuming at offset: a Range from there with If-Range, answered 206.
func requireOneResume(t *testing.T, reqs []dojobtest.Request, offset int64) {
	t.Helper()
	require.Len(t, reqs, 2)
	assert.Equal(t, fmt.Sprintf("bytes=%d-", offset), reqs[1].Range, "resumed at the offset kept")
	assert.NotEmpty(t, reqs[1].IfRange)
	assert.Equal(t, http.StatusPartialContent, reqs[1].Status)
}

// stoppedOnceStates are the moves of a job whose transfer was stopped once
// (TRANSIENT_ERROR) and then resumed to the end.
var stoppedOnceStates = []dojob.State{dojob.StateQueued, dojob.StateConnecting, dojob.StateTransferring, dojob.StateTransientError,
	dojob.StateQueued, dojob.StateConnecting, dojob.StateTransferring, dojob.StateTransferred}

// inNewManager opens a Manager on the state directory dir, runs fn on its
// job id (reloaded from its record) and closes the Manager.
func inNewManager(t *testing.T, dir string, id dojob.JobID, fn func(j *dojob.Job)) {
	t.Helper()
	m, err := dojob.NewManager(dojob.Config{StateDir: dir})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	j, err := m.Job(id)
	require.NoError(t, err)
	fn(j)
}
