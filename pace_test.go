package dojob_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const mib = 1 << 20

// requireNear checks got is within frac of want.
func requireNear(t *testing.T, want, got int64, frac float64, what string) {
	t.Helper()
	lo, hi := float64(want)*(1-frac), float64(want)*(1+frac)
	require.True(t, float64(got) >= lo && float64(got) <= hi, "%s: %d bytes, want %d ± %.0f%%", what, got, want, frac*100)
}

// TestMaximumBandwidthOneMinute: a job limited to 1 MiB/s moves 60 MiB in
// 60 s of fake time (± 2 %), and 2 MiB (± 2 %) over any 2 s span; lifting
// the limit at run time lets the running transfer finish at once.
func TestMaximumBandwidthOneMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(96*mib))
		j := r.job("paced", "/f")
		require.NoError(t, j.SetMaximumBandwidth(mib))
		assert.Equal(t, int64(mib), j.MaximumBandwidth())
		require.NoError(t, j.Resume())
		var last int64
		for s := 2; s <= 60; s += 2 {
			advance(2 * time.Second)
			n := j.Progress().BytesTransferred
			if s > 2 {
				requireNear(t, 2*mib, n-last, 0.02, fmt.Sprintf("bytes in the 2 s before %d s", s))
			}
			last = n
		}
		requireNear(t, 60*mib, last, 0.02, "bytes in 60 s")
		require.Equal(t, dojob.StateTransferring, j.State())

		require.NoError(t, j.SetMaximumBandwidth(0))
		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
		assert.Less(t, time.Since(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)), 61*time.Second, "the lifted limit took effect at once")
		assert.Len(t, r.tr.RequestsFor("/f"), 1)
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestMaximumBandwidthParallelFiles: three files at once share the job's
// one budget.
func TestMaximumBandwidthParallelFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(16*mib))
		j := r.job("paced", "/a", "/b", "/c")
		require.NoError(t, j.SetMaxParallelFiles(3))
		require.NoError(t, j.SetMaximumBandwidth(mib))
		require.NoError(t, j.Resume())
		advance(20 * time.Second)
		requireNear(t, 20*mib, j.Progress().BytesTransferred, 0.02, "three files in 20 s")
		for _, p := range []string{"/a", "/b", "/c"} {
			assert.Len(t, r.tr.RequestsFor(p), 1, "%s is being transferred", p)
		}
		require.NoError(t, j.SetMaximumBandwidth(0))
		require.Equal(t, dojob.StateTransferred, mustWait(t, j))
		require.NoError(t, j.Complete())
		for _, p := range []string{"/a", "/b", "/c"} {
			r.requireFile(p)
		}
	})
}

// TestForegroundLimitSegments: the foreground limit holds for a file
// fetched over four connections (SetMaxConnections) as one budget.
func TestForegroundLimitSegments(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{Bandwidth: dojob.BandwidthLimits{Foreground: mib}, MinSegmentSize: 256 << 10},
			dojobtest.WithSize(48*mib))
		j := r.job("segments", "/f")
		require.NoError(t, j.SetPriority(dojob.PriorityForeground))
		require.NoError(t, j.SetMaxConnections(4))
		require.NoError(t, j.Resume())
		advance(20 * time.Second)
		requireNear(t, 20*mib, j.Progress().BytesTransferred, 0.02, "four connections in 20 s")
		assert.GreaterOrEqual(t, len(r.tr.RequestsFor("/f")), 4, "fetched in segments")
		require.NoError(t, r.m.SetBandwidthLimits(dojob.BandwidthLimits{}))
		require.Equal(t, dojob.StateTransferred, mustWait(t, j))
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestBackgroundLimitFair: two NORMAL jobs share the background limit,
// each getting about half of it.
func TestBackgroundLimitFair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{Bandwidth: dojob.BandwidthLimits{Background: 2 * mib}}, dojobtest.WithSize(64*mib))
		a, b := r.job("a", "/a"), r.job("b", "/b")
		require.NoError(t, a.Resume())
		require.NoError(t, b.Resume())
		advance(30 * time.Second)
		na, nb := a.Progress().BytesTransferred, b.Progress().BytesTransferred
		requireNear(t, 60*mib, na+nb, 0.02, "both jobs in 30 s")
		requireNear(t, 30*mib, na, 0.05, "job a's share")
		requireNear(t, 30*mib, nb, 0.05, "job b's share")
		assert.Equal(t, int64(2*mib), r.m.BandwidthLimitNow(dojob.PriorityNormal))
	})
}

