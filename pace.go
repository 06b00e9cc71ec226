package dojob

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// This file holds bandwidth pacing: the Manager's limits per priority
// (Config.Bandwidth, SetBandwidthLimits) with their weekly windows, a job's
// own limit (SetMaximumBandwidth), and the waits of the copy loops. The
// holds a limit of BandwidthBlocked puts on background jobs are in hold.go.
// docs/design.md, "Pacing", describes where the limiter sits.

// BandwidthBlocked is the limit that lets a priority transfer nothing at
// all: its jobs wait in TRANSIENT_ERROR with ErrBlockedByPolicy while it
// applies (BITS's MaxInternetBandwidth of 0). Only background priorities
// can be blocked.
const BandwidthBlocked int64 = -1

// Weekdays is a set of days of the week, bit 1<<time.Sunday to
// 1<<time.Saturday. The empty set means every day.
type Weekdays uint8

// Days returns the set of the days given.
func Days(days ...time.Weekday) Weekdays {
	var w Weekdays
	for _, d := range days {
		if d >= time.Sunday && d <= time.Saturday {
			w |= 1 << d
		}
	}
	return w
}

// Has reports whether d is in the set; every day is in the empty set.
func (w Weekdays) Has(d time.Weekday) bool { return w == 0 || w&(1<<d) != 0 }

// BandwidthWindow is a time of the week with its own background limits, as
// BITS's bandwidth group policy ("from day to day, from hour to hour").
// It covers the hours from Start (0 to 23) up to End (1 to 24, exclusive)
// of each day in Days: Start 22 and End 6 wrap past midnight (22:00 to
// 06:00, the hours after midnight belonging to days in Days as well);
// Start equal to End covers the whole day. The limits are in bytes per
// second for the jobs of each background priority, shared by them: 0 is
// no limit, BandwidthBlocked blocks them.
type BandwidthWindow struct {
	Days              Weekdays // the days it applies on; empty: every day
	Start, End        int      // from hour Start (0–23) up to hour End (1–24)
	High, Normal, Low int64    // bytes per second per background priority
}

// covers reports whether the window covers the hour h of weekday d.
func (w *BandwidthWindow) covers(d time.Weekday, h int) bool {
	if !w.Days.Has(d) {
		return false
	}
	switch {
	case w.Start == w.End%24:
		return true
	case w.Start < w.End:
		return h >= w.Start && h < w.End
	default:
		return h >= w.Start || h < w.End
	}
}

// BandwidthLimits are the Manager's bandwidth limits, in bytes per second
// (Config.Bandwidth, Manager.SetBandwidthLimits). A limit is a budget that
// every job it applies to shares, fairly: two NORMAL jobs under a
// Background limit of 10 MB/s get about 5 MB/s each. 0 means no limit.
//
// Foreground applies to FOREGROUND jobs at every hour (BITS's policies do
// not touch foreground jobs; it cannot be BandwidthBlocked). Background
// applies to each of HIGH, NORMAL and LOW — one budget per priority —
// outside every window; the first window of Windows that covers an hour
// gives the limits of that hour instead. Hours are those of Location (nil:
// time.Local). BandwidthBlocked as a background limit holds the jobs of
// that priority in TRANSIENT_ERROR with ErrBlockedByPolicy until an hour
// whose limit lets them transfer, when they are queued on their own; a
// running transfer that a new hour blocks is stopped, its bytes kept.
type BandwidthLimits struct {
	Foreground int64             // bytes per second for FOREGROUND jobs; 0: no limit
	Background int64             // per background priority outside every window
	Windows    []BandwidthWindow // the first that covers an hour wins
	Location   *time.Location    // the time zone of the windows' hours; nil: time.Local
}

// check validates l.
func (l *BandwidthLimits) check() error {
	if l.Foreground < 0 {
		return errorf(ErrInvalidArg, "foreground bandwidth limit %d: negative", l.Foreground)
	}
	ok := func(v int64) bool { return v >= BandwidthBlocked }
	if !ok(l.Background) {
		return errorf(ErrInvalidArg, "background bandwidth limit %d: below BandwidthBlocked", l.Background)
	}
	for i, w := range l.Windows {
		if w.Start < 0 || w.Start > 23 || w.End < 0 || w.End > 24 || w.Days > 0x7f {
			return errorf(ErrInvalidArg, "bandwidth window %d: hours %d to %d or days %#x out of range", i, w.Start, w.End, uint8(w.Days))
		}
		if !ok(w.High) || !ok(w.Normal) || !ok(w.Low) {
			return errorf(ErrInvalidArg, "bandwidth window %d: a limit below BandwidthBlocked", i)
		}
	}
	return nil
}

