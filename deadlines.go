package dojob

import "time"

// This file exposes the two deadlines of the timing rules (timeout.go) for
// user interfaces: when a job in TRANSIENT_ERROR tries again, and when a job
// that is still trying gives up. Both are kept on the Manager's monotonic
// clock; the getters convert them to wall-clock times at the moment of the
// call, so a wall-clock change after the call does not move the deadline
// itself, only what the returned time.Time means.

// NextRetry returns when a job in TRANSIENT_ERROR will be queued again (its
// retry delay ends). It returns the zero time in every other state. The
// time is an estimate in wall-clock terms: the retry runs on the Manager's
// monotonic clock, which does not count time the process was not running.
// A job held by policy (Job.Held) has no retry: NextRetry returns when the
// hold ends if that is known, else the zero time.
func (j *Job) NextRetry() time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.state != StateTransientError || j.heldLocked() && j.holdUntil == 0 {
		return time.Time{}
	}
	return j.wallLocked(j.retryAt)
}

// NoProgressDeadline returns when the job's open no-progress window reaches
// the no-progress timeout, the moment the job goes to ERROR with
// ErrNoProgress unless a byte of progress arrives first. The window is open
// from the first transient error after the last progress until a byte
// arrives (or the job stops trying); NoProgressDeadline returns the zero
// time when no window is open. It follows a changed timeout at once.
func (j *Job) NoProgressDeadline() time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.windowOpen || !j.state.active() {
		return time.Time{}
	}
	return j.wallLocked(j.windowStart + j.timeoutLocked())
}

// wallLocked converts the Manager-clock instant at to wall-clock time.
func (j *Job) wallLocked(at time.Duration) time.Time {
	return time.Now().Add(at - j.m.now())
}