// TestBlockedWindowOpensAt22: background transfers are blocked outside a
// window that opens at 22:00. A NORMAL job resumed at midnight waits in
// TRANSIENT_ERROR with ErrBlockedByPolicy — not counted as an error, no
// request made, its 1 h no-progress timeout not running — and is queued at
// exactly 22:00, then transferred. A FOREGROUND job is not blocked.
func TestBlockedWindowOpensAt22(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		limits := dojob.BandwidthLimits{
			Background: dojob.BandwidthBlocked,
			Windows:    []dojob.BandwidthWindow{{Start: 22, End: 24}}, // no limit from 22:00 to midnight
			Location:   time.UTC,
		}
		r := newRig(t, dojob.Config{Bandwidth: limits}, dojobtest.WithSize(64<<10))
		start := time.Now()
		require.Equal(t, 0, start.Hour())
		fg := r.job("fg", "/fg")
		require.NoError(t, fg.SetPriority(dojob.PriorityForeground))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, fg), "a foreground job is not blocked")

		j := r.job("bg", "/f")
		require.NoError(t, j.SetNoProgressTimeout(time.Hour))
		rec := watchStates(t, j)
		require.NoError(t, j.Resume())
		awaitState(t, rec, dojob.StateTransientError, 1)
		jerr := mustJobError(t, j)
		assert.Equal(t, dojob.ErrBlockedByPolicy, jerr.Code)
		assert.True(t, errors.Is(jerr, dojob.ErrBlockedByPolicy))
		assert.True(t, jerr.Transient())
		h, held := j.Held()
		require.True(t, held)
		assert.Equal(t, dojob.ErrBlockedByPolicy, h.Code)
		assert.Equal(t, start.Add(22*time.Hour), h.Until.Round(time.Second))
		assert.Equal(t, 0, j.ErrorCount(), "a hold is not an error")
		assert.Empty(t, r.tr.RequestsFor("/f"))
		assert.Equal(t, dojob.BandwidthBlocked, r.m.BandwidthLimitNow(dojob.PriorityNormal))

		advance(22*time.Hour - time.Second)
		require.Equal(t, dojob.StateTransientError, j.State(), "still held at 21:59:59, not in ERROR")
		assert.Empty(t, r.tr.RequestsFor("/f"))
		ev := awaitState(t, rec, dojob.StateQueued, 2)
		assert.Equal(t, 22*time.Hour, ev.Time.Sub(start), "queued at exactly 22:00")
		require.Equal(t, dojob.StateTransferred, mustWait(t, j))
		assert.Equal(t, []dojob.State{dojob.StateQueued, dojob.StateConnecting, dojob.StateTransientError,
			dojob.StateQueued, dojob.StateConnecting, dojob.StateTransferring, dojob.StateTransferred}, rec.States())
		assert.Equal(t, 0, j.ErrorCount())
		_, held = j.Held()
		assert.False(t, held)
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestBlockedWindowStopsRunning: a window boundary (here SetBandwidthLimits)
// that blocks a running background job stops it, keeping its bytes; lifting
// the block queues it again and it resumes with a Range request.
func TestBlockedBySetBandwidthLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(8*mib))
		j := r.job("bg", "/f")
		require.NoError(t, j.SetMaximumBandwidth(mib))
		require.NoError(t, j.Resume())
		advance(2 * time.Second)
		require.NoError(t, r.m.SetBandwidthLimits(dojob.BandwidthLimits{Background: dojob.BandwidthBlocked}))
		require.Equal(t, dojob.StateTransientError, j.State())
		assert.Equal(t, dojob.ErrBlockedByPolicy, mustJobError(t, j).Code)
		h, held := j.Held()
		require.True(t, held)
		assert.True(t, h.Until.IsZero(), "no window ends this block")
		synctest.Wait()
		kept := j.Progress().BytesTransferred
		assert.Greater(t, kept, int64(0))
		advance(time.Hour)
		require.Equal(t, dojob.StateTransientError, j.State())
		require.Len(t, r.tr.RequestsFor("/f"), 1)
		require.NoError(t, r.m.SetBandwidthLimits(dojob.BandwidthLimits{}))
		require.NoError(t, j.SetMaximumBandwidth(0))
		require.Equal(t, dojob.StateTransferred, mustWait(t, j))
		requireOneResume(t, r.tr.RequestsFor("/f"), kept)
		assert.Equal(t, 0, j.ErrorCount())
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// costSource is a Config.NetworkCost the test sets.
type costSource struct {
	mu   sync.Mutex
	cost dojob.NetworkCost
	err  error
}

