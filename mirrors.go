package dojob

import (
	"errors"
	"log/slog"
	"slices"
)

// Mirrors: a file's sources are its RemoteURL (source 0) and its
// FileSpec.Mirrors (source i is Mirrors[i-1]), alternative URLs of the same
// file. An error attributable to the source in use — a connection failure,
// a stall, an HTTP status, a protocol error, a size other than
// FileSpec.Size — moves the file to the next source at once, within the
// same run and without TRANSIENT_ERROR. A round is each source tried once
// since the file last made progress; only a round in which every source
// failed ends the run: in TRANSIENT_ERROR with the round's last transient
// error, or, when every source failed fatally, in ERROR with the first
// error of the round. The next round starts from the source the round
// started from: the one that last made progress (the primary, until a
// mirror has). The no-progress window opens at the first failure of any
// source and is closed only by progress, whichever source brings it.
//
// The rules are pure functions here; transfer.go applies them.

// sourceError marks an error of one request to a file's source: what the
// server (or the way to it) did, not the local file. Only such errors fail
// over to the next source.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// fromSource reports whether err came from a file's source and is
// attributable to it: marked by the request path, and not about the local
// file (a full disk is not cured by another server) nor the job's maximum
// download size.
func fromSource(err error, e *JobError) bool {
	var se *sourceError
	// The job's maximum download size is the job's own limit: another
	// source of the same file would break it too.
	return errors.As(err, &se) && e.Context != ErrorContextLocalFile && e.Code != ErrMaxDownloadSize
}

// sourceURL returns the URL of source src of a file with the given primary
// URL and mirrors; an index out of range gives the primary.
func sourceURL(primary string, mirrors []string, src int) string {
	if src <= 0 || src > len(mirrors) {
		return primary
	}
	return mirrors[src-1]
}

// sourceRound counts the failures of one round over a file's sources.
type sourceRound struct {
	tried      []int     // the sources that failed in this round
	fails      int       // sources that failed in this round
	first      *JobError // the round's first error of a file's own source
	firstCache *JobError // the round's first error of a cache host
	transient  *JobError // the round's last transient error; nil if every failure was fatal
}

// add records a failure of a source (of a cache host when cache is set)
// and reports whether the round is over: every one of the n sources has
// failed in it.
func (r *sourceRound) add(e *JobError, n int, cache bool) (over bool) {
	r.fails++
	switch {
	case cache && r.firstCache == nil:
		r.firstCache = e
	case !cache && r.first == nil:
		r.first = e
	}
	if e.transient {
		r.transient = e
	}
	return r.fails >= n
}

// result is the error a finished round ends the run with: its last
// transient error (TRANSIENT_ERROR, retried), or its first error when every
// source failed fatally (ERROR: the error of the source the file was
// using, the primary unless a mirror had made progress). A cache host is
// asked first, but its error is the job's only when no source of the
// file's own failed in the round: a 403 of the cache says less of the file
// than the origin's 404.
func (r *sourceRound) result() *JobError {
	if r.transient != nil {
		return r.transient
	}
	if r.first != nil {
		return r.first
	}
	return r.firstCache
}

// Bytes from several sources: a file continues on another source at its
// offset only when that source's answer proves it serves the same content
// (check, resume.go), so the bytes of a file may come from several sources
// of one content. f.srcs lists them. When such a file fails its check
// (a Checksum, FileSpec.Size, or SetValidationState(i, false)) the
// mirrors among them are to blame as BITS blames peers: the file is emptied,
// they are skipped for that file until the caller resumes the job, and the
// file is fetched again from its primary, without an error. A file whose
// bytes came from its primary alone fails as before.

// addSourceLocked records that source src gave bytes of f.
func (f *file) addSourceLocked(src int) {
	if !slices.Contains(f.Sources, src) {
		f.Sources = append(f.Sources, src)
		slices.Sort(f.Sources)
	}
}

// foreignLocked reports whether a mirror or a cache host gave some of f's
// bytes.
func (f *file) foreignLocked() bool {
	return f.CacheHost != "" || slices.ContainsFunc(f.Sources, func(s int) bool { return s != 0 })
}

// blameMirrorsLocked handles f's failed check: if a mirror or a cache host
// gave some of its bytes, every such mirror (and every cache host) is
// skipped for f, f goes back to its primary and counts a restart for
// reason, and it reports true; a file of its primary's bytes alone is left
// as it is (false). The caller empties f.
func (f *file) blameMirrorsLocked(reason string) (foreign bool) {
	if !f.foreignLocked() {
		return false
	}
	for _, s := range f.Sources {
		if s != 0 && !slices.Contains(f.skip, s) {
			f.skip = append(f.skip, s)
		}
	}
	if f.CacheHost != "" && !slices.Contains(f.skip, skipCaches) {
		f.skip = append(f.skip, skipCaches)
	}
	f.Source, f.cs.cur = 0, 0
	f.Restarts++
	f.RestartReason = reason
	return true
}

// sourceURLLocked is the URL f's requests go to now.
func (f *file) sourceURLLocked() string { return sourceURL(f.Remote, f.Mirrors, f.Source) }

// failoverLocked applies a source error e of f's current source during run
// x. It reports whether the file moved to its next source and the run goes
// on; otherwise the round is over (or the file has a single source) and
// the run must end with failLocked(final). Either way the file's source
// moves on: after a finished round it is back where the round started. It
// takes the clock's and the log queue's locks.
func (j *Job) failoverLocked(x *worker, f *file, e *JobError) (next bool, final *JobError) {
	now := j.m.now()
	from := f.curSourceLocked()
	if from < 0 {
		j.cacheFailedLocked(f, from, e, now) // a ban (cache.go)
	}
	// The sources left after this failure: a cache host banned by it, or
	// whose fallback delay is over, is no longer among them.
	list := j.sourcesLocked(f, now)
	if x.roundFile != f || x.progressed {
		// A new file, or this attempt made progress: a new round
		// starts with this failure.
		x.round, x.roundFile = sourceRound{}, f
	}
	x.round.add(e, len(list), from < 0)
	x.round.tried = append(x.round.tried, from)
	over := !slices.ContainsFunc(list, func(s int) bool { return !slices.Contains(x.round.tried, s) })
	j.setSourceLocked(f, nextSourceIn(from, list, len(j.m.caches.hosts)))
	if over {
		final = x.round.result()
		x.round = sourceRound{}
		return false, final
	}
	// The no-progress window spans every source: it opens at the first
	// failure, and only a new byte closes it. A timeout of 0 opens none:
	// the round's end sends the job to ERROR with its error, as failLocked
	// does without mirrors.
	if to := j.timeoutLocked(); to > 0 && !j.windowOpen {
		now := j.m.now()
		j.windowOpen, j.windowStart = true, now
		j.m.clock.set(&j.windowDL, now+to)
	}
	j.lastTransient = e
	x.progressed = false // the next source's first new byte closes the window again
	if j.m.logEnabled(slog.LevelInfo) {
		j.m.queueLog(slog.LevelInfo, "dojob: source failed; trying the next one", slog.Any("job", j.id),
			slog.String("failed", redactURL(j.sourceURLOfLocked(f, from))),
			slog.String("next", redactURL(j.requestURLLocked(f))), slog.Any("err", e))
	}
	return true, nil
}
