// Updater shows the canonical pattern of an application that updates
// itself with dojob: the update is a job in a persistent state directory,
// so it survives the application's exit (or crash) and goes on at the next
// start, and the new file replaces the old one atomically, only once it is
// complete.
//
//	go run ./examples/updater [-state-dir DIR]
//
// It is self-contained: it serves its own "release" on 127.0.0.1 (the
// dojobtest kit), installs an old version, then runs the updater twice, as
// two processes would:
//
//  1. The first run creates the job "myapp-update" and starts the download
//     over a slow link; partway through, the process "crashes" (it closes
//     its Manager and forgets everything, as an exit would).
//  2. The second run opens the same state directory, finds the job by its
//     display name instead of creating another, registers its callbacks
//     again (callbacks are not persisted), and finishes the download,
//     resuming where the first run stopped. Its JobTransferred callback
//     completes the job: the new version replaces the old one.
//
// Nothing unverified is installed: the job's file carries the release's
// size and SHA-256 (as a release manifest would give them), so dojob checks
// the digest as the bytes arrive — across the crash, from its saved state
// — and the job is TRANSFERRED only if it matched; a FileTransferred
// callback then runs the application's own check on the temporary file
// (where a signature would be verified) and accepts it with
// SetValidationState before JobTransferred installs it.
//
// Finally it checks the installed file against the release's SHA-256.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
)

// jobName is the display name by which the updater finds its job again.
const jobName = "myapp-update"

// releaseSize is the size of the release the example serves.
const releaseSize = 4 << 20

// main parses the flags, runs the example and exits 1 if it fails.
func main() {
	stateDir := flag.String("state-dir", "", "directory where the update job persists (default: a new temporary directory)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := runMain(ctx, os.Stdout, *stateDir)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "updater:", err)
		os.Exit(1)
	}
}

