package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dojob/dojob"
)

// tickInterval is how often the display samples the job's progress.
const tickInterval = 200 * time.Millisecond

// awaitLimit bounds how long a display waits for the callback that reports
// the state Wait already saw; it normally arrives within microseconds.
const awaitLimit = 2 * time.Second

// defaultStallTimeout is dojob's default Config.StallTimeout, which the
// command uses unless --stall-timeout is given.
const defaultStallTimeout = 60 * time.Second

// maxStallNotice is the longest a transfer goes without a byte before the
// display calls it stalled; a short stall timeout shortens it to a quarter
// of that timeout, so the notice comes well before the watchdog gives up.
const maxStallNotice = 5 * time.Second

// speedWeight is the weight of the newest sample in a file's speed (an
// exponentially weighted moving average over the samples of tickInterval).
const speedWeight = 0.3

// displayMode is how a display shows a job.
type displayMode int

const (
	modeQuiet displayMode = iota // nothing (--quiet, --json)
	modeLines                    // one line per state change, stall or restart: output that is not a terminal
	modeBars                     // live progress bars and a state line: a terminal
)

// fileView is what the display knows of one file of the job, from its
// samples of the job's progress.
type fileView struct {
	name       string    // the destination's base name
	total      int64     // size; dojob.SizeUnknown until known
	bytes      int64     // BytesTransferred at the last sample
	before     int64     // bytes on disk from an earlier run; 0 once the file started over
	restarts   int       // restartInfo's count at the last sample
	done       bool      // transferred (or completed)
	speed      float64   // bytes per second over the recent samples; 0 = none measured
	lastChange time.Time // when bytes last changed (zero: not in this run)
	stallShown bool      // modeLines: the current stall was reported
}

// display shows a running job. State changes arrive through stateChanged,
// the job's StateCallback, on a goroutine of the Manager; outside
// modeQuiet a ticker goroutine samples the job's progress (speeds, stalls,
// restarts) and in modeBars draws a frame of bars after each sample.
// finish stops the ticker and, in modeBars, draws the last frame itself, so
// nothing the display started outlives it. Its methods are safe for
// concurrent use.
//
// Lock order: d.mu may be taken with nothing held, and the job's getters
// may be called with d.mu held (they take only the job's own lock). The
// console is written with d.mu not held.
type display struct {
	mode         displayMode
	out          io.Writer
	job          jobView       // a job here, or one another dojob process runs
	stallTimeout time.Duration // the watchdog's: a connection silent this long is dropped
	stallNotice  time.Duration // a transfer silent this long is shown as stalled

	mu       sync.Mutex
	finished bool          // finish was called: callbacks print nothing more
	reached  uint32        // bit s: a change into State s was shown
	changed  chan struct{} // closed and replaced at each change shown
	stateAt  time.Time     // when the last state change was seen
	files    []fileView
	sampled  time.Time // the last sample
	final    string    // modeBars, once finished: the last text of the state line
	finalOK  bool      // modeBars, once finished: the job succeeded, every bar is full
	above    []string  // modeBars: permanent lines the next frame prints above the bars

	// r draws the bars (modeBars only): the ticker, then finish once the
	// ticker has ended, are its only users.
	r        *renderer
	stopTick chan struct{}
	tickDone chan struct{}
}

