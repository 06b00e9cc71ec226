package dojob

import (
	"bytes"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// Verification: a file added with a Checksum is hashed on the copy path as
// its bytes are written (one hash.Write per buffer), and its digest is
// compared when its last byte has arrived, before it counts as transferred.
// The digest's state is saved with every durable checkpoint, so neither a
// Suspend/Resume nor a restart after a crash reads the temporary file
// again; only when no saved state matches the bytes kept is the file hashed
// once from disk.

// validationError is the error of a file that failed its check: fatal, in
// context REMOTE_FILE — the server delivered something other than the file
// the caller described (BITS reports a rejected file the same way).
func validationError(format string, args ...any) *JobError {
	return protocolError(ErrValidationFailed, format, args...)
}

// emptyLocked forgets every byte of f's temporary file (the caller empties
// the file itself): f starts over from byte 0 with no validator, no known
// size and no digest. The high-water mark keeps the most f ever held, so
// the bytes fetched again are not progress.
func (f *file) emptyLocked() {
	f.HighWater = f.markLocked()
	f.done.Store(0)
	f.Durable = 0
	f.ETag, f.LastModified = "", ""
	f.Sources = nil
	f.CacheHost = ""
	f.Spans = nil
	f.RemoteSize = SizeUnknown
	f.Size = SizeUnknown
	if f.Ranges != nil {
		f.Size = rangesSize(f.Ranges, SizeUnknown)
	}
	f.resetDigestLocked()
}

// ensureDigest gives the run a digest of f's f.done bytes in x.h, for a
// file with a Checksum: the one a previous run of this process handed
// back, else the state saved at the last checkpoint, else — only when
// neither covers exactly the bytes kept — one computed by reading the
// temporary file once.
func (x *worker) ensureDigest(tf *lazyTemp, f *file) error {
	if f.sum == nil || x.hf == f { // f.sum never changes after AddFileSet
		return nil
	}
	j := x.j
	j.mu.Lock()
	done := f.done.Load()
	h := f.digest
	if h != nil && f.digestLen != done {
		h = nil
	}
	if h == nil && f.HashState != nil && f.HashLen == done {
		h = f.newDigest()
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(f.HashState); err != nil {
			h = nil // a damaged state: hash the file instead
		}
	}
	f.digest = nil // this run owns it now
	j.mu.Unlock()
	if h == nil {
		h = f.newDigest()
		if done > 0 {
			var err error
			if f.Stream {
				err = hashSink(h, tf, done)
			} else {
				err = hashFile(h, f.Temp, done)
			}
			if err != nil {
				return err
			}
			j.m.rehashes.Add(1)
		}
	}
	x.h, x.hf = h, f
	return nil
}

// hashFile feeds the first n bytes of the file at path to h.
func hashFile(h io.Writer, path string, n int64) error {
	fd, err := os.Open(path)
	if err != nil {
		return localError(err)
	}
	defer fd.Close()
	if _, err := io.CopyN(h, fd, n); err != nil {
		return localError(fmt.Errorf("hashing %s: %w", path, err))
	}
	return nil
}

// hashSink feeds the first n bytes of a stream's writer to h: it must be an
// io.ReaderAt (transferFile starts a stream over rather than come here with
// one that is not: canDigest).
func hashSink(h io.Writer, tf *lazyTemp, n int64) error {
	if err := tf.open(); err != nil {
		return err
	}
	s := tf.sink()
	if s == nil || s.ra == nil {
		return localError(errors.New("the stream's writer cannot be read back to hash it"))
	}
	if _, err := io.Copy(h, io.NewSectionReader(s, 0, n)); err != nil {
		return localError(fmt.Errorf("hashing the stream's writer: %w", err))
	}
	return nil
}

// canDigest reports whether ensureDigest can give a digest of f's bytes: f
// has no Checksum, a digest of them is at hand, or they can be read again.
func (x *worker) canDigest(tf *lazyTemp, f *file) bool {
	if f.sum == nil || x.hf == f {
		return true
	}
	if !f.Stream {
		return true // hashFile reads the temporary file
	}
	if _, ok := tf.w.(io.ReaderAt); ok {
		return true
	}
	j := x.j
	j.mu.Lock()
	defer j.mu.Unlock()
	done := f.done.Load()
	return f.digest != nil && f.digestLen == done || f.HashState != nil && f.HashLen == done
}

// releaseDigest hands the run's digest of f back to f when the run stops
// working on it, so the next run of this process continues it.
func (x *worker) releaseDigest(f *file) {
	if x.hf != f {
		return
	}
	j := x.j
	j.mu.Lock()
	if !f.Transferred {
		f.digest, f.digestLen = x.h, f.done.Load()
	}
	j.mu.Unlock()
	x.h, x.hf = nil, nil
}

// digestState serialises the run's digest of f, or returns nil when f has
// no Checksum (or the run holds no digest of it). It waits for the hashing
// pipeline to catch up, so the state covers every byte written.
func (x *worker) digestState(f *file) []byte {
	if x.hf != f || x.h == nil {
		return nil
	}
	if x.pipe != nil {
		x.pipe.drain()
	}
	state, err := x.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil // the next run hashes the file from disk
	}
	return state
}

