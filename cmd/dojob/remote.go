package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/dojob/dojob"
)

// errSuspended ends the wait of a get or resume whose job was suspended
// by another party (another dojob command, through the control endpoint).
var errSuspended = errors.New("the job was suspended")

// withManager runs a command on the state directory. If this process can
// own the directory, it opens the Manager and runs local with it (see
// hold). If another dojob process holds it, it runs remote with a
// connection to that process's control endpoint; when remote returns an
// error matching errHolderGone, the holder went away and everything starts
// over — this process may become the holder. A holder without an endpoint
// is waited for, at most options.shareWait.
func (c *cli) withManager(mf managerFlags, local func(m *dojob.Manager) int, remote func(cl *ctlClient) (int, error)) int {
	dir := c.stateDir
	if dir == "" {
		var err error
		dir, err = defaultStateDir(runtime.GOOS, os.Getenv, os.UserHomeDir, os.UserConfigDir)
		if err != nil {
			return c.fail(fmt.Errorf("no state directory (use --state-dir): %w", err))
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return c.fail(err)
	}
	wait := c.opts.shareWait
	if wait <= 0 {
		wait = defaultShareWait
	}
	deadline := time.Now().Add(wait)
	delay := 5 * time.Millisecond
	for {
		m, err := dojob.NewManager(mf.config(dir))
		if err == nil {
			return c.hold(dir, mf, m, local)
		}
		if !errors.Is(err, dojob.ErrSharingViolation) {
			return c.fail(fmt.Errorf("opening state directory %s: %w", dir, err))
		}
		if cl, derr := dialControl(dir); derr == nil {
			code, rerr := remote(cl)
			cl.close()
			if !errors.Is(rerr, errHolderGone) {
				return code
			}
			// The holder is closing: its lock goes next.
			deadline, delay = time.Now().Add(wait), 5*time.Millisecond
		} else if !time.Now().Before(deadline) {
			// The library's message names the directory too; say it once.
			return c.fail(fmt.Errorf("state directory %s is in use by another dojob command: %w", dir, dojob.ErrSharingViolation))
		}
		// The holder serves no endpoint (yet, or any more): the commands
		// that only look hold the lock for milliseconds.
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return c.fail(fmt.Errorf("interrupted while waiting for state directory %s: %w", dir, err))
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// hold runs local with m, which holds the state directory dir. With
// mf.transfers (get, resume) it serves the control endpoint meanwhile, and
// once local is done it keeps serving until no other dojob command follows
// a job here (Ctrl-C stops that wait: those commands continue their jobs
// themselves). The endpoint is closed, then the Manager — always, before
// hold returns, so the directory is released and every goroutine has
// ended. A failing Close turns a success into exitFail.
func (c *cli) hold(dir string, mf managerFlags, m *dojob.Manager, local func(m *dojob.Manager) int) int {
	removeStaleSocket(dir)
	var srv *server
	if mf.transfers {
		var err error
		if srv, err = startServer(dir, m, mf.stallTimeout); err != nil {
			fmt.Fprintf(c.stderr, "dojob: warning: other dojob commands cannot use %s while this one runs: %v\n", dir, err)
		}
	}
	var once sync.Once
	var closeErr error
	c.release = func() error {
		once.Do(func() {
			if srv != nil {
				srv.close()
			}
			closeErr = m.Close()
		})
		return closeErr
	}
	defer func() { c.release = nil }()

	code := local(m)
	if srv != nil && srv.watchers() > 0 && c.ctx.Err() == nil {
		c.printf("other dojob commands follow jobs here; waiting for them (Ctrl-C hands the jobs over)\n")
		srv.waitIdle(c.ctx)
	}
	if err := c.release(); err != nil {
		c.fail(fmt.Errorf("closing state directory %s: %w", dir, err))
		if code == exitOK {
			code = exitFail
		}
	}
	return code
}

// remoteFail reports the error of a request to the holder, or passes on
// errHolderGone so that withManager starts over.
func (c *cli) remoteFail(err error) (int, error) {
	if errors.Is(err, errHolderGone) {
		return exitFail, err
	}
	return c.fail(err), nil
}

// getRemote is get in the dojob process that holds the state directory:
// it creates the job there (or continues the one with the same files) and
// follows it.
func (c *cli) getRemote(cl *ctlClient, specs []fileSpec, jf *jobFlags, cancelOnError bool) (int, error) {
	req := ctlRequest{Op: "get", Settings: settingsOf(jf, true)}
	for _, s := range specs {
		req.Files = append(req.Files, ctlFile{URL: s.url, Path: s.path, Mirrors: s.mirrors, Size: s.size, Checksum: s.checksum})
	}
	resp, err := cl.do(req)
	if re := (*remoteError)(nil); errors.As(err, &re) && re.conflict != nil {
		return c.conflict(err, *re.conflict), nil
	}
	if err != nil {
		return c.remoteFail(err)
	}
	// A holder from before checksums ignores them: its job would not be
	// checked as asked. It is cancelled (suspended if it was an existing
	// job), and the user told why.
	if files := resp.Job.Files(); len(files) == len(specs) {
		for i, f := range files {
			if sameVerification(f, specs[i]) {
				continue
			}
			op := "cancel"
			if resp.Continued {
				op = "suspend"
			}
			_, _ = cl.do(ctlRequest{Op: op, ID: resp.Job.ID()})
			return c.fail(errors.New("get: the dojob command holding the state directory is older and cannot check checksums or sizes; run this get when it is done, or with another --state-dir")), nil
		}
	}
	if resp.Continued {
		c.printf("continuing job %s (%s): %s already transferred\n", resp.Job.ID(), resp.Job.DisplayName(), formatBytes(resp.Job.Progress().BytesTransferred))
	}
	return c.follow(cl, resp, cancelOnError)
}

// resumeRemote is resume in the dojob process that holds the state
// directory.
func (c *cli) resumeRemote(cl *ctlClient, id dojob.JobID, jf *jobFlags) (int, error) {
	resp, err := cl.do(ctlRequest{Op: "resume", ID: id, Settings: settingsOf(jf, false)})
	if err != nil {
		return c.remoteFail(err)
	}
	return c.follow(cl, resp, false)
}

// suspendedElsewhere reports that j, which this command waited for, was
// suspended by another party, and returns exitFail: the command stops as
// on Ctrl-C.
func (c *cli) suspendedElsewhere(j jobView) int {
	if c.json {
		c.printJSON(resultOf(j, nil, true))
	}
	fmt.Fprintf(c.stderr, "job %s was suspended; continue with: %s\n", j.ID(), c.hint("resume", j.ID()))
	return exitFail
}

// hasShown reports whether the display has shown a change into s (or is
// finished).
func (d *display) hasShown(s dojob.State) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.finished || d.reached&(1<<uint(s)) != 0
}

// follow is transfer for a job that the holder runs and has just resumed
// (started: the holder's answer to get or resume): it shows the job's
// progress and state changes, asking the holder every pollInterval, until
// the job is TRANSFERRED or in ERROR, and then asks the holder to do what
// transfer does here — Complete, or Cancel on ERROR if cancelOnError —
// and reports the outcome in the same words (outcome). Ctrl-C suspends the
// job in the holder. If the holder goes away, follow returns an error
// matching errHolderGone and withManager starts over: the job is continued
// from the state directory.
func (c *cli) follow(cl *ctlClient, started ctlResponse, cancelOnError bool) (int, error) {
	start := time.Now()
	snap := *started.Job
	j := &remoteJob{s: snap}
	id := snap.ID()
	d := c.newDisplay(j, started.StallTimeout)
	d.startedFrom(started.Before)
	defer d.finish(false) // on every path; a no-op after the first call

	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	poll := func() error {
		resp, err := cl.do(ctlRequest{Op: "status"})
		if err != nil {
			return err
		}
		j.set(*resp.Job)
		for _, ev := range resp.Events {
			d.show(ev.To, ev.Text)
		}
		return nil
	}
	// request sends op on the job and takes the job from the answer.
	request := func(op string) error {
		resp, err := cl.do(ctlRequest{Op: op, ID: id})
		if err != nil {
			return err
		}
		j.set(*resp.Job)
		return nil
	}
	ops := outcomeOps{
		complete: func() error { return request("complete") },
		cancel:   func() error { return request("cancel") },
		suspend:  func() error { return request("suspend") },
		// await lets the display show the change into s before it stops,
		// as display.await does for a job here; the holder reports it at
		// a status.
		await: func(ctx context.Context, s dojob.State) error {
			if d.mode == modeQuiet {
				return nil
			}
			limit := time.Now().Add(awaitLimit)
			for !d.hasShown(s) && time.Now().Before(limit) {
				select {
				case <-tick.C:
				case <-ctx.Done():
					return nil
				}
				if err := poll(); err != nil {
					return err
				}
			}
			return nil
		},
		keep: func() {},
		stop: func() {},
	}
	holderGone := func(err error) (int, error) {
		d.finish(false)
		c.printf("the dojob command that ran job %s ended; continuing the job here\n", id)
		return exitFail, err
	}

	initial := snap.State()
	var st dojob.State
wait:
	for {
		switch st = j.State(); st {
		case dojob.StateTransferred, dojob.StateError, dojob.StateAcknowledged, dojob.StateCancelled, dojob.StateSuspended:
			break wait
		}
		select {
		case <-tick.C:
		case <-c.ctx.Done():
			return c.interrupted(d, j, ops), nil
		}
		if err := poll(); errors.Is(err, errHolderGone) {
			return holderGone(err)
		} else if err != nil {
			d.finish(false)
			return c.fail(err), nil
		}
	}
	code, err := c.outcome(d, j, ops, initial, st, start, cancelOnError)
	if errors.Is(err, errHolderGone) {
		return holderGone(err)
	}
	return code, err
}
