package dojob

import (
	"fmt"
	"log/slog"
	"time"
)

// This file holds the maximum download time of a job (BITS
// IBackgroundCopyJob4::SetMaximumDownloadTime): a budget of time spent
// CONNECTING or TRANSFERRING, kept by one deadline of the Manager's clock
// (dlMaxTime) that is armed while the job is in one of those states.

// BITSDefaultMaximumDownloadTime is the maximum download time a BITS job
// has until one is set: 90 days (7,776,000 s). dojob's default is no limit
// (SetMaximumDownloadTime); a caller that wants BITS's default sets this.
const BITSDefaultMaximumDownloadTime = 7776000 * time.Second

// SetMaximumDownloadTime sets the most time the job may spend connecting
// and transferring (states CONNECTING and TRANSFERRING) before it gives up:
// when the time is spent, the running transfer is stopped and the job goes
// to ERROR with ErrMaxDownloadTimeout (BG_E_MAXDOWNLOAD_TIMEOUT) in context
// GENERAL_QUEUE_MANAGER, and JobError is called once. The bytes received are
// kept: after Resume the job continues where it stopped.
//
// Only CONNECTING and TRANSFERRING count: time spent QUEUED (waiting for a
// slot), SUSPENDED, in TRANSIENT_ERROR (waiting for a retry), in ERROR or
// TRANSFERRED does not (BITS counts the same two states). The time is
// measured on the Manager's monotonic clock, like every timer of dojob.
//
// d is 0 to MaxTimeout (BITS takes a ULONG of seconds); 0 means no limit,
// the default — BITS's own default is 90 days (BITSDefaultMaximumDownloadTime),
// which dojob does not impose on callers who never asked for a limit. A
// negative d, or one over MaxTimeout, returns ErrInvalidArg; a job in a
// final state returns ErrInvalidState. A new value applies at once, also
// to a transfer under way: a job that already spent more fails now.
//
// The time used is counted whether or not a limit is set, so a limit set
// during a transfer includes the time already spent. Resume starts it over
// (BITS: "calling Resume resets the elapsed time") — after ERROR, in
// TRANSIENT_ERROR, and for a TRANSFERRED job with new files — except for a
// SUSPENDED job: Suspend pauses the clock and Resume continues it, so
// suspending and resuming a job does not renew its budget (resume an ERROR
// job to get a new one). The limit and the time used are persisted: a job
// reloaded by a new Manager keeps what it spent. The time used is written
// with every state change and, while a limit is set and a transfer runs,
// about every Config.CheckpointInterval, so a crash forgets at most about
// that much of it.
func (j *Job) SetMaximumDownloadTime(d time.Duration) error {
	if d < 0 || d > MaxTimeout {
		return errorf(ErrInvalidArg, "maximum download time %v is outside 0 to %v", d, MaxTimeout)
	}
	return j.update(func() (bool, error) {
		if j.maxTime == d {
			return false, nil
		}
		j.maxTime = d
		j.armMaxTimeLocked()
		return true, nil
	})
}

// MaximumDownloadTime returns the job's maximum download time
// (SetMaximumDownloadTime); 0 when there is no limit.
func (j *Job) MaximumDownloadTime() time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.maxTime
}

// DownloadTimeUsed returns the time the job has spent CONNECTING and
// TRANSFERRING since it was created or last resumed from a state other than
// SUSPENDED: what counts against its maximum download time.
func (j *Job) DownloadTimeUsed() time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.usedLocked(j.m.now())
}

// counted reports whether time in s counts against the maximum download
// time.
func counted(s State) bool { return s == StateConnecting || s == StateTransferring }

// usedLocked is the download time used at now.
func (j *Job) usedLocked(now time.Duration) time.Duration {
	if counted(j.state) {
		return j.dlUsed + max(now-j.dlSince, 0)
	}
	return j.dlUsed
}

// downloadClockLocked keeps the download time in step with a state move
// (setStateLocked): entering CONNECTING or TRANSFERRING from another state
// starts a stretch and arms the deadline; leaving them adds the stretch to
// the time used and stops it. It takes the clock's lock.
func (j *Job) downloadClockLocked(from, to State) {
	switch cf, ct := counted(from), counted(to); {
	case !cf && ct:
		j.dlSince = j.m.now()
		j.dlSaved = j.dlSince
		j.armMaxTimeLocked()
	case cf && !ct:
		j.dlUsed += max(j.m.now()-j.dlSince, 0)
		j.m.clock.stop(&j.maxTimeDL)
	}
}

// resumeDownloadTimeLocked applies Resume to the download time: it starts
// over, unless the job is SUSPENDED (Suspend only pauses it).
func (j *Job) resumeDownloadTimeLocked() {
	if j.state != StateSuspended {
		j.dlUsed = 0
	}
}

// armMaxTimeLocked schedules the end of the maximum download time while
// the job connects or transfers, or stops it when there is no limit. A
// budget already spent is due at once. It takes the clock's lock.
func (j *Job) armMaxTimeLocked() {
	if j.maxTime == 0 || !counted(j.state) {
		j.m.clock.stop(&j.maxTimeDL)
		return
	}
	j.m.clock.set(&j.maxTimeDL, j.dlSince+j.maxTime-j.dlUsed)
}

// onMaxTime ends a job whose maximum download time is spent: the transfer
// is stopped and the job goes to ERROR with ErrMaxDownloadTimeout.
func (j *Job) onMaxTime(now time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.maxTime == 0 || !counted(j.state) || j.completing {
		return
	}
	if end := j.dlSince + j.maxTime - j.dlUsed; now < end {
		j.m.clock.set(&j.maxTimeDL, end)
		return
	}
	j.stopTransferLocked()
	j.jerr = &JobError{Code: ErrMaxDownloadTimeout, Context: ErrorContextGeneralQueueManager,
		Err: fmt.Errorf("the job spent its maximum download time of %v connecting and transferring", j.maxTime)}
	j.moveLocked(StateError)
	if j.m.logEnabled(slog.LevelInfo) {
		j.m.queueLog(slog.LevelInfo, "dojob: maximum download time spent", slog.Any("job", j.id), slog.Duration("limit", j.maxTime))
	}
}

// saveDownloadTimeLocked asks for the record to be written when a limit is
// set and the time used has not been written for a checkpoint interval, so
// a crash during a long stall does not forget the time it spent. The
// watchdog tick calls it. It takes the store's lock.
func (j *Job) saveDownloadTimeLocked(now time.Duration) {
	if j.maxTime == 0 || j.m.store == nil || now-j.dlSaved < j.m.cfg.CheckpointInterval {
		return
	}
	j.dlSaved = now
	j.changedLocked()
}