// at returns the limit of each priority (indexed by Priority) at wall-clock
// time t.
func (l *BandwidthLimits) at(t time.Time) (lim [4]int64) {
	lim = [4]int64{l.Foreground, l.Background, l.Background, l.Background}
	t = t.In(l.loc())
	d, h := t.Weekday(), t.Hour()
	for i := range l.Windows {
		if w := &l.Windows[i]; w.covers(d, h) {
			lim[PriorityHigh], lim[PriorityNormal], lim[PriorityLow] = w.High, w.Normal, w.Low
			break
		}
	}
	return lim
}

func (l *BandwidthLimits) loc() *time.Location {
	if l.Location != nil {
		return l.Location
	}
	return time.Local
}

// maxScanHours bounds the search for the next change of the limits: the
// windows repeat every week.
const maxScanHours = 8 * 24

// next returns the first whole hour after t at which cond holds for the
// limits of that hour, and whether there is one within a week.
func (l *BandwidthLimits) next(t time.Time, cond func([4]int64) bool) (time.Time, bool) {
	if len(l.Windows) == 0 {
		return time.Time{}, false
	}
	lt := t.In(l.loc())
	h := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), 0, 0, 0, lt.Location())
	for range maxScanHours {
		h = h.Add(time.Hour)
		if cond(l.at(h)) {
			return h, true
		}
	}
	return time.Time{}, false
}

// pacer is the Manager's side of pacing: its limits, the limit of each
// priority now, and one token bucket per priority shared by that
// priority's jobs.
type pacer struct {
	// repaceMu serialises repace: one evaluation and the deadline it arms
	// at a time, so that of two overlapping calls the later evaluation's
	// deadline is the one left armed. Taken with no other lock held,
	// before mu and clock.mu.
	repaceMu sync.Mutex

	mu     sync.Mutex
	limits BandwidthLimits
	now    [4]int64 // the limit of each priority at the last evaluation

	// until[p], while priority p is blocked, is when the block ends on
	// the Manager's clock (0: not within a week), computed once per
	// evaluation so every job of p is held until the same instant; and
	// kept from one evaluation to the next while the block ends at the
	// same wall-clock hour (untilAt[p]), so a pass that changes nothing
	// does not hold jobs anew for the nanoseconds between two readings
	// of the clocks.
	until   [4]time.Duration
	untilAt [4]time.Time

	// class[p] is the bucket of priority p, nil while p has no limit (or
	// is blocked): the copy loops read it without a lock. any is set while
	// one of them is not nil.
	class [4]atomic.Pointer[rate.Limiter]
	any   atomic.Bool

	dl deadline // the next hour at which the limits change (dlPolicy)
}

// paceBurst is the bucket size for a limit of r bytes per second, which is
// also the most a copy loop reads before it pays for the bytes: 1/100 of a
// second's worth (so over any 2 s span the budget is exceeded by at most
// about 1 % per reader), at least 1 KiB (or r, if smaller) so a slow limit
// does not read a byte at a time, and at most the copy buffer.
func paceBurst(r int64) int {
	return int(min(bufSize, max(r/100, min(r, 1024))))
}

// setBucket points p at a bucket of r bytes per second (nil for r <= 0),
// reusing the one there so that the next payment of every reader sees the
// new rate. A wait under way is not shortened: it keeps the delay its
// reservation got at the old rate (a burst, plus those reserved before it).
func setBucket(p *atomic.Pointer[rate.Limiter], r int64) {
	if r <= 0 {
		p.Store(nil)
		return
	}
	if l := p.Load(); l != nil {
		l.SetLimit(rate.Limit(r))
		l.SetBurst(paceBurst(r))
		return
	}
	p.Store(rate.NewLimiter(rate.Limit(r), paceBurst(r)))
}

