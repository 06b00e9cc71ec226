package dojob

import "fmt"

// SetMaximumDownloadSize sets the most bytes the job's files may hold in
// all (BITS_JOB_PROPERTY_MAX_DOWNLOAD_SIZE, meant for content whose size a
// server does not announce). A file that would take the job past it fails
// the job: ERROR with ErrMaxDownloadSize (BG_E_MAX_DOWNLOAD_SIZE_LIMIT_REACHED)
// in context REMOTE_FILE, naming the file, and JobError once. It is not the
// server's fault, so a file with mirrors does not try them for it.
//
//   - A file whose size is announced (Content-Length, Content-Range) fails
//     before a byte of its body is read when that size is more than the
//     limit leaves: the limit less the bytes of the other files (their size
//     when known, else the bytes they hold).
//   - A body of unannounced length is read up to what the limit leaves and
//     one byte more: that byte fails the job and is not written, so the
//     files never hold more than the limit. The bytes up to the limit are
//     kept: after a larger limit (or none), Resume continues from them.
//
// bytes is 0, no limit (the default), or a positive count; a negative one
// returns ErrInvalidArg, and a job in a final state ErrInvalidState. BITS
// takes the property only before the job's first Resume; dojob takes it at
// any time, and a new value applies from the next request on (a request
// under way keeps the bound it started with). The value is persisted.
//
// With several files transferred at once (SetMaxParallelFiles), each
// request is bounded by what the limit leaves when it starts; two bodies of
// unannounced length read at the same time may together hold more than the
// limit by what they read meanwhile. Files of known size are always
// checked exactly.
func (j *Job) SetMaximumDownloadSize(bytes int64) error {
	if bytes < 0 {
		return errorf(ErrInvalidArg, "maximum download size %d is negative", bytes)
	}
	return j.update(func() (bool, error) {
		if j.maxSize == bytes {
			return false, nil
		}
		j.maxSize = bytes
		return true, nil
	})
}

// MaximumDownloadSize returns the job's maximum download size
// (SetMaximumDownloadSize); 0 when there is no limit.
func (j *Job) MaximumDownloadSize() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.maxSize
}

// sizeBudgetLocked returns what the maximum download size leaves for f: the
// limit less the bytes of the job's other files (a file's size when it is
// known, else the bytes it holds), never below 0; ok is false when there is
// no limit.
func (j *Job) sizeBudgetLocked(f *file) (left int64, ok bool) {
	if j.maxSize == 0 {
		return 0, false
	}
	left = j.maxSize
	for _, g := range j.files {
		if g == f {
			continue
		}
		n := g.Size
		if n == SizeUnknown {
			n = g.done.Load()
		}
		left -= n
		if left <= 0 {
			return 0, true
		}
	}
	return left, true
}

// sizeLimitError is the fatal error of a file that would take its job past
// the maximum download size.
func sizeLimitError(format string, args ...any) error {
	return protocolError(ErrMaxDownloadSize, "%s", fmt.Sprintf(format, args...))
}
