package dojob_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// progressTimes returns the instants of the progress JobModification calls
// a Recorder received: a JobModification not right after a JobStateChanged
// (each state change's JobModification follows its JobStateChanged).
func progressTimes(rec *dojobtest.Recorder) []time.Time {
	var out []time.Time
	evs := rec.Events()
	for i, ev := range evs {
		if ev.Kind == dojobtest.EventModification && (i == 0 || evs[i-1].Kind != dojobtest.EventStateChanged) {
			out = append(out, ev.Time)
		}
	}
	return out
}

// TestMinimumNotificationInterval: a 10.05 MB file sent at 1 MB/s (in
// chunks of 32 KiB, so every 100 ms brings bytes) takes 10.05 s in
// TRANSFERRING (not a multiple of an interval, so no tick races the last
// byte). Progress JobModification calls come at the job's minimum
// notification interval — 100 by default (also when it is set to 0), 20 at
// 500 ms, 10 at 1 s, also when the watchdog ticks more often — never two
// closer than the interval, while every state change is told.
func TestMinimumNotificationInterval(t *testing.T) {
	const size, rate = 10_050_000, 1_000_000
	for _, tc := range []struct {
		name string
		set  bool
		iv   time.Duration
		want time.Duration // the interval in force
		n    int           // progress notifications
		fast bool          // a minimum speed makes the watchdog tick every 125 ms
	}{
		{"unset", false, 0, 100 * time.Millisecond, 100, false},
		{"0 is the default", true, 0, 100 * time.Millisecond, 100, false},
		{"500ms", true, 500 * time.Millisecond, 500 * time.Millisecond, 20, false},
		{"1s", true, time.Second, time.Second, 10, false},
		{"1s, watchdog ticking faster", true, time.Second, time.Second, 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.WithRate(rate))
				rec := dojobtest.NewRecorder()
				j := r.job("paced", "/f")
				require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
				if tc.set {
					require.NoError(t, j.SetMinimumNotificationInterval(tc.iv))
				}
				if tc.fast {
					require.NoError(t, j.SetMinimumSpeed(1, time.Second))
				}
				require.NoError(t, j.SetNotifyInterface(rec))
				assert.Equal(t, tc.want, j.MinimumNotificationInterval())
				require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
				synctest.Wait()
				times := progressTimes(rec)
				assert.Len(t, times, tc.n)
				for i := 1; i < len(times); i++ {
					assert.GreaterOrEqual(t, times[i].Sub(times[i-1]), tc.want, "notification %d", i)
				}
				var states []dojob.State
				for _, ev := range rec.Events() {
					if ev.Kind == dojobtest.EventStateChanged {
						states = append(states, ev.To)
					}
				}
				assert.Equal(t, []dojob.State{dojob.StateQueued, dojob.StateConnecting, dojob.StateTransferring, dojob.StateTransferred}, states)
			})
		})
	}
}

func TestSetMinimumNotificationInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{})
		j := r.job("setter", "/f")
		assert.Equal(t, dojob.DefaultMinimumNotificationInterval, j.MinimumNotificationInterval())
		assert.Equal(t, 100*time.Millisecond, dojob.DefaultMinimumNotificationInterval)
		for _, bad := range []time.Duration{-1, -time.Second, time.Millisecond - 1, time.Nanosecond, dojob.MaxNotificationInterval + 1} {
			assert.ErrorIs(t, j.SetMinimumNotificationInterval(bad), dojob.ErrInvalidArg, "%v", bad)
		}
		assert.Equal(t, dojob.DefaultMinimumNotificationInterval, j.MinimumNotificationInterval())
		require.NoError(t, j.SetMinimumNotificationInterval(time.Millisecond))
		assert.Equal(t, time.Millisecond, j.MinimumNotificationInterval())
		require.NoError(t, j.SetMinimumNotificationInterval(dojob.MaxNotificationInterval))
		assert.Equal(t, (1<<32-1)*time.Millisecond, j.MinimumNotificationInterval())
		require.NoError(t, j.SetMinimumNotificationInterval(0))
		assert.Equal(t, dojob.DefaultMinimumNotificationInterval, j.MinimumNotificationInterval(), "0 restores the default")
		require.NoError(t, j.Cancel())
		assert.ErrorIs(t, j.SetMinimumNotificationInterval(time.Second), dojob.ErrInvalidState)
	})
}

// TestLimitsPersisted: the maximum download time and size and the minimum
// notification interval survive a Manager restart, and so does clearing
// them.
func TestLimitsPersisted(t *testing.T) {
	dir := t.TempDir()
	m1, err := dojob.NewManager(dojob.Config{StateDir: dir})
	require.NoError(t, err)
	j, err := m1.CreateJob("persisted")
	require.NoError(t, err)
	require.NoError(t, j.SetMaximumDownloadTime(42*time.Minute))
	require.NoError(t, j.SetMaximumDownloadSize(1<<40))
	require.NoError(t, j.SetMinimumNotificationInterval(750*time.Millisecond))
	id := j.ID()
	require.NoError(t, m1.Close())

	inNewManager(t, dir, id, func(j2 *dojob.Job) {
		assert.Equal(t, 42*time.Minute, j2.MaximumDownloadTime())
		assert.Equal(t, int64(1<<40), j2.MaximumDownloadSize())
		assert.Equal(t, 750*time.Millisecond, j2.MinimumNotificationInterval())
		assert.Zero(t, j2.DownloadTimeUsed())
		require.NoError(t, j2.SetMaximumDownloadTime(0))
		require.NoError(t, j2.SetMaximumDownloadSize(0))
		require.NoError(t, j2.SetMinimumNotificationInterval(0))
	})
	inNewManager(t, dir, id, func(j3 *dojob.Job) {
		assert.Zero(t, j3.MaximumDownloadTime())
		assert.Zero(t, j3.MaximumDownloadSize())
		assert.Equal(t, dojob.DefaultMinimumNotificationInterval, j3.MinimumNotificationInterval())
	})
}
