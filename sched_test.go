package dojob_test

import (
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestForegroundConcurrencyLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{MaxForegroundJobs: 2}, dojobtest.WithSize(10<<10),
			dojobtest.Script(dojobtest.StallAfter(100)))
		var jobs []*dojob.Job
		for _, p := range []string{"/a", "/b", "/c"} {
			j := r.job(p, p)
			require.NoError(t, j.SetPriority(dojob.PriorityForeground))
			require.NoError(t, j.Resume())
			synctest.Wait() // first come, first served
			jobs = append(jobs, j)
		}
		assert.Equal(t, []dojob.State{dojob.StateTransferring, dojob.StateTransferring, dojob.StateQueued},
			[]dojob.State{jobs[0].State(), jobs[1].State(), jobs[2].State()})
		// Suspending one frees its slot for the waiting job.
		require.NoError(t, jobs[0].Suspend())
		synctest.Wait()
		assert.Equal(t, dojob.StateTransferring, jobs[2].State())
		for _, j := range jobs {
			require.NoError(t, j.Cancel())
		}
	})
}

// TestBackgroundPriorityOrder: with one background slot busy, waiting jobs
// start HIGH, then NORMAL, then LOW, first come first served within a
// priority; foreground jobs do not wait for background slots.
func TestBackgroundPriorityOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{MaxBackgroundJobs: 1}, dojobtest.WithSize(1000),
			dojobtest.ScriptFor("/block", dojobtest.Delay(10*time.Second)))
		block := r.job("block", "/block")
		require.NoError(t, block.SetPriority(dojob.PriorityHigh))
		require.NoError(t, block.Resume())
		synctest.Wait()
		order := []struct {
			path string
			prio dojob.Priority
		}{
			{"/low1", dojob.PriorityLow}, {"/normal1", dojob.PriorityNormal}, {"/low2", dojob.PriorityLow},
			{"/high1", dojob.PriorityHigh}, {"/normal2", dojob.PriorityNormal}, {"/fg", dojob.PriorityForeground},
		}
		var jobs []*dojob.Job
		for _, o := range order {
			j := r.job(o.path, o.path)
			require.NoError(t, j.SetPriority(o.prio))
			require.NoError(t, j.Resume())
			jobs = append(jobs, j)
		}
		synctest.Wait()
		assert.Equal(t, dojob.StateTransferred, jobs[5].State(), "a foreground job starts at once")
		for _, j := range jobs {
			st, err := j.Wait(t.Context())
			require.NoError(t, err)
			require.Equal(t, dojob.StateTransferred, st)
		}
		var paths []string
		for _, req := range r.tr.Requests() {
			paths = append(paths, req.Path)
		}
		assert.Equal(t, []string{"/block", "/fg", "/high1", "/normal1", "/normal2", "/low1", "/low2"}, paths)
	})
}

// TestPreemption: a HIGH job that arrives while a LOW one holds the only
// background slot pre-empts it; the LOW job goes back to QUEUED and later
// resumes where it stopped, downloading no byte twice.
func TestPreemption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 64 << 10
		r := newRig(t, dojob.Config{MaxBackgroundJobs: 1}, dojobtest.WithSize(size),
			dojobtest.AlwaysFor("/low", dojobtest.Drip(1<<10))) // 64 s
		rec := dojobtest.NewRecorder()
		low := r.job("low", "/low")
		require.NoError(t, low.SetPriority(dojob.PriorityLow))
		require.NoError(t, low.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
		require.NoError(t, low.SetNotifyInterface(rec))
		require.NoError(t, low.Resume())
		_, err := r.tr.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool {
			return len(rs) == 1 && rs[0].BodyBytes >= 10<<10
		})
		require.NoError(t, err)

		high := r.job("high", "/high")
		require.NoError(t, high.SetPriority(dojob.PriorityHigh))
		st := resumeWait(t, high)
		require.Equal(t, dojob.StateTransferred, st)
		st, err = low.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)

		synctest.Wait() // callbacks are delivered asynchronously
		Q, C, T, TD := dojob.StateQueued, dojob.StateConnecting, dojob.StateTransferring, dojob.StateTransferred
		assert.Equal(t, []dojob.State{Q, C, T, Q, C, T, TD}, rec.States(), "pre-empted back to QUEUED, then resumed")
		reqs := r.tr.RequestsFor("/low")
		require.Len(t, reqs, 2)
		assert.Equal(t, "bytes="+strconv.FormatInt(reqs[0].BodyBytes, 10)+"-", reqs[1].Range)
		assert.Equal(t, int64(size), r.tr.BodyBytes("/low"), "no byte twice")
		assert.Equal(t, 0, low.ErrorCount(), "pre-emption is not an error")
		require.NoError(t, low.Complete())
		require.NoError(t, high.Complete())
		r.requireFile("/low")
		r.requireFile("/high")
	})
}

