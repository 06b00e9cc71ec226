package dojob_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// watchStates registers a Recorder that sees every state change of j.
func watchStates(t *testing.T, j *dojob.Job) *dojobtest.Recorder {
	t.Helper()
	rec := dojobtest.NewRecorder()
	require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
	require.NoError(t, j.SetNotifyInterface(rec))
	return rec
}

// awaitState waits for the n-th move of the job into s and returns it. It
// gives up after an hour of fake time.
func awaitState(t *testing.T, rec *dojobtest.Recorder, s dojob.State, n int) dojobtest.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	var ev dojobtest.Event
	_, err := rec.Await(ctx, func(evs []dojobtest.Event) bool {
		k := 0
		for _, e := range evs {
			if e.Kind == dojobtest.EventStateChanged && e.To == s {
				if k++; k == n {
					ev = e
					return true
				}
			}
		}
		return false
	})
	require.NoError(t, err, "no move into %v number %d within an hour", s, n)
	return ev
}

// stateCount counts the moves into s the Recorder saw.
func stateCount(rec *dojobtest.Recorder, s dojob.State) int {
	n := 0
	for _, st := range rec.States() {
		if st == s {
			n++
		}
	}
	return n
}

// requireTooSlow checks the error of an attempt stopped by the minimum
// speed: a transient ErrTimeout in GENERAL_TRANSPORT naming the file, with
// a message that tells it from a stall.
func requireTooSlow(t *testing.T, jerr *dojob.JobError, local string) {
	t.Helper()
	require.NotNil(t, jerr)
	assert.Equal(t, dojob.ErrTimeout, jerr.Code)
	assert.Equal(t, dojob.ErrorContextGeneralTransport, jerr.Context)
	assert.True(t, jerr.Transient())
	require.NotNil(t, jerr.File)
	assert.Equal(t, local, jerr.File.LocalPath)
	assert.Contains(t, jerr.Error(), "slower than the minimum speed")
	assert.Contains(t, jerr.Error(), "under the minimum of 1000 bytes/s")
}

// TestMinimumSpeedTrickle: a server that sends 1 byte a second — progress
// for the no-progress timeout, so nothing else would ever stop it — with a
// minimum speed of 1000 B/s over 30 s. The attempt ends exactly 30 s after
// its response was accepted, in TRANSIENT_ERROR with ErrTimeout; the job
// retries after the retry delay, resuming at the offset the trickle
// reached, and completes when the server is fast on the second attempt.
func TestMinimumSpeedTrickle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 256 << 10
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.Script(dojobtest.Drip(1), dojobtest.OK()))
		j := r.job("trickle", "/f")
		require.NoError(t, j.SetMinimumSpeed(1000, 30*time.Second))
		rec := watchStates(t, j)
		start := time.Now()
		require.NoError(t, j.Resume())

		ev := awaitState(t, rec, dojob.StateTransientError, 1)
		assert.Equal(t, 30*time.Second, ev.Time.Sub(start), "stopped exactly one window after the headers")
		assert.Equal(t, 30*time.Second, time.Since(start))
		require.Equal(t, dojob.StateTransientError, j.State())
		requireTooSlow(t, mustJobError(t, j), r.local("/f"))
		assert.Equal(t, 1, j.ErrorCount())
		reached := j.Progress().BytesTransferred
		// Byte 30 leaves the server at the very instant the window ends.
		assert.True(t, reached == 29 || reached == 30, "kept the %d bytes received", reached)

		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
		assert.Equal(t, 1, j.ErrorCount())
		reqs := r.tr.RequestsFor("/f")
		requireOneResume(t, reqs, int64(reached))
		assert.Equal(t, []time.Duration{0, 32 * time.Second}, requestOffsets(reqs, start), "retried after the 2 s retry delay")
		assert.Equal(t, stoppedOnceStates, rec.States())
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestMinimumSpeedTrickleForever: a server that trickles on every attempt.
// Each attempt brings new bytes, which close the no-progress window (even a
// short timeout never expires): what really happens is that the job
// retries for ever, each attempt stopped one window after its headers and
// retried after the minimum retry delay (progress resets the back-off),
// each resuming where the last one stopped.
func TestMinimumSpeedTrickleForever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 256 << 10
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.Always(dojobtest.Drip(1)))
		j := r.job("trickle forever", "/f")
		require.NoError(t, j.SetMinimumSpeed(1000, 30*time.Second))
		require.NoError(t, j.SetNoProgressTimeout(10*time.Second))
		rec := watchStates(t, j)
		start := time.Now()
		require.NoError(t, j.Resume())
		const attempts = 6
		for i := 1; i <= attempts; i++ {
			ev := awaitState(t, rec, dojob.StateTransientError, i)
			assert.Equal(t, time.Duration(i)*30*time.Second+time.Duration(i-1)*2*time.Second, ev.Time.Sub(start), "attempt %d", i)
		}
		reqs := r.tr.RequestsFor("/f")
		require.Len(t, reqs, attempts)
		for i := 1; i < attempts; i++ {
			assert.Equal(t, time.Duration(i)*32*time.Second, reqs[i].Time.Sub(start))
			assert.Equal(t, fmt.Sprintf("bytes=%d-", sumBody(reqs[:i])), reqs[i].Range, "request %d resumes", i)
		}
		assert.Zero(t, stateCount(rec, dojob.StateError), "never ERROR: the trickle is progress")
		assert.Equal(t, attempts, j.ErrorCount())
	})
}

