package dojob

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// transfer is one run of a job's transfer goroutine: from QUEUED through
// its files until TRANSFERRED, a failure, or a stop (Suspend, Cancel,
// Complete, pre-emption, the no-progress timeout, a stall, Close). A stop
// cancels ctx with its cause; the goroutine then exits without touching the
// job's state, except for a stall, which it reports as a transient error.
type transfer struct {
	j      *Job
	slot   slotKind
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the goroutine has exited
	prev   *transfer     // the job's previous run, which must exit first

	// Guarded by the scheduler's mu.
	preempted bool
	started   uint64

	// Guarded by the job's mu.
	ckptAt  time.Duration // when the last checkpoint was asked for
	workers []*worker     // the files under way, one worker each (parallel.go)
}

// worker is one file of a run under way (runWorkers): it makes the file's
// attempts over its sources and owns what an attempt needs — the offset and
// validators it asks with, the copy buffer, the digest, the segments — on
// its own goroutine. What the job shows of the file it writes under the
// job's lock at the points docs/design.md lists ("The core").
type worker struct {
	j   *Job
	run *transfer       // the run it belongs to
	ctx context.Context // the run's, shared by its workers

	// Guarded by the job's mu.
	cur    *file         // the file being transferred (the watchdog reads its counter)
	seen   int64         // its byte counter at the last watchdog tick
	seenAt time.Duration // when that counter last changed (or headers arrived)
	speed  speedWatch    // the current response's speed, for the minimum speed (speed.go)

	ckptDue atomic.Bool // the watchdog asks the copy loop for a checkpoint
	// noSplit: the file stops being split for the rest of transferFile (a
	// server that cannot serve it in segments); segConns: the connections
	// of a fetch in segments (segment.go), guarded by the job's mu.
	noSplit  bool
	segConns []*segConn
	waiting  bool      // waiting for room in the host's budget (guarded by the job's mu)
	bg       bgSync    // the checkpoint fsync in flight, off the copy goroutine
	pc       paceClock // time its copy loops waited for bandwidth (pace.go)

	// The context of the current attempt, a child of ctx: a stall cancels
	// it alone, so the file can move on to its next source (mirrors.go)
	// without ending the run. fcancel is guarded by the job's mu; fctx is
	// owned by the goroutine.
	fctx    context.Context
	fcancel context.CancelCauseFunc
	// The current round over the sources of roundFile (mirrors.go).
	// Owned by the goroutine.
	round     sourceRound
	roundFile *file

	// Owned by the goroutine.
	progressed bool    // this attempt moved a new byte (the no-progress window is closed)
	mark       int64   // the current file's high-water mark when its response was accepted
	buf        *[]byte // copy buffer from the Manager's pool

	// The running digest of the file being transferred (verify.go): when
	// hf is that file, h has hashed exactly its f.done bytes. nil for a
	// file without a Checksum.
	h    hash.Hash
	hf   *file
	pipe *hashPipe // the hashing pipeline while copy runs, else nil
}

// errClosing stops transfers when the Manager closes; the job keeps its
// state, which a persisted Manager records for the next one.
var errClosing = errors.New("manager closing")

// run is the transfer goroutine of one run of the job: it keeps up to
// MaxParallelFiles workers going, one per file (the first files not yet
// transferred, in order), applies their results under the job's lock, and
// waits for every worker before it exits (runWorkers, parallel.go). Files
// transferred one after another, as BITS does, are the limit of one.
func (x *transfer) run() {
	j, m := x.j, x.j.m
	defer func() {
		m.sched.release(x.slot, x)
		close(x.done)
		m.kick()
	}()
	if x.prev != nil {
		<-x.prev.done // its goroutine may still hold a temporary file
		x.prev = nil
	}
	j.mu.Lock()
	n := j.maxParallelLocked()
	j.mu.Unlock()
	x.runWorkers(n)
}

