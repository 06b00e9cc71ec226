package dojob_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for the Manager's goroutines to log to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSettingsSurviveRestart(t *testing.T) {
	stateDir := t.TempDir()
	dir := t.TempDir()
	m, err := dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.NoError(t, err)
	j, err := m.CreateJob("nightly build")
	require.NoError(t, err)
	id := j.ID()
	require.NoError(t, j.SetDescription("the description"))
	require.NoError(t, j.SetPriority(dojob.PriorityLow))
	require.NoError(t, j.SetNoProgressTimeout(90*time.Minute))
	require.NoError(t, j.SetMinimumRetryDelay(7*time.Second))
	require.NoError(t, j.SetNotifyFlags(dojob.NotifyJobError|dojob.NotifyJobModification))
	require.NoError(t, j.AddFile("https://alice:pw@127.0.0.1:8443/a.bin", filepath.Join(dir, "a.bin")))
	ranges := []dojob.FileRange{{Offset: 10, Length: 20}, {Offset: 100, Length: dojob.LengthToEOF}}
	require.NoError(t, j.AddFileWithRanges("http://127.0.0.1:8080/b", filepath.Join(dir, "b"), ranges))
	defaults, err := m.CreateJob("defaults")
	require.NoError(t, err)
	times := j.Times()
	require.NoError(t, m.Close())

	m2, err := dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.NoError(t, err)
	defer m2.Close()
	jobs := m2.Jobs()
	require.Len(t, jobs, 2)
	k := jobs[0]
	assert.Equal(t, id, k.ID())
	assert.Equal(t, "nightly build", k.DisplayName())
	assert.Equal(t, "the description", k.Description())
	assert.Equal(t, dojob.PriorityLow, k.Priority())
	assert.Equal(t, 90*time.Minute, k.NoProgressTimeout())
	assert.Equal(t, 7*time.Second, k.MinimumRetryDelay())
	assert.Equal(t, dojob.NotifyJobError|dojob.NotifyJobModification, k.NotifyFlags())
	assert.Equal(t, dojob.StateSuspended, k.State())
	assert.True(t, times.Creation.Equal(k.Times().Creation))
	assert.True(t, times.Modification.Equal(k.Times().Modification))
	files := k.Files()
	require.Len(t, files, 2)
	assert.Equal(t, "https://alice:pw@127.0.0.1:8443/a.bin", files[0].RemoteURL)
	assert.Equal(t, filepath.Join(dir, "b"), files[1].LocalPath)
	assert.Equal(t, ranges, files[1].Ranges)
	assert.Nil(t, k.NotifyInterface(), "callbacks are not persisted")

	d := jobs[1]
	assert.Equal(t, defaults.ID(), d.ID())
	assert.Equal(t, dojob.PriorityNormal, d.Priority())
	assert.Equal(t, 24*time.Hour, d.NoProgressTimeout(), "the default still follows the priority")
	require.NoError(t, d.SetPriority(dojob.PriorityForeground))
	assert.Equal(t, time.Hour, d.NoProgressTimeout())
}