func sumBody(reqs []dojobtest.Request) int64 {
	var n int64
	for _, r := range reqs {
		n += r.BodyBytes
	}
	return n
}

// TestMinimumSpeedAboveLimit: a server 10 % above the minimum speed is
// never stopped.
func TestMinimumSpeedAboveLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate, size = 1100, 1100 * 120 // two minutes
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.Always(dojobtest.Drip(rate)))
		j := r.job("above", "/f")
		require.NoError(t, j.SetMinimumSpeed(1000, 30*time.Second))
		start := time.Now()
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		assert.Equal(t, 120*time.Second, time.Since(start))
		assert.Zero(t, j.ErrorCount())
		assert.Len(t, r.tr.RequestsFor("/f"), 1)
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestMinimumSpeedOffByDefault: without SetMinimumSpeed the trickle is not
// stopped: it is progress, and the stall timeout sees bytes every second.
func TestMinimumSpeedOffByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 300 // five minutes at 1 B/s
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.Always(dojobtest.Drip(1)))
		j := r.job("default", "/f")
		bps, window := j.MinimumSpeed()
		assert.Zero(t, bps)
		assert.Zero(t, window)
		start := time.Now()
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		assert.Equal(t, size*time.Second, time.Since(start))
		assert.Zero(t, j.ErrorCount())
		assert.Len(t, r.tr.RequestsFor("/f"), 1)
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestMinimumSpeedMirror: a slow primary is left for the mirror at once,
// one window after its headers — no TRANSIENT_ERROR, no retry delay — and
// the mirror continues at the offset (the file has a Checksum).
func TestMinimumSpeedMirror(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 64 << 10
		p := dojobtest.NewTestTransport(t, dojobtest.WithSize(size), dojobtest.Always(dojobtest.Drip(1)))
		mi := dojobtest.NewTestTransport(t, dojobtest.WithSize(size))
		m := newMirrorManager(t, dojob.Config{HTTPClient: &http.Client{Transport: hostMux{"primary.invalid": p, "mirror.invalid": mi}}})
		j, local := mirrorJob(t, m, dojob.FileSpec{RemoteURL: "http://primary.invalid/f", Mirrors: []string{"http://mirror.invalid/f"},
			Checksum: "sha256:" + p.SHA256("/f")})
		require.NoError(t, j.SetMinimumSpeed(1000, 30*time.Second))
		rec := watchStates(t, j)
		start := time.Now()
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		assert.Zero(t, stateCount(rec, dojob.StateTransientError))
		assert.Zero(t, j.ErrorCount())
		preqs, mreqs := p.RequestsFor("/f"), mi.RequestsFor("/f")
		require.Len(t, preqs, 1)
		require.Len(t, mreqs, 1)
		assert.Equal(t, 30*time.Second, mreqs[0].Time.Sub(start), "at the window's end, with no retry delay")
		assert.Equal(t, fmt.Sprintf("bytes=%d-", preqs[0].BodyBytes), mreqs[0].Range)
		assert.Equal(t, size-preqs[0].BodyBytes, mi.BodyBytes("/f"))
		assert.Equal(t, 1, j.Files()[0].Source)
		require.NoError(t, j.Complete())
		assert.Equal(t, p.SHA256("/f"), fileSHA256(t, local))
	})
}

// TestMinimumSpeedParallelFiles: each file of a parallel run is judged on
// its own — a fast file beside it does not hide a trickling one (together
// they are well above the limit) — and the slow one fails the attempt.
func TestMinimumSpeedParallelFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(400_000), dojobtest.AlwaysFor("/slow", dojobtest.Drip(1)),
			dojobtest.AlwaysFor("/fast", dojobtest.Drip(4000)))
		j := r.job("parallel", "/fast", "/slow")
		require.NoError(t, j.SetMaxParallelFiles(2))
		require.NoError(t, j.SetMinimumSpeed(1000, 30*time.Second))
		rec := watchStates(t, j)
		start := time.Now()
		require.NoError(t, j.Resume())
		ev := awaitState(t, rec, dojob.StateTransientError, 1)
		assert.Equal(t, 30*time.Second, ev.Time.Sub(start))
		requireTooSlow(t, mustJobError(t, j), r.local("/slow"))
		fast := j.Files()[0].BytesTransferred
		assert.InDelta(t, 4000*30, fast, 400, "the fast file kept its bytes")
	})
}

