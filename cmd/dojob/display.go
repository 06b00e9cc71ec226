package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dojob/dojob"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// tickInterval is how often the bars read the job's progress.
const tickInterval = 200 * time.Millisecond

// awaitLimit bounds how long a display waits for the callback that reports
// the state Wait already saw; it normally arrives within microseconds.
const awaitLimit = 2 * time.Second

// displayMode is how a display shows a job.
type displayMode int

const (
	modeQuiet displayMode = iota // nothing (--quiet, --json)
	modeLines                    // one line per state change: output that is not a terminal
	modeBars                     // live progress bars and a state line: a terminal
)

// display shows a running job. State changes arrive through stateChanged,
// the job's StateCallback, on a goroutine of the Manager; in modeBars a
// ticker goroutine reads the job's progress for the bars. finish stops
// both and, in modeBars, waits for the mpb container, so nothing the
// display started outlives it. Its methods are safe for concurrent use.
type display struct {
	mode displayMode
	out  io.Writer
	job  jobView // a job here, or one another dojob process runs

	mu       sync.Mutex
	finished bool          // finish was called: callbacks print nothing more
	reached  uint32        // bit s: a change into State s was shown
	changed  chan struct{} // closed and replaced at each change shown
	status   string        // modeBars: the text of the state line

	// modeBars only; set up by newDisplay, then used by the ticker and
	// by finish.
	p        *mpb.Progress
	bars     []*mpb.Bar // one per file, in the job's order
	current  []int64    // the bytes each bar shows
	complete []bool     // the bar is complete
	state    *mpb.Bar   // the state line
	stopTick chan struct{}
	tickDone chan struct{}
}

// newDisplay returns the display of j for c's output mode and, in
// modeBars, starts drawing.
func (c *cli) newDisplay(j jobView) *display {
	d := &display{out: c.stdout, job: j, changed: make(chan struct{})}
	switch {
	case c.quiet || c.json:
		d.mode = modeQuiet
	case c.opts.tty:
		d.mode = modeBars
	default:
		d.mode = modeLines
	}
	d.println(fmt.Sprintf("job %s (%s): %s", j.ID(), j.DisplayName(), plural(len(j.Files()), "file")))
	if d.mode == modeBars {
		d.startBars(c.opts.console)
	}
	return d
}

// println prints a line in modeLines (under mu, so that it never
// interleaves with a callback's line).
func (d *display) println(s string) {
	if d.mode != modeLines {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintln(d.out, s)
}

// stateChanged is the job's StateCallback: it records and shows the change.
func (d *display) stateChanged(j *dojob.Job, from, to dojob.State) error {
	d.show(to, describeState(j, to))
	return nil
}

// show records and shows a change into state to, described by text.
func (d *display) show(to dojob.State, text string) {
	d.mu.Lock()
	if d.finished {
		d.mu.Unlock()
		return
	}
	switch d.mode {
	case modeLines:
		fmt.Fprintln(d.out, text)
	case modeBars:
		d.status = text
	}
	d.reached |= 1 << uint(to)
	close(d.changed)
	d.changed = make(chan struct{})
	p := d.p
	d.mu.Unlock()

	if p != nil && (to == dojob.StateTransientError || to == dojob.StateError) {
		// Keep a record of each error above the bars. Write returns at
		// once once the container is done.
		_, _ = fmt.Fprintln(p, text)
	}
}

// describeState is the line for a change into state s: the state, and
// for errors the error and how many there were.
func describeState(j jobView, s dojob.State) string {
	switch s {
	case dojob.StateTransientError, dojob.StateError:
		msg := ""
		// The job may have moved on since (the callback runs later):
		// then the error object is gone and only the state is shown.
		if e, err := j.Error(); err == nil {
			msg = ": " + strings.TrimPrefix(e.Error(), "dojob: ")
		}
		if s == dojob.StateTransientError {
			return fmt.Sprintf("%s%s (retry %d)", s, msg, j.ErrorCount())
		}
		return fmt.Sprintf("%s%s", s, msg)
	}
	return s.String()
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

// startBars creates the mpb container with a bar per file and the state
// line, and starts the ticker that updates them.
func (d *display) startBars(console mpb.ConsoleWriter) {
	opts := []mpb.ContainerOption{mpb.WithOutput(d.out), mpb.WithRefreshRate(tickInterval)}
	if console != nil {
		opts = append(opts, mpb.WithConsoleWriter(console))
	}
	d.p = mpb.New(opts...)
	files := d.job.Files()
	d.current = make([]int64, len(files))
	d.complete = make([]bool, len(files))
	for i, f := range files {
		total := max(f.BytesTotal, 0)
		bar := d.p.New(total, mpb.BarStyle(),
			mpb.PrependDecorators(
				decor.Name(filepath.Base(f.LocalPath), decor.WC{C: decor.DSyncSpaceR}),
				decor.Any(counters, decor.WCSyncSpace),
			),
			mpb.AppendDecorators(
				decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncWidth), "done"),
				decor.Name(" "),
				decor.OnComplete(decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30, decor.WCSyncSpace), ""),
			),
		)
		bar.SetCurrent(f.BytesTransferred)
		d.bars = append(d.bars, bar)
		d.current[i] = f.BytesTransferred
	}
	d.status = d.job.State().String()
	d.state = d.p.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(d.stateLine)))
	d.stopTick, d.tickDone = make(chan struct{}), make(chan struct{})
	go d.tick()
}

