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
	root   *transfer     // for one file of a parallel run (parallel.go): the job's run

	// Guarded by the scheduler's mu.
	preempted bool
	started   uint64

	// Guarded by the job's mu.
	cur    *file         // the file being transferred (the watchdog reads its counter)
	seen   int64         // its byte counter at the last watchdog tick
	seenAt time.Duration // when that counter last changed (or headers arrived)
	ckptAt time.Duration // when the last checkpoint was asked for
	speed  speedWatch    // the current response's speed, for the minimum speed (speed.go)
	subs   []*transfer   // the files of a parallel run under way (parallel.go)

	ckptDue atomic.Bool // the watchdog asks the copy loop for a checkpoint
	bg      bgSync      // the checkpoint fsync in flight, off the copy goroutine

	// The context of the current file's attempt, a child of ctx: a stall
	// cancels it alone, so the file can move on to its next source
	// (mirrors.go) without ending the run. fcancel is guarded by the
	// job's mu; fctx is owned by the goroutine.
	fctx    context.Context
	fcancel context.CancelCauseFunc
	// The current round over the sources of roundFile (mirrors.go).
	// Owned by the goroutine.
	round     sourceRound
	roundFile *file

	// Owned by the goroutine.
	progressed bool    // this run moved a new byte (the no-progress window is closed)
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