// newDisplay returns the display of j for c's output mode and, outside
// modeQuiet, starts sampling (and in modeBars drawing). stallTimeout is
// that of the Manager that runs the job (0: the default).
func (c *cli) newDisplay(j jobView, stallTimeout time.Duration) *display {
	if stallTimeout <= 0 {
		stallTimeout = defaultStallTimeout
	}
	now := time.Now()
	d := &display{
		out: c.stdout, job: j, changed: make(chan struct{}),
		stallTimeout: stallTimeout, stallNotice: min(maxStallNotice, stallTimeout/4),
		stateAt: now, sampled: now,
	}
	con := c.opts.console
	if f, ok := c.stdout.(*os.File); ok && con == nil {
		con = fileConsole{f}
	}
	switch {
	case c.quiet || c.json:
		d.mode = modeQuiet
	case c.opts.tty && con != nil:
		d.mode = modeBars
	default:
		d.mode = modeLines
	}
	files := j.Files()
	for _, f := range files {
		n, _ := restartInfo(f)
		d.files = append(d.files, fileView{
			name: filepath.Base(destination(f)), total: f.BytesTotal, bytes: f.BytesTransferred,
			before: f.BytesTransferred, restarts: n, done: f.Transferred || f.Completed,
		})
	}
	if d.mode == modeQuiet {
		return d
	}
	fmt.Fprintf(d.out, "job %s (%s): %s\n", j.ID(), j.DisplayName(), plural(len(files), "file"))
	if d.mode == modeBars {
		// The first frame comes with the first sample: the job is not
		// resumed yet (its state line would say SUSPENDED).
		d.r = &renderer{con: con}
	}
	d.stopTick, d.tickDone = make(chan struct{}), make(chan struct{})
	go d.tick()
	return d
}

// restartInfo returns how many times f has started over from its first
// byte and why it did the last time (the library counts every restart,
// also one that regrows past its old byte count between two samples).
func restartInfo(f dojob.FileInfo) (int, string) {
	return f.Restarts, f.RestartReason
}

// startedFrom records, for a job that another dojob process resumed for
// this command, each file's bytes before it did: the job the display
// started from may have moved on already. A file never keeps more than it
// has now (one that started over since keeps none).
func (d *display) startedFrom(before []int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range min(len(before), len(d.files)) {
		v := &d.files[i]
		v.before = min(before[i], v.bytes, v.before)
	}
}

// bytesBefore returns how many of the job's bytes were on disk before this
// command started and are still used: a file that started over counts none.
func (d *display) bytesBefore() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for _, v := range d.files {
		n += v.before
	}
	return n
}

// stateChanged is the job's StateCallback: it records and shows the change.
func (d *display) stateChanged(j *dojob.Job, from, to dojob.State) error {
	d.show(to, describeState(j, to, time.Now()))
	return nil
}

// show records and shows a change into state to, described by text (by
// the callback here, or by the holder's for a job another dojob process
// runs).
func (d *display) show(to dojob.State, text string) {
	d.mu.Lock()
	if d.finished {
		d.mu.Unlock()
		return
	}
	if d.mode == modeLines {
		fmt.Fprintln(d.out, text)
	}
	d.reached |= 1 << uint(to)
	d.stateAt = time.Now()
	close(d.changed)
	d.changed = make(chan struct{})
	if d.mode == modeBars && to == dojob.StateTransientError {
		// Keep a record of each transient error above the bars, printed
		// with the next frame. (A final ERROR is printed once, on stderr,
		// by the command.)
		d.above = append(d.above, text)
	}
	d.mu.Unlock()
}

// describeState is the line for a change into state s at now. A transient
// error shows the error, when the next retry is and when the job gives up;
// ERROR shows only the state, because the command prints the error itself.
func describeState(j jobView, s dojob.State, now time.Time) string {
	if s != dojob.StateTransientError {
		return s.String()
	}
	var b strings.Builder
	b.WriteString(s.String())
	// The job may have moved on since (the callback runs later): then
	// the error object is gone and only the state is shown.
	if e, err := j.Error(); err == nil {
		b.WriteString(": ")
		b.WriteString(describeError(e))
	}
	if h, ok := j.Held(); ok {
		b.WriteString("; ")
		b.WriteString(describeHold(h, now))
		return b.String()
	}
	fmt.Fprintf(&b, "; retry %d", j.ErrorCount())
	if at := j.NextRetry(); !at.IsZero() {
		fmt.Fprintf(&b, " in %s", formatDuration(at.Sub(now)))
	}
	if at := j.NoProgressDeadline(); !at.IsZero() {
		fmt.Fprintf(&b, "; gives up at %s (in %s) without progress", formatClock(at, now), formatDuration(at.Sub(now)))
	}
	return b.String()
}

