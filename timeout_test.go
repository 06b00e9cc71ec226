package dojob_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// attemptTimes models the retry rules (docs/design.md, No-progress window
// and retries: the delay doubles with each further failed attempt, capped at
// max(60 s, the minimum)) for a server that fails every attempt at once: the
// instants, from the first attempt, at which attempts start before the
// no-progress window (opened by the first failure) ends.
func attemptTimes(minDelay, timeout time.Duration) []time.Duration {
	var out []time.Duration
	limit := max(60*time.Second, minDelay)
	d := minDelay
	for t := time.Duration(0); t < timeout; t += d {
		out = append(out, t)
		if len(out) > 1 {
			d = min(2*d, limit)
		}
	}
	return out
}

func requestOffsets(reqs []dojobtest.Request, start time.Time) []time.Duration {
	var out []time.Duration
	for _, r := range reqs {
		out = append(out, r.Time.Sub(start))
	}
	return out
}

// TestNoProgressTimeoutByPriority: a server that answers 503 forever. The
// job retries at the documented delays (2 s, doubling, capped at 60 s),
// reaches ERROR exactly at the default timeout of its priority after the
// first failure, and JobError fires exactly once, with ErrNoProgress
// wrapping the 503.
func TestNoProgressTimeoutByPriority(t *testing.T) {
	for _, tc := range []struct {
		prio    dojob.Priority
		timeout time.Duration
	}{
		{dojob.PriorityForeground, time.Hour},
		{dojob.PriorityHigh, 24 * time.Hour},
		{dojob.PriorityNormal, 24 * time.Hour},
		{dojob.PriorityLow, 24 * time.Hour},
	} {
		t.Run(tc.prio.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{}, dojobtest.Always(dojobtest.Status(503)))
				rec := dojobtest.NewRecorder()
				j := r.job("503", "/f")
				require.NoError(t, j.SetPriority(tc.prio))
				require.NoError(t, j.SetNotifyInterface(rec))
				start := time.Now()
				require.NoError(t, j.Resume())

				st, err := j.Wait(t.Context())
				require.NoError(t, err)
				require.Equal(t, dojob.StateError, st)
				assert.Equal(t, tc.timeout, time.Since(start), "ERROR exactly at the timeout")

				want := attemptTimes(2*time.Second, tc.timeout)
				assert.Equal(t, want[:6], []time.Duration{0, 2 * time.Second, 6 * time.Second, 14 * time.Second, 30 * time.Second, 62 * time.Second})
				assert.Equal(t, want, requestOffsets(r.tr.RequestsFor("/f"), start))
				assert.Equal(t, len(want)+1, j.ErrorCount(), "each attempt entered TRANSIENT_ERROR, then ERROR once")

				evs, err := rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
				require.NoError(t, err)
				synctest.Wait()
				require.Equal(t, 1, rec.Count(dojobtest.EventError), "JobError exactly once")
				jerr := evs[len(evs)-1].Err
				require.NotNil(t, jerr)
				assert.Equal(t, dojob.ErrNoProgress, jerr.Code)
				assert.True(t, errors.Is(jerr, dojob.HTTPStatus(503)), "wraps the last transient error: %v", jerr)
				assert.Equal(t, dojob.ErrorContextRemoteFile, jerr.Context)
				require.NotNil(t, jerr.File)
				assert.Equal(t, r.local("/f"), jerr.File.LocalPath)
				got, err := j.Error()
				require.NoError(t, err)
				assert.Same(t, jerr, got)
				assert.Equal(t, start.Add(tc.timeout), evs[len(evs)-1].Time)
			})
		})
	}
}

func TestRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		date := start.Add(300 * time.Second).UTC().Format(http.TimeFormat)
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(10<<10), dojobtest.Script(
			dojobtest.StatusRetryAfter(503, "120"),
			dojobtest.StatusRetryAfter(429, date), // an HTTP date: 300 s after the start
			dojobtest.StatusRetryAfter(503, "1"),  // shorter than the back-off (8 s): no effect
			dojobtest.OK()))
		j := r.job("retry-after", "/f")
		st := resumeWait(t, j)
		require.Equal(t, dojob.StateTransferred, st)
		assert.Equal(t, []time.Duration{0, 120 * time.Second, 300 * time.Second, 308 * time.Second},
			requestOffsets(r.tr.RequestsFor("/f"), start))
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestProgressBeforeEachExpiryKeepsJobAlive: each retry delivers a few bytes
// just before the window would end, so the job never times out and
// finishes; without the progress it fails at the timeout.
func TestProgressBeforeEachExpiryKeepsJobAlive(t *testing.T) {
	const size = 64 << 10
	for _, progress := range []bool{true, false} {
		name := map[bool]string{true: "progress", false: "control"}[progress]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				script := []dojobtest.Fault{dojobtest.Status(503), dojobtest.DropAfter(100), dojobtest.DropAfter(100), dojobtest.OK()}
				if !progress {
					script = []dojobtest.Fault{dojobtest.Status(503), dojobtest.Status(503), dojobtest.Status(503), dojobtest.OK()}
				}
				r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.Script(script...))
				rec := dojobtest.NewRecorder()
				j := r.job("alive", "/f")
				require.NoError(t, j.SetNoProgressTimeout(time.Hour))
				require.NoError(t, j.SetMinimumRetryDelay(59*time.Minute)) // each retry comes a minute before expiry
				require.NoError(t, j.SetNotifyInterface(rec))
				start := time.Now()
				st := resumeWait(t, j)
				reqs := r.tr.RequestsFor("/f")
				if !progress {
					assert.Equal(t, dojob.StateError, st)
					assert.Equal(t, time.Hour, time.Since(start))
					assert.Equal(t, []time.Duration{0, 59 * time.Minute}, requestOffsets(reqs, start))
					return
				}
				require.Equal(t, dojob.StateTransferred, st)
				assert.Equal(t, 177*time.Minute, time.Since(start))
				assert.Equal(t, []time.Duration{0, 59 * time.Minute, 118 * time.Minute, 177 * time.Minute}, requestOffsets(reqs, start))
				assert.Equal(t, []string{"", "", "bytes=100-", "bytes=200-"}, []string{reqs[0].Range, reqs[1].Range, reqs[2].Range, reqs[3].Range})
				assert.NotEmpty(t, reqs[3].IfRange)
				assert.Equal(t, 3, j.ErrorCount())
				assert.Equal(t, 0, rec.Count(dojobtest.EventError))
				assert.Equal(t, int64(size), r.tr.BodyBytes("/f"), "no byte downloaded twice")
				require.NoError(t, j.Complete())
				r.requireFile("/f")
			})
		})
	}
}

// TestTimeoutZero: a no-progress timeout of 0 sends the first transient
// error straight to ERROR (BITS), with that error.
func TestTimeoutZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.Always(dojobtest.Status(503)))
		rec := dojobtest.NewRecorder()
		j := r.job("zero", "/f")
		require.NoError(t, j.SetNoProgressTimeout(0))
		require.NoError(t, j.SetNotifyInterface(rec))
		start := time.Now()
		st := resumeWait(t, j)
		require.Equal(t, dojob.StateError, st)
		assert.Zero(t, time.Since(start))
		assert.Len(t, r.tr.RequestsFor("/f"), 1)
		assert.Equal(t, 1, j.ErrorCount())
		jerr, err := j.Error()
		require.NoError(t, err)
		assert.Equal(t, dojob.HTTPStatus(503), jerr.Code)
		assert.Equal(t, dojob.ErrorContextRemoteFile, jerr.Context)
		_, err = rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
		require.NoError(t, err)
	})
}

// TestRetryDelayLongerThanTimeout: BITS does not retry then.
func TestRetryDelayLongerThanTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.Always(dojobtest.Status(500)))
		j := r.job("no retry", "/f")
		require.NoError(t, j.SetNoProgressTimeout(10*time.Second))
		require.NoError(t, j.SetMinimumRetryDelay(20*time.Second))
		st := resumeWait(t, j)
		require.Equal(t, dojob.StateError, st)
		assert.Len(t, r.tr.RequestsFor("/f"), 1)
		jerr := mustJobError(t, j)
		assert.Equal(t, dojob.HTTPStatus(500), jerr.Code)
	})
}

// TestSetTimeoutOnOpenWindow: a new timeout applies to an open window at
// once — shorter than its age ends it now, longer moves the end.
func TestSetTimeoutOnOpenWindow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		wantAt  time.Duration
	}{
		{"shorter than the window's age", time.Second, 2 * time.Second},
		{"longer", 10 * time.Second, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{}, dojobtest.Always(dojobtest.Status(503)))
				j := r.job("set", "/f")
				start := time.Now()
				require.NoError(t, j.Resume())
				// The second attempt, 2 s after the first failure.
				_, err := r.tr.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool { return len(rs) == 2 && rs[1].Status != 0 })
				require.NoError(t, err)
				synctest.Wait()
				require.Equal(t, dojob.StateTransientError, j.State())
				require.NoError(t, j.SetNoProgressTimeout(tc.timeout))
				st, err := j.Wait(t.Context())
				require.NoError(t, err)
				require.Equal(t, dojob.StateError, st)
				assert.Equal(t, tc.wantAt, time.Since(start))
				jerr := mustJobError(t, j)
				assert.Equal(t, dojob.ErrNoProgress, jerr.Code)
			})
		})
	}
}

