// Quickstart downloads a file through a flaky link with a dojob job, and
// shows the job riding out the faults.
//
//	go run ./examples/quickstart
//
// It needs no network: it starts its own file server on 127.0.0.1 (the
// dojobtest kit) that serves 4 MiB of generated data and breaks the first
// two attempts — the connection drops after 1 MiB, then stalls after 2 MiB
// more. The job retries, resumes each time where it stopped (HTTP Range),
// and the file appears at its destination, complete, in about a second.
//
// The API in five steps: Manager → Job → AddFile → callbacks → Resume, then
// wait for the callbacks, and check the result.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
)

// main runs the example and exits 1 if it fails.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run downloads the file, printing what happens to stdout, and returns an
// error if the download or its check fails.
func run(ctx context.Context, stdout io.Writer) error {
	// Callbacks print from a goroutine of the Manager, run from this one.
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, format+"\n", args...)
	}

	// A server with a flaky link: the n-th request for a file gets the
	// n-th fault. 1st: cut after 1 MiB; 2nd: stall after 2 MiB; 3rd: fine.
	const size = 4 << 20
	srv := dojobtest.NewServer(nil, dojobtest.WithSize(size), dojobtest.WithRate(16<<20),
		dojobtest.Script(dojobtest.DropAfter(1<<20), dojobtest.StallAfter(2<<20), dojobtest.OK()))
	defer srv.Close()
	url := srv.FileURL("/release.bin")

	dir, err := os.MkdirTemp("", "dojob-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dest := filepath.Join(dir, "release.bin")

	// 1. A Manager owns jobs. StallTimeout: a connection that moves no
	// byte for 1.5 seconds is given up (and retried). (Short for a demo,
	// long enough for a busy machine: the default is 60 s.)
	m, err := dojob.NewManager(dojob.Config{StallTimeout: 1500 * time.Millisecond})
	if err != nil {
		return err
	}
	defer m.Close()

	// 2. A job, 3. its file, and how patient it is: retry 200 ms after
	// an error; give up if no byte arrives for 30 s.
	job, err := m.CreateJob("quickstart")
	if err != nil {
		return err
	}
	if err := job.AddFile(url, dest); err != nil {
		return err
	}
	if err := job.SetMinimumRetryDelay(200 * time.Millisecond); err != nil {
		return err
	}
	if err := job.SetNoProgressTimeout(30 * time.Second); err != nil {
		return err
	}

	// 4. Callbacks. Complete from JobTransferred is the canonical pattern:
	// it renames the finished file into place. On a fatal error, cancel.
	// ACKNOWLEDGED and CANCELLED are final: nothing happens after them.
	var failure error
	finished := make(chan struct{})
	err = job.SetNotifyFlags(dojob.DefaultNotifyFlags | dojob.NotifyJobModification) // + state changes
	if err != nil {
		return err
	}
	err = job.SetNotifyInterface(dojob.CallbackFuncs{
		StateChanged: func(j *dojob.Job, from, to dojob.State) error {
			line := "state: " + to.String()
			if e, err := j.Error(); err == nil && to == dojob.StateTransientError {
				line += fmt.Sprintf(" (error %d: %v)", j.ErrorCount(), e)
			}
			say("%s", line)
			if to.Final() {
				close(finished)
			}
			return nil
		},
		Transferred: func(j *dojob.Job) error {
			return j.Complete() // an error here is delivered again later
		},
		Error: func(j *dojob.Job, e *dojob.JobError) error {
			mu.Lock()
			failure = e
			mu.Unlock()
			return j.Cancel()
		},
	})
	if err != nil {
		return err
	}

	// 5. Go, and wait, showing the progress.
	start := time.Now()
	say("downloading %s\n         to %s", url, dest)
	if err := job.Resume(); err != nil {
		return err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var shown int64 = -1
	for waiting := true; waiting; {
		select {
		case <-finished:
			waiting = false
		case <-tick.C:
			// Under the output's lock, so that a progress line never
			// lands between the state lines of the transfer's end.
			mu.Lock()
			if p := job.Progress(); p.BytesTransferred != shown && job.State() < dojob.StateTransferred {
				shown = p.BytesTransferred
				fmt.Fprintf(stdout, "progress: %s of %s\n", mib(p.BytesTransferred), mib(p.BytesTotal))
			}
			mu.Unlock()
		case <-ctx.Done():
			return ctx.Err() // m.Close deletes the partial file
		}
	}
	elapsed := time.Since(start)
	mu.Lock()
	err = failure
	mu.Unlock()
	if err != nil {
		return fmt.Errorf("download failed: %w", err)
	}

	// Check the result against what the server sent.
	got, err := os.ReadFile(dest)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(got)
	if hex.EncodeToString(sum[:]) != srv.SHA256("/release.bin") {
		return errors.New("the downloaded file differs from the server's")
	}
	reqs := srv.RequestsFor("/release.bin")
	say("\nthe server saw %d requests:", len(reqs))
	for i, r := range reqs {
		rng := r.Range
		if rng == "" {
			rng = "whole file"
		}
		say("  %d. GET %-18s → %d, %s sent, fault: %s", i+1, rng, r.Status, mib(r.BodyBytes), r.Fault)
	}
	say("\ndone: %s in %s, %d attempts, %d bytes re-downloaded, SHA-256 %s… verified",
		mib(int64(len(got))), elapsed.Round(time.Millisecond), len(reqs), srv.BodyBytes("")-int64(len(got)), hex.EncodeToString(sum[:6]))
	return nil
}

// mib formats n bytes in MiB.
func mib(n int64) string {
	if n < 0 {
		return "? MiB"
	}
	return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
}
