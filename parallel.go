package dojob

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// MaxParallelFilesLimit is the most files one job transfers at once
// (SetMaxParallelFiles).
const MaxParallelFilesLimit = 32

// errSiblingFailed stops the other files of a job whose attempt failed on
// one file: the attempt as a whole has failed.
var errSiblingFailed = errors.New("another file of the job failed")

// SetMaxParallelFiles sets how many of the job's files may transfer at once,
// each over its own connection: 1 (the default) transfers them one after
// another in the order added, as BITS does; n > 1 lets up to n run
// together, which pays off for many small files. The job still holds one
// transfer slot and has one state: CONNECTING until the first response is
// accepted, then TRANSFERRING until every file is transferred. A failure of
// one file fails the job's attempt: the other files stop and keep their
// bytes, and the whole job retries (or goes to ERROR) as with one file.
// FileTransferred callbacks come in the order the files finish, which with
// n > 1 need not be the order added. A new value applies from the next
// attempt (a running one keeps its own). Files from one host wait (in
// CONNECTING, not a stall) while that host has Config.MaxConnectionsPerHost
// connections of the Manager open. n outside 1 to
// MaxParallelFilesLimit returns ErrInvalidArg. The value is persisted.
func (j *Job) SetMaxParallelFiles(n int) error {
	if n < 1 || n > MaxParallelFilesLimit {
		return errorf(ErrInvalidArg, "parallel files %d is outside 1 to %d", n, MaxParallelFilesLimit)
	}
	return j.update(func() (bool, error) {
		if j.maxParallelLocked() == n {
			return false, nil
		}
		j.parallel = n
		return true, nil
	})
}

// MaxParallelFiles returns how many of the job's files may transfer at once.
func (j *Job) MaxParallelFiles() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.maxParallelLocked()
}

// maxParallelLocked is MaxParallelFiles; the field's zero value means 1.
func (j *Job) maxParallelLocked() int { return max(j.parallel, 1) }

// liveLocked reports whether x's run is still the job's running transfer.
func (x *worker) liveLocked() bool { return x.j.xfer == x.run }

// stalledLocked is the watchdog's look at every file the run is
// transferring: it notes which counters moved and reports whether one of
// them has not moved (nor had response headers) for the stall timeout, or
// is below the job's minimum speed (speed.go), and that attempt has no
// context of its own to stop — the cause to stop the run with; nil if
// none. due is the earliest instant an attempt wants the next tick at (0:
// none).
func (x *transfer) stalledLocked(now, stall time.Duration) (due time.Duration, cause error) {
	for _, w := range x.workers {
		d, c := w.watchLocked(now, stall)
		if c != nil {
			return 0, c
		}
		if d > 0 && (due == 0 || d < due) {
			due = d
		}
	}
	return due, nil
}

// watchLocked is stalledLocked for the one file x is transferring. A
// stalled or too slow attempt that has a context of its own (fcancel) is
// stopped alone — the file may fail over to its next source (mirrors.go) —
// and watched afresh; otherwise the cause is returned, to stop the run.
func (x *worker) watchLocked(now, stall time.Duration) (due time.Duration, cause error) {
	f := x.cur
	if f == nil {
		return 0, nil
	}
	n := f.done.Load()
	if _, pacing := x.pc.waited(now); x.waiting || pacing {
		// Waiting for room in the host's budget, or for bandwidth
		// (pace.go): not a stall.
		x.seen, x.seenAt = n, now
		return 0, nil
	}
	// In segments, each connection is watched on its own: one that wrote
	// nothing for the stall timeout is stopped alone, and its segment goes
	// to the others (segment.go).
	for _, c := range x.segConns {
		if m := c.moved.Load(); m != c.seen {
			c.seen, c.seenAt = m, now
		} else if now-c.seenAt >= stall {
			c.cancel(errStalled)
			c.seenAt = now
		}
	}
	if j := x.j; j.minSpeed > 0 {
		// Judged on the time not spent waiting for bandwidth (pace.go):
		// a limit below the minimum speed paces the job, it does not fail it.
		sn := x.speedNow(now)
		due, cause = x.speed.observe(sn, n, j.minSpeed, j.speedWindow)
		if due > 0 {
			due += now - sn
		}
	}
	if cause == nil {
		if n != x.seen {
			x.seen, x.seenAt = n, now
			return due, nil
		}
		if now-x.seenAt < stall {
			return due, nil
		}
		cause = errStalled
	}
	if x.fcancel == nil {
		return 0, cause
	}
	x.fcancel(cause)
	x.fcancel = nil
	x.seen, x.seenAt = n, now
	x.speed.end()
	return 0, nil
}

// transferringLocked reports whether one of the run's workers is
// transferring f.
func (x *transfer) transferringLocked(f *file) bool {
	for _, w := range x.workers {
		if w.cur == f {
			return true
		}
	}
	return false
}

// askCheckpointLocked asks the copy loop of every file the run is
// transferring for a checkpoint.
func (x *transfer) askCheckpointLocked() {
	for _, w := range x.workers {
		w.ckptDue.Store(true)
	}
}

