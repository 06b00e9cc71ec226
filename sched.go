package dojob

import (
	"container/heap"
	"context"
	"log/slog"
	"sync"
)

// slotKind is the concurrency pool a transfer takes its slot from.
type slotKind uint8

const (
	slotNone slotKind = iota
	slotForeground
	slotBackground
)

// Default concurrency limits.
const (
	DefaultMaxForegroundJobs = 8
	DefaultMaxBackgroundJobs = 2
)

// scheduler decides which QUEUED jobs transfer (docs/design.md, The scheduler).
// FOREGROUND jobs run concurrently up to maxFg, first come first served.
// Background jobs run up to maxBg at a time, HIGH before NORMAL before LOW,
// first come first served within a priority; a waiting background job of
// higher priority than a running one pre-empts it (one at a time): the
// running job goes back to QUEUED, keeps its place in line, and later
// resumes from its temporary file.
//
// mu guards the queues, the counts and the job fields documented as guarded
// by it. Lock order: a job's mu, then mu. Decisions are made under mu by the
// Manager's loop goroutine alone (pass); starting and pre-empting jobs
// happens after mu is released.
type scheduler struct {
	mu           sync.Mutex
	maxFg, maxBg int
	fg, bg       jobHeap
	fgRunning    int
	bgRunning    int
	bgActive     []*transfer // transfers holding a background slot
	preempting   int         // of those, how many were asked to yield
	seq          uint64
}

// enqueue puts a QUEUED job in line. A job already in line stays where it
// is; a pre-empted job gets back the place it had.
func (s *scheduler) enqueue(j *Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.qidx >= 0 {
		return
	}
	if j.requeueSeq != 0 {
		j.qseq, j.requeueSeq = j.requeueSeq, 0
	} else {
		s.seq++
		j.qseq = s.seq
	}
	heap.Push(s.heapFor(j.qprio), j)
}

// remove takes a job out of line; a no-op if it is not in line.
func (s *scheduler) remove(j *Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(j)
}

func (s *scheduler) removeLocked(j *Job) {
	if j.qidx < 0 {
		return
	}
	heap.Remove(s.heapFor(j.qprio), j.qidx)
}

// reprioritize records a job's new priority and re-sorts it if it is in line.
func (s *scheduler) reprioritize(j *Job, p Priority) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.qidx < 0 {
		j.qprio = p
		return
	}
	s.removeLocked(j)
	j.qprio = p
	heap.Push(s.heapFor(p), j)
}

func (s *scheduler) heapFor(p Priority) *jobHeap {
	if p == PriorityForeground {
		return &s.fg
	}
	return &s.bg
}

// plan is the outcome of one scheduling pass.
type plan struct {
	start  []*Job
	kinds  []slotKind
	victim *transfer
}

// pass picks the jobs to start now, reserving a slot for each, and at most
// one running background transfer to pre-empt.
func (s *scheduler) pass(p *plan) {
	p.start, p.kinds, p.victim = p.start[:0], p.kinds[:0], nil
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.fgRunning < s.maxFg && s.fg.Len() > 0 {
		p.start = append(p.start, heap.Pop(&s.fg).(*Job))
		p.kinds = append(p.kinds, slotForeground)
		s.fgRunning++
	}
	for s.bgRunning < s.maxBg && s.bg.Len() > 0 {
		p.start = append(p.start, heap.Pop(&s.bg).(*Job))
		p.kinds = append(p.kinds, slotBackground)
		s.bgRunning++
	}
	if s.bg.Len() == 0 || s.preempting > 0 {
		return
	}
	waiting := s.bg.jobs[0].qprio
	for _, x := range s.bgActive {
		if x.preempted || x.j.qprio <= waiting {
			continue
		}
		if v := p.victim; v == nil || x.j.qprio > v.j.qprio || (x.j.qprio == v.j.qprio && x.started > v.started) {
			p.victim = x
		}
	}
	if p.victim != nil {
		p.victim.preempted = true
		s.preempting++
	}
}

