package dojob_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeTour is the first code block of README.md's tour, as printed, with
// only its placeholders replaced: the state directory, the URL and the
// destination come from the test, log.Printf is t.Logf, and each err is
// checked. The Manager is closed as soon as Wait returns, as a program that
// then exits would.
func readmeTour(t *testing.T, stateDir, url, dest string, size int64, sum string) dojob.State {
	ctx := t.Context()

	m, err := dojob.NewManager(dojob.Config{StateDir: stateDir}) // "" = in memory
	require.NoError(t, err)
	defer m.Close()

	job, err := m.CreateJob("myapp 2.0") // a new job is SUSPENDED
	require.NoError(t, err)
	err = job.AddFileSet([]dojob.FileSpec{{ // or job.AddFile(url, path)
		RemoteURL: url,
		LocalPath: dest,
		Size:      size,            // from the release manifest: checked at the headers
		Checksum:  "sha256:" + sum, // checked as bytes arrive
	}})
	require.NoError(t, err)
	err = job.SetNoProgressTimeout(30 * time.Minute) // give up after 30 min without a byte
	require.NoError(t, err)
	err = job.SetNotifyInterface(dojob.CallbackFuncs{
		Transferred: func(j *dojob.Job) error { return j.Complete() }, // files appear now, atomically
		Error: func(j *dojob.Job, e *dojob.JobError) error {
			t.Logf("update failed: %v", e) // e.g. BG_E_HTTP_ERROR_404 (0x80190194) [REMOTE_FILE]
			return j.Cancel()
		},
	})
	require.NoError(t, err)
	err = job.Resume() // QUEUED; the scheduler takes it from here
	require.NoError(t, err)
	state, err := job.Wait(ctx) // ACKNOWLEDGED (CANCELLED) once the callback returned
	require.NoError(t, err)

	require.NoError(t, m.Close())
	return state
}

// TestReadmeTour runs the README's tour against a dojobtest server on
// 127.0.0.1, in memory and with a state directory: Wait returns once the
// JobTransferred callback's Complete has returned, so closing the Manager
// right after it loses nothing (run it with -count=20: it must never
// flake). A 404 goes through the JobError callback's Cancel.
func TestReadmeTour(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(256<<10), dojobtest.AlwaysFor("/missing.tar.gz", dojobtest.Status(404)))
	for _, persist := range []bool{false, true} {
		name := "memory"
		if persist {
			name = "statedir"
		}
		t.Run(name, func(t *testing.T) {
			stateDir := ""
			if persist {
				stateDir = t.TempDir()
			}
			dir := t.TempDir()
			dest := filepath.Join(dir, "myapp-2.0.tar.gz")
			sum := s.SHA256("/myapp-2.0.tar.gz")
			st := readmeTour(t, stateDir, s.FileURL("/myapp-2.0.tar.gz"), dest, 256<<10, sum)
			require.Equal(t, dojob.StateAcknowledged, st)
			assert.Equal(t, s.SHA256("/myapp-2.0.tar.gz"), fileSHA256(t, dest))
			assert.Equal(t, []string{"myapp-2.0.tar.gz"}, dirEntries(t, dir), "no temporary file left")

			st = readmeTour(t, stateDir, s.FileURL("/missing.tar.gz"), filepath.Join(dir, "missing.tar.gz"), 256<<10, sum)
			require.Equal(t, dojob.StateCancelled, st)
			assert.Equal(t, []string{"myapp-2.0.tar.gz"}, dirEntries(t, dir), "nothing of the cancelled job")
			if persist {
				assert.Empty(t, dirEntries(t, filepath.Join(stateDir, "jobs")), "both jobs ended: no record left")
			}
		})
	}
}

// waitAsync runs Wait on its own goroutine and delivers its result.
type waitResult struct {
	st  dojob.State
	err error
}

func waitAsync(ctx context.Context, j *dojob.Job) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		st, err := j.Wait(ctx)
		ch <- waitResult{st, err}
	}()
	return ch
}

// TestWaitCoversCompleteInCallback: while JobTransferred runs, Wait keeps
// waiting even though the job is TRANSFERRED; once the callback's Complete
// returned it reports ACKNOWLEDGED with the file in place.
func TestWaitCoversCompleteInCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(10<<10))
		release := make(chan struct{})
		j := r.job("complete", "/f")
		require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{Transferred: func(j *dojob.Job) error {
			<-release
			return j.Complete()
		}}))
		require.NoError(t, j.Resume())
		got := waitAsync(t.Context(), j)
		synctest.Wait()
		require.Equal(t, dojob.StateTransferred, j.State())
		select {
		case res := <-got:
			t.Fatalf("Wait returned %v, %v while JobTransferred was running", res.st, res.err)
		default:
		}
		close(release)
		res := <-got
		require.NoError(t, res.err)
		assert.Equal(t, dojob.StateAcknowledged, res.st)
		r.requireFile("/f")
		assert.Equal(t, []string{"f"}, dirEntries(t, r.dir))
	})
}

// TestWaitCoversCancelInCallback: a JobError that calls Cancel makes Wait
// return CANCELLED, with the temporary files already gone.
func TestWaitCoversCancelInCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(10<<10), dojobtest.ScriptFor("/b", dojobtest.Status(404)))
		j := r.job("cancel", "/a", "/b") // /a transfers into its temporary file, /b fails
		var calls atomic.Int32
		require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{Error: func(j *dojob.Job, e *dojob.JobError) error {
			calls.Add(1)
			return j.Cancel()
		}}))
		st := resumeWait(t, j)
		assert.Equal(t, dojob.StateCancelled, st)
		assert.Equal(t, int32(1), calls.Load())
		assert.Empty(t, dirEntries(t, r.dir), "Cancel had deleted the temporary file when Wait returned")
	})
}

