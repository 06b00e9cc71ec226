package dojob

import (
	"sync"
	"time"
)

// deadlineKind says what a deadline is for.
type deadlineKind uint8

const (
	dlRetry     deadlineKind = iota // the retry delay of a TRANSIENT_ERROR job is over
	dlWindow                        // the no-progress window reaches the timeout
	dlTick                          // a running transfer's watchdog tick
	dlRedeliver                     // a failed JobTransferred/JobError is due again
	dlPace                          // the bandwidth limits change (the Manager's; job is nil)
	dlMaxTime                       // the maximum download time is spent (dltime.go)
)

// deadline is one pending timer of a job. A job embeds one per kind, so
// scheduling allocates nothing. The clock's mu guards at and pos.
type deadline struct {
	at   time.Duration // on the Manager's monotonic clock
	pos  int           // heap index + 1; 0 when not scheduled
	job  *Job
	kind deadlineKind
}

// clock holds every pending deadline of a Manager in one min-heap, served by
// the Manager's loop goroutine and one time.Timer. 100,000 jobs in
// TRANSIENT_ERROR cost two heap entries each and no goroutine; 10,000
// deadlines falling due at one instant are popped in one pass.
//
// Handlers re-check the job's state under its lock, so a deadline that fires
// after it stopped mattering does nothing.
type clock struct {
	mu   sync.Mutex
	heap []*deadline
	wake func() // tells the loop that the earliest deadline moved earlier
}

// set schedules d at at, or moves it there if it is already scheduled.
func (c *clock) set(d *deadline, at time.Duration) {
	c.mu.Lock()
	d.at = at
	if d.pos == 0 {
		c.heap = append(c.heap, d)
		d.pos = len(c.heap)
		c.up(d.pos - 1)
	} else {
		c.fix(d.pos - 1)
	}
	first := d.pos == 1
	c.mu.Unlock()
	if first {
		c.wake()
	}
}

// setEarlier schedules d at at unless it is already scheduled sooner.
func (c *clock) setEarlier(d *deadline, at time.Duration) {
	c.mu.Lock()
	if d.pos != 0 && d.at <= at {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.set(d, at)
}

// stop unschedules d; it is a no-op if d is not scheduled.
func (c *clock) stop(d *deadline) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d.pos == 0 {
		return
	}
	i := d.pos - 1
	last := len(c.heap) - 1
	if i != last {
		c.swap(i, last)
	}
	c.heap[last] = nil
	c.heap = c.heap[:last]
	d.pos = 0
	if i != last {
		c.fix(i)
	}
}

// popDue removes the deadlines due at now and appends them to buf.
func (c *clock) popDue(now time.Duration, buf []*deadline) []*deadline {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.heap) > 0 && c.heap[0].at <= now {
		d := c.heap[0]
		last := len(c.heap) - 1
		c.swap(0, last)
		c.heap[last] = nil
		c.heap = c.heap[:last]
		d.pos = 0
		if last > 0 {
			c.down(0)
		}
		buf = append(buf, d)
	}
	return buf
}

// next returns the earliest deadline.
func (c *clock) next() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.heap) == 0 {
		return 0, false
	}
	return c.heap[0].at, true
}

func (c *clock) less(a, b int) bool { return c.heap[a].at < c.heap[b].at }

func (c *clock) swap(a, b int) {
	c.heap[a], c.heap[b] = c.heap[b], c.heap[a]
	c.heap[a].pos = a + 1
	c.heap[b].pos = b + 1
}

func (c *clock) fix(i int) {
	if !c.down(i) {
		c.up(i)
	}
}

func (c *clock) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !c.less(i, p) {
			return
		}
		c.swap(i, p)
		i = p
	}
}

func (c *clock) down(i int) bool {
	start := i
	n := len(c.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && c.less(r, l) {
			m = r
		}
		if !c.less(m, i) {
			break
		}
		c.swap(i, m)
		i = m
	}
	return i > start
}
