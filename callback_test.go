package dojob_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quiet waits for d of fake time to pass with nothing else to do, and
// reports whether the recorder got a new event meanwhile.
func quiet(t *testing.T, rec *dojobtest.Recorder, d time.Duration) bool {
	t.Helper()
	n := len(rec.Events())
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	_, err := rec.Await(ctx, func(evs []dojobtest.Event) bool { return len(evs) > n })
	return err != nil
}

// TestJobErrorRedelivered: a JobError callback that fails is called again
// after the retry delay while the job stays in ERROR, until it returns nil.
func TestJobErrorRedelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.Always(dojobtest.Status(404)))
		rec := dojobtest.NewRecorder(dojobtest.FailError(2))
		j := r.job("404", "/f")
		require.NoError(t, j.SetMinimumRetryDelay(5*time.Second))
		require.NoError(t, j.SetNotifyInterface(rec))
		start := time.Now()
		require.NoError(t, j.Resume())
		evs, err := rec.AwaitCount(t.Context(), dojobtest.EventError, 3)
		require.NoError(t, err)
		var times []time.Duration
		for _, e := range evs {
			require.Equal(t, dojobtest.EventError, e.Kind)
			assert.Equal(t, dojob.HTTPStatus(404), e.Err.Code)
			assert.Equal(t, dojob.StateError, e.State)
			times = append(times, e.Time.Sub(start))
		}
		assert.Equal(t, []time.Duration{0, 5 * time.Second, 10 * time.Second}, times)
		assert.ErrorIs(t, evs[0].Returned, dojobtest.ErrInjected)
		assert.NoError(t, evs[2].Returned)
		assert.True(t, quiet(t, rec, time.Hour), "no delivery after the callback returned nil")
		assert.Equal(t, 3, rec.Count(dojobtest.EventError))
		assert.Len(t, r.tr.RequestsFor("/f"), 1, "a fatal error is not retried")
		jerr := mustJobError(t, j)
		assert.Equal(t, dojob.ErrorContextRemoteFile, jerr.Context)
	})
}

// TestJobErrorNotRedeliveredAfterResume: re-delivery stops once the job
// leaves ERROR.
func TestJobErrorNotRedeliveredAfterResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(1000), dojobtest.Script(dojobtest.Status(403), dojobtest.OK()))
		rec := dojobtest.NewRecorder(dojobtest.FailError(100))
		j := r.job("403", "/f")
		require.NoError(t, j.SetNotifyInterface(rec))
		require.NoError(t, j.Resume())
		_, err := rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
		require.NoError(t, err)
		st := resumeWait(t, j)
		require.Equal(t, dojob.StateTransferred, st)
		// Wait covers the JobTransferred it owes: it has been delivered.
		require.Equal(t, 1, rec.Count(dojobtest.EventTransferred))
		assert.True(t, quiet(t, rec, time.Hour), "no JobError re-delivered (the failing one was due 2 s later), nothing else")
		assert.Equal(t, 1, rec.Count(dojobtest.EventError))
		assert.Equal(t, 1, rec.Count(dojobtest.EventTransferred))
	})
}

// TestCompleteFromJobTransferred is the canonical BITS pattern.
func TestCompleteFromJobTransferred(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(100<<10))
		rec := dojobtest.NewRecorder(dojobtest.CompleteOnTransferred())
		j := r.job("complete", "/a", "/b")
		require.NoError(t, j.SetNotifyInterface(rec))
		require.NoError(t, j.Resume())
		evs, err := rec.AwaitCount(t.Context(), dojobtest.EventTransferred, 1)
		require.NoError(t, err)
		ev := evs[len(evs)-1]
		assert.NoError(t, ev.Returned)
		assert.Equal(t, dojob.StateAcknowledged, j.State())
		r.requireFile("/a")
		r.requireFile("/b")
		assert.Equal(t, []string{"a", "b"}, dirEntries(t, r.dir))
		synctest.Wait()
		assert.Equal(t, 1, rec.Count(dojobtest.EventTransferred))
		for _, f := range j.Files() {
			assert.True(t, f.Completed)
		}
		assert.False(t, j.Times().TransferCompletion.IsZero())
	})
}