// evaluate sets the buckets to the limits at wall-clock time t, which is
// clk on the Manager's clock, records when each blocked priority is
// unblocked, and returns when the limits next change on the Manager's
// clock (ok false: never).
func (p *pacer) evaluate(t time.Time, clk time.Duration) (next time.Duration, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.limits.at(t)
	p.now = now
	any := false
	for i, r := range now {
		setBucket(&p.class[i], r)
		any = any || r > 0
		var end time.Time
		if r == BandwidthBlocked {
			end, _ = p.limits.next(t, func(l [4]int64) bool { return l[i] != BandwidthBlocked })
		}
		switch {
		case end.IsZero():
			p.until[i], p.untilAt[i] = 0, time.Time{}
		case !end.Equal(p.untilAt[i]) || p.until[i] == 0:
			p.until[i], p.untilAt[i] = clk+end.Sub(t), end
		}
	}
	p.any.Store(any)
	end, ok := p.limits.next(t, func(l [4]int64) bool { return l != now })
	if !ok {
		return 0, false
	}
	return clk + end.Sub(t), true
}

// SetBandwidthLimits replaces the Manager's bandwidth limits
// (BandwidthLimits). The new limits apply at once: running transfers pace
// to them from their next read (a wait for bandwidth under way is not
// shortened: it ends when its reservation, made at the old rate, allows),
// jobs of a priority now blocked are held (ErrBlockedByPolicy) and held
// jobs of a priority no longer blocked are queued. A limit that is invalid (negative, a foreground limit of
// BandwidthBlocked, a window's hour out of range) returns ErrInvalidArg and
// changes nothing; after Close, ErrNoService. The limits are the Manager's,
// not persisted: a new Manager takes Config.Bandwidth.
func (m *Manager) SetBandwidthLimits(l BandwidthLimits) error {
	if err := l.check(); err != nil {
		return err
	}
	if m.closed.Load() {
		return errorf(ErrNoService, "the manager is closed")
	}
	l.Windows = append([]BandwidthWindow(nil), l.Windows...)
	m.pace.mu.Lock()
	m.pace.limits = l
	m.pace.mu.Unlock()
	m.repace()
	return nil
}

// BandwidthLimits returns the Manager's bandwidth limits.
func (m *Manager) BandwidthLimits() BandwidthLimits {
	m.pace.mu.Lock()
	defer m.pace.mu.Unlock()
	l := m.pace.limits
	l.Windows = append([]BandwidthWindow(nil), l.Windows...)
	return l
}

// BandwidthLimitNow returns the limit in force now for the jobs of
// priority p: bytes per second shared by them, 0 for no limit,
// BandwidthBlocked when they are blocked.
func (m *Manager) BandwidthLimitNow(p Priority) int64 {
	if !p.valid() {
		return 0
	}
	m.pace.mu.Lock()
	defer m.pace.mu.Unlock()
	return m.pace.now[p]
}

// repace evaluates the limits now, schedules their next change and applies
// them to every job (hold.go).
func (m *Manager) repace() {
	m.pace.repaceMu.Lock()
	now := m.now()
	next, ok := m.pace.evaluate(time.Now(), now)
	if ok {
		// The hour a window opens is wall-clock time, the deadline is on
		// the Manager's monotonic clock, which stops while the computer
		// sleeps and does not follow a change of the wall clock: look at
		// the wall clock again at least every paceRecheck, so a laptop
		// that slept through 22:00 opens its window when it wakes, not
		// hours later.
		m.clock.set(&m.pace.dl, min(next, now+paceRecheck))
	} else {
		m.clock.stop(&m.pace.dl)
	}
	m.pace.repaceMu.Unlock()
	m.applyPolicy()
}

// paceRecheck is the longest the bandwidth limits go without a look at
// the wall clock while their windows change them (repace).
const paceRecheck = 5 * time.Minute

// SetMaximumBandwidth limits the job to bytesPerSecond over all its files
// and connections together, beside the Manager's limits
// (BandwidthLimits), which still apply: the job gets the lower of the two.
// 0 removes the limit (the default). A new limit applies to a running
// transfer from its next read. Negative returns ErrInvalidArg; a job in a
// final state ErrInvalidState. The value is persisted. BITS and Delivery
// Optimization have no per-job limit; this is curl's --limit-rate.
//
// Waiting for the limit is not a stall (Config.StallTimeout), and the time
// spent waiting is left out when the job's minimum speed
// (SetMinimumSpeed) is judged: a job limited below its own minimum speed is
// paced, not failed.
func (j *Job) SetMaximumBandwidth(bytesPerSecond int64) error {
	if bytesPerSecond < 0 {
		return errorf(ErrInvalidArg, "maximum bandwidth %d: negative", bytesPerSecond)
	}
	return j.update(func() (bool, error) {
		if j.maxBandwidth == bytesPerSecond {
			return false, nil
		}
		j.maxBandwidth = bytesPerSecond
		setBucket(&j.bucket, bytesPerSecond)
		return true, nil
	})
}

