package dojob_test

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireMaxTimeError checks the error of a job whose maximum download time
// ended it, and that JobError was called exactly once, at at.
func requireMaxTimeError(t *testing.T, j *dojob.Job, rec *dojobtest.Recorder, at time.Time) {
	t.Helper()
	e := mustJobError(t, j)
	assert.Equal(t, dojob.ErrMaxDownloadTimeout, e.Code)
	assert.Equal(t, dojob.ErrorContextGeneralQueueManager, e.Context)
	assert.True(t, errors.Is(e, dojob.ErrMaxDownloadTimeout))
	assert.Contains(t, e.Error(), "BG_E_MAXDOWNLOAD_TIMEOUT (0x80200054)")
	evs, err := rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
	require.NoError(t, err)
	synctest.Wait()
	require.Equal(t, 1, rec.Count(dojobtest.EventError), "JobError exactly once")
	last := evs[len(evs)-1]
	require.NotNil(t, last.Err)
	assert.Equal(t, dojob.ErrMaxDownloadTimeout, last.Err.Code)
	assert.Equal(t, at, last.Time)
}

// TestMaxDownloadTimeCountsOnlyConnectingAndTransferring: a server that never
// sends its headers; every attempt stalls after Config.StallTimeout (100 s)
// and the job waits in TRANSIENT_ERROR (30 s, then 60 s) before it tries
// again. With a maximum download time of 5 minutes, the job ends in ERROR
// with BG_E_MAXDOWNLOAD_TIMEOUT after exactly 300 s of CONNECTING: at 390 s
// of wall time (100 + 100 + 100 s connecting, 30 + 60 s waiting). Counting
// the waits would end it at 300 s, in the middle of the third attempt's
// first 10 s, and not counting the third attempt would never end it.
func TestMaxDownloadTimeCountsOnlyConnectingAndTransferring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{StallTimeout: 100 * time.Second}, dojobtest.Always(dojobtest.StallHeaders()))
		rec := dojobtest.NewRecorder()
		j := r.job("stalls", "/f")
		require.NoError(t, j.SetNotifyInterface(rec))
		require.NoError(t, j.SetMinimumRetryDelay(30*time.Second))
		require.NoError(t, j.SetMaximumDownloadTime(5*time.Minute))
		assert.Equal(t, 5*time.Minute, j.MaximumDownloadTime())
		start := time.Now()
		require.Equal(t, dojob.StateError, resumeWait(t, j))
		assert.Equal(t, 390*time.Second, time.Since(start), "ERROR after 300 s of CONNECTING; the 90 s in TRANSIENT_ERROR do not count")
		assert.Equal(t, []time.Duration{0, 130 * time.Second, 290 * time.Second}, requestOffsets(r.tr.RequestsFor("/f"), start))
		assert.Equal(t, 5*time.Minute, j.DownloadTimeUsed())
		assert.Equal(t, 3, j.ErrorCount(), "two stalls in TRANSIENT_ERROR, then ERROR once")
		requireMaxTimeError(t, j, rec, start.Add(390*time.Second))

		// In ERROR the clock stands still.
		advance(time.Hour)
		assert.Equal(t, 5*time.Minute, j.DownloadTimeUsed())
		assert.Len(t, r.tr.RequestsFor("/f"), 3, "the stopped attempt is not retried")
	})
}

// TestMaxDownloadTimeQueuedDoesNotCount: with one background slot, job b
// (a limit of 1 minute) waits QUEUED for 10 minutes behind job a; its clock
// starts only when it connects, and it ends exactly 1 minute after a is
// cancelled.
func TestMaxDownloadTimeQueuedDoesNotCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{StallTimeout: time.Hour, MaxBackgroundJobs: 1}, dojobtest.Always(dojobtest.StallHeaders()))
		a := r.job("a", "/a")
		b := r.job("b", "/b")
		require.NoError(t, b.SetMaximumDownloadTime(time.Minute))
		require.NoError(t, a.Resume())
		synctest.Wait()
		require.NoError(t, b.Resume())
		advance(10 * time.Minute)
		require.Equal(t, dojob.StateQueued, b.State())
		assert.Zero(t, b.DownloadTimeUsed(), "QUEUED does not count")
		freed := time.Now()
		require.NoError(t, a.Cancel())
		st, err := b.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateError, st)
		assert.Equal(t, time.Minute, time.Since(freed))
		assert.Equal(t, dojob.ErrMaxDownloadTimeout, mustJobError(t, b).Code)
	})
}