// runMain runs the example in stateDir, or in a temporary directory that
// it removes afterwards.
func runMain(ctx context.Context, stdout io.Writer, stateDir string) error {
	if stateDir == "" {
		dir, err := os.MkdirTemp("", "myapp-state-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		stateDir = dir
	}
	return run(ctx, stdout, stateDir)
}

// run serves a release, installs an old version, and updates it with two
// runs of the updater on stateDir, the first of which crashes.
func run(ctx context.Context, stdout io.Writer, stateDir string) error {
	var mu sync.Mutex // callbacks log from goroutines of the Manager
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, format+"\n", args...)
	}

	// The release server: its first answer crawls at 4 MiB/s (the crash
	// comes before it ends), later answers are fast.
	srv := dojobtest.NewServer(nil, dojobtest.WithSize(releaseSize),
		dojobtest.Script(dojobtest.Drip(4<<20), dojobtest.OK()))
	defer srv.Close()
	release := srv.FileURL("/myapp-2.0.bin")
	// What the release manifest says of the file.
	rel := releaseInfo{url: release, size: releaseSize, checksum: "sha256:" + srv.SHA256("/myapp-2.0.bin")}

	// The installed application, version 1.0.
	installDir, err := os.MkdirTemp("", "myapp-install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(installDir)
	binary := filepath.Join(installDir, "myapp.bin")
	const oldVersion = "myapp 1.0\n"
	if err := os.WriteFile(binary, []byte(oldVersion), 0o644); err != nil {
		return err
	}
	logf("installed: %s (version 1.0)\nstate dir: %s", binary, stateDir)

	// First run: crashes once a quarter of the release has arrived.
	logf("\n--- run 1")
	if err := update(ctx, logf, stateDir, rel, binary, releaseSize/4); err != nil {
		return err
	}
	// The old version is untouched: the download goes to a hidden
	// temporary file beside it.
	if b, err := os.ReadFile(binary); err != nil || string(b) != oldVersion {
		return fmt.Errorf("the installed file changed before the update was complete (%v)", err)
	}
	logf("after the crash %s still holds version 1.0", filepath.Base(binary))

	// Second run: finds the job and finishes it.
	logf("\n--- run 2 (restart)")
	if err := update(ctx, logf, stateDir, rel, binary, 0); err != nil {
		return err
	}

	// Check the new version, and how the second run resumed.
	got, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(got)
	if hex.EncodeToString(sum[:]) != srv.SHA256("/myapp-2.0.bin") {
		return errors.New("the installed file is not the release")
	}
	if err := noTemporaryFiles(installDir); err != nil {
		return err
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[1].Range == "" {
		return fmt.Errorf("expected a download and a resume, the server saw %d requests", len(reqs))
	}
	logf("\nupdated: %s is the release (SHA-256 %s…), %d bytes; run 2 resumed with Range %q, %d bytes downloaded twice",
		filepath.Base(binary), hex.EncodeToString(sum[:6]), len(got), reqs[1].Range, srv.BodyBytes("")-int64(len(got)))
	return nil
}

// update is one run of the updater, as a process would run it at start:
// open the state directory, find the update job or create it, register the
// callbacks, resume, and wait until the update is installed or has failed.
// With crashAfter > 0 it "crashes" instead once that many bytes have
// arrived: it returns, closing the Manager, with the job unfinished.
func update(ctx context.Context, logf func(string, ...any), stateDir string, rel releaseInfo, dest string, crashAfter int64) error {
	release := rel.url
	// A short checkpoint interval keeps what a crash loses small.
	m, err := dojob.NewManager(dojob.Config{StateDir: stateDir, CheckpointInterval: 50 * time.Millisecond})
	if err != nil {
		return err
	}
	defer m.Close() // the process exit: persisted jobs stay on disk

	job, err := findUpdate(m, logf, release, dest)
	if err != nil {
		return err
	}
	if job == nil {
		if job, err = createUpdate(m, rel, dest); err != nil {
			return err
		}
		logf("created job %s (%s)", job.ID(), jobName)
	} else {
		logf("found job %s (%s) in %s with %d bytes already downloaded", job.ID(), jobName, job.State(), job.Progress().BytesTransferred)
	}

	// Callbacks are not persisted: every run registers them again. A job
	// that is already TRANSFERRED or in ERROR gets its notification now.
	var once sync.Once
	result := make(chan error, 1)
	finish := func(err error) { once.Do(func() { result <- err }) }
	crashed := make(chan struct{})
	var crashOnce sync.Once
	err = job.SetNotifyInterface(dojob.CallbackFuncs{
		File: func(j *dojob.Job, f dojob.FileInfo) error {
			// dojob matched the Checksum already (f.Verified); this is
			// where the application's own check of the temporary file
			// goes — a signature, say. Here: hash it again.
			ok := f.Verified && fileChecksum(f.TemporaryName) == rel.checksum
			logf("checked %s before installing: ok=%v", filepath.Base(f.TemporaryName), ok)
			return j.SetValidationState(0, ok) // false: ERROR, and the file is fetched again
		},
		Transferred: func(j *dojob.Job) error {
			// The canonical pattern: Complete renames the new file over
			// the old one atomically. If it fails, returning the error
			// makes dojob call again after the retry delay.
			if err := j.Complete(); err != nil {
				logf("installing the update failed, will retry: %v", err)
				return err
			}
			logf("transferred and installed: %s", dest)
			finish(nil)
			return nil
		},
		Error: func(j *dojob.Job, e *dojob.JobError) error {
			// Fatal, or no progress for too long: log it, and cancel so
			// that the next start begins afresh.
			logf("update failed: %v", e)
			finish(e)
			return j.Cancel()
		},
		Modification: func(j *dojob.Job) error {
			if crashAfter > 0 && j.Progress().BytesTransferred >= crashAfter {
				crashOnce.Do(func() { close(crashed) })
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	if err := job.Resume(); err != nil {
		return err
	}
	select {
	case err := <-result:
		return err
	case <-crashed:
		logf("crash! the process exits with %d of %d bytes downloaded", job.Progress().BytesTransferred, releaseSize)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// findUpdate returns the job named jobName, or nil if there is none. A job
// of that name for another release or destination is stale (a newer
// release superseded it): it is cancelled, and nil returned.
func findUpdate(m *dojob.Manager, logf func(string, ...any), release, dest string) (*dojob.Job, error) {
	for _, j := range m.Jobs() {
		if j.DisplayName() != jobName {
			continue
		}
		files := j.Files()
		if len(files) == 1 && files[0].RemoteURL == release && files[0].LocalPath == dest {
			return j, nil
		}
		logf("cancelling stale job %s (%s)", j.ID(), jobName)
		if err := j.Cancel(); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// releaseInfo is what a release manifest tells of the file: where it is,
// its size and its checksum.
type releaseInfo struct {
	url      string
	size     int64
	checksum string // "sha256:<hex>"
}

// fileChecksum is the "sha256:<hex>" of the file at path, or "" if it
// cannot be read.
func fileChecksum(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// createUpdate creates the update job: one file with the release's size
// and checksum, with the flags and timeouts of a background update.
func createUpdate(m *dojob.Manager, rel releaseInfo, dest string) (*dojob.Job, error) {
	job, err := m.CreateJob(jobName)
	if err != nil {
		return nil, err
	}
	for _, step := range []func() error{
		func() error {
			return job.AddFileSet([]dojob.FileSpec{{RemoteURL: rel.url, LocalPath: dest, Size: rel.size, Checksum: rel.checksum}})
		},
		func() error { return job.SetDescription("myapp 2.0") },
		func() error { return job.SetPriority(dojob.PriorityNormal) },
		func() error { return job.SetMinimumRetryDelay(200 * time.Millisecond) },
		func() error { return job.SetNoProgressTimeout(time.Minute) },
		// JobModification too: the first run watches the progress.
		// FileTransferred: the application's own check before installing.
		func() error {
			return job.SetNotifyFlags(dojob.DefaultNotifyFlags | dojob.NotifyJobModification | dojob.NotifyFileTransferred)
		},
	} {
		if err := step(); err != nil {
			_ = job.Cancel()
			return nil, err
		}
	}
	return job, nil
}

// noTemporaryFiles returns an error if dir holds a temporary file of dojob.
func noTemporaryFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".dojob-") {
			return fmt.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
	return nil
}
