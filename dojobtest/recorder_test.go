package dojobtest_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
)

// These tests call the Recorder directly, with nil jobs (the Recorder
// accepts them); integration_test.go drives it from a real job.

func TestRecorderOrderAndCounts(t *testing.T) {
	r := dojobtest.NewRecorder()
	jerr := &dojob.JobError{Code: dojob.HTTPStatus(404), Context: dojob.ErrorContextRemoteFile}
	fi := dojob.FileInfo{RemoteURL: "http://dojobtest.invalid/f", LocalPath: "/tmp/f"}

	require.NoError(t, r.JobModification(nil))
	require.NoError(t, r.FileTransferred(nil, fi))
	require.NoError(t, r.JobModification(nil))
	require.NoError(t, r.JobError(nil, jerr))
	require.NoError(t, r.JobTransferred(nil))
	require.NoError(t, r.JobStateChanged(nil, dojob.StateQueued, dojob.StateConnecting))
	require.NoError(t, r.JobStateChanged(nil, dojob.StateConnecting, dojob.StateTransferring))

	ev := r.Events()
	var kinds []dojobtest.EventKind
	for _, e := range ev {
		kinds = append(kinds, e.Kind)
	}
	assert.Equal(t, []dojobtest.EventKind{dojobtest.EventModification, dojobtest.EventFileTransferred,
		dojobtest.EventModification, dojobtest.EventError, dojobtest.EventTransferred,
		dojobtest.EventStateChanged, dojobtest.EventStateChanged}, kinds)
	assert.Same(t, jerr, ev[3].Err)
	assert.Equal(t, fi, ev[1].File)
	assert.False(t, ev[0].Time.IsZero())

	assert.Equal(t, 2, r.Count(dojobtest.EventModification))
	assert.Equal(t, 1, r.Count(dojobtest.EventError))
	assert.Equal(t, 1, r.Count(dojobtest.EventTransferred))
	assert.Equal(t, 1, r.Count(dojobtest.EventFileTransferred))
	assert.Equal(t, []dojob.State{dojob.StateConnecting, dojob.StateTransferring}, r.States())
	assert.Equal(t, "StateChanged QUEUED->CONNECTING", ev[5].String())

	ev[0].Kind = 0 // a copy
	assert.Equal(t, dojobtest.EventModification, r.Events()[0].Kind)

	var zero dojobtest.Recorder // the zero value works
	require.NoError(t, zero.JobTransferred(nil))
	assert.Equal(t, 1, zero.Count(dojobtest.EventTransferred))
}

func TestEventKindString(t *testing.T) {
	assert.Equal(t, "Transferred", dojobtest.EventTransferred.String())
	assert.Equal(t, "Error", dojobtest.EventError.String())
	assert.Equal(t, "Modification", dojobtest.EventModification.String())
	assert.Equal(t, "FileTransferred", dojobtest.EventFileTransferred.String())
	assert.Equal(t, "StateChanged", dojobtest.EventStateChanged.String())
	assert.Equal(t, "EventKind(0)", dojobtest.EventKind(0).String())
}

func TestRecorderFailures(t *testing.T) {
	r := dojobtest.NewRecorder(dojobtest.FailTransferred(2), dojobtest.FailError(1), dojobtest.CompleteOnTransferred())
	for i := range 3 {
		err := r.JobTransferred(nil)
		if i < 2 {
			assert.ErrorIs(t, err, dojobtest.ErrInjected)
		} else {
			assert.NoError(t, err, "nil job: nothing to complete")
		}
	}
	assert.ErrorIs(t, r.JobError(nil, nil), dojobtest.ErrInjected)
	assert.NoError(t, r.JobError(nil, nil))

	ev := r.Events()
	require.Len(t, ev, 5)
	assert.ErrorIs(t, ev[0].Returned, dojobtest.ErrInjected)
	assert.ErrorContains(t, ev[1].Returned, "JobTransferred call 2 of 2")
	assert.NoError(t, ev[2].Returned)
	assert.ErrorIs(t, ev[3].Returned, dojobtest.ErrInjected)
	assert.NoError(t, ev[4].Returned)
}

func TestRecorderAwaitFromAnotherGoroutine(t *testing.T) {
	r := dojobtest.NewRecorder()
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-release
		for range 3 {
			_ = r.JobModification(nil)
		}
		_ = r.JobTransferred(nil)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	calls := 0
	close(release)
	ev, err := r.Await(ctx, func(ev []dojobtest.Event) bool {
		calls++
		return len(ev) > 0 && ev[len(ev)-1].Kind == dojobtest.EventTransferred
	})
	require.NoError(t, err)
	assert.Len(t, ev, 4)
	assert.LessOrEqual(t, calls, 5, "checked once, then once per event at most")
	<-done

	ev, err = r.AwaitCount(ctx, dojobtest.EventModification, 3)
	require.NoError(t, err, "already true: returns at once")
	assert.Len(t, ev, 4)
}

func TestRecorderAwaitTimesOut(t *testing.T) {
	r := dojobtest.NewRecorder()
	_ = r.JobModification(nil)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	ev, err := r.AwaitCount(ctx, dojobtest.EventTransferred, 1)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Len(t, ev, 1, "the events so far")
}

func TestRecorderAwaitInBubble(t *testing.T) {
	// Await blocks durably: fake time advances to the event, or to the
	// context's deadline.
	synctest.Test(t, func(t *testing.T) {
		r := dojobtest.NewRecorder()
		start := time.Now()
		timer := time.AfterFunc(time.Hour, func() { _ = r.JobError(nil, nil) })
		defer timer.Stop()
		_, err := r.AwaitCount(t.Context(), dojobtest.EventError, 1)
		require.NoError(t, err)
		assert.Equal(t, time.Hour, time.Since(start))
		assert.Equal(t, start.Add(time.Hour), r.Events()[0].Time)

		ctx, cancel := context.WithTimeout(t.Context(), 24*time.Hour)
		defer cancel()
		_, err = r.AwaitCount(ctx, dojobtest.EventError, 2)
		assert.Equal(t, context.DeadlineExceeded, err)
		assert.Equal(t, 25*time.Hour, time.Since(start))
	})
}

func TestRecorderConcurrent(t *testing.T) {
	r := dojobtest.NewRecorder(dojobtest.FailTransferred(10))
	const goroutines, each = 8, 50
	errs := make(chan error, goroutines*each)
	done := make(chan struct{})
	for range goroutines {
		go func() {
			defer func() { done <- struct{}{} }()
			for range each {
				_ = r.JobModification(nil)
				errs <- r.JobTransferred(nil)
			}
		}()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := r.AwaitCount(ctx, dojobtest.EventTransferred, goroutines*each)
	require.NoError(t, err)
	for range goroutines {
		<-done
	}
	close(errs)
	failed := 0
	for err := range errs {
		if errors.Is(err, dojobtest.ErrInjected) {
			failed++
		}
	}
	assert.Equal(t, 10, failed, "exactly the first n calls fail, whoever makes them")
	assert.Equal(t, goroutines*each, r.Count(dojobtest.EventModification))
}