// TestMinimumSpeedSetWhileTransferring: a limit set on a running transfer
// applies at once, measured from the moment it was set; turning it off
// spares an attempt under way.
func TestMinimumSpeedSetWhileTransferring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(100_000), dojobtest.Always(dojobtest.Drip(1)))
		j := r.job("set", "/f")
		rec := watchStates(t, j)
		start := time.Now()
		require.NoError(t, j.Resume())
		advance(10 * time.Second) // fake time: 10 s into the trickle
		require.Equal(t, dojob.StateTransferring, j.State())
		require.NoError(t, j.SetMinimumSpeed(1000, 30*time.Second))
		ev := awaitState(t, rec, dojob.StateTransientError, 1)
		assert.Equal(t, 40*time.Second, ev.Time.Sub(start), "one window after the call")
		requireTooSlow(t, mustJobError(t, j), r.local("/f"))

		// The retry's attempt: the limit is turned off 20 s into it.
		awaitState(t, rec, dojob.StateTransferring, 2)
		advance(20 * time.Second)
		require.NoError(t, j.SetMinimumSpeed(0, 0))
		advance(10 * time.Minute)
		assert.Equal(t, dojob.StateTransferring, j.State())
		assert.Equal(t, 1, j.ErrorCount())
	})
}

// TestSetMinimumSpeed: the setter's checks, its default window, its
// JobModification, and ErrInvalidState in a final state.
func TestSetMinimumSpeed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{})
		j := r.job("setter", "/f")
		rec := dojobtest.NewRecorder()
		require.NoError(t, j.SetNotifyFlags(dojob.NotifyJobModification))
		require.NoError(t, j.SetNotifyInterface(rec))

		for _, bad := range []struct {
			bps    int64
			window time.Duration
		}{{-1, 0}, {-1, time.Minute}, {0, -time.Second}, {1000, -time.Second}, {1000, time.Second - 1},
			{1000, time.Millisecond}, {1, dojob.MaxTimeout + time.Second}} {
			err := j.SetMinimumSpeed(bad.bps, bad.window)
			assert.ErrorIs(t, err, dojob.ErrInvalidArg, "%d B/s over %v", bad.bps, bad.window)
		}
		synctest.Wait()
		assert.Zero(t, rec.Count(dojobtest.EventModification), "a refused value changes nothing")
		bps, window := j.MinimumSpeed()
		assert.Zero(t, bps)
		assert.Zero(t, window)

		require.NoError(t, j.SetMinimumSpeed(500, 0))
		bps, window = j.MinimumSpeed()
		assert.Equal(t, int64(500), bps)
		assert.Equal(t, dojob.DefaultMinimumSpeedWindow, window, "30 s when no window is given, as curl")
		assert.Equal(t, 30*time.Second, window)
		_, err := rec.AwaitCount(t.Context(), dojobtest.EventModification, 1)
		require.NoError(t, err)

		require.NoError(t, j.SetMinimumSpeed(500, 30*time.Second)) // the same: no notification
		require.NoError(t, j.SetMinimumSpeed(1, time.Second))
		_, err = rec.AwaitCount(t.Context(), dojobtest.EventModification, 2)
		require.NoError(t, err)
		require.NoError(t, j.SetMinimumSpeed(0, time.Hour)) // off: the window goes with it
		bps, window = j.MinimumSpeed()
		assert.Zero(t, bps)
		assert.Zero(t, window)
		_, err = rec.AwaitCount(t.Context(), dojobtest.EventModification, 3)
		require.NoError(t, err)
		synctest.Wait()
		assert.Equal(t, 3, rec.Count(dojobtest.EventModification))

		require.NoError(t, j.Cancel())
		assert.ErrorIs(t, j.SetMinimumSpeed(1000, time.Minute), dojob.ErrInvalidState)
		assert.False(t, errors.Is(j.SetMinimumSpeed(-1, 0), dojob.ErrInvalidState), "the arguments are checked first")
	})
}

// TestMinimumSpeedPersisted: the limit survives a Manager restart with a
// state directory, and so does turning it off. (A record holding a limit no
// call could set is damaged: TestDamagedRecordDefects.)
func TestMinimumSpeedPersisted(t *testing.T) {
	dir := t.TempDir()
	m1, err := dojob.NewManager(dojob.Config{StateDir: dir})
	require.NoError(t, err)
	j, err := m1.CreateJob("persisted")
	require.NoError(t, err)
	require.NoError(t, j.SetMinimumSpeed(2048, 45*time.Second))
	id := j.ID()
	require.NoError(t, m1.Close())

	inNewManager(t, dir, id, func(j2 *dojob.Job) {
		bps, window := j2.MinimumSpeed()
		assert.Equal(t, int64(2048), bps)
		assert.Equal(t, 45*time.Second, window)
		require.NoError(t, j2.SetMinimumSpeed(0, 0))
	})
	inNewManager(t, dir, id, func(j3 *dojob.Job) {
		bps, window := j3.MinimumSpeed()
		assert.Zero(t, bps)
		assert.Zero(t, window)
	})
}
