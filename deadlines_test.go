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

// TestDeadlinesThroughRetries: two 503s, a stall, then the file. At each
// TRANSIENT_ERROR NextRetry is the failure time plus the (doubling) retry
// delay and NoProgressDeadline the first failure plus the timeout; on a
// retry that has not moved a byte the window stays open but no retry is
// scheduled; once the file is transferred both are zero.
func TestDeadlinesThroughRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(4<<10), dojobtest.Script(
			dojobtest.Status(503), dojobtest.Status(503), dojobtest.StallHeaders(), dojobtest.OK()))
		j := r.job("deadlines", "/f")
		require.NoError(t, j.SetNoProgressTimeout(10*time.Minute))
		assert.True(t, j.NextRetry().IsZero(), "SUSPENDED: no retry")
		assert.True(t, j.NoProgressDeadline().IsZero(), "SUSPENDED: no window")

		start := time.Now()
		require.NoError(t, j.Resume())
		synctest.Wait() // the first attempt failed at once
		require.Equal(t, dojob.StateTransientError, j.State())
		assert.Equal(t, 2*time.Second, j.NextRetry().Sub(start))
		assert.Equal(t, 10*time.Minute, j.NoProgressDeadline().Sub(start))

		advance(2 * time.Second) // the second attempt failed at 2 s; the delay doubled
		require.Equal(t, dojob.StateTransientError, j.State())
		assert.Equal(t, 6*time.Second, j.NextRetry().Sub(start))
		assert.Equal(t, 10*time.Minute, j.NoProgressDeadline().Sub(start), "the window opened at the first failure")

		advance(4 * time.Second) // the third attempt waits for headers that do not come
		require.Equal(t, dojob.StateConnecting, j.State())
		assert.True(t, j.NextRetry().IsZero(), "no retry scheduled while an attempt runs")
		assert.Equal(t, 10*time.Minute, j.NoProgressDeadline().Sub(start), "a retry that moved no byte keeps the window")

		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
		assert.True(t, j.NextRetry().IsZero())
		assert.True(t, j.NoProgressDeadline().IsZero())
	})
}

// TestNoProgressDeadlineFollowsTimeout: the deadline of an open window moves
// with SetNoProgressTimeout, and Suspend (which stops the job trying) clears
// both deadlines.
func TestNoProgressDeadlineFollowsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.Always(dojobtest.StatusRetryAfter(503, "30")))
		j := r.job("follow", "/f")
		start := time.Now()
		require.NoError(t, j.Resume())
		synctest.Wait() // the first attempt failed; the job waits for its retry
		require.Equal(t, dojob.StateTransientError, j.State())
		assert.Equal(t, 30*time.Second, j.NextRetry().Sub(start), "Retry-After beats the 2 s delay")
		assert.Equal(t, 24*time.Hour, j.NoProgressDeadline().Sub(start), "NORMAL's default timeout")

		advance(10 * time.Second)
		require.NoError(t, j.SetNoProgressTimeout(time.Hour))
		assert.Equal(t, time.Hour, j.NoProgressDeadline().Sub(start), "measured from the window's start, not from now")
		assert.Equal(t, 30*time.Second, j.NextRetry().Sub(start))

		require.NoError(t, j.Suspend())
		assert.True(t, j.NextRetry().IsZero())
		assert.True(t, j.NoProgressDeadline().IsZero())
	})
}