func (c *costSource) set(n dojob.NetworkCost) {
	c.mu.Lock()
	c.cost = n
	c.mu.Unlock()
}

func (c *costSource) get(context.Context) (dojob.NetworkCost, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cost, c.err
}

// TestCostChangeStopsAndResumes: a NORMAL job (cost policy Standard by
// default) transferring when the network starts roaming is stopped and
// held with ErrBlockedByCost, its bytes kept, not counted as an error; when
// the network is unrestricted again it is queued on its own and resumes
// with a Range request, and the file is right.
func TestCostChangeStopsAndResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := &costSource{cost: dojob.CostUnrestricted}
		r := newRig(t, dojob.Config{NetworkCost: cs.get}, dojobtest.WithSize(8*mib))
		j := r.job("costly", "/f")
		assert.Equal(t, dojob.CostPolicyStandard, j.CostPolicy())
		require.NoError(t, j.SetMaximumBandwidth(mib))
		rec := watchStates(t, j)
		require.NoError(t, j.Resume())
		advance(3 * time.Second)
		require.Equal(t, dojob.StateTransferring, j.State())

		cs.set(dojob.CostBelowCap | dojob.CostRoaming)
		r.m.NetworkCostChanged()
		assert.Equal(t, dojob.CostBelowCap|dojob.CostRoaming, r.m.NetworkCost())
		require.Equal(t, dojob.StateTransientError, j.State())
		jerr := mustJobError(t, j)
		assert.Equal(t, dojob.ErrBlockedByCost, jerr.Code)
		h, held := j.Held()
		require.True(t, held)
		assert.Equal(t, dojob.ErrBlockedByCost, h.Code)
		assert.Equal(t, 0, j.ErrorCount())
		synctest.Wait()
		kept := j.Progress().BytesTransferred
		requireNear(t, 3*mib, kept, 0.05, "bytes kept")

		advance(48 * time.Hour) // longer than the no-progress timeout
		require.Equal(t, dojob.StateTransientError, j.State(), "held, not failed")
		require.Len(t, r.tr.RequestsFor("/f"), 1, "no retry while held")

		cs.set(dojob.CostUnrestricted)
		r.m.NetworkCostChanged()
		require.NoError(t, j.SetMaximumBandwidth(0))
		require.Equal(t, dojob.StateTransferred, mustWait(t, j))
		requireOneResume(t, r.tr.RequestsFor("/f"), kept)
		assert.Equal(t, 0, j.ErrorCount())
		assert.Equal(t, stoppedOnceStates, rec.States())
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestCostCheckedBeforeRequest: a job whose policy forbids the cost makes
// no request; NoCellular on a cellular network holds with
// ErrBlockedByCellular; Always transfers; an error from the provider is an
// unknown cost, which is allowed.
func TestCostCheckedBeforeRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := &costSource{cost: dojob.CostUnrestricted | dojob.CostCellular}
		r := newRig(t, dojob.Config{NetworkCost: cs.get}, dojobtest.WithSize(64<<10))
		j := r.job("cell", "/f")
		require.NoError(t, j.SetCostPolicy(dojob.CostPolicyNoCellular))
		require.NoError(t, j.Resume())
		synctest.Wait()
		require.Equal(t, dojob.StateTransientError, j.State())
		assert.Equal(t, dojob.ErrBlockedByCellular, mustJobError(t, j).Code)
		assert.Empty(t, r.tr.RequestsFor("/f"))

		require.NoError(t, j.SetCostPolicy(dojob.CostPolicyAlways))
		require.Equal(t, dojob.StateTransferred, mustWait(t, j))
		assert.Equal(t, 0, j.ErrorCount())

		cs.mu.Lock()
		cs.cost, cs.err = dojob.CostOvercapCharged, errors.New("cannot tell")
		cs.mu.Unlock()
		k := r.job("unknown", "/g")
		require.Equal(t, dojob.StateTransferred, resumeWait(t, k), "an unknown cost is allowed")
	})
}