// attemptErrorLocked turns the failed attempt of x at f (made under fctx)
// into the job error it ends with — or reports that f moved to its next
// source and is to be tried again at once (mirrors.go). A worker's runFile
// ends each failed attempt here. It takes the locks of failoverLocked.
func (j *Job) attemptErrorLocked(x *worker, f *file, fctx context.Context, err error) (again bool, e *JobError) {
	if c := context.Cause(fctx); c == errStalled || errors.Is(c, errTooSlow) {
		err = &sourceError{c} // the watchdog stopped this source's attempt
	}
	e = classify(err)
	e.aboutLocked(f)
	if fromSource(err, e) {
		next, final := j.failoverLocked(x, f, e)
		if next {
			return true, nil
		}
		e = final
	}
	return false, e
}

// fileDoneLocked records that transferFile brought f to completion (every
// byte fsynced, and verified if it has a Checksum), for runWorkers.
func (j *Job) fileDoneLocked(f *file) {
	f.Transferred = true
	f.Verified = f.sum != nil // transferFile compared the digest
	f.resetDigestLocked()
	f.Durable = f.done.Load()
	j.changedLocked()
	// A finished file is progress even if every byte of it was fetched
	// before (a file that started over and ended below its old mark,
	// e.g. new content that is shorter): the job is a file further on,
	// and a file finishes once, so this cannot keep a job alive.
	j.noteProgressLocked()
	j.queueFileLocked(f)
}

// endRunLocked detaches the finishing run from the job. It takes the clock's
// lock.
func (j *Job) endRunLocked() {
	j.xfer = nil
	j.m.clock.stop(&j.tickDL)
}

