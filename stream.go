package dojob

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// Stream files (FileSpec.Writer, DO's IDODownload StreamInterface): the
// bytes go to the caller's writer instead of a temporary file. The transfer
// code does not know the difference: lazyTemp opens a streamSink, which is
// a tempFile around the writer (docs/design.md, "Stream files").

// resetter is a writer that can discard what it was given (*bytes.Buffer,
// hash.Hash).
type resetter interface{ Reset() }

// truncater is a writer that can be cut to a length (*os.File).
type truncater interface{ Truncate(size int64) error }

// syncer is a writer that can make what it was given durable (*os.File).
type syncer interface{ Sync() error }

// streamSink is the tempFile of a stream file: byte k of the file goes to
// offset k of the writer — with WriteAt for an io.WriterAt, after a Seek
// for an io.Seeker, in order for any other writer (which therefore cannot
// resume: see Seek). Close does nothing: the caller owns the writer.
type streamSink struct {
	w  io.Writer
	wa io.WriterAt // nil unless w is one
	ra io.ReaderAt // nil unless w is one
	sk io.Seeker   // nil unless w is one
	f  *file

	// mu keeps Sync (which a checkpoint runs on another goroutine) and the
	// moves of the position apart from the writes; writes at offsets may
	// run together, as io.WriterAt allows.
	mu sync.RWMutex
	// have: the file's bytes when the sink was opened; pos: where the next
	// Write goes; end: the bytes this sink delivered in order (for a
	// writer that cannot go back, all it holds of this attempt).
	have, pos, end int64
	// dirty: the writer may hold bytes of the file (file.sinkDirty), so
	// starting over must ask it to discard them.
	dirty bool
}

func newStreamSink(w io.Writer, f *file, have int64) *streamSink {
	s := &streamSink{w: w, f: f, have: have, dirty: f.sinkDirty.Load()}
	s.wa, _ = w.(io.WriterAt)
	s.ra, _ = w.(io.ReaderAt)
	s.sk, _ = w.(io.Seeker)
	return s
}

// resumable reports whether the writer can take bytes at an offset.
func (s *streamSink) resumable() bool { return s.wa != nil || s.sk != nil }

// lostWhy is why a stream file with recorded bytes starts over when it is
// opened (lazyTemp.lost).
func (s *streamSink) lostWhy() string {
	if !s.resumable() {
		return "the writer cannot resume (not an io.WriterAt or io.Seeker)"
	}
	return "the writer holds fewer bytes than recorded"
}

// segmentable reports whether the file may be fetched in segments into
// this sink: its writer takes bytes at offsets, and with a Checksum (the
// prefix hasher reads them back) is also an io.ReaderAt.
func (s *streamSink) segmentable(checksum bool) bool {
	return s.wa != nil && (!checksum || s.ra != nil)
}

func (s *streamSink) deliver() {
	if !s.dirty {
		s.dirty = true
		s.f.sinkDirty.Store(true)
	}
}

func (s *streamSink) Write(p []byte) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int
	var err error
	if s.wa != nil {
		n, err = s.wa.WriteAt(p, s.pos)
	} else {
		n, err = s.w.Write(p)
	}
	if n > 0 {
		s.deliver()
	}
	s.pos += int64(n)
	s.end = max(s.end, s.pos)
	return n, err
}

