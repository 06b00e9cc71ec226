package dojob_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashCopy copies the job records of stateDir as a crash at this instant
// would leave them — without Close, whose last write of every job would
// hide a change that was never handed to the writer — and opens a paused
// Manager on the copy (it starts nothing and rewrites nothing). Call it
// after synctest.Wait: the writer has then written everything queued (in
// the bubble its batches take no time, so it never rests between them).
func crashCopy(t *testing.T, stateDir string, id dojob.JobID) *dojob.Job {
	t.Helper()
	m, err := dojob.NewManager(dojob.Config{StateDir: copyRecords(t, stateDir), Paused: true})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	j, err := m.Job(id)
	require.NoError(t, err)
	return j
}

// copyRecords copies the job records of one state directory to a new one.
func copyRecords(t *testing.T, from string) string {
	t.Helper()
	dst := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dst, "jobs"), 0o700))
	records, err := filepath.Glob(filepath.Join(from, "jobs", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, records)
	for _, p := range records {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, "jobs", filepath.Base(p)), data, 0o600))
	}
	return dst
}

// TestEngineChangesPersisted: every kind of change the engine makes on its
// own — not through a user call that writes the record before it returns —
// reaches the record with nothing else happening after it. Each case stops
// right after its change (the next request stalls at its headers, so no
// later state change writes the record instead), takes a crash copy of
// the state directory and checks what a restarted Manager sees. The user
// calls that change files (SetValidationState) are checked the same way.
func TestEngineChangesPersisted(t *testing.T) {
	const size = 256 << 10
	awaitPath := func(t *testing.T, tr *dojobtest.Transport, path string, n int) {
		t.Helper()
		_, err := tr.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool {
			c := 0
			for _, r := range rs {
				if r.Path == path {
					c++
				}
			}
			return c >= n
		})
		require.NoError(t, err)
		synctest.Wait()
	}
	// The restart case holds the second run before it opens the
	// temporary file (which the no-validator check finds), so the writer
	// has written CONNECTING before the restart is made: nothing but the
	// restart itself can write it. Channels of a bubble are made in it.
	var held, release chan struct{}
	cases := []struct {
		name  string
		opts  []dojobtest.Option
		specs []string // the paths of the job's files; a path "a|m" has the mirror m
		setup func(m *dojob.Manager)
		act   func(t *testing.T, tr *dojobtest.Transport, j *dojob.Job)
		check func(t *testing.T, got *dojob.Job)
	}{{
		// A checkpoint (the copy loop, on the watchdog's request) records
		// the durable length; nothing else records it while the body
		// flows.
		name:  "checkpoint",
		opts:  []dojobtest.Option{dojobtest.Script(dojobtest.Drip(size / 4))},
		specs: []string{"/f"},
		act: func(t *testing.T, tr *dojobtest.Transport, j *dojob.Job) {
			_, err := tr.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool { return len(rs) == 1 && rs[0].BodyBytes >= size/2 })
			require.NoError(t, err)
			synctest.Wait()
			require.Equal(t, dojob.StateTransferring, j.State())
		},
		check: func(t *testing.T, got *dojob.Job) {
			assert.Greater(t, got.Files()[0].BytesTransferred, int64(0), "a checkpoint's length is in the record")
		},
	}, {
		// A file that starts over (here: a partial file and no validator
		// to resume it safely) records the restart before its request.
		name:  "restart",
		opts:  []dojobtest.Option{dojobtest.WithoutETag(), dojobtest.WithoutLastModified(), dojobtest.Script(dojobtest.DropAfter(size/2), dojobtest.StallHeaders())},
		specs: []string{"/f"},
		setup: func(m *dojob.Manager) {
			held, release = make(chan struct{}), make(chan struct{})
			dojob.BeforeTempOpen(m, func(n int) {
				if n == 2 {
					close(held)
					<-release
				}
			})
		},
		act: func(t *testing.T, tr *dojobtest.Transport, j *dojob.Job) {
			awaitPath(t, tr, "/f", 1)
			require.Equal(t, dojob.StateTransientError, j.State())
			require.Equal(t, int64(size/2), j.Files()[0].BytesTransferred)
			require.NoError(t, j.Resume())
			<-held
			synctest.Wait()
			require.Equal(t, dojob.StateConnecting, j.State())
			close(release)
			awaitPath(t, tr, "/f", 2)
			require.Equal(t, 1, j.Files()[0].Restarts)
		},
		check: func(t *testing.T, got *dojob.Job) {
			fi := got.Files()[0]
			assert.Equal(t, 1, fi.Restarts)
			assert.Equal(t, "no validator to resume safely", fi.RestartReason)
			assert.Equal(t, int64(0), fi.BytesTransferred)
		},
	}, {
		name:  "file transferred",
		opts:  []dojobtest.Option{dojobtest.ScriptFor("/b", dojobtest.StallHeaders())},
		specs: []string{"/a", "/b"},
		act: func(t *testing.T, tr *dojobtest.Transport, j *dojob.Job) {
			awaitPath(t, tr, "/b", 1)
		},
		check: func(t *testing.T, got *dojob.Job) {
			fi := got.Files()[0]
			assert.True(t, fi.Transferred)
			assert.Equal(t, int64(size), fi.BytesTransferred)
			assert.False(t, got.Files()[1].Transferred)
		},
	}, {
		// A stalled source moves the file to its mirror within the same
		// attempt: no state change records it. The stall comes after the
		// writer has written CONNECTING (awaitPath ends with
		// synctest.Wait), so only the switch itself can write it.
		name:  "source switch",
		opts:  []dojobtest.Option{dojobtest.ScriptFor("/a", dojobtest.StallHeaders()), dojobtest.ScriptFor("/m", dojobtest.StallHeaders())},
		specs: []string{"/a|/m"},
		act: func(t *testing.T, tr *dojobtest.Transport, j *dojob.Job) {
			awaitPath(t, tr, "/a", 1)
			require.Equal(t, 0, j.Files()[0].Source)
			awaitPath(t, tr, "/m", 1) // the watchdog gives up on /a first
			require.Equal(t, dojob.StateConnecting, j.State())
			require.Equal(t, 1, j.Files()[0].Source)
		},
		check: func(t *testing.T, got *dojob.Job) {
			assert.Equal(t, 1, got.Files()[0].Source)
		},
	}, {
		name:  "validation accepted",
		specs: []string{"/f"},
		act: func(t *testing.T, tr *dojobtest.Transport, j *dojob.Job) {
			st, err := j.Wait(t.Context())
			require.NoError(t, err)
			require.Equal(t, dojob.StateTransferred, st)
			require.NoError(t, j.SetValidationState(0, true))
			synctest.Wait()
		},
		check: func(t *testing.T, got *dojob.Job) {
			assert.Equal(t, dojob.StateTransferred, got.State())
			assert.True(t, got.Files()[0].Verified)
		},
	}, {
		name:  "validation rejected",
		specs: []string{"/f"},
		act: func(t *testing.T, tr *dojobtest.Transport, j *dojob.Job) {
			st, err := j.Wait(t.Context())
			require.NoError(t, err)
			require.Equal(t, dojob.StateTransferred, st)
			require.NoError(t, j.SetValidationState(0, false))
			synctest.Wait()
		},
		check: func(t *testing.T, got *dojob.Job) {
			assert.Equal(t, dojob.StateError, got.State())
			jerr, err := got.Error()
			require.NoError(t, err)
			assert.Equal(t, dojob.ErrValidationFailed, jerr.Code)
			fi := got.Files()[0]
			assert.False(t, fi.Transferred)
			assert.False(t, fi.Verified)
			assert.Equal(t, int64(0), fi.BytesTransferred)
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stateDir, dir := t.TempDir(), t.TempDir()
				tr := dojobtest.NewTransport(append([]dojobtest.Option{dojobtest.WithSize(size)}, tc.opts...)...)
				defer tr.Close()
				m, err := dojob.NewManager(dojob.Config{StateDir: stateDir, HTTPClient: tr.Client(), CheckpointInterval: 10 * time.Millisecond})
				require.NoError(t, err)
				defer func() { require.NoError(t, m.Close()) }()
				if tc.setup != nil {
					tc.setup(m)
				}
				j, err := m.CreateJob(tc.name)
				require.NoError(t, err)
				var specs []dojob.FileSpec
				for i, p := range tc.specs {
					s := dojob.FileSpec{LocalPath: filepath.Join(dir, string(rune('a'+i)))}
					if a, b, ok := strings.Cut(p, "|"); ok {
						s.RemoteURL, s.Mirrors = tr.FileURL(a), []string{tr.FileURL(b)}
					} else {
						s.RemoteURL = tr.FileURL(p)
					}
					specs = append(specs, s)
				}
				require.NoError(t, j.AddFileSet(specs))
				require.NoError(t, j.SetMinimumRetryDelay(time.Hour))
				require.NoError(t, j.Resume())
				tc.act(t, tr, j)
				tc.check(t, crashCopy(t, stateDir, j.ID()))
			})
		})
	}
}
