package dojob

import "time"

// DefaultMinimumNotificationInterval is the shortest time between two
// progress JobModification calls of a job until SetMinimumNotificationInterval
// sets another: 100 ms, at most ~10 a second, dojob's pace from the start.
// (BITS's default is 500 ms.)
const DefaultMinimumNotificationInterval = 100 * time.Millisecond

// MaxNotificationInterval is the longest minimum notification interval:
// BITS takes it as a DWORD of milliseconds (about 49.7 days).
const MaxNotificationInterval = (1<<32 - 1) * time.Millisecond

// SetMinimumNotificationInterval sets the shortest time between two
// JobModification calls that report progress — new bytes — of the job
// (BITS_JOB_PROPERTY_MINIMUM_NOTIFICATION_INTERVAL_MS). Only progress is
// paced: a state change, a property change or an added file is told at
// once, every time. Bytes that arrive within the interval are told when it
// ends, in one call (a JobModification already queued and not yet
// delivered absorbs newer progress, so a slow callback is never behind).
//
// d is 0, which restores the default (DefaultMinimumNotificationInterval,
// 100 ms; BITS's default is 500 ms), or 1 ms to MaxNotificationInterval; a
// value outside those returns ErrInvalidArg, and a job in a final state
// ErrInvalidState. The value is persisted. A new value applies from the
// next progress notification on.
func (j *Job) SetMinimumNotificationInterval(d time.Duration) error {
	if d != 0 && (d < time.Millisecond || d > MaxNotificationInterval) {
		return errorf(ErrInvalidArg, "minimum notification interval %v is outside %v to %v", d, time.Millisecond, MaxNotificationInterval)
	}
	return j.update(func() (bool, error) {
		if j.notifyIv == d {
			return false, nil
		}
		j.notifyIv = d
		j.armTickLocked()
		return true, nil
	})
}

// MinimumNotificationInterval returns the shortest time between two
// progress JobModification calls of the job: the value set, or
// DefaultMinimumNotificationInterval.
func (j *Job) MinimumNotificationInterval() time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.notifyIntervalLocked()
}

// notifyIntervalLocked is the minimum notification interval in force.
func (j *Job) notifyIntervalLocked() time.Duration {
	if j.notifyIv == 0 {
		return DefaultMinimumNotificationInterval
	}
	return j.notifyIv
}
