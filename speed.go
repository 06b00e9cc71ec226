package dojob

import (
	"fmt"
	"math/bits"
	"time"
)

// DefaultMinimumSpeedWindow is the window of SetMinimumSpeed when it is
// given as 0: 30 seconds, curl's default --speed-time.
const DefaultMinimumSpeedWindow = 30 * time.Second

// minSpeedWindow is the shortest window SetMinimumSpeed takes: curl and
// aria2 count in whole seconds, and an average over less says little about
// a connection.
const minSpeedWindow = time.Second

// SetMinimumSpeed sets the lowest speed the job accepts from a connection:
// an attempt that receives fewer than bytesPerSecond×window bytes over a
// span of window — its average speed stays below bytesPerSecond for window
// — is stopped as a transient error, ErrTimeout (ERROR_WINHTTP_TIMEOUT) in
// context GENERAL_TRANSPORT, the code of a stall, with a message that says
// the transfer was too slow. This is curl's --speed-limit/--speed-time
// (CURLOPT_LOW_SPEED_LIMIT/_TIME, whose error is CURLE_OPERATION_TIMEDOUT)
// and aria2's --lowest-speed-limit; BITS and Delivery Optimization have no
// such setting.
//
// bytesPerSecond 0 turns the limit off, the default. window 0 with a
// positive bytesPerSecond means DefaultMinimumSpeedWindow (30 s, as curl's
// --speed-limit without --speed-time); otherwise the window must be at least
// 1 s and at most MaxTimeout. A negative argument, or a window outside
// those bounds, returns ErrInvalidArg; a job in a final state returns
// ErrInvalidState. The value is persisted.
//
// An attempt is one request's transfer — for a file being transferred with
// others (SetMaxParallelFiles), that file's own connection — and it is
// measured from the moment its response is accepted (TRANSFERRING) until
// its body ends: the time spent connecting and waiting for headers is
// Config.StallTimeout's business, not this limit's. A too slow attempt ends
// as a stall does: the bytes received are kept, and the file moves at once
// to its next source if it has mirrors (FileSpec.Mirrors); without one, or
// when every source failed in the round, the job goes to TRANSIENT_ERROR
// and retries after the retry delay, resuming at its offset. The bytes a
// slow attempt received are progress as usual, so they close the
// no-progress window (SetNoProgressTimeout): a server that trickles new
// bytes keeps the job retrying for as long as it keeps sending them. The
// stall timeout catches a connection that sends nothing at all; this limit
// catches one that sends too little.
//
// A new value applies to the attempts under way at once: their measurement
// starts over from the moment of the call. The speed is judged by the
// watchdog of the running transfer (about every window/8), never on the
// path that writes the bytes.
func (j *Job) SetMinimumSpeed(bytesPerSecond int64, window time.Duration) error {
	if bytesPerSecond < 0 || window < 0 {
		return errorf(ErrInvalidArg, "minimum speed %d B/s over %v: negative", bytesPerSecond, window)
	}
	if bytesPerSecond == 0 {
		window = 0 // off: no window
	} else if window == 0 {
		window = DefaultMinimumSpeedWindow
	}
	if bytesPerSecond > 0 && (window < minSpeedWindow || window > MaxTimeout) {
		return errorf(ErrInvalidArg, "minimum speed window %v is outside %v to %v", window, minSpeedWindow, MaxTimeout)
	}
	return j.update(func() (bool, error) {
		if j.minSpeed == bytesPerSecond && j.speedWindow == window {
			return false, nil
		}
		j.minSpeed, j.speedWindow = bytesPerSecond, window
		j.restartSpeedLocked()
		return true, nil
	})
}

// MinimumSpeed returns the lowest speed the job accepts and the window it
// is judged over (SetMinimumSpeed); (0, 0) when there is no limit.
func (j *Job) MinimumSpeed() (bytesPerSecond int64, window time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.minSpeed, j.speedWindow
}

// restartSpeedLocked applies a changed minimum speed to the running
// transfer: each attempt under way is measured afresh from now, and the
// watchdog ticks often enough for the new window and at its end. It takes
// the clock's lock.
func (j *Job) restartSpeedLocked() {
	x := j.xfer
	if x == nil {
		return
	}
	now := j.m.now()
	for _, w := range x.workers {
		w.speed.restart(w.speedNow(now), w.cur)
	}
	if j.minSpeed > 0 {
		j.m.clock.setEarlier(&j.tickDL, now+j.speedWindow)
	}
	j.armTickLocked()
}

// speedSamples is the capacity of an attempt's ring of samples: the
// watchdog keeps one about every window/8, so a window holds about 9.
const speedSamples = 16

// speedSample is a file's byte counter at an instant of the Manager's
// clock.
type speedSample struct {
	at time.Duration
	n  int64
}

// speedWatch measures the speed of one attempt for the minimum speed
// (SetMinimumSpeed): a ring of samples of the file's byte counter taken by
// the watchdog tick, from the acceptance of the response to the end of its
// body. Guarded by the job's mu; the copy loop never touches it.
type speedWatch struct {
	on   bool // a response is being received: the attempt is measured
	ring [speedSamples]speedSample
	head int // index of the oldest sample
	size int // samples held
}

// begin starts measuring an attempt whose response was accepted at now,
// with n bytes in its file.
func (s *speedWatch) begin(now time.Duration, n int64) {
	s.on, s.head, s.size = true, 0, 1
	s.ring[0] = speedSample{now, n}
}

// end stops measuring: the body ended, or no response is being received.
func (s *speedWatch) end() { s.on, s.size = false, 0 }

// restart measures an attempt under way afresh from now (the limit
// changed).
func (s *speedWatch) restart(now time.Duration, f *file) {
	if s.on && f != nil {
		s.begin(now, f.done.Load())
	}
}

func (s *speedWatch) at(i int) *speedSample { return &s.ring[(s.head+i)%speedSamples] }

// observe takes the sample (now, n) and judges the attempt against rate
// bytes per second over window. It keeps the newest sample at least window
// old as its oldest, and judges the average over the span from it to now
// (window, or at most one sample step more): below rate it returns a
// description of the shortfall. next is when the attempt next wants the
// watchdog: when its next sample becomes window old (0: no need).
func (s *speedWatch) observe(now time.Duration, n, rate int64, window time.Duration) (next time.Duration, slow error) {
	if !s.on || s.size == 0 {
		return 0, nil
	}
	for s.size > 1 && s.at(1).at <= now-window {
		s.head = (s.head + 1) % speedSamples
		s.size--
	}
	if old := s.at(0); old.at <= now-window {
		span, got := now-old.at, max(n-old.n, 0)
		if below(got, rate, span) {
			return 0, fmt.Errorf("%w: %d bytes in %v, under the minimum of %d bytes/s", errTooSlow, got, span, rate)
		}
	}
	if last := s.at(s.size - 1); now-last.at >= window/8 && now > last.at {
		if s.size == speedSamples {
			*last = speedSample{now, n} // full: coarser steps, never a lost oldest sample
		} else {
			*s.at(s.size) = speedSample{now, n}
			s.size++
		}
	}
	i := 0
	if s.at(0).at <= now-window {
		i = 1
	}
	if i < s.size {
		next = s.at(i).at + window
	}
	return next, nil
}

// below reports whether got bytes in span are fewer than rate bytes per
// second would bring: got×1s < rate×span, in 128 bits.
func below(got, rate int64, span time.Duration) bool {
	gh, gl := bits.Mul64(uint64(got), uint64(time.Second))
	nh, nl := bits.Mul64(uint64(rate), uint64(span))
	return gh < nh || gh == nh && gl < nl
}
