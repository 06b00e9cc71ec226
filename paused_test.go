package dojob_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// snapshot describes every entry under dir: its mode, modification time
// and, for files, a SHA-256 of the content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().String() + " " + fi.ModTime().String()
		if !d.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			desc += " " + hex.EncodeToString(sum[:])
		}
		out[p] = desc
		return nil
	}))
	return out
}

// pausedFixture leaves a state directory with a TRANSFERRED job, a
// SUSPENDED one, a damaged record and an interrupted record write.
func pausedFixture(t *testing.T) (stateDir string, transferred, suspended dojob.JobID) {
	t.Helper()
	s := dojobtest.NewServer(t, dojobtest.WithSize(1000))
	stateDir, dir := t.TempDir(), t.TempDir()
	m, err := dojob.NewManager(dojob.Config{StateDir: stateDir, HTTPClient: s.Client()})
	require.NoError(t, err)
	a, err := m.CreateJob("transferred")
	require.NoError(t, err)
	require.NoError(t, a.AddFile(s.FileURL("/a"), filepath.Join(dir, "a")))
	require.Equal(t, dojob.StateTransferred, resumeWait(t, a))
	b, err := m.CreateJob("suspended")
	require.NoError(t, err)
	require.NoError(t, b.AddFile(s.FileURL("/b"), filepath.Join(dir, "b")))
	require.NoError(t, m.Close())
	jobs := filepath.Join(stateDir, "jobs")
	require.NoError(t, os.WriteFile(filepath.Join(jobs, "ffffffffffffffffffffffffffffffff.json"), []byte(`{"version":1,"state":42}`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(jobs, "0123456789abcdef0123456789abcdef.json.tmp"), []byte("half"), 0o600))
	return stateDir, a.ID(), b.ID()
}

// TestPausedReadOnlyStateDir: a paused Manager opens a state directory the
// user made read-only (0500, records 0400; on Windows the read-only
// attribute) — it checks the mode, so this holds for root too — lists its jobs as recorded, writes nothing (no
// lock, no recovery, no rewrite: every byte, mode and time is as before),
// and every change, Start included, fails with ErrWriteProtect.
func TestPausedReadOnlyStateDir(t *testing.T) {
	stateDir, transferred, suspended := pausedFixture(t)
	jobs := filepath.Join(stateDir, "jobs")
	entries, err := os.ReadDir(jobs)
	require.NoError(t, err)
	for _, e := range entries {
		require.NoError(t, os.Chmod(filepath.Join(jobs, e.Name()), 0o400))
	}
	require.NoError(t, os.Chmod(jobs, 0o500))
	require.NoError(t, os.Chmod(stateDir, 0o500))
	t.Cleanup(func() { // let the test's TempDir be removed
		_ = os.Chmod(stateDir, 0o700)
		_ = os.Chmod(jobs, 0o700)
		for _, e := range entries { // Windows deletes no read-only file
			_ = os.Chmod(filepath.Join(jobs, e.Name()), 0o600)
		}
	})
	// On Windows the chmod sets the folders' read-only attribute, which
	// Windows keeps (though it does not stop writes into a folder) and
	// dojob honours like the mode elsewhere.
	if fi, err := os.Stat(stateDir); err == nil && fi.Mode().Perm()&0o200 != 0 {
		t.Skip("the folder kept no read-only attribute: Wine ignores FILE_ATTRIBUTE_READONLY on directories")
	}
	before := snapshot(t, stateDir)

	var logs syncBuffer
	m, err := dojob.NewManager(dojob.Config{StateDir: stateDir, Paused: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err, "a read-only state directory opens for a look")
	got := m.Jobs()
	require.Len(t, got, 2)
	assert.Equal(t, transferred, got[0].ID())
	assert.Equal(t, dojob.StateTransferred, got[0].State())
	assert.Equal(t, suspended, got[1].ID())
	assert.Equal(t, dojob.StateSuspended, got[1].State())
	assert.Contains(t, logs.String(), "damaged job record (left in place")

	_, err = m.CreateJob("new")
	assert.ErrorIs(t, err, dojob.ErrWriteProtect)
	j := got[1]
	assert.ErrorIs(t, j.Resume(), dojob.ErrWriteProtect)
	assert.ErrorIs(t, j.SetDescription("x"), dojob.ErrWriteProtect)
	assert.ErrorIs(t, j.AddFile("http://127.0.0.1:1/c", filepath.Join(t.TempDir(), "c")), dojob.ErrWriteProtect)
	assert.ErrorIs(t, j.Cancel(), dojob.ErrWriteProtect)
	assert.ErrorIs(t, got[0].Complete(), dojob.ErrWriteProtect)
	err = m.Start()
	require.ErrorIs(t, err, dojob.ErrWriteProtect)
	assert.Contains(t, err.Error(), "read-only")
	assert.Equal(t, dojob.StateSuspended, j.State())
	assert.Equal(t, dojob.StateTransferred, got[0].State())
	require.NoError(t, m.Close())

	assert.Equal(t, before, snapshot(t, stateDir), "the paused Manager wrote nothing")
}

// TestPausedWritesNothingByItself: a paused Manager that owns a writable
// directory recovers nothing and rewrites no record (the damaged record and
// the interrupted write stay for the next Manager that is not paused); it
// may still change jobs, and only then writes.
func TestPausedWritesNothingByItself(t *testing.T) {
	stateDir, _, suspended := pausedFixture(t)
	jobs := filepath.Join(stateDir, "jobs")
	before := snapshot(t, jobs)

	m, err := dojob.NewManager(dojob.Config{StateDir: stateDir, Paused: true})
	require.NoError(t, err)
	require.Len(t, m.Jobs(), 2)
	_, err = dojob.NewManager(dojob.Config{StateDir: stateDir, Paused: true})
	assert.ErrorIs(t, err, dojob.ErrSharingViolation, "it owns the directory")
	require.NoError(t, m.Close())
	assert.Equal(t, before, snapshot(t, jobs), "nothing recovered, nothing rewritten")
	assert.NoDirExists(t, filepath.Join(stateDir, "damaged"))

	m, err = dojob.NewManager(dojob.Config{StateDir: stateDir, Paused: true})
	require.NoError(t, err)
	j, err := m.Job(suspended)
	require.NoError(t, err)
	require.NoError(t, j.SetDescription("changed while paused"))
	require.NoError(t, m.Close())
	assert.NotEqual(t, before, snapshot(t, jobs), "a change is written")

	m, err = dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.NoError(t, err)
	defer m.Close()
	j, err = m.Job(suspended)
	require.NoError(t, err)
	assert.Equal(t, "changed while paused", j.Description())
	assert.FileExists(t, filepath.Join(stateDir, "damaged", "ffffffffffffffffffffffffffffffff.json"), "the next Manager recovers")
	assert.NoFileExists(t, filepath.Join(jobs, "0123456789abcdef0123456789abcdef.json.tmp"))
}
