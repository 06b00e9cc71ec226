package dojob_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// settle waits for j to settle, for at most an hour of fake time, and
// returns its state (that of a job still held, then).
func settle(t *testing.T, j *dojob.Job) dojob.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	st, _ := j.Wait(ctx)
	return st
}

// TestStaleCostAnswerDropped: a worker's cost query that started before
// the network's cost changed and answers after NetworkCostChanged stored
// the new cost does not overwrite it: the job, which the old cost would
// hold, transfers on the network that is now unrestricted.
func TestStaleCostAnswerDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := &costSource{cost: dojob.CostNearCap} // NORMAL's Standard policy forbids it
		entered, gate := make(chan struct{}), make(chan struct{})
		var first atomic.Bool
		first.Store(true)
		ask := func(ctx context.Context) (dojob.NetworkCost, error) {
			c, err := cs.get(ctx)
			if first.CompareAndSwap(true, false) { // the worker's query, slow to answer
				close(entered)
				<-gate
			}
			return c, err
		}
		r := newRig(t, dojob.Config{NetworkCost: ask}, dojobtest.WithSize(64<<10))
		j := r.job("stale", "/f")
		require.NoError(t, j.Resume())
		<-entered
		cs.set(dojob.CostUnrestricted)
		r.m.NetworkCostChanged()
		require.Equal(t, dojob.CostUnrestricted, r.m.NetworkCost())
		close(gate) // the worker's answer, near cap, comes back now

		require.Equal(t, dojob.StateTransferred, settle(t, j))
		assert.Equal(t, dojob.CostUnrestricted, r.m.NetworkCost(), "the older answer is dropped")
		assert.Equal(t, 0, j.ErrorCount())
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestCancelledCostQueryKeepsCost: a worker's cost query that fails only
// because its attempt was stopped (Suspend) leaves the Manager's cost as
// it was; it does not make it unknown, which would let every job run.
func TestCancelledCostQueryKeepsCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var block atomic.Bool
		ask := func(ctx context.Context) (dojob.NetworkCost, error) {
			if block.Load() {
				<-ctx.Done()
				return 0, ctx.Err()
			}
			return dojob.CostNearCap, nil
		}
		r := newRig(t, dojob.Config{NetworkCost: ask}, dojobtest.WithSize(64<<10))
		r.m.NetworkCostChanged()
		require.Equal(t, dojob.CostNearCap, r.m.NetworkCost())
		j := r.job("cancelled", "/f")
		require.NoError(t, j.SetCostPolicy(dojob.CostPolicyAlways))
		block.Store(true)
		require.NoError(t, j.Resume())
		synctest.Wait() // the worker waits in its query
		require.Equal(t, dojob.StateConnecting, j.State())
		require.NoError(t, j.Suspend())
		synctest.Wait()
		assert.Equal(t, dojob.StateSuspended, j.State())
		assert.Equal(t, dojob.CostNearCap, r.m.NetworkCost(), "a query stopped by its attempt says nothing about the network")
		assert.Empty(t, r.tr.RequestsFor("/f"))
	})
}

// TestHoldDecidedAgainWhenApplied: a worker finds the job blocked by the
// cost, and before its transfer applies the hold the cost changes and
// NetworkCostChanged runs — finding the job still CONNECTING, with nothing
// to do. The transfer decides again when it applies the hold: the job is
// queued, not held on a network its policy allows, and transfers.
func TestHoldDecidedAgainWhenApplied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := &costSource{cost: dojob.CostNearCap}
		r := newRig(t, dojob.Config{NetworkCost: cs.get}, dojobtest.WithSize(64<<10))
		var checks atomic.Int32
		dojob.OnHeld(r.m, func(*dojob.Job) {
			if checks.Add(1) == 1 {
				cs.set(dojob.CostUnrestricted)
				r.m.NetworkCostChanged()
			}
		})
		j := r.job("gap", "/f")
		rec := watchStates(t, j)
		require.NoError(t, j.Resume())
		require.Equal(t, dojob.StateTransferred, settle(t, j))
		assert.Equal(t, int32(1), checks.Load())
		assert.Equal(t, 0, j.ErrorCount())
		assert.Equal(t, []dojob.State{dojob.StateQueued, dojob.StateConnecting, dojob.StateQueued,
			dojob.StateConnecting, dojob.StateTransferring, dojob.StateTransferred}, rec.States())
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// blockedInTwoHours returns limits that block the background priorities
// now and let them run from the hour after next (UTC) for an hour: a hold
// whose end is known.
func blockedInTwoHours() dojob.BandwidthLimits {
	h := (time.Now().UTC().Hour() + 2) % 24
	return dojob.BandwidthLimits{
		Background: dojob.BandwidthBlocked,
		Windows:    []dojob.BandwidthWindow{{Start: h, End: h + 1}},
		Location:   time.UTC,
	}
}

// modificationsBeforeSuspend suspends j and returns the JobModification
// callbacks rec saw from event from on until j's move to SUSPENDED.
// Callbacks are delivered in order, so every one queued before Suspend has
// been delivered by then.
func modificationsBeforeSuspend(t *testing.T, rec *dojobtest.Recorder, j *dojob.Job, from int) int {
	t.Helper()
	require.NoError(t, j.Suspend())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	evs, err := rec.Await(ctx, func(evs []dojobtest.Event) bool { return moveTo(evs, dojob.StateSuspended) >= 0 })
	require.NoError(t, err)
	return countKind(evs[from:moveTo(evs, dojob.StateSuspended)], dojobtest.EventModification)
}