// verify checks a file whose last byte has arrived against its FileSpec:
// its size, then its digest. A file that fails is emptied — its data is
// discarded, so Resume downloads it again — and the error is
// ErrValidationFailed.
func (x *worker) verify(tf *lazyTemp, f *file) error {
	j := x.j
	j.mu.Lock()
	done, remoteSize := f.done.Load(), f.RemoteSize
	j.mu.Unlock()
	var why string
	switch {
	case f.ExpectedSize > 0 && f.Ranges == nil && done != f.ExpectedSize:
		why = fmt.Sprintf("the file has %d bytes, not the expected %d", done, f.ExpectedSize)
	case f.ExpectedSize > 0 && remoteSize != SizeUnknown && remoteSize != f.ExpectedSize:
		why = fmt.Sprintf("the remote file has %d bytes, not the expected %d", remoteSize, f.ExpectedSize)
	case f.sum != nil:
		if err := x.ensureDigest(tf, f); err != nil {
			return err
		}
		if got := x.h.Sum(nil); !bytes.Equal(got, f.sum) {
			why = fmt.Sprintf("the file's digest is %s, not the expected %s", hex.EncodeToString(got), hex.EncodeToString(f.sum))
		}
	}
	if why == "" {
		return nil
	}
	return x.reject(tf, f, why)
}

// errRefetch is what reject returns for a file that failed its check
// holding bytes of a mirror: it was emptied and goes back to its primary
// at once, within the same attempt (mirrors.go).
var errRefetch = errors.New("dojob: the file is fetched again from its primary")

// reject discards the data of f, which failed its check for the reason
// why: its temporary file is emptied, so Resume downloads it again. A file
// whose bytes came from its primary alone fails with ErrValidationFailed.
// One that holds bytes of a mirror is not an error: those mirrors are
// skipped for the file until the caller resumes the job, and reject returns
// errRefetch — the file is fetched again from its primary (BITS blames the
// peers, not the origin, for content that fails validation).
func (x *worker) reject(tf *lazyTemp, f *file, why string) error {
	if err := tf.open(); err != nil {
		return err
	}
	_ = x.bg.wait() // a checkpoint's sync in flight would record the old length
	if err := tf.Truncate(0); err != nil {
		return localError(err)
	}
	if _, err := tf.Seek(0, io.SeekStart); err != nil {
		return localError(err)
	}
	j := x.j
	j.mu.Lock()
	x.seen = 0
	x.h, x.hf = nil, nil
	foreign := f.blameMirrorsLocked("failed its check with bytes from a mirror")
	remote := f.Remote
	f.emptyLocked()
	j.changedLocked()
	j.mu.Unlock()
	if foreign {
		j.m.logAsync(slog.LevelWarn, "dojob: file failed its check with bytes from a mirror; fetching it again from its primary", "job", j.id.String(), "url", redactURL(remote), "why", why)
		return errRefetch
	}
	j.m.logAsync(slog.LevelWarn, "dojob: file failed its check; its data is discarded", "job", j.id.String(), "url", redactURL(remote), "why", why)
	return validationError("%s", why)
}