// TestCostPolicyTable: the costs each policy allows.
func TestCostPolicyTable(t *testing.T) {
	costs := []dojob.NetworkCost{dojob.CostUnrestricted, dojob.CostCappedUsageUnknown, dojob.CostBelowCap, dojob.CostNearCap,
		dojob.CostOvercapCharged, dojob.CostOvercapThrottled, dojob.CostUsageBased, dojob.CostBelowCap | dojob.CostRoaming,
		dojob.CostUnrestricted | dojob.CostCellular}
	want := map[dojob.CostPolicy]string{ // one letter per cost above: y allowed, n not
		dojob.CostPolicyAlways:           "yyyyyyyyy",
		dojob.CostPolicyUnrestrictedOnly: "ynnnnynny",
		dojob.CostPolicyStandard:         "yyynnyyny",
		dojob.CostPolicyNoRoaming:        "yyyyyyyny",
		dojob.CostPolicyNoSurcharge:      "yyyynyyny",
		dojob.CostPolicyNoCellular:       "yyyyyyyyn",
	}
	for p, w := range want {
		got := ""
		for _, c := range costs {
			if p.Allows(c) {
				got += "y"
			} else {
				got += "n"
			}
		}
		assert.Equal(t, w, got, "%v", p)
		assert.True(t, p.Allows(0), "%v allows an unknown cost", p)
	}
	assert.Equal(t, "NO_CELLULAR", dojob.CostPolicyNoCellular.String())
}