// nextFreeFileLocked returns the first file not yet transferred and not in
// busy, or nil, looking from index *from on, and moves *from past the file
// it returns. A run passes the same cursor each time: the files before it
// were transferred or started by the run, and a started file is not free
// again in that run (it finishes, or its failure ends the run's starts),
// so a job of n files costs n steps, not n²/2.
func (j *Job) nextFreeFileLocked(busy map[*file]bool, from *int) *file {
	for i := *from; i < len(j.files); i++ {
		if f := j.files[i]; !f.Transferred && !busy[f] {
			*from = i + 1
			return f
		}
	}
	*from = len(j.files)
	return nil
}

// fileResult is what a worker of a parallel run reports.
type fileResult struct {
	w   *worker
	f   *file
	err error
}

// runWorkers is the body of run for a job that may transfer n files at
// once: it keeps up to n workers going — a worker (transfer.go) for one
// file at a time, sharing a context derived from x's — and
// applies their results under the job's lock. The workers are owned by this
// goroutine, which waits for every one before it returns. A worker that
// starts while no other is busy moves the job to CONNECTING (so files
// transferred one after another each go CONNECTING → TRANSFERRING, as in
// BITS); one that starts beside others leaves the state as it is.
func (x *transfer) runWorkers(n int) {
	j, m := x.j, x.j.m
	ctx, cancel := context.WithCancelCause(x.ctx)
	defer cancel(nil)
	results := make(chan fileResult, n)
	var wg sync.WaitGroup
	defer wg.Wait()
	busy := make(map[*file]bool, n)
	var failed error // the first file's failure; the attempt has failed
	var failedFile *file
	next := 0 // nextFreeFileLocked's cursor
	j.mu.Lock()
	for {
		// Holding the job's lock from the result just applied: the next
		// file starts, or the job becomes TRANSFERRED, in the same
		// critical section as the last file's FileTransferred is queued,
		// so that callback sees the state that follows it.
		live := j.xfer == x
		closing := context.Cause(x.ctx) == errClosing
		for live && !closing && failed == nil && len(busy) < n {
			f := j.nextFreeFileLocked(busy, &next)
			if f == nil {
				break
			}
			if len(busy) == 0 {
				j.moveLocked(StateConnecting)
			}
			w := &worker{j: j, run: x, ctx: ctx}
			w.cur, w.seen, w.seenAt = f, f.done.Load(), m.now()
			x.workers = append(x.workers, w)
			busy[f] = true
			wg.Go(func() { results <- fileResult{w, f, w.runFile(f)} })
		}
		if len(busy) == 0 {
			switch {
			case !live:
			case closing:
				j.endRunLocked()
			case failed != nil && isHold(failed):
				// Held by policy (hold.go): not a failed attempt. The
				// worker decided without j.mu held since, and a policy
				// pass (NetworkCostChanged, a change of the limits) in
				// between found the job running and left it: decide
				// again now, under the lock those passes take.
				j.endRunLocked()
				if code, until := j.blockedLocked(); code != 0 {
					j.holdLocked(code, until)
				} else {
					j.moveLocked(StateQueued)
				}
			case failed != nil:
				if c := context.Cause(x.ctx); c == errStalled || errors.Is(c, errTooSlow) {
					failed = c
				}
				e := classify(failed)
				if e.File == nil {
					// runFile's error names the file as it was when its
					// source failed (attemptErrorLocked); others get it now.
					e.aboutLocked(failedFile)
				}
				j.endRunLocked()
				j.failLocked(e)
			default:
				j.endRunLocked()
				j.noteProgressLocked()
				j.moveLocked(StateTransferred)
			}
			j.mu.Unlock()
			return
		}
		j.mu.Unlock()

		r := <-results
		delete(busy, r.f)
		if r.w.buf != nil {
			m.bufs.Put(r.w.buf)
			r.w.buf = nil
		}
		j.mu.Lock()
		x.workers = slices.DeleteFunc(x.workers, func(w *worker) bool { return w == r.w })
		switch {
		case r.err == nil && j.xfer == x:
			j.fileDoneLocked(r.f)
		case r.err != nil && failed == nil && context.Cause(ctx) != errSiblingFailed:
			failed, failedFile = r.err, r.f
			cancel(errSiblingFailed)
		}
	}
}

// runFile is one file of a parallel run: its attempts over the file's
// sources, as run makes them for a file (a source's failure moves the file
// to its next source, mirrors.go), until it is done, fails for good, or the
// run stops — then the run decides (an error of a stopped run is returned
// as it is).
func (w *worker) runFile(f *file) error {
	j := w.j
	j.mu.Lock()
	j.startSourceLocked(f) // a cache host first (cache.go)
	j.mu.Unlock()
	for {
		j.mu.Lock()
		base := w.ctx
		if f.cs.cur > 0 {
			base = withCacheDial(base)
		}
		fctx, fcancel := context.WithCancelCause(base)
		w.fctx, w.fcancel = fctx, fcancel
		j.mu.Unlock()

		err := w.checkHold()
		if err != nil {
			j.mu.Lock()
			w.fcancel = nil
			fcancel(errStopped)
			j.mu.Unlock()
			return err
		}
		err = w.transferFile(f)

		j.mu.Lock()
		w.fcancel = nil
		fcancel(errStopped)
		if err == nil || !w.liveLocked() || w.ctx.Err() != nil {
			j.mu.Unlock()
			return err
		}
		again, e := j.attemptErrorLocked(w, f, fctx, err)
		j.mu.Unlock()
		if again {
			continue
		}
		return e
	}
}