// TestMaxDownloadTimeKeepsBytesAndResumeStartsOver: a 50,000-byte file sent
// at 1,000 bytes/s takes 50 s; the limit is 30 s. The job fails at exactly
// 30 s with what it received so far kept; Resume starts the clock over
// (BITS: Resume resets the elapsed time), and the second run continues at
// the offset reached and finishes in the 20 s left, within its new 30 s.
// Were the time used carried over, the second run would fail at once.
func TestMaxDownloadTimeKeepsBytesAndResumeStartsOver(t *testing.T) {
	const size = 50_000
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.WithRate(1000))
		rec := dojobtest.NewRecorder()
		j := r.job("slow", "/f")
		require.NoError(t, j.SetNotifyInterface(rec))
		require.NoError(t, j.SetMaximumDownloadTime(30*time.Second))
		start := time.Now()
		require.Equal(t, dojob.StateError, resumeWait(t, j))
		assert.Equal(t, 30*time.Second, time.Since(start))
		requireMaxTimeError(t, j, rec, start.Add(30*time.Second))
		held := j.Progress().BytesTransferred
		assert.Greater(t, held, int64(size/2), "the bytes of 30 s at 1,000 B/s are kept")
		assert.Less(t, held, int64(size))
		synctest.Wait()
		assert.Equal(t, held, j.Progress().BytesTransferred, "the stopped transfer wrote nothing more")

		resumed := time.Now()
		require.NoError(t, j.Resume())
		assert.Zero(t, j.DownloadTimeUsed(), "Resume after ERROR starts the clock over")
		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
		took := time.Since(resumed)
		assert.Less(t, took, 30*time.Second)
		assert.Equal(t, took, j.DownloadTimeUsed())
		reqs := r.tr.RequestsFor("/f")
		require.Len(t, reqs, 2)
		assert.Equal(t, "bytes="+strconv.FormatInt(held, 10)+"-", reqs[1].Range, "the second run continues at the offset reached")
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestMaxDownloadTimeSuspendPauses: 2 minutes of CONNECTING, then 10
// minutes SUSPENDED: the clock stands at 2 minutes, Resume continues it
// (Suspend only pauses), and the job ends exactly 3 minutes after Resume.
func TestMaxDownloadTimeSuspendPauses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{StallTimeout: time.Hour}, dojobtest.Always(dojobtest.StallHeaders()))
		rec := dojobtest.NewRecorder()
		j := r.job("suspended", "/f")
		require.NoError(t, j.SetNotifyInterface(rec))
		require.NoError(t, j.SetMaximumDownloadTime(5*time.Minute))
		require.NoError(t, j.Resume())
		advance(2 * time.Minute)
		require.Equal(t, dojob.StateConnecting, j.State())
		assert.Equal(t, 2*time.Minute, j.DownloadTimeUsed())
		require.NoError(t, j.Suspend())
		advance(10 * time.Minute)
		assert.Equal(t, dojob.StateSuspended, j.State())
		assert.Equal(t, 2*time.Minute, j.DownloadTimeUsed(), "SUSPENDED does not count")

		resumed := time.Now()
		require.NoError(t, j.Resume())
		assert.Equal(t, 2*time.Minute, j.DownloadTimeUsed(), "Resume of a SUSPENDED job continues the clock")
		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateError, st)
		assert.Equal(t, 3*time.Minute, time.Since(resumed))
		requireMaxTimeError(t, j, rec, resumed.Add(3*time.Minute))
	})
}

// TestMaxDownloadTimeSetDuringTransfer: a limit set while the job connects
// counts the time already spent; one below it ends the job at once, and
// one above it at its end. 0 removes the limit.
func TestMaxDownloadTimeSetDuringTransfer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{StallTimeout: time.Hour}, dojobtest.Always(dojobtest.StallHeaders()))
		j := r.job("late limit", "/f")
		require.NoError(t, j.Resume())
		advance(4 * time.Minute)
		require.NoError(t, j.SetMaximumDownloadTime(5*time.Minute))
		advance(59 * time.Second)
		require.Equal(t, dojob.StateConnecting, j.State())
		require.NoError(t, j.SetMaximumDownloadTime(0))
		advance(time.Hour - 5*time.Minute - time.Second)
		require.Equal(t, dojob.StateConnecting, j.State(), "no limit")
		require.NoError(t, j.SetMaximumDownloadTime(time.Minute))
		synctest.Wait()
		require.Equal(t, dojob.StateError, j.State(), "a budget already spent ends the job now")
		assert.Equal(t, dojob.ErrMaxDownloadTimeout, mustJobError(t, j).Code)
	})
}

