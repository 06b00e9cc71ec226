package dojob_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
)

// cbKind is one kind of callback and a job that receives it with a known
// state: the callback built by hook calls act the first time it runs.
type cbKind struct {
	name   string
	opts   []dojobtest.Option // the server's behaviour
	paths  []string           // the job's files
	flags  dojob.NotifyFlags
	paused bool        // Config.Paused: Resume leaves the job QUEUED
	state  dojob.State // the job's state while the callback runs (after synctest.Wait)
	// reloaded is the state a Manager reopening the state directory finds
	// after Close was called in the callback.
	reloaded dojob.State
	hook     func(act func(j *dojob.Job)) dojob.Callback
}

func cbKinds() []cbKind {
	return []cbKind{{
		name: "JobTransferred", opts: []dojobtest.Option{dojobtest.WithSize(1000)}, paths: []string{"/f"},
		flags: dojob.DefaultNotifyFlags, state: dojob.StateTransferred, reloaded: dojob.StateTransferred,
		hook: func(act func(*dojob.Job)) dojob.Callback {
			return dojob.CallbackFuncs{Transferred: func(j *dojob.Job) error { act(j); return nil }}
		},
	}, {
		name: "JobError", opts: []dojobtest.Option{dojobtest.ScriptFor("/f", dojobtest.Status(404))}, paths: []string{"/f"},
		flags: dojob.DefaultNotifyFlags, state: dojob.StateError, reloaded: dojob.StateError,
		hook: func(act func(*dojob.Job)) dojob.Callback {
			return dojob.CallbackFuncs{Error: func(j *dojob.Job, _ *dojob.JobError) error { act(j); return nil }}
		},
	}, {
		// Paused: Resume moves the job to QUEUED and nothing moves it on.
		name: "JobModification", paths: []string{"/f"}, paused: true,
		flags: dojob.DefaultNotifyFlags | dojob.NotifyJobModification, state: dojob.StateQueued, reloaded: dojob.StateQueued,
		hook: func(act func(*dojob.Job)) dojob.Callback {
			return dojob.CallbackFuncs{Modification: func(j *dojob.Job) error { act(j); return nil }}
		},
	}, {
		name: "JobStateChanged", paths: []string{"/f"}, paused: true,
		flags: dojob.DefaultNotifyFlags | dojob.NotifyJobModification, state: dojob.StateQueued, reloaded: dojob.StateQueued,
		hook: func(act func(*dojob.Job)) dojob.Callback {
			return dojob.CallbackFuncs{StateChanged: func(j *dojob.Job, from, to dojob.State) error {
				if from == dojob.StateSuspended && to == dojob.StateQueued {
					act(j)
				}
				return nil
			}}
		},
	}, {
		// One file: once its FileTransferred runs the job is TRANSFERRED
		// and owes JobTransferred, queued behind the running callback.
		// Close stops nothing then; the reloaded job owes it again.
		name: "FileTransferred", opts: []dojobtest.Option{dojobtest.WithSize(1000)}, paths: []string{"/f"},
		flags: dojob.DefaultNotifyFlags | dojob.NotifyFileTransferred, state: dojob.StateTransferred, reloaded: dojob.StateTransferred,
		hook: func(act func(*dojob.Job)) dojob.Callback {
			return dojob.CallbackFuncs{File: func(j *dojob.Job, _ dojob.FileInfo) error { act(j); return nil }}
		},
	}}
}

// closeGuard is the Logger of tests that call Close from a callback. It
// records Close's "still waiting" reports. A Close that waits for the
// callback calling it would wait forever (reporting every 30 s); a report
// that arrives while closeFrom runs therefore panics, which ends that Close
// (the callback's panic is recovered by dojob), so such a test fails
// instead of hanging.
type closeGuard struct {
	inClose atomic.Bool
	mu      sync.Mutex
	reports []string
}

func (g *closeGuard) Enabled(context.Context, slog.Level) bool { return true }
func (g *closeGuard) WithAttrs([]slog.Attr) slog.Handler       { return g }
func (g *closeGuard) WithGroup(string) slog.Handler            { return g }
func (g *closeGuard) Handle(_ context.Context, r slog.Record) error {
	if !strings.HasPrefix(r.Message, "dojob: Close") {
		return nil
	}
	g.mu.Lock()
	g.reports = append(g.reports, fmt.Sprint(attrOf(r, "waiting_for").Any()))
	g.mu.Unlock()
	if g.inClose.Load() {
		panic("Close called from a callback waits for " + fmt.Sprint(attrOf(r, "waiting_for").Any()))
	}
	return nil
}

func (g *closeGuard) Reports() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.reports...)
}

// closeFrom calls m.Close from a callback.
func (g *closeGuard) closeFrom(m *dojob.Manager) error {
	g.inClose.Store(true)
	defer g.inClose.Store(false)
	return m.Close()
}