// SetValidationState records the caller's own check of a transferred file
// (IBackgroundCopyFile3::SetValidationState), file being its index in
// Files. Typically called from FileTransferred after checking a signature
// of the file's TemporaryName.
//
// valid = true marks the file Verified. valid = false rejects it, as a
// checksum mismatch does: its data is discarded (BytesTransferred 0), it is
// no longer transferred, and a job that is trying to transfer or is
// TRANSFERRED stops and moves to ERROR with ErrValidationFailed (context
// REMOTE_FILE) and that file, so JobError is called; Resume downloads the
// file again. A SUSPENDED job, or one already in ERROR, keeps its state
// and error: the file is fetched again when it is resumed.
//
// A rejected file some of whose bytes came from a mirror (FileSpec.Mirrors)
// is not an error, as BITS treats content from peers: those mirrors are
// skipped for the file until the caller next calls Resume, and the file is
// downloaded again from its RemoteURL — a TRANSFERRED job goes back to
// QUEUED, one that is transferring picks the file up again.
//
// An index out of range is ErrInvalidArg; a file that is not transferred,
// or already completed, is ErrInvalidState; a job in a final state is
// ErrInvalidState.
func (j *Job) SetValidationState(file int, valid bool) error {
	j.opMu.Lock()
	defer j.opMu.Unlock()
	j.mu.Lock()
	f, err := j.mutableFileLocked(file)
	if err != nil {
		j.mu.Unlock()
		return err
	}
	if !f.Transferred || f.Completed {
		j.mu.Unlock()
		return errorf(ErrInvalidState, "file %d is not transferred (or already completed)", file)
	}
	if valid {
		if f.Verified {
			j.mu.Unlock()
			return nil
		}
		f.Verified = true
		j.modified = time.Now()
		j.changedLocked()
		j.mu.Unlock()
		return j.m.persist(j)
	}
	last := j.last
	f.Transferred, f.Verified = false, false
	foreign := f.blameMirrorsLocked("rejected by the caller with bytes from a mirror")
	f.emptyLocked()
	j.modified = time.Now()
	j.changedLocked()
	if foreign && (j.state.active() || j.state == StateTransferred) {
		// Bytes of a mirror: fetched again from the primary, without an
		// error. A running transfer picks the file up again; a TRANSFERRED
		// job goes back to QUEUED. The transfer that next opens the
		// temporary file empties it (lazyTemp.open), so it is not touched
		// here, where a transfer may already have it open.
		var err error
		if j.state == StateTransferred {
			err = j.moveLocked(StateQueued)
		}
		j.mu.Unlock()
		if err != nil {
			return err
		}
		return j.m.persist(j)
	}
	e := validationError("the caller rejected the file (SetValidationState)")
	e.aboutLocked(f)
	if !foreign && (j.state.active() || j.state == StateTransferred) {
		j.stopTransferLocked()
		j.failLocked(e)
	}
	temp := f.Temp
	j.mu.Unlock()
	if last != nil {
		<-last.done // no transfer goroutine has a file open from here on
	}
	if temp == "" {
		// A stream: its writer is asked to discard the bytes when the
		// file starts over (sinkDirty).
		return j.m.persist(j)
	}
	if err := os.Truncate(temp, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		j.m.log.Warn("dojob: emptying a rejected file", "job", j.id.String(), "file", temp, "err", err)
	}
	return j.m.persist(j)
}