// describeError formats a job's error without the library's "dojob: "
// prefix and with the file's URL once: "CODE (0x…) [CONTEXT]: URL: cause".
// An error that wraps another job error (ErrNoProgress wraps the last
// transient error) names both codes: the library's own message would repeat
// the prefix and the URL.
func describeError(e *dojob.JobError) string {
	var b strings.Builder
	b.WriteString(e.Code.Error())
	if _, check := e.FailedCheck(); check != "" {
		b.WriteString(": " + check)
	}
	if e.Context != dojob.ErrorContextNone {
		b.WriteString(" [" + e.Context.String() + "]")
	}
	shown := ""
	if e.File != nil {
		shown = e.File.RemoteURL
		if e.File.SourceURL != "" {
			shown = e.File.SourceURL // the source that failed (mirrors)
		}
		b.WriteString(": " + redact(shown))
	}
	for cause := e.Err; cause != nil; {
		var inner *dojob.JobError
		if !errors.As(cause, &inner) {
			// net/http's errors repeat the URL ("Get \"URL\": …"): once is
			// enough when it is the one already shown.
			var ue *url.Error
			if errors.As(cause, &ue) && shown != "" && (ue.URL == shown || ue.URL == redact(shown)) {
				cause = ue.Err
			}
			b.WriteString(": " + strings.TrimPrefix(cause.Error(), "dojob: "))
			break
		}
		b.WriteString(": " + inner.Code.Error())
		cause = inner.Err
	}
	return b.String()
}

// await waits until a change into s has been shown, ctx ends, or
// awaitLimit passes. It returns at once in modeQuiet.
func (d *display) await(ctx context.Context, s dojob.State) {
	if d.mode == modeQuiet {
		return
	}
	t := time.NewTimer(awaitLimit)
	defer t.Stop()
	for {
		d.mu.Lock()
		done, ch := d.finished || d.reached&(1<<uint(s)) != 0, d.changed
		d.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-t.C:
			return
		}
	}
}

// currentLocked is the index of the file being transferred (the first
// that is not done), or -1.
func (d *display) currentLocked() int {
	for i, v := range d.files {
		if !v.done {
			return i
		}
	}
	return -1
}

// stalledLocked returns how long the current file of a job in st has gone
// without a byte — since its last byte or the job's last state change,
// whichever is later — and whether that is long enough to call it stalled.
func (d *display) stalledLocked(st dojob.State, now time.Time) (time.Duration, bool) {
	return d.fileStalledLocked(d.currentLocked(), st, now)
}

// fileStalledLocked is stalledLocked for file i.
func (d *display) fileStalledLocked(i int, st dojob.State, now time.Time) (time.Duration, bool) {
	if i < 0 || (st != dojob.StateConnecting && st != dojob.StateTransferring) {
		return 0, false
	}
	since := d.stateAt
	if t := d.files[i].lastChange; t.After(since) {
		since = t
	}
	silent := now.Sub(since)
	return silent, silent >= d.stallNotice
}

// rateTextLocked renders the right-hand side of file i's bar: "done", the speed
// and the time left while it moves, how long it has been stalled, or
// nothing when the file is not being transferred (no invented speed).
// st is the job's state.
func (d *display) rateTextLocked(i int, st dojob.State, now time.Time) string {
	v := d.files[i]
	switch {
	case v.done || d.finalOK:
		return "done"
	case st != dojob.StateConnecting && st != dojob.StateTransferring:
		return ""
	case i != d.currentLocked() && v.lastChange.IsZero():
		// Not the first unfinished file and not moved in this run: not
		// being transferred (yet), so no speed is invented for it. (A job
		// with parallel files moves several at once: those that moved get
		// their speed, or their stall, like the first.)
		return ""
	}
	if silent, stalled := d.fileStalledLocked(i, st, now); stalled {
		return "stalled for " + formatDuration(silent)
	}
	if v.speed < 1 {
		return ""
	}
	s := formatBytes(int64(v.speed)) + "/s"
	if v.total > 0 {
		left := time.Duration(float64(v.total-v.bytes) / v.speed * float64(time.Second))
		s += " ETA " + formatDuration(left)
	}
	return s
}

