package dojob

import (
	"fmt"
	"log/slog"
	"time"
)

// This file holds the one mechanism for a job held by policy: a background
// priority blocked by the bandwidth limits (ErrBlockedByPolicy, pace.go)
// or a network cost the job's policy forbids (ErrBlockedByCost,
// ErrBlockedByCellular, cost.go). A held job waits in TRANSIENT_ERROR with
// the code as its error object, marked as a hold (JobError.hold): it does
// not count in ErrorCount, has no retry timer, and its no-progress window
// is closed — being held is not failing, so a job held for a week is not
// in ERROR when the hold ends. When the hold ends (the hour the limits
// change, computed as a deadline on the Manager's clock; or
// NetworkCostChanged) the job moves to QUEUED on its own. The policy is
// checked before each attempt of a file (a job the scheduler starts while
// blocked goes CONNECTING → TRANSIENT_ERROR without a request) and
// whenever a limit or the cost changes.

// HoldInfo says why and until when a job is held by policy (Job.Held).
type HoldInfo struct {
	// Code is ErrBlockedByPolicy, ErrBlockedByCost or ErrBlockedByCellular.
	Code HRESULT
	// Until is when the hold ends, if dojob knows it (a bandwidth window);
	// zero for a cost hold, which ends when the cost changes.
	Until time.Time
}

// Held reports whether the job waits in TRANSIENT_ERROR because a policy
// holds it (the bandwidth limits block its priority, or its cost policy
// forbids the network's cost), and why and until when.
func (j *Job) Held() (HoldInfo, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.heldLocked() {
		return HoldInfo{}, false
	}
	h := HoldInfo{Code: j.jerr.Code}
	if j.holdUntil != 0 {
		h.Until = j.wallLocked(j.holdUntil)
	}
	return h, true
}

func (j *Job) heldLocked() bool {
	return j.state == StateTransientError && j.jerr != nil && j.jerr.hold
}

// holdError ends a worker's attempt that found the job held by policy
// with code. The transfer decides again when it applies the hold
// (runWorkers), under j.mu, with the policy as it is then.
type holdError struct {
	code HRESULT
}

func (e *holdError) Error() string { return "held by policy: " + e.code.Error() }

// blockedLocked returns the code the job is held with now (0: none) and,
// for a bandwidth block, when it ends on the Manager's clock (0: not
// within a week) — the instant the last evaluation of the limits computed
// for the priority, the same on every call until the next, so a policy
// pass does not hold a held job anew for nothing.
func (j *Job) blockedLocked() (code HRESULT, until time.Duration) {
	m := j.m
	if j.prio != PriorityForeground {
		m.pace.mu.Lock()
		blocked := m.pace.now[j.prio] == BandwidthBlocked
		until = m.pace.until[j.prio]
		m.pace.mu.Unlock()
		if blocked {
			return ErrBlockedByPolicy, until
		}
	}
	return j.costPolicyLocked().blocks(NetworkCost(m.cost.Load())), 0
}

// holdLocked holds the job by policy with code until until (0: unknown):
// any running transfer is stopped (its bytes kept), and the job waits in
// TRANSIENT_ERROR without a retry timer. It takes the clock's lock and
// those of setStateLocked.
func (j *Job) holdLocked(code HRESULT, until time.Duration) {
	j.stopTransferLocked()
	msg := "the network's cost is not allowed by the job's cost policy"
	if code == ErrBlockedByPolicy {
		msg = "the bandwidth limits block this priority now"
	}
	j.jerr = &JobError{Code: code, Context: ErrorContextGeneralQueueManager, Err: fmt.Errorf("%s", msg), transient: true, hold: true}
	j.holdUntil, j.retryAt = until, until
	j.closeWindowLocked()
	if j.state == StateTransientError {
		j.changedLocked()
		j.queueModificationLocked()
	} else {
		j.moveLocked(StateTransientError)
	}
	j.m.clock.stop(&j.retryDL)
	if j.m.logEnabled(slog.LevelInfo) {
		j.m.queueLog(slog.LevelInfo, "dojob: held by policy", slog.Any("job", j.id), slog.Any("code", code))
	}
}

// applyPolicyLocked applies the policy now to the job: a running job that
// is blocked is held, a held job whose hold changed is held anew, and a
// held job no longer blocked is queued. A QUEUED job is checked when it
// starts. It takes the locks of holdLocked.
func (j *Job) applyPolicyLocked() {
	if j.completing {
		return
	}
	switch j.state {
	case StateConnecting, StateTransferring, StateTransientError:
	default:
		return
	}
	held := j.heldLocked()
	if j.state == StateTransientError && !held {
		return // waiting to retry an error: its retry checks again
	}
	code, until := j.blockedLocked()
	switch {
	case code == 0 && held:
		j.moveLocked(StateQueued)
	case code != 0 && (!held || j.jerr.Code != code || j.holdUntil != until):
		j.holdLocked(code, until)
	}
}

// applyPolicy applies the policy now to every job of the Manager.
func (m *Manager) applyPolicy() {
	for _, j := range m.Jobs() {
		j.mu.Lock()
		j.applyPolicyLocked()
		j.mu.Unlock()
	}
}

// onPace is the deadline of the next hour at which the bandwidth limits
// change.
func (m *Manager) onPace() { m.repace() }

// checkHold is a worker's look at the policy before an attempt: the cost
// is asked for again, and a job that is blocked ends its attempt with a
// holdError.
func (x *worker) checkHold() error {
	j := x.j
	j.m.askCost(x.attemptCtx())
	j.mu.Lock()
	code, _ := j.blockedLocked()
	j.mu.Unlock()
	if code == 0 {
		return nil
	}
	if h := j.m.holdHook; h != nil {
		h(j)
	}
	return &holdError{code}
}

// isHold reports whether err is a worker's holdError.
func isHold(err error) bool {
	_, ok := err.(*holdError)
	return ok
}

// holdCode reports whether code is one a job is held by policy with.
func holdCode(code HRESULT) bool {
	return code == ErrBlockedByPolicy || code == ErrBlockedByCost || code == ErrBlockedByCellular
}