// run is the transfer goroutine: files one after another, in order.
func (x *transfer) run() {
	j, m := x.j, x.j.m
	defer func() {
		if x.buf != nil {
			m.bufs.Put(x.buf)
			x.buf = nil
		}
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
	if n > 1 {
		x.runParallel(n)
		return
	}
	for {
		j.mu.Lock()
		if j.xfer != x {
			j.mu.Unlock()
			return
		}
		if context.Cause(x.ctx) == errClosing {
			j.endRunLocked() // the Manager is closing: start nothing more
			j.mu.Unlock()
			return
		}
		f := j.nextFileLocked()
		if f == nil {
			j.endRunLocked()
			j.noteProgressLocked()
			_ = j.setStateLocked(StateTransferred)
			j.mu.Unlock()
			return
		}
		_ = j.setStateLocked(StateConnecting)
		x.cur, x.seen, x.seenAt = f, f.done.Load(), m.now()
		fctx, fcancel := context.WithCancelCause(x.ctx)
		x.fctx, x.fcancel = fctx, fcancel
		j.mu.Unlock()

		err := x.transferFile(f)

		j.mu.Lock()
		x.fcancel = nil
		fcancel(errStopped)
		if j.xfer != x {
			j.mu.Unlock()
			return
		}
		switch context.Cause(x.ctx) {
		case nil:
		case errClosing:
			j.endRunLocked()
			j.mu.Unlock()
			return
		case errStalled:
			err = errStalled
		default:
			if c := context.Cause(x.ctx); errors.Is(c, errTooSlow) {
				err = c
			}
		}
		if err != nil {
			again, e := j.attemptErrorLocked(x, f, fctx, err)
			if again {
				j.mu.Unlock()
				continue
			}
			j.endRunLocked()
			j.failLocked(e)
			j.mu.Unlock()
			return
		}
		j.fileDoneLocked(f)
		j.mu.Unlock()
	}
}

// attemptErrorLocked turns the failed attempt of x at f (made under fctx)
// into the job error it ends with — or reports that f moved to its next
// source and is to be tried again at once (mirrors.go). Both run and a
// parallel run's files (parallel.go) end a failed attempt here. It takes
// the locks of failoverLocked.
func (j *Job) attemptErrorLocked(x *transfer, f *file, fctx context.Context, err error) (again bool, e *JobError) {
	if c := context.Cause(fctx); c == errStalled || errors.Is(c, errTooSlow) {
		err = &sourceError{c} // the watchdog stopped this source's attempt
	}
	e = classify(err)
	fi := f.infoLocked()
	e.File = &fi
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
// byte fsynced, and verified if it has a Checksum). Both run and a parallel
// run's files (parallel.go) end here.
func (j *Job) fileDoneLocked(f *file) {
	f.transferred = true
	f.verified = f.sum != nil // transferFile compared the digest
	f.resetDigestLocked()
	f.durable = f.done.Load()
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
func (x *transfer) transferFile(f *file) error {
	tf := &lazyTemp{fs: x.j.m.fs, f: f}
	defer tf.close()
	defer x.bg.wait() // before the close: a checkpoint's fsync may still run
	defer x.releaseDigest(f)
	if f.done.Load() > 0 {
		// Recorded bytes are checked before the request that resumes
		// after them: if they are gone the request must start at 0.
		if err := tf.open(); err != nil {
			return err
		}
		if tf.lost {
			x.j.m.logAsync(slog.LevelWarn, "dojob: temporary file missing or shorter than recorded; the file starts over", "job", x.j.id.String(), "file", f.temp, "recorded", f.done.Load())
			if err := x.restart(tf, f, "temporary file missing or shorter than recorded"); err != nil {
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
	blind := f.done.Load() > 0 && f.etag == "" && f.lastMod == ""
	j.mu.Unlock()
	if blind {
		if err := x.restart(tf, f, "no validator to resume safely"); err != nil {
			return err
		}
	}
	restarted := false
	for {
		complete, restart, err := x.step(tf, f, restarted)
		if err != nil {
			x.keep(tf, f)
			return &sourceError{err} // fromSource tells whether it is the source's
		}
		if restart != "" {
			if err := x.restart(tf, f, restart); err != nil {
				return err
			}
			restarted = true
			continue
		}
		if complete {
			break
		}
	}
	if err := tf.open(); err != nil {
		return err
	}
	if err := x.bg.wait(); err != nil {
		return localError(err)
	}
	if err := x.verify(tf, f); err != nil {
		return err
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
func (x *transfer) restart(tf *lazyTemp, f *file, reason string) error {
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
	f.restarts++
	f.restartReason = reason
	x.seen = 0
	x.h, x.hf = nil, nil
	f.emptyLocked()
	remote := f.remote
	j.changedLocked()
	j.mu.Unlock()
	j.m.logAsync(slog.LevelInfo, "dojob: starting the file over", "job", j.id.String(), "url", redactURL(remote), "reason", reason)
	return nil
}

// restartReason says in a few lower-case words why a response that check
// turned down (v.restart) or took as a whole new file (v.truncate) makes f
// start over. etag, lastMod and knownSize are what the request was made
// with; sentIfRange whether it carried If-Range.
func restartReason(resp *http.Response, sentIfRange bool, etag, lastMod string, knownSize int64) string {
	newETag, newLastMod := strongETag(resp.Header.Get("ETag")), resp.Header.Get("Last-Modified")
	switch resp.StatusCode {
	case http.StatusOK:
		// If-Range failed, or the server ignored the Range header.
		switch {
		case sentIfRange && etag != "" && newETag != etag:
			return "content changed (ETag)"
		case sentIfRange && etag == "" && lastMod != "" && newLastMod != lastMod:
			return "content changed (Last-Modified)"
		}
		return "server ignored the range"
	case http.StatusPartialContent:
		cr, ok := parseContentRange(resp.Header.Get("Content-Range"))
		switch {
		case etag != "" && newETag != "" && newETag != etag:
			return "content changed (ETag)"
		case etag == "" && lastMod != "" && newLastMod != "" && newLastMod != lastMod:
			return "content changed (Last-Modified)"
		case !ok || cr.start < 0 || cr.total < 0:
			return "server sent no usable content-range"
		case knownSize != SizeUnknown && cr.total != knownSize:
			return "content changed (size)"
		}
		return "server sent another range"
	case http.StatusRequestedRangeNotSatisfiable:
		return "server refused the range"
	}
	return "server would not resume"
}

// step makes one request for f and copies its body. It reports whether the
// file is complete, or whether it must start over from byte 0 (restart is
// then the reason, never "").
func (x *transfer) step(tf *lazyTemp, f *file, restarted bool) (complete bool, restart string, err error) {
	j, m := x.j, x.j.m
	j.mu.Lock()
	x.speed.end() // measured again once this request's response is accepted
	sp, complete := f.nextSpanLocked()
	etag, lastMod, remoteSize := f.etag, f.lastMod, f.remoteSize
	src := f.src
	cross := crossSource(src, f.valSrc, f.done.Load(), f.sum != nil)
	if cross {
		etag, lastMod = "", "" // another server's: neither sent nor compared
	}
	remote := f.sourceURLLocked() // SetRemoteName may change it; a change stops this run
	// The sensitive headers and credentials belong to the primary's origin,
	// also when a mirror is asked (a mirror of that origin gets them).
	opts := j.reqOptsLocked(f.remote)
	j.mu.Unlock()
	if complete {
		return true, "", nil
	}

	ctx := x.fctx
	if ctx == nil {
		ctx = x.ctx
	}
	if opts != nil {
		ctx = context.WithValue(ctx, reqOptsKey{}, opts)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, remote, nil)
	if err != nil {
		return false, "", protocolError(ErrInvalidArg, "building the request: %v", err)
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
		return false, "", err
	}
	// The last response's headers, whatever its status (FileInfo.ResponseHeaders).
	hdr := resp.Header.Clone()
	j.mu.Lock()
	f.respHeader = hdr
	j.mu.Unlock()
	defer func() {
		// Closing without draining: a body we stop reading early is not
		// worth the bytes it would cost to keep the connection.
		resp.Body.Close()
	}()

	v := check(ask{sp: sp, ranges: f.ranges != nil, ifRange: ifRange != "", etag: etag, lastMod: lastMod, size: remoteSize},
		resp.StatusCode, resp.Header, resp.ContentLength, time.Now())
	if v.err == nil && f.expSize > 0 && v.remoteSize != SizeUnknown && v.remoteSize != f.expSize {
		// Checked before anything else: not a byte of a file of the
		// wrong size is written, nor is the file emptied for it.
		return false, "", validationError("the server announced %d bytes, not the expected %d", v.remoteSize, f.expSize)
	}
	switch {
	case v.err != nil:
		return false, "", v.err
	case v.restart:
		if restarted {
			if f.ranges != nil {
				return false, "", protocolError(ErrInsufficientRangeSupport, "the server does not serve the requested ranges consistently")
			}
			return false, "", protocolError(ErrBlockSizeMismatch, "the server's answer does not match the file it served before")
		}
		return false, restartReason(resp, ifRange != "", etag, lastMod, remoteSize), nil
	case v.complete:
		// 416 at full size: what we have is the whole file, whose size the
		// answer confirmed.
		j.mu.Lock()
		f.size = f.done.Load()
		f.remoteSize = f.size
		j.mu.Unlock()
		return true, "", nil
	}

	if v.truncate {
		// A 200 to a resume request: the server ignored the range or the
		// content changed. The body is the whole new file.
		if err := x.restart(tf, f, restartReason(resp, ifRange != "", etag, lastMod, remoteSize)); err != nil {
			return false, "", err
		}
	}

	if err := tf.open(); err != nil {
		return false, "", err
	}
	// Accept the response: TRANSFERRING, the validators and sizes it told.
	j.mu.Lock()
	if !x.liveLocked() {
		j.mu.Unlock()
		return false, "", errStopped
	}
	if cross || v.etag != "" || v.lastMod != "" || f.etag == "" && f.lastMod == "" {
		f.etag, f.lastMod = v.etag, v.lastMod
	}
	f.valSrc = src
	if v.remoteSize != SizeUnknown {
		f.remoteSize = v.remoteSize
		if f.ranges == nil {
			f.size = v.remoteSize
		} else {
			f.size = rangesSize(f.ranges, v.remoteSize)
		}
	}
	now := m.now()
	x.seenAt = now
	x.mark = f.markLocked() // only bytes past it are progress
	// The minimum speed is measured from here, over this response's body.
	x.speed.begin(now, f.done.Load())
	if j.minSpeed > 0 {
		j.m.clock.setEarlier(&j.tickDL, now+j.speedWindow) // judged at the window's end
	}
	_ = j.setStateLocked(StateTransferring)
	j.mu.Unlock()

	if err := x.ensureDigest(f); err != nil {
		return false, "", err
	}

	n, err := x.copy(tf.tempFile, resp.Body, f, v.length)
	// The body ended: the fsync and the checks that follow are not judged
	// by the minimum speed.
	j.mu.Lock()
	x.speed.end()
	j.mu.Unlock()
	if err != nil {
		return false, "", err
	}
	if v.length >= 0 && n < v.length {
		return false, "", fmt.Errorf("body ended after %d of %d bytes: %w", n, v.length, io.ErrUnexpectedEOF)
	}
	if f.ranges == nil && v.remoteSize == SizeUnknown {
		// No announced length: the end of the body is the end of the file.
		j.mu.Lock()
		f.size = f.done.Load()
		f.remoteSize = f.size
		j.mu.Unlock()
		return true, "", nil
	}
	if f.ranges != nil {
		return false, "", nil // the next step finds the next range, or completion
	}
	return true, "", nil
}
