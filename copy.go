package dojob

import (
	"io"
)

// bufSize is the copy buffer of one transfer. Memory per transfer is this
// buffer, whatever the size of the file.
const bufSize = 256 << 10

// keep makes what an interrupted transfer of f wrote durable and records
// it, so the next run — in this process or after a restart — resumes from
// there rather than from the last checkpoint. It runs on every way a
// transfer ends early: an error, a stall, Suspend, pre-emption, Close.
func (x *worker) keep(tf *lazyTemp, f *file) {
	if tf.tempFile == nil {
		return
	}
	_ = x.bg.wait() // a failed checkpoint changes nothing: this fsync decides
	if err := tf.Sync(); err != nil {
		return // the checkpoint recorded before stays the trusted length
	}
	state := x.digestState(f)
	j := x.j
	j.mu.Lock()
	if n := f.done.Load(); n != f.Durable || state != nil && f.HashLen != n {
		f.Durable = n
		if state != nil {
			f.HashState, f.HashLen = state, n
		}
		j.changedLocked()
	}
	j.mu.Unlock()
}

// copy is the hot path: it moves body bytes into the temporary file. Per
// write it adds to f's byte counter and compares it with the file's
// high-water mark, and reads one flag — no lock, no clock, no allocation.
// The first new byte of a run (one past the mark) closes the no-progress
// window (once, under the lock); the watchdog tick asks for checkpoints.
func (x *worker) copy(tf tempFile, body io.Reader, f *file, length int64) (int64, error) {
	if x.buf == nil {
		x.buf = x.j.m.bufs.Get().(*[]byte)
	}
	buf := *x.buf
	// With a Checksum the bytes are hashed on a second goroutine while the
	// next buffer is read and written (a pipeline of a few buffers); when
	// copy returns, or before a checkpoint, x.h has hashed every byte
	// written. Without one nothing of this runs.
	var hp *hashPipe
	if x.h != nil {
		hp = x.startHashPipe()
		defer hp.stop()
	}
	var n int64
	pending := int64(0) // bytes written since the last startWriteback
	for length < 0 || n < length {
		if hp != nil {
			buf = hp.next()
		}
		rd := buf
		if length >= 0 && length-n < int64(len(rd)) {
			rd = rd[:length-n]
		}
		// A bandwidth limit (pace.go): read no more than a bucket holds,
		// and pay for the bytes before the next read. Unlimited, this is
		// two atomic loads a read.
		pb, paced := x.pace()
		if paced {
			rd = rd[:pb.readLen(len(rd))]
		}
		nr, rerr := body.Read(rd)
		if nr > 0 {
			nw, werr := tf.Write(rd[:nr])
			n += int64(nw)
			if hp != nil {
				hp.send(nw) // the bytes just written, so the digest keeps up with f.done
			}
			if werr != nil {
				f.done.Add(int64(nw))
				return n, localError(werr)
			}
			if pending += int64(nw); pending >= writebackChunk {
				end := f.done.Load() + int64(nw) // the file's length after this write
				startWriteback(tf, end-pending, pending)
				pending = 0
			}
			if x.account(f, nw) {
				if !x.progressed && f.done.Load() > x.mark {
					x.firstByte()
				}
				if x.ckptDue.Load() {
					if err := x.checkpoint(tf, f); err != nil {
						return n, err
					}
				}
			}
			if paced {
				if err := x.pay(x.attemptCtx(), pb, nr); err != nil {
					return n, err
				}
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, redactErr(rerr) // net/http's, which may name a URL
		}
	}
	return n, nil
}

// account is the bookkeeping of one write on the hot path: one atomic add
// to the file's byte counter (which Progress, the watchdog and checkpoints
// read), one comparison with the mark and one atomic load. It reports
// whether the slow path has work: the run's first new byte — the write that
// takes the file past its high-water mark, so a file that started over is
// not progress until it gets back there — or a checkpoint the watchdog
// asked for. Once the run has progressed the mark is not looked at again:
// the window stays closed until the run ends.
func (x *worker) account(f *file, n int) (slow bool) {
	done := f.done.Add(int64(n))
	return (!x.progressed && done > x.mark) || x.ckptDue.Load()
}

// firstByte records the first new byte of a run: progress closes the
// no-progress window and resets the retry back-off.
func (x *worker) firstByte() {
	x.progressed = true
	j := x.j
	j.mu.Lock()
	if x.liveLocked() {
		j.noteProgressLocked()
	}
	j.mu.Unlock()
}

// checkpoint makes the bytes so far durable and records how many there are,
// so a restart after a crash resumes from here. The fsync runs off the copy
// goroutine (bgSync): the length is noted here, where every byte it counts
// has been written, and recorded once the fsync has returned. Anything
// saved along with the length must be taken here too, at the same count.
// A failed fsync is reported by the next checkpoint or at the file's end.
func (x *worker) checkpoint(tf tempFile, f *file) error {
	x.ckptDue.Store(false)
	if err := x.bg.failed(); err != nil {
		return localError(err)
	}
	// The digest state is taken here too, at the same count: digestState
	// waits for the hashing pipeline to catch up with f.done.
	n := f.done.Load()
	state := x.digestState(f)
	j := x.j
	x.bg.start(tf, func() {
		j.mu.Lock()
		if n >= f.Durable {
			f.Durable = n
			if state != nil {
				// The digest of exactly the durable bytes: a resume after a
				// crash continues it instead of reading the file again.
				f.HashState, f.HashLen = state, n
			}
		}
		j.changedLocked()
		j.mu.Unlock()
	})
	return nil
}