// TestLimitBelowMinimumSpeed: a job limited to 100 KiB/s with a minimum
// speed of 1 MiB/s is paced, not failed: the time spent waiting for the
// limit does not count against the minimum speed.
func TestLimitBelowMinimumSpeed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(2*mib))
		j := r.job("slow by choice", "/f")
		require.NoError(t, j.SetMinimumSpeed(mib, 5*time.Second))
		require.NoError(t, j.SetMaximumBandwidth(100<<10))
		start := time.Now()
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		assert.Equal(t, 0, j.ErrorCount())
		assert.GreaterOrEqual(t, time.Since(start), 19*time.Second, "paced at 100 KiB/s")
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestPacingSettingsChecked: bad limits and policies are refused with
// ErrInvalidArg, and a job's limit and cost policy survive a restart.
func TestPacingSettingsChecked(t *testing.T) {
	dir := t.TempDir()
	m, err := dojob.NewManager(dojob.Config{StateDir: dir})
	require.NoError(t, err)
	j, err := m.CreateJob("settings")
	require.NoError(t, err)
	require.ErrorIs(t, j.SetMaximumBandwidth(-1), dojob.ErrInvalidArg)
	require.ErrorIs(t, j.SetCostPolicy(6), dojob.ErrInvalidArg)
	require.ErrorIs(t, m.SetBandwidthLimits(dojob.BandwidthLimits{Foreground: dojob.BandwidthBlocked}), dojob.ErrInvalidArg)
	require.ErrorIs(t, m.SetBandwidthLimits(dojob.BandwidthLimits{Background: -2}), dojob.ErrInvalidArg)
	require.ErrorIs(t, m.SetBandwidthLimits(dojob.BandwidthLimits{Windows: []dojob.BandwidthWindow{{Start: 24}}}), dojob.ErrInvalidArg)
	_, err = dojob.NewManager(dojob.Config{Bandwidth: dojob.BandwidthLimits{Background: -5}})
	require.ErrorIs(t, err, dojob.ErrInvalidArg)
	require.NoError(t, j.SetMaximumBandwidth(12345))
	require.NoError(t, j.SetCostPolicy(dojob.CostPolicyNoRoaming))
	require.NoError(t, m.Close())

	m, err = dojob.NewManager(dojob.Config{StateDir: dir})
	require.NoError(t, err)
	defer m.Close()
	j, err = m.Job(j.ID())
	require.NoError(t, err)
	assert.Equal(t, int64(12345), j.MaximumBandwidth())
	assert.Equal(t, dojob.CostPolicyNoRoaming, j.CostPolicy())
	k, err := m.CreateJob("defaults")
	require.NoError(t, err)
	assert.Equal(t, dojob.CostPolicyStandard, k.CostPolicy())
	require.NoError(t, k.SetPriority(dojob.PriorityForeground))
	assert.Equal(t, dojob.CostPolicyAlways, k.CostPolicy(), "the default follows the priority")
}

// mustWait waits for j to settle and returns its state.
func mustWait(t *testing.T, j *dojob.Job) dojob.State {
	t.Helper()
	st, err := j.Wait(t.Context())
	require.NoError(t, err)
	return st
}

// TestWindowEndHoldsRunning: a background job transferring when its
// window closes (midnight) is stopped and held until the window opens the
// next day; made FOREGROUND it is let go at once and resumes with a Range.
func TestWindowEndHoldsRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		limits := dojob.BandwidthLimits{
			Background: dojob.BandwidthBlocked,
			Windows:    []dojob.BandwidthWindow{{Start: 23, End: 24, Normal: mib}}, // 1 MiB/s from 23:00 to midnight
			Location:   time.UTC,
		}
		r := newRig(t, dojob.Config{Bandwidth: limits}, dojobtest.WithSize(8*mib))
		start := time.Now()
		advance(23*time.Hour + 59*time.Minute + 57*time.Second)
		j := r.job("late", "/f")
		require.NoError(t, j.Resume())
		advance(2 * time.Second)
		require.Equal(t, dojob.StateTransferring, j.State())
		advance(time.Second) // midnight
		require.Equal(t, dojob.StateTransientError, j.State())
		h, held := j.Held()
		require.True(t, held)
		assert.Equal(t, dojob.ErrBlockedByPolicy, h.Code)
		assert.Equal(t, start.Add(47*time.Hour), h.Until.Round(time.Second), "until 23:00 the next day")
		assert.Equal(t, h.Until, j.NextRetry())
		kept := j.Progress().BytesTransferred
		requireNear(t, 3*mib, kept, 0.05, "bytes kept")

		require.NoError(t, j.SetPriority(dojob.PriorityForeground))
		// Let go at once: no longer held, and queued — or already started
		// again by the scheduler, which runs beside this goroutine.
		_, held = j.Held()
		assert.False(t, held, "let go at once")
		assert.Contains(t, []dojob.State{dojob.StateQueued, dojob.StateConnecting, dojob.StateTransferring}, j.State(), "let go at once")
		require.Equal(t, dojob.StateTransferred, mustWait(t, j))
		assert.Equal(t, 24*time.Hour, time.Since(start), "transferred unpaced at midnight, not at 23:00 the next day")
		requireOneResume(t, r.tr.RequestsFor("/f"), kept)
		assert.Equal(t, 0, j.ErrorCount())
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}