// counters renders a bar's bytes, done of total, with "?" for a total
// that is not known yet.
func counters(s decor.Statistics) string {
	if s.Total <= 0 && !s.Completed {
		return formatBytes(s.Current) + " / ?"
	}
	return formatBytes(s.Current) + " / " + formatBytes(s.Total)
}

// stateLine renders the state line: the job's ID, its state and its
// files, cut to the width available.
func (d *display) stateLine(s decor.Statistics) string {
	p := d.job.Progress()
	d.mu.Lock()
	status := d.status
	d.mu.Unlock()
	line := fmt.Sprintf("job %s  %d/%d files  %s", d.job.ID(), p.FilesTransferred, p.FilesTotal, status)
	if w := s.AvailableWidth; w > 1 && len([]rune(line)) > w {
		line = string([]rune(line)[:w-1]) + "…"
	}
	return line
}

// tick updates the bars every tickInterval until finish stops it.
func (d *display) tick() {
	defer close(d.tickDone)
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-d.stopTick:
			return
		case now := <-t.C:
			d.update(now.Sub(last))
			last = now
		}
	}
}

// update sets each bar to its file's progress; dt is the time since the
// last update (for the speed and the ETA). Only the ticker, and finish
// after the ticker has stopped, call it.
func (d *display) update(dt time.Duration) {
	for i, f := range d.job.Files() {
		if i >= len(d.bars) || d.complete[i] {
			continue
		}
		bar := d.bars[i]
		if f.BytesTotal >= 0 {
			bar.SetTotal(f.BytesTotal, false)
		}
		if n := f.BytesTransferred; n >= d.current[i] && dt > 0 {
			bar.EwmaSetCurrent(n, dt)
		} else {
			bar.SetCurrent(n) // the last update, or the file started over
		}
		d.current[i] = f.BytesTransferred
		if f.Transferred || f.Completed {
			bar.SetTotal(f.BytesTotal, true)
			d.complete[i] = true
		}
	}
}

// finish stops the display: callbacks show nothing more; in modeBars the
// ticker stops, every bar is completed (ok) or aborted, and the container
// has drawn its last frame and ended when finish returns. Only the first
// call does anything.
func (d *display) finish(ok bool) {
	d.mu.Lock()
	if d.finished {
		d.mu.Unlock()
		return
	}
	d.finished = true
	if d.mode == modeBars {
		st := d.job.State()
		d.status = describeState(d.job, st)
		if !ok && st != dojob.StateError {
			d.status += " (stopped)"
		}
	}
	d.mu.Unlock()
	if d.mode != modeBars {
		return
	}
	close(d.stopTick)
	<-d.tickDone
	d.update(0)
	for i, bar := range d.bars {
		if ok && !d.complete[i] {
			bar.SetTotal(-1, true)
		} else if !ok {
			bar.Abort(false)
		}
	}
	d.state.SetTotal(-1, true)
	d.p.Wait()
}