// MaximumBandwidth returns the job's own limit in bytes per second
// (SetMaximumBandwidth); 0 when it has none.
func (j *Job) MaximumBandwidth() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.maxBandwidth
}

// paced reports whether a copy loop of x must pace its reads: two atomic
// loads, the whole cost of pacing when nothing is limited.
func (x *worker) paced() bool { return x.j.bucket.Load() != nil || x.j.m.pace.any.Load() }

// paceBuckets are the buckets a read pays into: the job's own and its
// priority's (either may be nil).
type paceBuckets struct{ job, class *rate.Limiter }

// pace returns the buckets x's next read pays into, and whether there are
// any; unlimited, it costs what paced costs. A copy loop takes them once a
// read: the read's length (readLen) and its payment (pay) use the same.
func (x *worker) pace() (b paceBuckets, ok bool) {
	if !x.paced() {
		return b, false
	}
	j := x.j
	b.job = j.bucket.Load()
	if j.m.pace.any.Load() {
		j.mu.Lock()
		p := j.prio
		j.mu.Unlock()
		b.class = j.m.pace.class[p].Load()
	}
	return b, b.job != nil || b.class != nil
}

// readLen returns how much a paced copy loop reads at once: no more than a
// bucket holds.
func (b paceBuckets) readLen(n int) int {
	if b.job != nil {
		n = min(n, b.job.Burst())
	}
	if b.class != nil {
		n = min(n, b.class.Burst())
	}
	return max(n, 1)
}

// pay waits until the buckets b allow n more bytes read by x, in pieces no
// larger than a bucket (rate.Limiter.WaitN refuses more). The time spent
// waiting is noted (paceClock) so that the watchdog takes it for neither a
// stall nor slowness. It returns the cause of ctx if ctx ends first.
func (x *worker) pay(ctx context.Context, b paceBuckets, n int) error {
	m := x.j.m
	x.pc.enter(m.now())
	defer func() { x.pc.leave(m.now()) }()
	for _, l := range [2]*rate.Limiter{b.job, b.class} {
		if l == nil {
			continue
		}
		for left := n; left > 0; {
			k := min(left, max(l.Burst(), 1))
			if err := l.WaitN(ctx, k); err != nil {
				if c := context.Cause(ctx); c != nil {
					return c
				}
				if l.Limit() == rate.Inf || l.Burst() < k {
					continue // the limit changed under the wait: pay again
				}
				return err
			}
			left -= k
		}
	}
	return nil
}

// paceClock measures how long the copy loops of a worker have waited for
// their buckets: the union of the waits, so that the connections of a file
// waiting together count once. The watchdog subtracts it from the time an
// attempt's speed is judged over.
type paceClock struct {
	mu    sync.Mutex
	n     int           // waits under way
	since time.Duration // when the first of them began
	total time.Duration // waited before that
}

func (p *paceClock) enter(now time.Duration) {
	p.mu.Lock()
	if p.n == 0 {
		p.since = now
	}
	p.n++
	p.mu.Unlock()
}

func (p *paceClock) leave(now time.Duration) {
	p.mu.Lock()
	if p.n--; p.n == 0 {
		p.total += now - p.since
	}
	p.mu.Unlock()
}

// waited returns how long the worker has waited for its buckets up to now,
// and whether it is waiting now.
func (p *paceClock) waited(now time.Duration) (d time.Duration, waiting bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d = p.total
	if p.n > 0 {
		d += now - p.since
	}
	return d, p.n > 0
}

// speedNow is the instant the minimum speed of x is judged at: the
// Manager's clock less the time x waited for its buckets.
func (x *worker) speedNow(now time.Duration) time.Duration {
	d, _ := x.pc.waited(now)
	return now - d
}