// draw draws a frame of the bars at now, with the permanent lines noted
// since the last frame above it.
func (d *display) draw(now time.Time) {
	width, height := d.r.size()
	st := d.job.State()
	d.mu.Lock()
	above := d.above
	d.above = nil
	live := d.barLinesLocked(st, now, width, height)
	stateLine := d.final
	d.mu.Unlock()
	if stateLine == "" {
		stateLine = d.liveState(now)
	}
	// The state line has the state first (and for an error its code), so
	// that a narrow terminal cuts the details, not the code.
	live = append(live, cut(sanitize(stateLine), width-1))
	d.r.draw(above, live)
}

// barLinesLocked renders the lines of the files for a console of width
// columns and height rows (0: not known) at now; st is the job's state. A
// frame must fit on the screen, or cursor-up cannot reach its first line:
// with more files than rows, the lines show the files from the current one
// on and a line that counts the others.
func (d *display) barLinesLocked(st dojob.State, now time.Time, width, height int) []string {
	first, n := 0, len(d.files)
	more := false
	if room := height - 2; height > 0 && n > room { // a row for the state line, one for the cursor
		more = true
		n = max(room-1, 0) // and one for the count of the others
		if cur := d.currentLocked(); cur > 0 {
			first = min(cur, len(d.files)-n)
		} else if cur < 0 {
			first = len(d.files) - n
		}
	}
	rows := make([]barRow, 0, n)
	for i := first; i < first+n; i++ {
		v := d.files[i]
		r := barRow{name: sanitize(v.name), rate: d.rateTextLocked(i, st, now)}
		done := v.done || d.finalOK
		switch {
		case v.total > 0:
			r.known, r.fill = true, float64(v.bytes)/float64(v.total)
			r.counters = formatBytes(v.bytes) + " / " + formatBytes(v.total)
		case v.total == 0 || done:
			r.known, r.fill = true, 1
			r.counters = formatBytes(v.bytes) + " / " + formatBytes(v.bytes)
		default:
			r.counters = formatBytes(v.bytes) + " / ?"
		}
		if done {
			r.fill = 1
		}
		rows = append(rows, r)
	}
	lines := layoutBars(rows, width)
	if more && height > 2 {
		doneN := 0
		for _, v := range d.files {
			if v.done || d.finalOK {
				doneN++
			}
		}
		lines = append(lines, cut(fmt.Sprintf("… %s (%d of %d done)",
			plural(len(d.files)-n, "more file"), doneN, len(d.files)), width-1))
	}
	return lines
}

// liveState is the text of the state line at now.
func (d *display) liveState(now time.Time) string {
	st := d.job.State()
	p := d.job.Progress()
	var b strings.Builder
	b.WriteString(st.String())
	if st == dojob.StateTransientError || st == dojob.StateError {
		if e, err := d.job.Error(); err == nil {
			name := e.Code.Name()
			if name == "" {
				name = e.Code.Error()
			}
			b.WriteString(" " + name)
		}
	}
	if h, ok := d.job.Held(); ok {
		b.WriteString(" · " + describeHold(h, now))
	} else if at := d.job.NextRetry(); !at.IsZero() {
		fmt.Fprintf(&b, " · retry %d in %s", d.job.ErrorCount(), formatDuration(at.Sub(now)))
	}
	if at := d.job.NoProgressDeadline(); !at.IsZero() {
		fmt.Fprintf(&b, " · gives up in %s", formatDuration(at.Sub(now)))
	}
	fmt.Fprintf(&b, " · %d/%d files", p.FilesTransferred, p.FilesTotal)
	return b.String()
}

// tick samples the job every tickInterval until finish stops it.
func (d *display) tick() {
	defer close(d.tickDone)
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stopTick:
			return
		case now := <-t.C:
			d.sample(now, true)
			if d.mode == modeBars {
				d.draw(now)
			}
		}
	}
}

