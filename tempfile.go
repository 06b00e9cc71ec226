package dojob

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// lazyTemp opens a file's temporary file on first use, positioned after the
// bytes counted in f.done. Anything beyond them — bytes written after the
// last checkpoint before a crash — is not trusted and is cut off. A file
// with no recorded byte is created exclusively; one with recorded bytes must
// be there, ours, and at least that long: a file that vanished or shrank
// while the job was stopped is never padded, open sets lost and hands back
// an empty file, and the caller starts the file over.
type lazyTemp struct {
	tempFile
	fs   fileSystem
	f    *file
	lost bool // the recorded bytes were gone: the file must start over
	// spanEnd: for a file fetched in segments, the end of its last span
	// (the file must be at least this long; nothing is cut off, as its
	// bytes are at their offsets); 0 otherwise. Set before the first open.
	spanEnd int64
	// w: for a stream (FileSpec.Writer), the writer of this attempt, which
	// open wraps in a streamSink instead of opening a file. Set before the
	// first open.
	w io.Writer
}

func (t *lazyTemp) open() error {
	if t.tempFile != nil {
		return nil
	}
	have := t.f.done.Load()
	var tf tempFile
	created := false // a new, empty file: nothing to cut or seek
	if t.f.Stream {
		// A sink that cannot show the recorded bytes is lost below, as a
		// temporary file that shrank is.
		tf = newStreamSink(t.w, t.f, have)
	} else {
		var err error
		tf, err = t.fs.openTemp(t.f.Temp, have == 0)
		created = have == 0
		if have > 0 && errors.Is(err, fs.ErrNotExist) {
			t.lost = true
			tf, err = t.fs.openTemp(t.f.Temp, true)
			created = true
		}
		if err != nil {
			return localPathError(t.f.Local, err)
		}
	}
	if created {
		t.tempFile = tf
		return nil
	}
	if have > 0 && !t.lost {
		size, err := tf.Seek(0, io.SeekEnd)
		if err != nil {
			tf.Close()
			return localError(err)
		}
		t.lost = size < have || size < t.spanEnd
		if !t.lost && t.spanEnd > 0 {
			t.tempFile = tf // in segments: every byte stays where it is
			return nil
		}
	}
	if t.lost {
		have = 0
	}
	if err := tf.Truncate(have); err != nil {
		tf.Close()
		return localError(err)
	}
	if _, err := tf.Seek(have, io.SeekStart); err != nil {
		tf.Close()
		return localError(err)
	}
	t.tempFile = tf
	return nil
}

// lostWhy is why a file whose recorded bytes open found lost starts over.
func (t *lazyTemp) lostWhy() string {
	if s, ok := t.tempFile.(*streamSink); ok {
		return s.lostWhy()
	}
	return "temporary file missing or shorter than recorded"
}

// sink is the streamSink of an open stream file, else nil.
func (t *lazyTemp) sink() *streamSink {
	s, _ := t.tempFile.(*streamSink)
	return s
}

// finish closes the file of a finished transfer, reporting the error of the
// close. A temporary file gets its finished mode first, through the
// descriptor it was written with, so that Complete need not open it again
// (promoteFile).
func (t *lazyTemp) finish() error {
	tf := t.tempFile
	t.tempFile = nil
	if tf == nil {
		return nil
	}
	if f, ok := tf.(*os.File); ok {
		if err := f.Chmod(finishedMode); err != nil {
			f.Close()
			return localError(err)
		}
	}
	if err := tf.Close(); err != nil {
		return localError(err)
	}
	return nil
}

// close closes the file if it is open (deferred; errors already reported).
func (t *lazyTemp) close() {
	if t.tempFile != nil {
		t.tempFile.Close()
		t.tempFile = nil
	}
}