// TestWaitThroughRedelivery: a JobTransferred that fails is still owed, so
// Wait waits through its re-deliveries (one retry delay each) until one
// succeeds.
func TestWaitThroughRedelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(1000))
		rec := dojobtest.NewRecorder(dojobtest.FailTransferred(2), dojobtest.CompleteOnTransferred())
		j := r.job("redeliver", "/f")
		require.NoError(t, j.SetMinimumRetryDelay(5*time.Second))
		require.NoError(t, j.SetNotifyInterface(rec))
		start := time.Now()
		st := resumeWait(t, j)
		assert.Equal(t, dojob.StateAcknowledged, st)
		assert.Equal(t, 10*time.Second, time.Since(start), "two failed deliveries, 5 s apart, then Complete")
		assert.Equal(t, 3, rec.Count(dojobtest.EventTransferred))
		r.requireFile("/f")
	})
}

// TestWaitWithoutDeliverableCallback: a notification nothing can deliver
// (no callback, or flags that exclude it) is not waited for; turning the
// callback off while a failed one waits to be re-delivered wakes Wait.
func TestWaitWithoutDeliverableCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(1000))

		none := r.job("no callback", "/a")
		assert.Equal(t, dojob.StateTransferred, resumeWait(t, none))

		rec := dojobtest.NewRecorder()
		off := r.job("flags off", "/b")
		require.NoError(t, off.SetNotifyInterface(rec))
		require.NoError(t, off.SetNotifyFlags(dojob.NotifyJobError))
		assert.Equal(t, dojob.StateTransferred, resumeWait(t, off))
		disabled := r.job("disabled", "/c")
		require.NoError(t, disabled.SetNotifyInterface(rec))
		require.NoError(t, disabled.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyDisable))
		assert.Equal(t, dojob.StateTransferred, resumeWait(t, disabled))
		synctest.Wait()
		assert.Empty(t, rec.Events())

		failing := dojobtest.NewRecorder(dojobtest.FailTransferred(1000))
		j := r.job("failing", "/d")
		require.NoError(t, j.SetMinimumRetryDelay(time.Minute))
		require.NoError(t, j.SetNotifyInterface(failing))
		require.NoError(t, j.Resume())
		_, err := failing.AwaitCount(t.Context(), dojobtest.EventTransferred, 1)
		require.NoError(t, err)
		got := waitAsync(t.Context(), j)
		synctest.Wait()
		select {
		case res := <-got:
			t.Fatalf("Wait returned %v, %v while a re-delivery was owed", res.st, res.err)
		default:
		}
		require.NoError(t, j.SetNotifyInterface(nil))
		res := <-got
		require.NoError(t, res.err)
		assert.Equal(t, dojob.StateTransferred, res.st)
		assert.Equal(t, 1, failing.Count(dojobtest.EventTransferred), "woken at once, not after the retry delay")
	})
}

// TestWaitSuspended: SUSPENDED needs the caller (nothing moves the job
// until Resume), so Wait returns it — for a new job at once, and for a
// running job that another goroutine suspends.
func TestWaitSuspended(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(100<<10), dojobtest.WithRate(10<<10)) // 10 s
		j := r.job("suspended", "/f")
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		st, err := j.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, dojob.StateSuspended, st)

		rec := dojobtest.NewRecorder()
		require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
		require.NoError(t, j.SetNotifyInterface(rec))
		require.NoError(t, j.Resume())
		got := waitAsync(ctx, j)
		_, err = rec.Await(ctx, func(evs []dojobtest.Event) bool {
			for _, e := range evs {
				if e.Kind == dojobtest.EventStateChanged && e.To == dojob.StateTransferring {
					return true
				}
			}
			return false
		})
		require.NoError(t, err)
		synctest.Wait()
		select {
		case res := <-got:
			t.Fatalf("Wait returned %v, %v during the transfer", res.st, res.err)
		default:
		}
		require.NoError(t, j.Suspend())
		res := <-got
		require.NoError(t, res.err)
		assert.Equal(t, dojob.StateSuspended, res.st)
	})
}

// TestWaitClose: Close ends a Wait that waits for a callback, with
// ErrNoService; after Close Wait returns at once.
func TestWaitClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := dojobtest.NewTransport(dojobtest.WithSize(1000))
		defer tr.Close()
		m, err := dojob.NewManager(dojob.Config{HTTPClient: tr.Client()})
		require.NoError(t, err)
		j, err := m.CreateJob("close")
		require.NoError(t, err)
		require.NoError(t, j.AddFile(tr.FileURL("/f"), filepath.Join(t.TempDir(), "f")))
		release := make(chan struct{})
		require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{Transferred: func(*dojob.Job) error {
			<-release
			return nil
		}}))
		require.NoError(t, j.Resume())
		got := waitAsync(t.Context(), j)
		synctest.Wait()
		closed := make(chan error, 1)
		go func() { closed <- m.Close() }()
		res := <-got
		require.ErrorIs(t, res.err, dojob.ErrNoService)
		assert.Equal(t, dojob.StateTransferred, res.st)
		close(release) // Close waits for the running callback
		require.NoError(t, <-closed)
		st, err := j.Wait(t.Context())
		require.ErrorIs(t, err, dojob.ErrNoService)
		assert.Equal(t, dojob.StateTransferred, st)
	})
}
