package dojob_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
)

// The canonical flow: a job with a file, a callback that completes it, and
// a wait. The server (dojobtest, on 127.0.0.1) cuts the first attempt after
// 100 KiB; the job resumes where it stopped.
func Example() {
	srv := dojobtest.NewServer(nil, dojobtest.WithSize(256<<10), dojobtest.Script(dojobtest.DropAfter(100<<10)))
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "dojob-example-")
	defer os.RemoveAll(dir)

	m, err := dojob.NewManager(dojob.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	job, _ := m.CreateJob("example")
	dest := filepath.Join(dir, "release.bin")
	if err := job.AddFile(srv.FileURL("/release.bin"), dest); err != nil {
		fmt.Println(err)
		return
	}
	_ = job.SetMinimumRetryDelay(10 * time.Millisecond)
	done := make(chan error, 1)
	_ = job.SetNotifyInterface(dojob.CallbackFuncs{
		Transferred: func(j *dojob.Job) error {
			err := j.Complete() // the file appears at dest now, atomically
			done <- err
			return err
		},
		Error: func(j *dojob.Job, e *dojob.JobError) error {
			done <- e
			return j.Cancel()
		},
	})
	if err := job.Resume(); err != nil {
		fmt.Println(err)
		return
	}
	if err := <-done; err != nil {
		fmt.Println("failed:", err)
		return
	}

	data, _ := os.ReadFile(dest)
	sum := sha256.Sum256(data)
	reqs := srv.Requests()
	fmt.Println("state:", job.State())
	fmt.Println("bytes:", len(data), "SHA-256 matches:", hex.EncodeToString(sum[:]) == srv.SHA256("/release.bin"))
	fmt.Println("attempts:", len(reqs), "second one:", reqs[1].Range)
	fmt.Println("errors on the way:", job.ErrorCount())
	// Output:
	// state: ACKNOWLEDGED
	// bytes: 262144 SHA-256 matches: true
	// attempts: 2 second one: bytes=102400-
	// errors on the way: 1
}

// A fatal HTTP status puts the job in ERROR at once, with the documented
// code and context; the error matches the HRESULT with errors.Is.
func ExampleJob_Error() {
	srv := dojobtest.NewServer(nil, dojobtest.Always(dojobtest.Status(404)))
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "dojob-example-")
	defer os.RemoveAll(dir)
	m, _ := dojob.NewManager(dojob.Config{})
	defer m.Close()

	job, _ := m.CreateJob("missing")
	_ = job.AddFile(srv.FileURL("/missing.bin"), filepath.Join(dir, "missing.bin"))
	_ = job.Resume()
	state, _ := job.Wait(context.Background())

	jerr, err := job.Error()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(state)
	fmt.Println(jerr.Code, jerr.Context)
	fmt.Println("404:", errors.Is(jerr, dojob.HTTPStatus(404)), "file:", filepath.Base(jerr.File.LocalPath))
	// Output:
	// ERROR
	// BG_E_HTTP_ERROR_404 (0x80190194) REMOTE_FILE
	// 404: true file: missing.bin
}

// Ranges of a remote file are written one after another, in the order
// given (BITS).
func ExampleJob_AddFileWithRanges() {
	content := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	srv := dojobtest.NewServer(nil, dojobtest.WithFile("/alphabet", content))
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "dojob-example-")
	defer os.RemoveAll(dir)
	m, _ := dojob.NewManager(dojob.Config{})
	defer m.Close()

	job, _ := m.CreateJob("ranges")
	dest := filepath.Join(dir, "parts")
	err := job.AddFileWithRanges(srv.FileURL("/alphabet"), dest, []dojob.FileRange{
		{Offset: 10, Length: 3},                 // abc
		{Offset: 0, Length: 2},                  // 01
		{Offset: 33, Length: dojob.LengthToEOF}, // xyz
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = job.Resume()
	if state, _ := job.Wait(context.Background()); state != dojob.StateTransferred {
		fmt.Println(state)
		return
	}
	_ = job.Complete()
	data, _ := os.ReadFile(dest)
	fmt.Println(string(data), job.Progress().BytesTotal)
	// Output: abc01xyz 8
}

// With a state directory, jobs survive the Manager: the next one on the
// same directory finds them (callbacks must be registered again).
func ExampleConfig_stateDir() {
	state, _ := os.MkdirTemp("", "dojob-state-")
	defer os.RemoveAll(state)

	m, _ := dojob.NewManager(dojob.Config{StateDir: state})
	job, _ := m.CreateJob("survivor")
	_ = job.AddFile("https://127.0.0.1:8443/update.bin", filepath.Join(state, "update.bin"))
	_ = job.SetPriority(dojob.PriorityHigh)
	id := job.ID()
	_ = m.Close() // the process could crash here instead: the job is already on disk

	m2, _ := dojob.NewManager(dojob.Config{StateDir: state})
	defer m2.Close()
	again, err := m2.Job(id)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(again.DisplayName(), again.State(), again.Priority(), len(again.Files()))
	// Output: survivor SUSPENDED HIGH 1
}

// Argument and state errors are HRESULTs too.
func ExampleHRESULT() {
	m, _ := dojob.NewManager(dojob.Config{})
	defer m.Close()
	job, _ := m.CreateJob("")

	err := job.Resume() // no file yet
	fmt.Println(errors.Is(err, dojob.ErrJobEmpty))
	var hr dojob.HRESULT
	if errors.As(job.AddFile("ftp://127.0.0.1/x", "/tmp/x"), &hr) {
		fmt.Printf("%s 0x%08X\n", hr.Name(), uint32(hr))
	}
	fmt.Println(dojob.HTTPStatus(503))
	// Output:
	// true
	// E_INVALIDARG 0x80070057
	// BG_E_HTTP_ERROR_503 (0x801901F7)
}

func ExampleParseJobID() {
	id, err := dojob.ParseJobID("5ce34c0d-0dc9-4c1f-897c-daa1b78cee7c")
	fmt.Println(id, err)
	// Output: {5CE34C0D-0DC9-4C1F-897C-DAA1B78CEE7C} <nil>
}
