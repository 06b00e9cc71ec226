package dojob

import (
	"log/slog"
	"time"
)

// This file holds the timing rules of a job: the no-progress window, the
// retry delay and the stall watchdog. All times are on the
// Manager's monotonic clock (Manager.now), so changing the wall clock
// changes nothing.

// maxRetryCap is the least cap on the doubled retry delay; a longer
// MinimumRetryDelay is its own cap.
const maxRetryCap = 60 * time.Second

// retryDelay returns the wait after a failed attempt: base doubled once for
// each earlier consecutive attempt that moved no new byte (streak), capped at
// max(60 s, base), and never shorter than the server's Retry-After.
func retryDelay(base time.Duration, streak int, retryAfter time.Duration) time.Duration {
	limit := max(maxRetryCap, base)
	d := base
	for i := 0; i < streak && d < limit; i++ {
		d *= 2
	}
	return max(min(d, limit), retryAfter)
}

// failLocked moves the job on after a failed attempt: a fatal error goes to
// ERROR; a transient one opens the no-progress window if none is open and
// goes to TRANSIENT_ERROR with a retry scheduled, unless the timeout leaves
// no room to retry (timeout 0, a retry delay longer than the timeout, or a
// window already past the timeout), in which case the job goes to ERROR.
// It takes the clock's and the log queue's locks, and those of
// setStateLocked.
func (j *Job) failLocked(e *JobError) {
	if !e.transient {
		j.jerr = e
		j.moveLocked(StateError)
		return
	}
	now := j.m.now()
	to := j.timeoutLocked()
	if to == 0 || j.retryDelay > to {
		// BITS: no retry at all; the job fails with the error itself.
		j.jerr = e
		j.moveLocked(StateError)
		return
	}
	if !j.windowOpen {
		j.windowOpen, j.windowStart = true, now
	}
	j.lastTransient = e
	if now-j.windowStart >= to {
		j.expireLocked()
		return
	}
	delay := retryDelay(j.retryDelay, j.streak, time.Duration(e.retryAfter))
	delay += jitter(delay, j.m.cfg.RetryJitter, j.id, j.errCount)
	if j.streak < 64 {
		j.streak++
	}
	j.jerr = e
	j.moveLocked(StateTransientError)
	j.retryAt = now + delay
	j.m.clock.set(&j.retryDL, j.retryAt)
	j.m.clock.set(&j.windowDL, j.windowStart+to)
	if j.m.logEnabled(slog.LevelInfo) {
		j.m.queueLog(slog.LevelInfo, "dojob: transient error; will retry", slog.Any("job", j.id), slog.Any("err", e), slog.Duration("delay", delay))
	}
}

// onRetry queues a TRANSIENT_ERROR job whose retry delay is over.
func (j *Job) onRetry(now time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.state != StateTransientError || j.completing {
		return
	}
	if now < j.retryAt {
		j.m.clock.set(&j.retryDL, j.retryAt)
		return
	}
	j.moveLocked(StateQueued)
}

// closeWindowLocked closes the no-progress window. It takes the clock's lock.
func (j *Job) closeWindowLocked() {
	j.windowOpen = false
	j.m.clock.stop(&j.windowDL)
}

// noteProgressLocked records progress: the first new byte of an attempt
// (one that takes its file past its high-water mark; bytes fetched again
// after a restart from byte 0 are not progress) or a finished file. It
// closes the no-progress window and resets the retry back-off. It takes the
// clock's lock.
func (j *Job) noteProgressLocked() {
	j.closeWindowLocked()
	j.streak = 0
	j.lastTransient = nil
}

// rearmWindowLocked applies a changed timeout to an open window at once. It
// takes the clock's lock, and expireLocked's.
func (j *Job) rearmWindowLocked() {
	if !j.windowOpen {
		return
	}
	end := j.windowStart + j.timeoutLocked()
	if j.m.now() >= end {
		j.expireLocked()
		return
	}
	j.m.clock.set(&j.windowDL, end)
}