// TestMaxDownloadTimePersisted: the limit and the time used survive a
// Manager restart: 2 minutes used before Close leave 3 minutes after the
// reload, and the job ends exactly then.
func TestMaxDownloadTimePersisted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		tr := dojobtest.NewTransport(dojobtest.Always(dojobtest.StallHeaders()))
		defer tr.Close()
		cfg := dojob.Config{StateDir: dir, HTTPClient: tr.Client(), StallTimeout: time.Hour}
		m1, err := dojob.NewManager(cfg)
		require.NoError(t, err)
		j, err := m1.CreateJob("persisted")
		require.NoError(t, err)
		require.NoError(t, j.AddFile(tr.FileURL("/f"), filepath.Join(dir, "f")))
		require.NoError(t, j.SetMaximumDownloadTime(5*time.Minute))
		require.NoError(t, j.Resume())
		advance(2 * time.Minute)
		require.Equal(t, dojob.StateConnecting, j.State())
		require.NoError(t, m1.Close())

		advance(time.Hour) // between the Managers: no time counts
		m2, err := dojob.NewManager(cfg)
		require.NoError(t, err)
		defer func() { require.NoError(t, m2.Close()) }()
		reopened := time.Now()
		j2, err := m2.Job(j.ID())
		require.NoError(t, err)
		assert.Equal(t, 5*time.Minute, j2.MaximumDownloadTime())
		assert.Equal(t, 2*time.Minute, j2.DownloadTimeUsed(), "the time used is carried")
		st, err := j2.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateError, st)
		assert.Equal(t, 3*time.Minute, time.Since(reopened))
		assert.Equal(t, dojob.ErrMaxDownloadTimeout, mustJobError(t, j2).Code)
		assert.Zero(t, dojob.StateDefects(m2))
	})
}

// TestMaxDownloadTimeCrashLosesAtMostACheckpoint: the time used reaches
// the record while a stalled transfer runs (no byte, no state change),
// about every CheckpointInterval: a crash copy taken after 100.5 s of
// CONNECTING holds 100 s.
func TestMaxDownloadTimeCrashLosesAtMostACheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		tr := dojobtest.NewTransport(dojobtest.Always(dojobtest.StallHeaders()))
		defer tr.Close()
		m, err := dojob.NewManager(dojob.Config{StateDir: dir, HTTPClient: tr.Client(), StallTimeout: time.Hour})
		require.NoError(t, err)
		defer func() { require.NoError(t, m.Close()) }()
		j, err := m.CreateJob("crash")
		require.NoError(t, err)
		require.NoError(t, j.AddFile(tr.FileURL("/f"), filepath.Join(dir, "f")))
		require.NoError(t, j.SetMaximumDownloadTime(time.Hour))
		require.NoError(t, j.Resume())
		advance(100*time.Second + 500*time.Millisecond)
		c := crashCopy(t, dir, j.ID())
		used := c.DownloadTimeUsed()
		assert.LessOrEqual(t, used, 100*time.Second+500*time.Millisecond)
		assert.GreaterOrEqual(t, used, 100*time.Second-dojob.DefaultCheckpointInterval, "at most a checkpoint interval lost")
	})
}

func TestSetMaximumDownloadTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{})
		j := r.job("setter", "/f")
		assert.Zero(t, j.MaximumDownloadTime(), "no limit by default")
		for _, bad := range []time.Duration{-1, -time.Hour, dojob.MaxTimeout + time.Second} {
			assert.ErrorIs(t, j.SetMaximumDownloadTime(bad), dojob.ErrInvalidArg, "%v", bad)
		}
		assert.Zero(t, j.MaximumDownloadTime())
		require.NoError(t, j.SetMaximumDownloadTime(dojob.BITSDefaultMaximumDownloadTime))
		assert.Equal(t, 90*24*time.Hour, j.MaximumDownloadTime())
		require.NoError(t, j.SetMaximumDownloadTime(dojob.MaxTimeout))
		require.NoError(t, j.Cancel())
		assert.ErrorIs(t, j.SetMaximumDownloadTime(time.Minute), dojob.ErrInvalidState)
	})
}