// TestStallForever: a server that never sends headers. Each attempt is a
// stall (ErrTimeout) after Config.StallTimeout; the job ends in ERROR when
// the window opened by the first stall reaches the timeout, with JobError
// once.
func TestStallForever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{StallTimeout: 60 * time.Second}, dojobtest.Always(dojobtest.StallHeaders()))
		rec := dojobtest.NewRecorder()
		j := r.job("stall", "/f")
		require.NoError(t, j.SetPriority(dojob.PriorityForeground))
		require.NoError(t, j.SetNotifyInterface(rec))
		start := time.Now()
		st := resumeWait(t, j)
		require.Equal(t, dojob.StateError, st)
		assert.Equal(t, time.Minute+time.Hour, time.Since(start), "first stall at 60 s, then the 1 h window")
		_, err := rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
		require.NoError(t, err)
		synctest.Wait()
		assert.Equal(t, 1, rec.Count(dojobtest.EventError))
		jerr := mustJobError(t, j)
		assert.Equal(t, dojob.ErrNoProgress, jerr.Code)
		assert.True(t, errors.Is(jerr, dojob.ErrTimeout))
		assert.Equal(t, dojob.ErrorContextGeneralTransport, jerr.Context)
		assert.Empty(t, tempFiles(t, r.dir), "no response was ever accepted: no temporary file")
	})
}

// TestStallThenRecover: a body that stops after 1000 bytes is abandoned
// after the stall timeout and resumed with a Range request.
func TestStallThenRecover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 256 << 10
		r := newRig(t, dojob.Config{StallTimeout: 30 * time.Second}, dojobtest.WithSize(size),
			dojobtest.Script(dojobtest.StallAfter(1000), dojobtest.OK()))
		var transient []*dojob.JobError
		j := r.job("recover", "/f")
		require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
		require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{StateChanged: func(j *dojob.Job, from, to dojob.State) error {
			if to == dojob.StateTransientError {
				if e, err := j.Error(); err == nil {
					transient = append(transient, e)
				}
			}
			return nil
		}}))
		start := time.Now()
		st := resumeWait(t, j)
		require.Equal(t, dojob.StateTransferred, st)
		synctest.Wait()
		reqs := r.tr.RequestsFor("/f")
		require.Len(t, reqs, 2)
		assert.Equal(t, "bytes=1000-", reqs[1].Range)
		assert.NotEmpty(t, reqs[1].IfRange)
		// Abandoned 30 s after the last byte — never earlier, and at most one
		// watchdog tick (StallTimeout/8) later — then retried 2 s after that.
		retry := reqs[1].Time.Sub(start)
		assert.GreaterOrEqual(t, retry, 32*time.Second)
		assert.LessOrEqual(t, retry, 32*time.Second+30*time.Second/8)
		require.Len(t, transient, 1)
		assert.Equal(t, dojob.ErrTimeout, transient[0].Code)
		assert.Equal(t, int64(size), r.tr.BodyBytes("/f"))
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestMaximumTimeoutsDoNotWrap: the largest timeout and retry delay leave
// the job waiting, not expired by an overflowing deadline.
func TestMaximumTimeoutsDoNotWrap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.Always(dojobtest.Status(503)))
		j := r.job("max", "/f")
		require.NoError(t, j.SetNoProgressTimeout(dojob.MaxTimeout))
		require.NoError(t, j.SetMinimumRetryDelay(dojob.MaxTimeout))
		require.NoError(t, j.Resume())
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), 1000*24*time.Hour)
		defer cancel()
		st, err := j.Wait(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded, "a thousand days later it still waits")
		assert.Equal(t, dojob.StateTransientError, st)
		assert.Len(t, r.tr.RequestsFor("/f"), 1)
	})
}

// TestCompleteClosesTheWindow: a job whose second file keeps failing is in
// TRANSIENT_ERROR with an open no-progress window when Complete starts; the
// renames take longer than the rest of the window. Complete closes the
// window, so the job never moves to ERROR under it: no JobError, and Complete
// ends in ACKNOWLEDGED with the first file in place.
func TestCompleteClosesTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.AlwaysFor("/bad", dojobtest.Status(503)))
		started, release := make(chan struct{}), make(chan struct{})
		dojob.HoldRenames(r.m, started, release)
		rec := dojobtest.NewRecorder()
		j := r.job("complete during a window", "/good", "/bad")
		require.NoError(t, j.SetNoProgressTimeout(10*time.Second))
		require.NoError(t, j.SetNotifyInterface(rec))
		require.NoError(t, j.Resume())
		synctest.Wait()
		require.Equal(t, dojob.StateTransientError, j.State())
		require.True(t, j.Files()[0].Transferred)

		done := make(chan error, 1)
		go func() { done <- j.Complete() }()
		<-started
		advance(time.Minute) // fake time: far past the window's end
		assert.Equal(t, dojob.StateTransientError, j.State(), "no expiry while Complete renames")
		close(release)
		require.NoError(t, <-done)
		synctest.Wait()
		assert.Equal(t, dojob.StateAcknowledged, j.State())
		assert.Zero(t, rec.Count(dojobtest.EventError), "no JobError")
		assert.Equal(t, 1, j.ErrorCount())
		r.requireFile("/good")
	})
}