// releaser closes a channel once, however often it is called; tests also
// register it as a cleanup, so that a failing test does not leave a
// callback blocked (the synctest bubble would never end).
func releaser(t *testing.T) (chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return ch, release
}

// TestCloseInCallback: for each kind of callback, Close called inside it
// returns at once, without waiting for the callback calling it; the Manager
// is closed (CreateJob and Resume give ErrNoService); the state directory
// is released and holds the job as it was, while the callback still runs;
// and once the callback returns no goroutine is left. (Before, such a Close
// waited for itself forever.)
func TestCloseInCallback(t *testing.T) {
	for _, k := range cbKinds() {
		t.Run(k.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ignore := goleak.IgnoreCurrent()
				g := &closeGuard{}
				stateDir := t.TempDir()
				r := newRig(t, dojob.Config{StateDir: stateDir, Paused: k.paused, Logger: slog.New(g)}, k.opts...)
				j := r.job(k.name, k.paths...)
				id := j.ID()
				require.NoError(t, j.SetNotifyFlags(k.flags))

				type result struct {
					err, create, resume error
					took                time.Duration
					state               dojob.State
				}
				got := make(chan result, 1)
				release, releaseNow := releaser(t)
				var once sync.Once
				var returned atomic.Bool
				require.NoError(t, j.SetNotifyInterface(k.hook(func(j *dojob.Job) {
					once.Do(func() {
						start := time.Now()
						var res result
						res.err = g.closeFrom(r.m)
						res.took = time.Since(start)
						res.state = j.State()
						_, res.create = r.m.CreateJob("after Close")
						res.resume = j.Resume()
						got <- res
						<-release // the callback goes on after Close returned
						returned.Store(true)
					})
				})))
				require.NoError(t, j.Resume())

				var res result
				select {
				case res = <-got:
				case <-time.After(time.Hour):
					t.Fatalf("Close called from %s did not return; Close reported waiting for %v", k.name, g.Reports())
				}
				require.NoError(t, res.err)
				assert.Equal(t, time.Duration(0), res.took, "Close returned at once")
				assert.Equal(t, k.state, res.state)
				assert.ErrorIs(t, res.create, dojob.ErrNoService)
				assert.ErrorIs(t, res.resume, dojob.ErrNoService)
				assert.Empty(t, g.Reports(), "Close did not wait")
				st, err := j.Wait(t.Context())
				assert.ErrorIs(t, err, dojob.ErrNoService)
				assert.Equal(t, k.state, st)

				// The state directory is released and final while the
				// callback still runs.
				m2, err := dojob.NewManager(dojob.Config{StateDir: stateDir, Paused: true})
				require.NoError(t, err)
				jobs := m2.Jobs()
				require.Len(t, jobs, 1)
				assert.Equal(t, id, jobs[0].ID())
				assert.Equal(t, k.reloaded, jobs[0].State())
				require.NoError(t, m2.Close())
				assert.False(t, returned.Load())

				releaseNow()
				synctest.Wait()
				assert.True(t, returned.Load())
				goleak.VerifyNone(t, ignore) // the callback's goroutine has ended too
				require.NoError(t, r.m.Close(), "Close again: the same result")
			})
		})
	}
}

// TestWaitInOwnCallback: for each kind of callback, Wait on the job called
// inside it returns at once with the job's state and ErrPossibleDeadlock:
// it would wait for the callback calling it, or for the JobTransferred
// queued behind it. (Before, it waited until its ctx ended.) Once the
// callback has returned, Wait from outside works as before.
func TestWaitInOwnCallback(t *testing.T) {
	for _, k := range cbKinds() {
		t.Run(k.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{Paused: k.paused}, k.opts...)
				j := r.job(k.name, k.paths...)
				require.NoError(t, j.SetNotifyFlags(k.flags))
				type result struct {
					st   dojob.State
					err  error
					took time.Duration
				}
				got := make(chan result, 1)
				var once sync.Once
				require.NoError(t, j.SetNotifyInterface(k.hook(func(j *dojob.Job) {
					once.Do(func() {
						synctest.Wait() // the transfer has settled
						ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
						defer cancel()
						start := time.Now()
						st, err := j.Wait(ctx)
						got <- result{st, err, time.Since(start)}
					})
				})))
				require.NoError(t, j.Resume())
				res := <-got
				require.ErrorIs(t, res.err, dojob.ErrPossibleDeadlock)
				var hr dojob.HRESULT
				require.ErrorAs(t, res.err, &hr)
				assert.Equal(t, "ERROR_POSSIBLE_DEADLOCK (0x8007046B)", hr.Error())
				assert.Equal(t, k.state, res.st)
				assert.Equal(t, time.Duration(0), res.took, "Wait returned at once")

				if k.state != dojob.StateQueued {
					st, err := j.Wait(t.Context())
					require.NoError(t, err)
					assert.Equal(t, k.state, st, "settled once the callbacks have run")
				}
			})
		})
	}
}