// moveTo returns the index of the first move to s in evs, or -1.
func moveTo(evs []dojobtest.Event, s dojob.State) int {
	for i, e := range evs {
		if e.Kind == dojobtest.EventStateChanged && e.To == s {
			return i
		}
	}
	return -1
}

func countKind(evs []dojobtest.Event, k dojobtest.EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// awaitHeld waits (in real time, at most 10 s) for the rig's job to be
// held by the bandwidth limits and returns how many callbacks rec had
// seen by then.
func awaitHeld(t *testing.T, rec *dojobtest.Recorder, j *dojob.Job) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// The move into TRANSIENT_ERROR and the JobModification it owes (the
	// job's flags ask for them), which comes right after it: counted from
	// before that one, it would look like a modification for nothing.
	evs, err := rec.Await(ctx, func(evs []dojobtest.Event) bool {
		i := moveTo(evs, dojob.StateTransientError)
		return i >= 0 && countKind(evs[i+1:], dojobtest.EventModification) > 0
	})
	require.NoError(t, err)
	h, held := j.Held()
	require.True(t, held)
	require.Equal(t, dojob.ErrBlockedByPolicy, h.Code)
	require.False(t, h.Until.IsZero())
	return len(evs)
}

// TestPolicyPassLeavesHoldAlone: a job held by the bandwidth limits
// until a known hour is not held anew — no JobModification, no record
// write — by policy passes that change nothing: NetworkCostChanged with
// the same cost, SetBandwidthLimits with the same limits, SetCostPolicy
// with the policy it has. It runs in real time, where the Manager's clock
// and the wall clock are read at different instants on every pass.
func TestPolicyPassLeavesHoldAlone(t *testing.T) {
	cs := &costSource{cost: dojob.CostUnrestricted}
	limits := blockedInTwoHours()
	r := newRig(t, dojob.Config{Bandwidth: limits, NetworkCost: cs.get}, dojobtest.WithSize(64<<10))
	j := r.job("held", "/f")
	require.NoError(t, j.SetCostPolicy(dojob.CostPolicyStandard))
	rec := watchStates(t, j)
	require.NoError(t, j.Resume())
	n := awaitHeld(t, rec, j)
	for range 5 {
		r.m.NetworkCostChanged()
		require.NoError(t, r.m.SetBandwidthLimits(limits))
		require.NoError(t, j.SetCostPolicy(dojob.CostPolicyStandard))
	}
	assert.Zero(t, modificationsBeforeSuspend(t, rec, j, n), "JobModification for nothing")
	assert.Empty(t, r.tr.RequestsFor("/f"))
}

// TestSetCostPolicySameValueNotifiesNoOne: SetCostPolicy with the policy
// the job has changes nothing and notifies no one, so a JobModification
// callback that sets it does not call itself forever — here on a job held
// by the bandwidth limits, which a policy pass could hold anew.
func TestSetCostPolicySameValueNotifiesNoOne(t *testing.T) {
	r := newRig(t, dojob.Config{Bandwidth: blockedInTwoHours()}, dojobtest.WithSize(64<<10))
	j := r.job("same", "/f")
	require.NoError(t, j.SetCostPolicy(dojob.CostPolicyStandard))
	rec := dojobtest.NewRecorder()
	require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
	require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{
		Modification: func(j *dojob.Job) error {
			_ = rec.JobModification(j)
			return j.SetCostPolicy(dojob.CostPolicyStandard) // "make sure" of the setting
		},
		StateChanged: rec.JobStateChanged,
	}))
	require.NoError(t, j.Resume())
	n := awaitHeld(t, rec, j)
	require.NoError(t, j.SetCostPolicy(dojob.CostPolicyStandard))
	assert.Zero(t, modificationsBeforeSuspend(t, rec, j, n))
}

// TestCostUnknownBitsIgnored: bits of a NetworkCost above those dojob
// knows change no policy's answer: with them alone the cost is unknown
// (allowed), beside known bits those decide.
func TestCostUnknownBitsIgnored(t *testing.T) {
	const unknown dojob.NetworkCost = 0x200 | 0x8000_0000
	for _, p := range []dojob.CostPolicy{dojob.CostPolicyAlways, dojob.CostPolicyUnrestrictedOnly, dojob.CostPolicyStandard,
		dojob.CostPolicyNoRoaming, dojob.CostPolicyNoSurcharge, dojob.CostPolicyNoCellular} {
		assert.True(t, p.Allows(unknown), "%v: unknown bits alone", p)
		assert.True(t, p.Allows(dojob.CostUnrestricted|unknown), "%v: unrestricted", p)
		assert.Equal(t, p.Allows(dojob.CostNearCap), p.Allows(dojob.CostNearCap|unknown), "%v: near cap", p)
		assert.Equal(t, p.Allows(dojob.CostUnrestricted|dojob.CostCellular), p.Allows(dojob.CostUnrestricted|dojob.CostCellular|unknown), "%v: cellular", p)
	}
}