// TestStatesSurviveRestart: every non-final state comes back as the recovery
// rules say (docs/design.md, Persistence: record format and recovery), a transferring job resumes from its temporary file, and callbacks
// registered after the restart get what is pending.
func TestStatesSurviveRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 128 << 10
		stateDir := t.TempDir()
		tr := dojobtest.NewTransport(dojobtest.WithSize(size),
			dojobtest.AlwaysFor("/error", dojobtest.Status(404)),
			dojobtest.ScriptFor("/transient", dojobtest.Status(503)),
			dojobtest.ScriptFor("/running", dojobtest.StallAfter(50<<10)))
		defer tr.Close()
		dir := t.TempDir()
		cfg := dojob.Config{StateDir: stateDir, HTTPClient: tr.Client(), MaxBackgroundJobs: 8, CheckpointInterval: 10 * time.Millisecond}
		m, err := dojob.NewManager(cfg)
		require.NoError(t, err)
		mk := func(name string) *dojob.Job {
			j, err := m.CreateJob(name)
			require.NoError(t, err)
			require.NoError(t, j.AddFile(tr.FileURL("/"+name), filepath.Join(dir, name)))
			require.NoError(t, j.SetMinimumRetryDelay(time.Hour))
			return j
		}
		suspended, errored, transient, transferred, running := mk("suspended"), mk("error"), mk("transient"), mk("transferred"), mk("running")
		for _, j := range []*dojob.Job{errored, transient, transferred, running} {
			require.NoError(t, j.Resume())
		}
		// The running job got 50 KiB and stalls; Close stops it, and what it
		// has is recorded (no checkpoint fell due: 10 ms never passed).
		_, err = tr.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool {
			for _, r := range rs {
				if r.Path == "/running" && r.BodyBytes == 50<<10 {
					return true
				}
			}
			return false
		})
		require.NoError(t, err)
		synctest.Wait()
		want := map[dojob.JobID]dojob.State{
			suspended.ID(): dojob.StateSuspended, errored.ID(): dojob.StateError, transient.ID(): dojob.StateTransientError,
			transferred.ID(): dojob.StateTransferred, running.ID(): dojob.StateTransferring,
		}
		for id, st := range want {
			j, err := m.Job(id)
			require.NoError(t, err)
			require.Equal(t, st, j.State(), j.DisplayName())
		}
		errCount := transient.ErrorCount()
		require.NoError(t, m.Close())

		m2, err := dojob.NewManager(cfg)
		require.NoError(t, err)
		defer m2.Close()
		get := func(j *dojob.Job) *dojob.Job {
			k, err := m2.Job(j.ID())
			require.NoError(t, err)
			return k
		}
		assert.Equal(t, dojob.StateSuspended, get(suspended).State())
		assert.Equal(t, dojob.StateTransferred, get(transferred).State())
		e := get(errored)
		assert.Equal(t, dojob.StateError, e.State())
		jerr, err := e.Error()
		require.NoError(t, err)
		assert.Equal(t, dojob.HTTPStatus(404), jerr.Code)
		assert.Equal(t, dojob.ErrorContextRemoteFile, jerr.Context)
		assert.Equal(t, filepath.Join(dir, "error"), jerr.File.LocalPath)
		te := get(transient)
		assert.Equal(t, dojob.StateTransientError, te.State())
		assert.Equal(t, errCount, te.ErrorCount())
		tjerr, err := te.Error()
		require.NoError(t, err)
		assert.Equal(t, dojob.HTTPStatus(503), tjerr.Code)

		// Pending notifications reach callbacks registered now.
		rec := dojobtest.NewRecorder(dojobtest.CompleteOnTransferred())
		for _, j := range []*dojob.Job{get(errored), get(transferred), get(running)} {
			require.NoError(t, j.SetNotifyInterface(rec))
		}
		_, err = rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
		require.NoError(t, err)
		// The running job resumes from its checkpoint and finishes.
		_, err = rec.AwaitCount(t.Context(), dojobtest.EventTransferred, 2)
		require.NoError(t, err)
		reqs := tr.RequestsFor("/running")
		require.Len(t, reqs, 2)
		assert.Equal(t, "bytes=51200-", reqs[1].Range, "resumed from the temporary file")
		assert.Equal(t, int64(size), tr.BodyBytes("/running"), "nothing downloaded twice")
		for _, name := range []string{"transferred", "running"} {
			assert.Equal(t, tr.SHA256("/"+name), fileSHA256(t, filepath.Join(dir, name)))
		}
	})
}

func TestFinalJobsLeaveTheStateDir(t *testing.T) {
	stateDir := t.TempDir()
	dir := t.TempDir()
	m, err := dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.NoError(t, err)
	keep, _ := m.CreateJob("keep")
	cancelled, _ := m.CreateJob("cancel")
	completed, _ := m.CreateJob("complete")
	for i, j := range []*dojob.Job{keep, cancelled, completed} {
		require.NoError(t, j.AddFile("http://127.0.0.1:1/f", filepath.Join(dir, string(rune('a'+i)))))
	}
	require.NoError(t, cancelled.Cancel())
	require.NoError(t, completed.Complete())
	records, err := os.ReadDir(filepath.Join(stateDir, "jobs"))
	require.NoError(t, err)
	assert.Len(t, records, 1)
	require.NoError(t, m.Close())
	m2, err := dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.NoError(t, err)
	defer m2.Close()
	require.Len(t, m2.Jobs(), 1)
	assert.Equal(t, keep.ID(), m2.Jobs()[0].ID())
}

func TestStateDirLocked(t *testing.T) {
	stateDir := t.TempDir()
	m, err := dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.NoError(t, err)
	_, err = dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.ErrorIs(t, err, dojob.ErrSharingViolation)
	assert.Contains(t, err.Error(), "in use by another Manager")
	require.NoError(t, m.Close())
	m2, err := dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.NoError(t, err, "Close releases the directory")
	require.NoError(t, m2.Close())
}

func TestStateDirPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX permissions")
	}
	stateDir := filepath.Join(t.TempDir(), "state")
	m, err := dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.NoError(t, err)
	defer m.Close()
	_, err = m.CreateJob("perm")
	require.NoError(t, err)
	fi, err := os.Stat(stateDir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	records, err := filepath.Glob(filepath.Join(stateDir, "jobs", "*.json"))
	require.NoError(t, err)
	require.Len(t, records, 1)
	fi, err = os.Stat(records[0])
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

// TestDamagedRecordsSetAside: records that do not parse, carry an unknown
// version or hold invalid values are moved to damaged/ and logged; the
// Manager starts with the rest.
func TestDamagedRecordsSetAside(t *testing.T) {
	stateDir := t.TempDir()
	m, err := dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.NoError(t, err)
	good, err := m.CreateJob("good")
	require.NoError(t, err)
	victim, err := m.CreateJob("victim")
	require.NoError(t, err)
	require.NoError(t, m.Close())

	jobsDir := filepath.Join(stateDir, "jobs")
	record := func(id dojob.JobID) string {
		text, _ := id.MarshalText()
		return filepath.Join(jobsDir, strings.ToLower(strings.NewReplacer("{", "", "}", "", "-", "").Replace(string(text)))+".json")
	}
	data, err := os.ReadFile(record(victim.ID()))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(record(victim.ID()), data[:len(data)/2], 0o600)) // torn
	future := bytes.Replace(data, []byte(`"version": 1`), []byte(`"version": 99`), 1)
	require.NoError(t, os.WriteFile(filepath.Join(jobsDir, "0123456789abcdef0123456789abcdef.json"), future, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(jobsDir, "ffffffffffffffffffffffffffffffff.json"), []byte(`{"version":1,"state":42}`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(jobsDir, "leftover.json.tmp"), []byte("half"), 0o600))

	var logs syncBuffer
	m2, err := dojob.NewManager(dojob.Config{StateDir: stateDir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	defer m2.Close()
	require.Len(t, m2.Jobs(), 1)
	assert.Equal(t, good.ID(), m2.Jobs()[0].ID())
	damaged, err := os.ReadDir(filepath.Join(stateDir, "damaged"))
	require.NoError(t, err)
	assert.Len(t, damaged, 3)
	assert.Equal(t, 3, strings.Count(logs.String(), "damaged job record set aside"), logs.String())
	_, err = os.Stat(filepath.Join(jobsDir, "leftover.json.tmp"))
	assert.ErrorIs(t, err, os.ErrNotExist, "an interrupted write is cleaned up")
}

// TestSuspendKeepsProgressAcrossRestart: bytes received before Suspend are
// recorded even when no checkpoint fell due, so the next Manager resumes
// from them instead of starting over.
func TestSuspendKeepsProgressAcrossRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 256 << 10
		stateDir, dir := t.TempDir(), t.TempDir()
		tr := dojobtest.NewTransport(dojobtest.WithSize(size), dojobtest.Script(dojobtest.Drip(size), dojobtest.OK()))
		defer tr.Close()
		cfg := dojob.Config{StateDir: stateDir, HTTPClient: tr.Client(), CheckpointInterval: time.Hour}
		m, err := dojob.NewManager(cfg)
		require.NoError(t, err)
		j, err := m.CreateJob("suspend")
		require.NoError(t, err)
		require.NoError(t, j.AddFile(tr.FileURL("/f"), filepath.Join(dir, "f")))
		require.NoError(t, j.Resume())
		_, err = tr.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool { return len(rs) == 1 && rs[0].BodyBytes >= size/2 })
		require.NoError(t, err)
		require.NoError(t, j.Suspend())
		synctest.Wait()
		have := j.Progress().BytesTransferred
		require.Greater(t, have, int64(0))
		require.NoError(t, m.Close())

		m2, err := dojob.NewManager(cfg)
		require.NoError(t, err)
		defer m2.Close()
		k, err := m2.Job(j.ID())
		require.NoError(t, err)
		assert.Equal(t, dojob.StateSuspended, k.State())
		assert.Equal(t, have, k.Progress().BytesTransferred)
		st := resumeWait(t, k)
		require.Equal(t, dojob.StateTransferred, st)
		reqs := tr.RequestsFor("/f")
		require.Len(t, reqs, 2)
		assert.Equal(t, "bytes="+strconv.FormatInt(have, 10)+"-", reqs[1].Range)
		require.NoError(t, k.Complete())
		assert.Equal(t, tr.SHA256("/f"), fileSHA256(t, filepath.Join(dir, "f")))
	})
}