func (s *streamSink) WriteAt(p []byte, off int64) (int, error) {
	if s.wa == nil {
		return 0, errors.New("dojob: the stream's writer is not an io.WriterAt")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.wa.WriteAt(p, off)
	if n > 0 && !s.dirty {
		s.f.sinkDirty.Store(true) // s.dirty is not written here: WriteAt runs on several goroutines
	}
	return n, err
}

func (s *streamSink) ReadAt(p []byte, off int64) (int, error) {
	if s.ra == nil {
		return 0, errors.New("dojob: the stream's writer is not an io.ReaderAt")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ra.ReadAt(p, off)
}

// Seek moves where the next Write goes. SeekEnd reports what the writer
// holds: an io.Seeker's own end; for an io.WriterAt that cannot tell, the
// bytes recorded when the sink was opened (the caller's writer is taken to
// hold them, FileSpec.Writer); for any other writer only the bytes this sink
// delivered — so a file that had bytes before is lost and starts over.
func (s *streamSink) Seek(off int64, whence int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case whence == io.SeekEnd && off == 0:
		if s.sk != nil {
			return s.sk.Seek(0, io.SeekEnd)
		}
		if s.wa != nil {
			return max(s.have, s.end), nil
		}
		return s.end, nil
	case whence != io.SeekStart:
		return 0, errors.New("dojob: unsupported seek on a stream")
	}
	switch {
	case s.wa != nil:
	case s.sk != nil:
		if _, err := s.sk.Seek(off, io.SeekStart); err != nil {
			return 0, err
		}
	case off != s.pos:
		return 0, fmt.Errorf("dojob: the stream's writer cannot move from byte %d to %d", s.pos, off)
	}
	s.pos = off
	return off, nil
}

// Truncate cuts the writer to size where it can (a Truncate method). At 0 —
// the file starts over — a writer that may hold bytes of the file is also
// asked to discard them (Reset), and an io.Seeker is moved back to 0.
func (s *streamSink) Truncate(size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if size > 0 {
		if t, ok := s.w.(truncater); ok {
			return t.Truncate(size)
		}
		return nil
	}
	if s.dirty || s.have > 0 || s.end > 0 {
		if t, ok := s.w.(truncater); ok {
			if err := t.Truncate(0); err != nil {
				return err
			}
		}
		if r, ok := s.w.(resetter); ok {
			r.Reset()
		}
	}
	if s.sk != nil {
		if _, err := s.sk.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
	s.have, s.pos, s.end = 0, 0, 0
	return nil
}

// Sync calls the writer's Sync, if it has one.
func (s *streamSink) Sync() error {
	sy, ok := s.w.(syncer)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return sy.Sync()
}

// Close does nothing: the writer is the caller's.
func (s *streamSink) Close() error { return nil }

// fileIndex is f's index in the job's files. It takes the job's mu.
func (j *Job) fileIndex(f *file) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, g := range j.files {
		if g == f {
			return i
		}
	}
	return -1
}

// noWriterError is the error of a stream file that came up for transfer
// without a writer: after a restart the writer is not there until the
// caller sets it again.
func noWriterError(index int) *JobError {
	return &JobError{Context: ErrorContextLocalFile, Code: ErrInvalidState,
		Err: fmt.Errorf("file %d is a stream with no writer: set it with Job.SetFileWriter (writers are not persisted)", index)}
}

// SetFileWriter sets the writer of a stream file (one added with
// FileSpec.Writer), file being its index in Files. Writers are not
// persisted: after a restart of the Manager a stream file has none until
// the caller sets it again, as callbacks are registered again, and a job
// that comes to such a file fails with ErrInvalidState (context
// LOCAL_FILE) naming SetFileWriter; Resume then continues. Open the
// Manager with Config.Paused and call Manager.Start once the writers are
// set to avoid that.
//
// The writer takes effect at the file's next attempt; FileSpec.Writer says
// how it is used. If the file is being transferred, its attempt stops and
// the job is queued again (keeping its place in line); SetFileWriter returns
// once the stopped attempt has ended, so the previous writer receives
// nothing more. A file with bytes continues on the new writer only if it is
// an io.Seeker whose end is at or past those bytes, or an io.WriterAt —
// which is taken to hold them (the same storage, reopened); with any other
// writer the file starts over from byte 0.
//
// An index out of range, a file that is not a stream, or a nil writer is
// ErrInvalidArg; a job in a final state is ErrInvalidState. Nothing is
// written to the state directory.
func (j *Job) SetFileWriter(file int, w io.Writer) error {
	if w == nil {
		return errorf(ErrInvalidArg, "no writer given")
	}
	j.mu.Lock()
	f, err := j.mutableFileLocked(file)
	if err != nil {
		j.mu.Unlock()
		return err
	}
	if !f.Stream {
		j.mu.Unlock()
		return errorf(ErrInvalidArg, "file %d is not a stream (it was added with a LocalPath)", file)
	}
	f.w = w
	var stopped *transfer
	if x := j.xfer; x != nil && x.transferringLocked(f) && !f.Transferred {
		stopped = x
		j.requeueLocked()
	}
	j.mu.Unlock()
	if stopped != nil {
		<-stopped.done // its goroutine may still be writing to the old writer
	}
	return nil
}