// TestWaitInCallbackSettled: Wait from a job's own callback, when the job
// needs nothing from the callbacks, returns as it would anywhere: the
// state and no error.
func TestWaitInCallbackSettled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{})
		j := r.job("settled", "/f")
		require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
		type result struct {
			st  dojob.State
			err error
		}
		got := make(chan result, 1)
		require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{Modification: func(j *dojob.Job) error {
			st, err := j.Wait(t.Context())
			got <- result{st, err}
			return nil
		}}))
		require.NoError(t, j.SetDescription("a modification of a SUSPENDED job"))
		res := <-got
		require.NoError(t, res.err)
		assert.Equal(t, dojob.StateSuspended, res.st)
	})
}

// TestWaitInCallbackForAnotherJob: a callback of job A may wait for job B
// while no callback of B runs, and the wait covers B's JobTransferred; B's
// JobTransferred, which waits for A in turn, does not wait (A's callback is
// running: a cycle) and gets ErrPossibleDeadlock at once. (Before, the two
// waited for each other until their contexts ended.)
func TestWaitInCallbackForAnotherJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(1000), dojobtest.ScriptFor("/b", dojobtest.Delay(10*time.Second)))
		a := r.job("A", "/a")
		b := r.job("B", "/b")
		type result struct {
			st   dojob.State
			err  error
			took time.Duration
		}
		waitFor := func(ch chan<- result, other *dojob.Job) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
			defer cancel()
			start := time.Now()
			st, err := other.Wait(ctx)
			ch <- result{st, err, time.Since(start)}
		}
		aGot, bGot := make(chan result, 1), make(chan result, 1)
		require.NoError(t, a.SetNotifyInterface(dojob.CallbackFuncs{Transferred: func(*dojob.Job) error {
			waitFor(aGot, b)
			return nil
		}}))
		require.NoError(t, b.SetNotifyInterface(dojob.CallbackFuncs{Transferred: func(b *dojob.Job) error {
			waitFor(bGot, a)
			return b.Complete()
		}}))
		start := time.Now()
		require.NoError(t, a.Resume())
		require.NoError(t, b.Resume())

		bRes := <-bGot
		require.ErrorIs(t, bRes.err, dojob.ErrPossibleDeadlock, "A's callback is running")
		assert.Equal(t, dojob.StateTransferred, bRes.st)
		assert.Equal(t, time.Duration(0), bRes.took)

		aRes := <-aGot
		require.NoError(t, aRes.err)
		assert.Equal(t, dojob.StateAcknowledged, aRes.st, "A's wait covered B's JobTransferred and its Complete")
		assert.Equal(t, 10*time.Second, time.Since(start), "A waited for B's delayed transfer")
		r.requireFile("/b")
	})
}

// TestCloseInCallbackLeavesOtherCallbacks: Close called from job B's
// callback does not wait for job A's callback, which is running (it could
// be waiting for B); a later Close from outside waits for it, and returns
// the same result once it has returned.
func TestCloseInCallbackLeavesOtherCallbacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &closeGuard{}
		r := newRig(t, dojob.Config{Logger: slog.New(g)}, dojobtest.WithSize(1000))
		a := r.job("A", "/a")
		b := r.job("B", "/b")
		aIn := make(chan struct{})
		releaseA, releaseANow := releaser(t)
		var aReturned atomic.Bool
		require.NoError(t, a.SetNotifyInterface(dojob.CallbackFuncs{Transferred: func(*dojob.Job) error {
			close(aIn)
			<-releaseA
			aReturned.Store(true)
			return nil
		}}))
		closed := make(chan error, 1)
		require.NoError(t, b.SetNotifyInterface(dojob.CallbackFuncs{Transferred: func(*dojob.Job) error {
			closed <- g.closeFrom(r.m)
			return nil
		}}))
		require.NoError(t, a.Resume())
		<-aIn
		require.NoError(t, b.Resume())
		select {
		case err := <-closed:
			require.NoError(t, err)
		case <-time.After(time.Hour):
			t.Fatalf("Close called from B's callback did not return; Close reported waiting for %v", g.Reports())
		}
		assert.Empty(t, g.Reports())

		outside := make(chan error, 1)
		go func() { outside <- r.m.Close() }()
		synctest.Wait()
		select {
		case err := <-outside:
			t.Fatalf("Close from outside returned (%v) while A's callback runs", err)
		default:
		}
		releaseANow()
		require.NoError(t, <-outside)
		assert.True(t, aReturned.Load(), "Close from outside returned after A's callback")
		assert.Empty(t, g.Reports())
	})
}