// TestLoweringPriorityAllowsPreemption: a running job whose priority drops
// below a waiting one's yields its slot.
func TestLoweringPriorityAllowsPreemption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{MaxBackgroundJobs: 1}, dojobtest.WithSize(8<<10),
			dojobtest.AlwaysFor("/a", dojobtest.Drip(1<<10)))
		a := r.job("a", "/a")
		require.NoError(t, a.Resume())
		synctest.Wait()
		b := r.job("b", "/b")
		require.NoError(t, b.Resume())
		synctest.Wait()
		assert.Equal(t, dojob.StateQueued, b.State(), "equal priority: no pre-emption")
		require.NoError(t, a.SetPriority(dojob.PriorityLow))
		st, err := b.Wait(t.Context())
		require.NoError(t, err)
		assert.Equal(t, dojob.StateTransferred, st)
		assert.NotEqual(t, dojob.StateTransferred, a.State())
		st, err = a.Wait(t.Context())
		require.NoError(t, err)
		assert.Equal(t, dojob.StateTransferred, st)
	})
}

// TestIdleJobsHaveNoGoroutine: suspended jobs, jobs waiting to retry and
// finished jobs cost no goroutine (docs/design.md, Goroutines).
func TestIdleJobsHaveNoGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{MaxBackgroundJobs: 8}, dojobtest.WithSize(1000),
			dojobtest.AlwaysFor("/fail", dojobtest.Status(503)))
		synctest.Wait()
		base := runtime.NumGoroutine()
		for i := range 200 {
			r.job("suspended", "/s"+strconv.Itoa(i))
		}
		for i := range 50 {
			j, err := r.m.CreateJob("retrying")
			require.NoError(t, err)
			require.NoError(t, j.AddFile(r.tr.FileURL("/fail"), r.local("/fail"+strconv.Itoa(i))))
			require.NoError(t, j.Resume())
		}
		for i := range 50 {
			j := r.job("done", "/d"+strconv.Itoa(i))
			require.NoError(t, j.Resume())
		}
		synctest.Wait()
		for _, j := range r.m.Jobs() {
			assert.Contains(t, []dojob.State{dojob.StateSuspended, dojob.StateTransientError, dojob.StateTransferred}, j.State())
		}
		// NumGoroutine counts the whole process: goroutines of earlier tests
		// may still be ending, and the runtime's finalizer goroutine counts
		// while it runs a finalizer. A goroutine per idle job would add 300.
		assert.Less(t, runtime.NumGoroutine()-base, 5)
	})
}

// TestPausedManager: Config.Paused holds every transfer until Start.
func TestPausedManager(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{Paused: true}, dojobtest.WithSize(1000))
		j := r.job("held", "/f")
		require.NoError(t, j.Resume())
		synctest.Wait()
		assert.Equal(t, dojob.StateQueued, j.State())
		assert.Empty(t, r.tr.Requests())
		require.NoError(t, r.m.Start())
		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		assert.Equal(t, dojob.StateTransferred, st)
		require.NoError(t, r.m.Start()) // a no-op now
	})
}