// hold records that x took the slot reserved for it.
func (s *scheduler) hold(x *transfer) {
	if x.slot != slotBackground {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	x.started = s.seq
	s.bgActive = append(s.bgActive, x)
}

// release frees a slot: x's when its goroutine exits, or a reservation that
// was not used (x nil).
func (s *scheduler) release(kind slotKind, x *transfer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind {
	case slotForeground:
		s.fgRunning--
	case slotBackground:
		s.bgRunning--
	}
	if x == nil {
		return
	}
	for i, y := range s.bgActive {
		if y == x {
			last := len(s.bgActive) - 1
			s.bgActive[i] = s.bgActive[last]
			s.bgActive[last] = nil
			s.bgActive = s.bgActive[:last]
			break
		}
	}
	if x.preempted {
		s.preempting--
	}
}

// jobHeap is a queue of jobs ordered by (priority, arrival). It implements
// container/heap and keeps each job's qidx up to date.
type jobHeap struct{ jobs []*Job }

func (h *jobHeap) Len() int { return len(h.jobs) }
func (h *jobHeap) Less(a, b int) bool {
	x, y := h.jobs[a], h.jobs[b]
	if x.qprio != y.qprio {
		return x.qprio < y.qprio
	}
	return x.qseq < y.qseq
}
func (h *jobHeap) Swap(a, b int) {
	h.jobs[a], h.jobs[b] = h.jobs[b], h.jobs[a]
	h.jobs[a].qidx = a
	h.jobs[b].qidx = b
}
func (h *jobHeap) Push(v any) {
	j := v.(*Job)
	j.qidx = len(h.jobs)
	h.jobs = append(h.jobs, j)
}
func (h *jobHeap) Pop() any {
	last := len(h.jobs) - 1
	j := h.jobs[last]
	h.jobs[last] = nil
	h.jobs = h.jobs[:last]
	j.qidx = -1
	return j
}

// start begins a transfer for a QUEUED job that the scheduler picked and
// reserved a slot of the given kind for.
func (j *Job) start(kind slotKind) {
	m := j.m
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.state != StateQueued || j.xfer != nil || j.completing {
		m.sched.release(kind, nil)
		return
	}
	m.sched.remove(j) // Suspend+Resume may have queued it again meanwhile
	ctx, cancel := context.WithCancelCause(context.Background())
	x := &transfer{j: j, slot: kind, ctx: ctx, cancel: cancel, done: make(chan struct{}), prev: j.last}
	m.sched.hold(x)
	if !m.spawn(j, "transfer", x.run) {
		cancel(errClosing)
		m.sched.release(kind, x)
		return
	}
	j.xfer, j.last = x, x
	now := m.now()
	x.ckptAt = now
	m.clock.set(&j.tickDL, now+j.tickIntervalLocked())
}

// preempt stops a running background transfer so a higher-priority job can
// have its slot; the job goes back to QUEUED with its place in line.
func (j *Job) preempt(x *transfer) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.xfer != x {
		return
	}
	if j.requeueLocked() && j.m.logEnabled(slog.LevelDebug) {
		j.m.queueLog(slog.LevelDebug, "dojob: pre-empted", slog.Any("job", j.id))
	}
}

// requeueLocked stops the job's running transfer (the bytes it wrote are
// kept, see transfer.keep) and puts the job back in QUEUED with the place in
// line it had, so it starts again ahead of the jobs that came after it: a
// pre-emption (preempt), or a new URL for the file being transferred
// (switchRemoteLocked). A job the scheduler started that is still QUEUED
// (no request made yet) goes back in line directly, since setStateLocked
// would see no move. It reports whether the state changed. It takes the
// scheduler's and the clock's locks and what setStateLocked takes.
func (j *Job) requeueLocked() (moved bool) {
	j.stopTransferLocked()
	j.requeueSeq = j.qseq
	if j.state == StateQueued {
		j.m.sched.enqueue(j)
		j.m.kick()
		return false
	}
	j.moveLocked(StateQueued)
	return true
}
