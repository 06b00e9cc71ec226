package dojob

import (
	"fmt"
	"log/slog"
	"time"
)

// State is the state of a job, numbered as BG_JOB_STATE. See the package
// documentation for the diagram of transitions.
type State int

// The job states, numbered as BG_JOB_STATE.
const (
	// StateQueued: waiting for the scheduler to start it (or to retry it).
	StateQueued State = iota
	// StateConnecting: a request is sent and the job waits for the
	// response headers.
	StateConnecting
	// StateTransferring: the response was accepted and bytes are moving.
	StateTransferring
	// StateSuspended: stopped until Resume; the state of every new job.
	StateSuspended
	// StateError: a fatal error, or a transient one that lasted past the
	// no-progress timeout. Resume retries, Complete keeps finished files,
	// Cancel discards everything.
	StateError
	// StateTransientError: a recoverable error; the job retries after the
	// retry delay.
	StateTransientError
	// StateTransferred: every file is transferred; Complete makes the files
	// appear at their destinations.
	StateTransferred
	// StateAcknowledged: Complete was called. Final.
	StateAcknowledged
	// StateCancelled: Cancel was called. Final.
	StateCancelled
)

var stateNames = [...]string{
	"QUEUED", "CONNECTING", "TRANSFERRING", "SUSPENDED", "ERROR",
	"TRANSIENT_ERROR", "TRANSFERRED", "ACKNOWLEDGED", "CANCELLED",
}

// String returns the state's name without the BG_JOB_STATE_ prefix, e.g.
// "TRANSIENT_ERROR".
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Final reports whether s is ACKNOWLEDGED or CANCELLED, the states no method
// can leave.
func (s State) Final() bool { return s == StateAcknowledged || s == StateCancelled }

// valid reports whether s is one of the nine states.
func (s State) valid() bool { return s >= StateQueued && s <= StateCancelled }

// active reports whether the job is trying to transfer in state s: waiting
// for a slot, connecting, transferring or waiting to retry.
func (s State) active() bool {
	return s == StateQueued || s == StateConnecting || s == StateTransferring || s == StateTransientError
}

// transitions[from] is the set of states a job may move to from "from".
// Every change of a job's state goes through setStateLocked, which refuses
// anything not in this table. Rows name the BITS/DO behaviour they copy;
// the package documentation draws the same table.
var transitions = [...][]State{
	// Scheduler starts it (→CONNECTING); nothing left to transfer
	// (→TRANSFERRED); no-progress timeout during a retry (→ERROR);
	// Suspend, Complete, Cancel.
	StateQueued: {StateConnecting, StateTransferred, StateError, StateSuspended, StateAcknowledged, StateCancelled},
	// Response accepted (→TRANSFERRING); failure (→TRANSIENT_ERROR/ERROR);
	// pre-empted (→QUEUED); 416 at full size on the last file
	// (→TRANSFERRED); Suspend, Complete, Cancel.
	StateConnecting: {StateTransferring, StateTransientError, StateError, StateQueued, StateTransferred, StateSuspended, StateAcknowledged, StateCancelled},
	// Next file (→CONNECTING); last file done (→TRANSFERRED); failure;
	// pre-empted (→QUEUED); Suspend, Complete, Cancel.
	StateTransferring: {StateConnecting, StateTransferred, StateTransientError, StateError, StateQueued, StateSuspended, StateAcknowledged, StateCancelled},
	// Resume (→QUEUED); Complete, Cancel.
	StateSuspended: {StateQueued, StateAcknowledged, StateCancelled},
	// Resume after fixing the cause (→QUEUED); Suspend, Complete, Cancel.
	StateError: {StateQueued, StateSuspended, StateAcknowledged, StateCancelled},
	// Retry delay over, or Resume (→QUEUED); no-progress timeout (→ERROR);
	// Suspend, Complete, Cancel.
	StateTransientError: {StateQueued, StateError, StateSuspended, StateAcknowledged, StateCancelled},
	// Files added, then Resume (→QUEUED, BITS); a file rejected with
	// SetValidationState(i, false) (→ERROR, BITS); Complete, Cancel.
	// Suspend leaves a TRANSFERRED job as it is.
	StateTransferred:  {StateQueued, StateError, StateAcknowledged, StateCancelled},
	StateAcknowledged: nil,
	StateCancelled:    nil,
}