// onWindow ends a job whose no-progress window reached the timeout.
func (j *Job) onWindow(now time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.windowOpen {
		return
	}
	if end := j.windowStart + j.timeoutLocked(); now < end {
		j.m.clock.set(&j.windowDL, end)
		return
	}
	j.expireLocked()
}

// expireLocked moves a job that is still trying (TRANSIENT_ERROR, or
// queued, connecting or transferring on a retry that has not moved a byte) to
// ERROR with ErrNoProgress wrapping the last transient error. Any running
// attempt is stopped. It takes the clock's and the log queue's locks, and
// those of setStateLocked.
func (j *Job) expireLocked() {
	if !j.state.active() || j.completing {
		j.closeWindowLocked()
		return
	}
	e := &JobError{Code: ErrNoProgress, Context: ErrorContextNone}
	if last := j.lastTransient; last != nil {
		e.Context, e.File, e.Err, e.of = last.Context, last.File, last, last.of
	}
	j.stopTransferLocked()
	j.jerr = e
	j.moveLocked(StateError)
	if j.m.logEnabled(slog.LevelInfo) {
		j.m.queueLog(slog.LevelInfo, "dojob: no progress within the timeout", slog.Any("job", j.id), slog.Duration("timeout", j.timeoutLocked()))
	}
}

// tickIntervalLocked is how often a running transfer's watchdog ticks: often
// enough to catch a stall within 1/8 of the stall timeout, to sample the
// speed about every 1/8 of the minimum speed's window, to deliver
// progress notifications once per minimum notification interval (100 ms by
// default) when they are wanted, and to
// checkpoint progress when the Manager persists jobs.
func (j *Job) tickIntervalLocked() time.Duration {
	cfg := &j.m.cfg
	iv := cfg.StallTimeout / 8
	if j.wantsLocked(noteModification) {
		iv = min(iv, j.notifyIntervalLocked())
	}
	if j.m.store != nil {
		iv = min(iv, cfg.CheckpointInterval)
	}
	if j.minSpeed > 0 {
		iv = min(iv, j.speedWindow/8)
	}
	return max(iv, time.Millisecond)
}

// armTickLocked makes sure the running transfer's tick comes no later than
// one interval from now (after the notification settings changed). It takes
// the clock's lock.
func (j *Job) armTickLocked() {
	if j.xfer == nil {
		return
	}
	j.m.clock.setEarlier(&j.tickDL, j.m.now()+j.tickIntervalLocked())
}

// onTick is the watchdog of a running transfer. It costs the hot path
// nothing: the copy loop only adds to a file's byte counter, and the tick
// compares that counter with what it saw last time. No byte (and no response
// headers) for Config.StallTimeout stops the attempt with a stall, a
// transient ErrTimeout; so does an average speed below the job's minimum
// speed over its window (speed.go), from samples of the same counter. The
// tick also stamps the modification time, queues
// the progress JobModification and asks for a progress checkpoint.
func (j *Job) onTick(now time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	x := j.xfer
	if x == nil {
		return
	}
	due, cause := x.stalledLocked(now, j.m.cfg.StallTimeout)
	if cause != nil {
		x.cancel(cause)
		return
	}
	next := now + j.tickIntervalLocked()
	if b := j.bytesLocked(); b != j.notedBytes {
		j.modified = time.Now()
		if iv := j.notifyIntervalLocked(); now-j.notedAt >= iv || !j.wantsLocked(noteModification) {
			j.queueProgressLocked()
			j.notedBytes, j.notedAt = b, now
		} else {
			next = min(next, j.notedAt+iv) // the progress is told when the interval ends
		}
	}
	if j.m.store != nil && now-x.ckptAt >= j.m.cfg.CheckpointInterval {
		x.ckptAt = now
		x.askCheckpointLocked()
	}
	j.saveDownloadTimeLocked(now)
	if due > now {
		next = min(next, due) // an attempt's window ends: judged at that instant
	}
	j.m.clock.set(&j.tickDL, next)
}

// bytesLocked is the job's BytesTransferred.
func (j *Job) bytesLocked() int64 {
	var n int64
	for _, f := range j.files {
		n += f.done.Load()
	}
	return n
}