// TestPanickingCallback: a JobTransferred that panics is recovered, logged
// and delivered again after the retry delay.
func TestPanickingCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(1000))
		var calls atomic.Int32
		second := make(chan time.Duration, 1)
		start := time.Now()
		j := r.job("panic", "/f")
		require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{Transferred: func(j *dojob.Job) error {
			if calls.Add(1) == 1 {
				panic("boom")
			}
			err := j.Complete()
			second <- time.Since(start)
			return err
		}}))
		require.NoError(t, j.Resume())
		assert.Equal(t, 2*time.Second, <-second, "delivered again after the retry delay")
		assert.Equal(t, dojob.StateAcknowledged, j.State())
		synctest.Wait()
		assert.Equal(t, int32(2), calls.Load())
		r.requireFile("/f")
	})
}

// TestLateRegistration: a callback registered on a job that is already in
// ERROR or TRANSFERRED gets the notification it missed, once; so does one
// whose flags are turned on late.
func TestLateRegistration(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault dojobtest.Fault
		kind  dojobtest.EventKind
		state dojob.State
	}{
		{"error", dojobtest.Status(404), dojobtest.EventError, dojob.StateError},
		{"transferred", dojobtest.OK(), dojobtest.EventTransferred, dojob.StateTransferred},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{}, dojobtest.WithSize(1000), dojobtest.Always(tc.fault))
				j := r.job("late", "/f")
				st := resumeWait(t, j)
				require.Equal(t, tc.state, st)

				rec := dojobtest.NewRecorder()
				require.NoError(t, j.SetNotifyInterface(rec))
				_, err := rec.AwaitCount(t.Context(), tc.kind, 1)
				require.NoError(t, err)
				require.NoError(t, j.SetNotifyInterface(rec)) // delivered: nothing more is owed
				assert.True(t, quiet(t, rec, time.Minute))
				assert.Equal(t, 1, rec.Count(tc.kind))

				// A second job: callback set, flags off; turning them on delivers.
				j2 := r.job("flags", "/g")
				rec2 := dojobtest.NewRecorder()
				require.NoError(t, j2.SetNotifyFlags(0))
				require.NoError(t, j2.SetNotifyInterface(rec2))
				require.NoError(t, j2.Resume())
				_, err = j2.Wait(t.Context())
				require.NoError(t, err)
				synctest.Wait()
				assert.Empty(t, rec2.Events())
				require.NoError(t, j2.SetNotifyFlags(dojob.NotifyJobTransferred|dojob.NotifyJobError))
				_, err = rec2.AwaitCount(t.Context(), tc.kind, 1)
				require.NoError(t, err)
			})
		})
	}
}

func TestNotifyDisable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(10<<10), dojobtest.Script(dojobtest.Status(503)))
		rec := dojobtest.NewRecorder()
		j := r.job("disabled", "/f")
		require.NoError(t, j.SetNotifyFlags(dojob.NotifyDisable|dojob.NotifyJobTransferred|dojob.NotifyJobError|dojob.NotifyJobModification|dojob.NotifyFileTransferred))
		require.NoError(t, j.SetNotifyInterface(rec))
		st := resumeWait(t, j)
		require.Equal(t, dojob.StateTransferred, st)
		require.NoError(t, j.Complete())
		synctest.Wait()
		assert.Empty(t, rec.Events())
	})
}