// canTransition reports whether the table allows from → to.
func canTransition(from, to State) bool {
	if !from.valid() || !to.valid() {
		return false
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// restoreStateLocked sets the state of a job rebuilt from its record
// (Manager.restore, recover.go): the one way besides setStateLocked that a
// job's state is set. It bypasses the transition table on purpose: a
// reloaded job has no "from" state — its state was reached in the previous
// Manager, through the table — so there is no move to check and none of a
// move's consequences apply: it stamps no time (Times come from the
// record), queues no notification (the owed JobTransferred or JobError is
// restored by the caller through pendingFinal), and leaves the scheduler,
// the clock and the index to reload and restore, which set them from the
// record. Only restore calls it, before anyone else can see the job; the
// caller records the change (changedLocked).
func (j *Job) restoreStateLocked(s State) {
	j.state = s
}

// moveLocked makes a move its caller has checked is due: the engine's moves,
// and the methods' after their own checks. A refusal by setStateLocked is
// then a defect of dojob, not the caller's doing: it is logged at Error
// level and counted (Manager.defects, which the tests require to stay 0),
// and the job keeps its state. The refusal is returned for a method to
// return; the engine has nothing more to do with it.
func (j *Job) moveLocked(to State) error {
	from := j.state
	err := j.setStateLocked(to)
	if err != nil {
		j.m.defects.Add(1)
		if j.m.logEnabled(slog.LevelError) {
			j.m.queueLog(slog.LevelError, "dojob: internal error: a state change was refused", slog.Any("job", j.id),
				slog.String("from", from.String()), slog.String("to", to.String()))
		}
	}
	return err
}

// setStateLocked is the one function that changes a job's state (but for
// restoreStateLocked, which rebuilds a reloaded job). It checks the
// transition table (ErrInvalidState for an illegal move), stamps the
// times, records the change (changedLocked), wakes Wait, keeps the error object, the retry timer, the no-progress
// window, the scheduler queue and the Manager's index in step with the new
// state, and queues the notifications the move owes. j.mu must be held; it
// takes the scheduler's, the clock's, the Manager's index, the store's and
// the log queue's locks and goMu (all after mu in the lock order, see Job).
//
// Setting the state a job is already in is a no-op that returns nil.
func (j *Job) setStateLocked(to State) error {
	from := j.state
	if from == to {
		return nil
	}
	if !canTransition(from, to) {
		return errorf(ErrInvalidState, "job %s cannot move from %s to %s", j.id, from, to)
	}
	now := time.Now()
	j.state = to
	j.modified = now
	j.changedLocked()
	j.wakeLocked()

	m := j.m
	// The maximum download time counts CONNECTING and TRANSFERRING only.
	j.downloadClockLocked(from, to)
	// Leaving a state.
	switch from {
	case StateQueued:
		m.sched.remove(j)
	case StateTransientError:
		m.clock.stop(&j.retryDL)
	case StateTransferred, StateError:
		j.pendingFinal = false
	}
	// The error object exists only in ERROR and TRANSIENT_ERROR; entering
	// TRANSFERRING clears it for good (BITS GetError).
	switch to {
	case StateError, StateTransientError:
		if j.jerr == nil || !j.jerr.hold { // a hold by policy is no error attempt (hold.go)
			j.errCount++
		}
	case StateTransferring:
		j.jerr = nil
	}
	// A job that stopped trying has no use for the no-progress window. (An
	// automatic retry, TRANSIENT_ERROR → QUEUED → CONNECTING → TRANSFERRING,
	// keeps it open: only a byte of progress closes it, or a user's Resume.)
	switch to {
	case StateSuspended, StateError, StateTransferred, StateAcknowledged, StateCancelled:
		j.closeWindowLocked()
	}
	// Notifications, in order: the state change, then what it owes.
	// BITS raises JobModification for state changes except the moves into
	// ERROR and TRANSFERRED, which have their own notifications; a
	// StateCallback hears of every move.
	j.queueStateLocked(from, to)
	if to != StateError && to != StateTransferred {
		j.queueModificationLocked()
	}
	switch to {
	case StateQueued:
		m.sched.enqueue(j)
		m.kick()
	case StateError:
		j.episode++
		j.pendingFinal = true
		j.queueFinalLocked()
	case StateTransferred:
		j.completedAt = now
		j.episode++
		j.pendingFinal = true
		j.queueFinalLocked()
	case StateAcknowledged, StateCancelled:
		m.clock.stop(&j.retryDL)
		m.clock.stop(&j.redeliverDL)
		m.clock.stop(&j.tickDL)
		m.forget(j)
	}
	if m.logEnabled(slog.LevelDebug) {
		m.queueLog(slog.LevelDebug, "dojob: state", slog.Any("job", j.id), slog.String("from", from.String()), slog.String("to", to.String()))
	}
	return nil
}
