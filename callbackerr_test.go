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

// nilCallback is a Callback whose methods need a receiver: a typed nil of
// it panics when called.
type nilCallback struct{ calls int }

func (c *nilCallback) JobTransferred(*dojob.Job) error            { c.calls++; return nil }
func (c *nilCallback) JobError(*dojob.Job, *dojob.JobError) error { c.calls++; return nil }
func (c *nilCallback) JobModification(*dojob.Job) error           { c.calls++; return nil }

// TestWaitTellsOfAFailingCallback: a JobTransferred that keeps failing — an
// error, a panic, a typed nil Callback — keeps Wait waiting (at-least-once);
// when Wait's ctx ends, its error matches ctx's and carries a
// *CallbackError with the failures so far and the last error, which
// Job.CallbackError also reports; a call that succeeds clears it.
func TestWaitTellsOfAFailingCallback(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		cb   func(calls *atomic.Int32) dojob.Callback
		is   func(t *testing.T, err error)
	}{
		{"error", func(calls *atomic.Int32) dojob.Callback {
			return dojob.CallbackFuncs{Transferred: func(*dojob.Job) error { calls.Add(1); return boom }}
		}, func(t *testing.T, err error) { assert.ErrorIs(t, err, boom) }},
		{"panic", func(calls *atomic.Int32) dojob.Callback {
			return dojob.CallbackFuncs{Transferred: func(*dojob.Job) error { calls.Add(1); panic("kaput") }}
		}, func(t *testing.T, err error) { assert.ErrorContains(t, err, "kaput") }},
		{"typed-nil", func(*atomic.Int32) dojob.Callback { return (*nilCallback)(nil) },
			func(t *testing.T, err error) { assert.ErrorContains(t, err, "panicked") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{}, dojobtest.WithSize(1000))
				j := r.job("failing callback", "/f")
				var calls atomic.Int32
				require.NoError(t, j.SetNotifyInterface(tc.cb(&calls)))
				assert.Nil(t, j.CallbackError())
				require.NoError(t, j.Resume())

				ctx, cancel := context.WithTimeout(t.Context(), 9*time.Second)
				defer cancel()
				st, err := j.Wait(ctx)
				assert.Equal(t, dojob.StateTransferred, st)
				require.ErrorIs(t, err, context.DeadlineExceeded)
				var ce *dojob.CallbackError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, "JobTransferred", ce.Notification)
				// Delivered at 0 s, then again every retry delay (2 s).
				assert.Equal(t, 5, ce.Failures, "calls at 0, 2, 4, 6 and 8 s")
				if tc.name != "typed-nil" {
					assert.Equal(t, int32(5), calls.Load())
				}
				tc.is(t, ce)
				got := j.CallbackError()
				require.NotNil(t, got)
				assert.Equal(t, ce.Failures, got.Failures)

				// The caller takes over: the notification is no longer owed.
				require.NoError(t, j.Complete())
				assert.Nil(t, j.CallbackError())
				st, err = j.Wait(t.Context())
				require.NoError(t, err)
				assert.Equal(t, dojob.StateAcknowledged, st)
			})
		})
	}
}

// TestCallbackErrorClearedBySuccess: a JobTransferred that fails twice and
// then succeeds: Wait returns TRANSFERRED's successor with no error, and no
// CallbackError is left.
func TestCallbackErrorClearedBySuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(1000))
		j := r.job("flaky callback", "/f")
		var calls atomic.Int32
		require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{Transferred: func(j *dojob.Job) error {
			if calls.Add(1) < 3 {
				return errors.New("not yet")
			}
			return j.Complete()
		}}))
		require.NoError(t, j.Resume())
		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		assert.Equal(t, dojob.StateAcknowledged, st)
		assert.Equal(t, int32(3), calls.Load())
		assert.Nil(t, j.CallbackError())
	})
}