// TestCallbackOrder: per job, every notification in the order of the events
// that caused it, each state change once.
func TestCallbackOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 100 << 10
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.WithRate(10<<10), // 10 s per file
			dojobtest.ScriptFor("/a", dojobtest.Status(503)))
		rec := dojobtest.NewRecorder(dojobtest.CompleteOnTransferred())
		j := r.job("order", "/a", "/b")
		require.NoError(t, j.SetNotifyFlags(dojob.NotifyJobTransferred|dojob.NotifyJobError|dojob.NotifyJobModification|dojob.NotifyFileTransferred))
		require.NoError(t, j.SetNotifyInterface(rec))
		require.NoError(t, j.Resume())
		_, err := rec.AwaitCount(t.Context(), dojobtest.EventTransferred, 1)
		require.NoError(t, err)
		synctest.Wait()

		S := dojob.StateSuspended
		Q, C, T := dojob.StateQueued, dojob.StateConnecting, dojob.StateTransferring
		TE, TD, A := dojob.StateTransientError, dojob.StateTransferred, dojob.StateAcknowledged
		assert.Equal(t, []dojob.State{Q, C, TE, Q, C, T, C, T, TD, A}, rec.States())

		// Each state change is followed at once by its own JobModification
		// (except the moves into ERROR and TRANSFERRED, which have their own
		// notifications); every other JobModification is progress.
		type ev struct {
			kind     dojobtest.EventKind
			from, to dojob.State
		}
		var got []ev
		progress := 0
		evs := rec.Events()
		for i := 0; i < len(evs); i++ {
			e := evs[i]
			switch e.Kind {
			case dojobtest.EventModification:
				progress++
				continue
			case dojobtest.EventStateChanged:
				if e.To != dojob.StateError && e.To != dojob.StateTransferred {
					require.Less(t, i+1, len(evs))
					require.Equal(t, dojobtest.EventModification, evs[i+1].Kind, "the modification of %v", e)
					i++
				}
			}
			got = append(got, ev{e.Kind, e.From, e.To})
		}
		SC := dojobtest.EventStateChanged
		want := []ev{
			{SC, S, Q}, {SC, Q, C}, {SC, C, TE}, {SC, TE, Q}, {SC, Q, C}, {SC, C, T},
			{dojobtest.EventFileTransferred, 0, 0},
			{SC, T, C}, {SC, C, T},
			{dojobtest.EventFileTransferred, 0, 0},
			{SC, T, TD}, {dojobtest.EventTransferred, 0, 0},
			{SC, TD, A},
		}
		assert.Equal(t, want, got)
		// 20 s of transfer at most ~10 progress notifications a second.
		assert.Greater(t, progress, 10)
		assert.LessOrEqual(t, progress, 20*10+2)
		assert.Equal(t, 1, rec.Count(dojobtest.EventTransferred))
		assert.Equal(t, 0, rec.Count(dojobtest.EventError), "no JobError for a transient error")
	})
}

// TestReentrantCallbacks: callbacks may call every method of the job and
// the Manager.
func TestReentrantCallbacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(50<<10), dojobtest.WithRate(50<<10))
		var mods atomic.Int32
		done := make(chan struct{})
		j := r.job("reentrant", "/f")
		require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
		require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{
			Modification: func(j *dojob.Job) error {
				mods.Add(1)
				_ = j.State()
				_ = j.Progress()
				_ = j.Files()
				_ = j.Times()
				_, _ = j.Error()
				_ = j.NotifyInterface()
				_ = r.m.Jobs()
				if _, err := r.m.Job(j.ID()); err != nil {
					return err
				}
				return j.SetDescription("touched") // a setter queues another modification
			},
			Transferred: func(j *dojob.Job) error {
				defer close(done)
				return j.Complete()
			},
		}))
		require.NoError(t, j.Resume())
		<-done
		require.Equal(t, dojob.StateAcknowledged, j.State())
		assert.Equal(t, "touched", j.Description())
		assert.Greater(t, mods.Load(), int32(3))
		r.requireFile("/f")
	})
}

// TestBlockingCallbackDoesNotStallTransfers: callbacks run on their own
// goroutine; one that blocks holds up only its own job's later callbacks.
func TestBlockingCallbackDoesNotStallTransfers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(10<<10))
		release := make(chan struct{})
		var blocked atomic.Bool
		j := r.job("blocked", "/a")
		require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
		require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{Modification: func(*dojob.Job) error {
			if blocked.CompareAndSwap(false, true) {
				<-release
			}
			return nil
		}}))
		other := r.job("other", "/b")
		rec := dojobtest.NewRecorder()
		require.NoError(t, other.SetNotifyInterface(rec))
		require.NoError(t, j.Resume())
		require.NoError(t, other.Resume())
		// The JobTransferred j owes is queued behind the blocked callback, so
		// Wait keeps waiting for it; the transfer itself did not wait.
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		st, err := j.Wait(ctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, "Wait covers the JobTransferred still owed")
		assert.Equal(t, dojob.StateTransferred, st, "the transfer does not wait for its callbacks")
		_, err = rec.AwaitCount(t.Context(), dojobtest.EventTransferred, 1)
		require.NoError(t, err, "another job's callbacks are not held up")
		close(release)
		st, err = j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
		require.NoError(t, j.Complete())
		require.NoError(t, other.Complete())
	})
}

// TestCallbackErrorIgnoredForModification: JobModification's result does not
// cause re-delivery.
func TestCallbackErrorIgnoredForModification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(1000))
		var calls atomic.Int32
		j := r.job("mod", "/f")
		require.NoError(t, j.SetNotifyFlags(dojob.NotifyJobModification))
		require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{Modification: func(*dojob.Job) error {
			calls.Add(1)
			return errors.New("ignored")
		}}))
		require.NoError(t, j.SetDescription("one change"))
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		<-ctx.Done()
		cancel()
		assert.Equal(t, int32(1), calls.Load())
	})
}