// transferFile brings f's temporary file to completion and fsyncs it. It
// resumes from the bytes already there and checks what the server does. The
// temporary file is opened only once a response is accepted, so an attempt
// that fails with a status or a network error leaves nothing on disk.
func (x *worker) transferFile(f *file) error {
	tf := &lazyTemp{fs: x.j.m.fs, f: f}
	x.j.mu.Lock()
	if n := len(f.Spans); n > 0 {
		tf.spanEnd = f.Spans[n-1][1]
	}
	tf.w = f.w
	x.j.mu.Unlock()
	if f.Stream && tf.w == nil {
		return noWriterError(x.j.fileIndex(f))
	}
	x.noSplit = false
	defer tf.close()
	defer x.bg.wait() // before the close: a checkpoint's fsync may still run
	defer x.releaseDigest(f)
	if f.done.Load() > 0 {
		// Recorded bytes are checked before the request that resumes
		// after them: if they are gone the request must start at 0.
		if err := tf.open(); err != nil {
			return err
		}
		why := ""
		switch {
		case tf.lost:
			why = tf.lostWhy()
			if !f.Stream {
				x.j.m.logAsync(slog.LevelWarn, "dojob: temporary file missing or shorter than recorded; the file starts over", "job", x.j.id.String(), "file", f.Temp, "recorded", f.done.Load())
			}
		case f.Stream && tf.spanEnd > 0 && !tf.sink().segmentable(f.sum != nil):
			// Bytes in segments, and a writer (set again) that cannot
			// take the gaps at their offsets.
			why = "the writer cannot take bytes at offsets"
		case f.Stream && !x.canDigest(tf, f):
			// A Checksum needs the digest of the bytes kept; a writer
			// that cannot be read back cannot give it again.
			why = "the writer's bytes cannot be hashed again"
		}
		if why != "" {
			if err := x.restart(tf, f, why); err != nil {
				return err
			}
		}
	}
	// Resuming needs a validator (a strong ETag or Last-Modified) to send in
	// If-Range: without one a changed file of the same size would be spliced
	// silently. Such a partial file starts over instead — a ranged one too:
	// its ranges are fetched by offset just the same.
	j := x.j
	j.mu.Lock()
	blind := f.done.Load() > 0 && f.ETag == "" && f.LastModified == ""
	j.mu.Unlock()
	if blind {
		if err := x.restart(tf, f, "no validator to resume safely"); err != nil {
			return err
		}
	}
	// restarted: the file started over in this attempt (its requests carry
	// no If-Range any more); chained: a response of this attempt gave the
	// bytes the file holds (ask.chain).
	restarted, chained := false, false
	for {
		complete, restart, err := x.step(tf, f, restarted, chained)
		if err == errRefetch {
			// The file failed its check holding bytes of a mirror: it was
			// emptied and goes back to its primary (verify.go).
			restarted, chained = false, false
			continue
		}
		if err != nil {
			x.keep(tf, f)
			return &sourceError{err} // fromSource tells whether it is the source's
		}
		if restart != "" {
			if err := x.restart(tf, f, restart); err != nil {
				return err
			}
			restarted, chained = true, false
			continue
		}
		chained = true
		if !complete {
			continue
		}
		if err := tf.open(); err != nil {
			return err
		}
		if err := x.bg.wait(); err != nil {
			return localError(err)
		}
		err = x.verify(tf, f)
		if err == errRefetch {
			restarted, chained = false, false
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	if err := tf.Sync(); err != nil {
		return localError(err)
	}
	return tf.finish()
}

// restart empties f's temporary file: the content changed on the server, or
// the server would not resume, or nothing could tell whether it changed;
// reason says which (FileInfo.RestartReason). The high-water mark keeps the
// most the file held, so the bytes fetched again are not progress.
func (x *worker) restart(tf *lazyTemp, f *file, reason string) error {
	j := x.j
	if err := tf.open(); err != nil {
		return err
	}
	// A checkpoint's sync in flight would record a length of the old
	// content after the truncation.
	_ = x.bg.wait()
	if err := tf.Truncate(0); err != nil {
		return localError(err)
	}
	if _, err := tf.Seek(0, io.SeekStart); err != nil {
		return localError(err)
	}
	j.mu.Lock()
	f.Restarts++
	f.RestartReason = reason
	x.seen = 0
	x.h, x.hf = nil, nil
	f.emptyLocked()
	remote := f.Remote
	j.changedLocked()
	j.mu.Unlock()
	j.m.logAsync(slog.LevelInfo, "dojob: starting the file over", "job", j.id.String(), "url", redactURL(remote), "reason", reason)
	return nil
}

// step makes one request for f and copies its body. It reports whether the
// file is complete, or whether it must start over from byte 0 (restart is
// then the reason, never ""). restarted and chained are transferFile's.
func (x *worker) step(tf *lazyTemp, f *file, restarted, chained bool) (complete bool, restart string, err error) {
	j, m := x.j, x.j.m
	j.mu.Lock()
	x.speed.end() // measured again once this request's response is accepted
	sp, complete := f.nextSpanLocked()
	etag, lastMod, remoteSize := f.ETag, f.LastModified, f.RemoteSize
	src := f.curSourceLocked()
	have := f.done.Load()
	remote := j.requestURLLocked(f) // SetRemoteName may change it; a change stops this run
	// The sensitive headers and credentials belong to the primary's origin,
	// also when a mirror is asked (a mirror of that origin gets them).
	opts := j.reqOptsLocked(f.Remote)
	conns := j.maxConnsLocked()
	room, capped := j.sizeBudgetLocked(f) // SetMaximumDownloadSize
	j.mu.Unlock()
	if complete {
		return true, "", nil
	}
	if sp.whole && conns > 1 && f.Ranges == nil && !x.noSplit {
		// Ask for the whole file as a range: a validated 206 is what lets
		// it be split over several connections (segment.go).
		sp.ranged = true
	}
	// A file's connection waits for room in its host's budget
	// (Config.MaxConnectionsPerHost); the watchdog does not take the wait
	// for a stall.
	host := hostOf(remote)
	j.mu.Lock()
	x.waiting = true
	j.mu.Unlock()
	err = m.hosts.wait(x.attemptCtx(), host)
	j.mu.Lock()
	x.waiting, x.seenAt = false, m.now()
	j.mu.Unlock()
	if err != nil {
		return false, "", err
	}
	defer m.hosts.give(host)

	ctx := x.attemptCtx()
	if opts != nil {
		ctx = context.WithValue(ctx, reqOptsKey{}, opts)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, remote, nil)
	if err != nil {
		return false, "", protocolError(ErrInvalidArg, "building the request: %v", redactErr(err))
	}
	// The exact bytes, never a compressed representation: offsets must
	// count the same bytes on every attempt.
	req.Header.Set("Accept-Encoding", "identity")
	ifRange := ""
	if sp.ranged {
		end := ""
		if sp.end >= 0 {
			end = strconv.FormatInt(sp.end, 10)
		}
		req.Header.Set("Range", "bytes="+strconv.FormatInt(sp.off, 10)+"-"+end)
		// After a restart, no If-Range: a server that answered it with 304
		// would again (a 206 is still checked against the validators).
		switch {
		case restarted:
		case etag != "":
			ifRange = etag
		case lastMod != "":
			ifRange = lastMod
		}
		if ifRange != "" {
			req.Header.Set("If-Range", ifRange)
		}
	}

	resp, err := m.client.Do(req)
	if err != nil {
		// net/http's *url.Error names the URL in full, a redirect
		// target's with its signature: every error dojob hands out or
		// logs shows it redacted.
		return false, "", redactErr(err)
	}
	// What dojob keeps of the last response's headers, whatever its status
	// (FileInfo.ResponseHeaders): a server's headers are bounded by the
	// transport (maxResponseHeaderBytes) as they are read, and to the
	// allow-list of keptHeaders as they are kept.
	hdr := keptHeaders(resp.Header)
	j.mu.Lock()
	f.ResponseHeaders = hdr
	j.mu.Unlock()
	defer func() {
		// Closing without draining: a body we stop reading early is not
		// worth the bytes it would cost to keep the connection.
		resp.Body.Close()
	}()

	a := ask{sp: sp, ranges: f.Ranges != nil, ifRange: ifRange != "", etag: etag, lastMod: lastMod, size: remoteSize,
		cont: have > 0, chain: chained}
	v := check(a, resp.StatusCode, resp.Header, resp.ContentLength, time.Now())
	if v.err == nil && f.ExpectedSize > 0 && v.remoteSize != SizeUnknown && v.remoteSize != f.ExpectedSize {
		// Checked before anything else: not a byte of a file of the
		// wrong size is written, nor is the file emptied for it.
		return false, "", validationError("the server announced %d bytes, not the expected %d", v.remoteSize, f.ExpectedSize)
	}
	if capped && v.err == nil && !v.restart && !v.complete {
		// The maximum download size, checked as early: a file announced
		// too large fails before a byte of its body is read.
		total := v.remoteSize
		if total != SizeUnknown && f.Ranges != nil {
			total = rangesSize(f.Ranges, total)
		}
		if total == SizeUnknown && v.length >= 0 && f.Ranges == nil {
			total = v.length
			if !v.truncate {
				total += sp.off
			}
		}
		if total != SizeUnknown && total > room {
			return false, "", sizeLimitError("the file's %d bytes exceed the %d the job's maximum download size leaves", total, room)
		}
	}
	switch {
	case v.err != nil:
		return false, "", v.err
	case v.restart:
		if restarted {
			return false, "", inconsistentError(f)
		}
		return false, v.reason, nil
	case v.complete:
		// 416 at full size: what we have is the whole file, whose size the
		// answer confirmed.
		j.mu.Lock()
		f.Size = f.done.Load()
		f.RemoteSize = f.Size
		j.mu.Unlock()
		return true, "", nil
	}

	if v.truncate {
		// A 200 to a resume request: the server ignored the range or the
		// content changed. The body is the whole new file.
		if err := x.restart(tf, f, v.reason); err != nil {
			return false, "", err
		}
	}

	if err := tf.open(); err != nil {
		return false, "", err
	}
	j.mu.Lock()
	if !x.liveLocked() {
		j.mu.Unlock()
		return false, "", errStopped
	}
	x.acceptedLocked(f, a, v, src)
	segmented := x.segmentableLocked(tf, f, resp.StatusCode, v) && !v.truncate
	j.mu.Unlock()

	if segmented {
		err := x.fetchSegments(tf, f, resp.Body, sp, conns)
		j.mu.Lock()
		x.speed.end()
		j.mu.Unlock()
		var rs *segRestart
		if errors.As(err, &rs) {
			if restarted {
				return false, "", inconsistentError(f)
			}
			return false, rs.reason, nil
		}
		if err != nil {
			return false, "", err
		}
		return false, "", nil // the next step finds the next gap, or completion
	}

	if err := x.ensureDigest(tf, f); err != nil {
		return false, "", err
	}

	// FileSpec.Size bounds a body of unannounced length: it is read up to
	// the expected size, and one byte more fails the file — an endless
	// body cannot fill the disk. (An announced length was checked above.)
	limit, bounded := v.length, false
	if limit < 0 && f.ExpectedSize > 0 && f.Ranges == nil {
		start := sp.off
		if v.truncate {
			start = 0
		}
		limit, bounded = max(f.ExpectedSize-start, 0), true
	}
	// So does the job's maximum download size: what it leaves for this
	// file, and one byte more fails the job (the bytes before are kept).
	capBound := false
	if capped && v.length < 0 && f.Ranges == nil {
		start := sp.off
		if v.truncate {
			start = 0
		}
		if left := max(room-start, 0); limit < 0 || left < limit {
			limit, bounded, capBound = left, true, true
		}
	}
	n, err := x.copy(tf.tempFile, resp.Body, f, limit)
	// The body ended: the fsync and the checks that follow are not judged
	// by the minimum speed.
	j.mu.Lock()
	x.speed.end()
	j.mu.Unlock()
	if err != nil {
		return false, "", err
	}
	if bounded && n == limit {
		var one [1]byte
		k, err := io.ReadFull(resp.Body, one[:])
		switch {
		case k > 0 && capBound:
			return false, "", sizeLimitError("the file is longer than the %d bytes the job's maximum download size leaves", room)
		case k > 0:
			return false, "", x.reject(tf, f, fmt.Sprintf("the body is longer than the expected %d bytes", f.ExpectedSize))
		case err != io.EOF:
			return false, "", err
		}
	}
	if v.length >= 0 && n < v.length {
		return false, "", fmt.Errorf("body ended after %d of %d bytes: %w", n, v.length, io.ErrUnexpectedEOF)
	}
	if f.Ranges == nil && v.remoteSize == SizeUnknown {
		// No announced length: the end of the body is the end of the file.
		j.mu.Lock()
		f.Size = f.done.Load()
		f.RemoteSize = f.Size
		j.mu.Unlock()
		return true, "", nil
	}
	if f.Ranges != nil {
		return false, "", nil // the next step finds the next range, or completion
	}
	return true, "", nil
}

// attemptCtx is the context of the worker's current attempt.
func (x *worker) attemptCtx() context.Context {
	if x.fctx != nil {
		return x.fctx
	}
	return x.ctx
}

// acceptedLocked is the worker's report that the answer v to request a, from
// source src, was accepted for f: the job shows the validators and sizes it
// told and moves to TRANSFERRING, and the watchdog, the progress mark and
// the minimum speed start on its body. One of the four places where a
// worker writes the job's view of its file (with a checkpoint's note, a
// restart and the end of a fetch in segments). It takes the clock's lock
// and those of moveLocked.
func (x *worker) acceptedLocked(f *file, a ask, v verdict, src int) {
	j := x.j
	if !a.cont || v.truncate {
		// The first bytes of the file: its validators are this answer's.
		// (An answer that continues the file proved it carries the same.)
		f.ETag, f.LastModified = v.etag, v.lastMod
	}
	j.servedLocked(f, src)
	if v.remoteSize != SizeUnknown {
		f.RemoteSize = v.remoteSize
		if f.Ranges == nil {
			f.Size = v.remoteSize
		} else {
			f.Size = rangesSize(f.Ranges, v.remoteSize)
		}
	}
	now := j.m.now()
	x.seenAt = now
	x.mark = f.markLocked() // only bytes past it are progress
	// The minimum speed is measured from here, over this response's body.
	x.speed.begin(x.speedNow(now), f.done.Load())
	if j.minSpeed > 0 {
		j.m.clock.setEarlier(&j.tickDL, now+j.speedWindow) // judged at the window's end
	}
	j.moveLocked(StateTransferring)
}

// inconsistentError is the error of a file whose server asks it to start
// over a second time in one attempt: the answers do not describe one file,
// and starting over again could go on for ever.
func inconsistentError(f *file) error {
	if f.Ranges != nil {
		return protocolError(ErrInsufficientRangeSupport, "the server does not serve the requested ranges consistently")
	}
	return protocolError(ErrBlockSizeMismatch, "the server's answer does not match the file it served before")
}