// sample reads the job's files at now: it updates each file's bytes,
// speed and stall time, notices files that started over and, with report
// set, shows what it noticed (in modeLines a line for a restart and for a
// stall; in modeBars a line above the bars, with the next frame, for a
// restart). Only the ticker, and finish after the ticker has stopped, call it.
func (d *display) sample(now time.Time, report bool) {
	infos := d.job.Files()
	st := d.job.State()
	var notes []string
	d.mu.Lock()
	dt := now.Sub(d.sampled).Seconds()
	d.sampled = now
	for i, f := range infos {
		if i >= len(d.files) {
			break
		}
		v := &d.files[i]
		n, why := restartInfo(f)
		if n > v.restarts {
			// The library counts each restart and keeps the reason of the
			// last (one that regrew past the old byte count between two
			// samples too); what was on disk before is gone.
			v.before, v.speed, v.bytes = 0, 0, 0
			notes = append(notes, fmt.Sprintf("%s: starting over: %s", v.name, why))
		}
		v.restarts = n
		if f.BytesTotal >= 0 {
			v.total = f.BytesTotal
		}
		if delta := f.BytesTransferred - v.bytes; delta > 0 {
			v.lastChange = now
			v.stallShown = false
			if dt > 0 {
				inst := float64(delta) / dt
				if v.speed == 0 {
					v.speed = inst
				} else {
					v.speed = speedWeight*inst + (1-speedWeight)*v.speed
				}
			}
		} else if dt > 0 {
			v.speed *= 1 - speedWeight // a sample without a byte counts as 0 B/s
		}
		v.bytes = f.BytesTransferred
		v.done = f.Transferred || f.Completed
	}
	if i := d.currentLocked(); i >= 0 && d.mode == modeLines {
		if silent, stalled := d.stalledLocked(st, now); stalled && !d.files[i].stallShown {
			d.files[i].stallShown = true
			notes = append(notes, fmt.Sprintf("%s: stalled: no data for %s (the connection is dropped after %s without data)",
				d.files[i].name, formatDuration(silent), formatDuration(d.stallTimeout)))
		}
	}
	if report {
		switch d.mode {
		case modeLines:
			for _, s := range notes {
				fmt.Fprintln(d.out, s)
			}
		case modeBars:
			d.above = append(d.above, notes...)
		}
	}
	d.mu.Unlock()
}

// finish stops the display: callbacks show nothing more; the ticker stops;
// in modeBars the last frame is drawn and stays on the screen: every bar
// full if ok, else as far as it got, and the state line shows the job's
// state (SUSPENDED after an interruption). Only the first call does
// anything.
func (d *display) finish(ok bool) {
	d.mu.Lock()
	if d.finished {
		d.mu.Unlock()
		return
	}
	d.finished = true
	d.mu.Unlock()
	if d.mode == modeQuiet {
		return
	}
	close(d.stopTick)
	<-d.tickDone
	if d.mode != modeBars {
		return
	}
	now := time.Now()
	d.sample(now, false)
	final := d.liveState(now)
	if st := d.job.State(); !ok && (st == dojob.StateConnecting || st == dojob.StateTransferring || st == dojob.StateQueued) {
		final += " (stopped)"
	}
	d.mu.Lock()
	d.final, d.finalOK = final, ok
	d.mu.Unlock()
	d.draw(now)
}

// formatDuration formats a duration for people: to the millisecond below
// a tenth of a second, the tenth below ten seconds, the second above.
// A negative d (a deadline just passed) is 0s.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// formatClock formats the wall-clock time t for a reader at now: the time
// of day when it is within a day, the date too when it is further.
func formatClock(t, now time.Time) string {
	t = t.Local()
	if t.Sub(now) < 20*time.Hour {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04")
}

// describeHold says why a job is held by policy and until when, at now:
// "held by the bandwidth limits until 22:00:00 (in 2h0m)" or "held by the
// cost policy until the network's cost allows it".
func describeHold(h dojob.HoldInfo, now time.Time) string {
	what := "the cost policy"
	switch h.Code {
	case dojob.ErrBlockedByPolicy:
		what = "the bandwidth limits"
	case dojob.ErrBlockedByCellular:
		what = "the cost policy (no cellular)"
	}
	if h.Until.IsZero() {
		if h.Code == dojob.ErrBlockedByPolicy {
			return "held by " + what + " until they change"
		}
		return "held by " + what + " until the network's cost allows it"
	}
	return fmt.Sprintf("held by %s until %s (in %s)", what, formatClock(h.Until, now), formatDuration(h.Until.Sub(now)))
}
