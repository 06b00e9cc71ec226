package dojobtest_test

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
)

// A test of a 24-hour no-progress timeout that runs in milliseconds. The
// server answers 503 forever; inside a synctest bubble time is fake, so the
// job's day of retries passes at once, and the test checks that the job gave
// up exactly 24 hours after its first failure, with JobError called once.
//
// In your code, test is an ordinary test function; an Example has no
// *testing.T, so this one runs it the way go test would.
func Example_noProgressTimeoutInMilliseconds() {
	test := func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr := dojobtest.NewTransport(dojobtest.Always(dojobtest.Status(503)))
			defer tr.Close()
			m, err := dojob.NewManager(dojob.Config{HTTPClient: tr.Client()})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()

			// The code under test would create and resume the job.
			job, _ := m.CreateJob("nightly")
			if err := job.AddFile(tr.FileURL("/nightly.bin"), filepath.Join(t.TempDir(), "nightly.bin")); err != nil {
				t.Fatal(err)
			}
			rec := dojobtest.NewRecorder()
			_ = job.SetNotifyInterface(rec)
			start := time.Now()
			_ = job.Resume()

			state, err := job.Wait(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rec.AwaitCount(t.Context(), dojobtest.EventError, 1); err != nil {
				t.Fatal(err)
			}
			synctest.Wait() // everything settled: no more callbacks are coming
			jerr, err := job.Error()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Println("fake time passed:", time.Since(start))
			fmt.Printf("state: %v, code: %v, wraps the 503: %v\n", state, jerr.Code, errors.Is(jerr, dojob.HTTPStatus(503)))
			fmt.Printf("attempts: %d, JobError calls: %d\n", len(tr.Requests()), rec.Count(dojobtest.EventError))
			if state != dojob.StateError || time.Since(start) != 24*time.Hour {
				t.Errorf("state %v after %v, want ERROR after 24h", state, time.Since(start))
			}
		})
	}

	// It takes a fraction of a second of real time (not asserted here: a
	// busy machine may be slower, and fake time is what the test is about).
	fmt.Println("test passed:", runAsTest(test))
	// Output:
	// fake time passed: 24h0m0s
	// state: ERROR, code: DO_E_DOWNLOAD_NO_PROGRESS (0x80D02002), wraps the 503: true
	// attempts: 1444, JobError calls: 1
	// test passed: true
}

// runAsTest runs f as a test, as go test would, and reports whether it
// passed. The run is kept quiet even under go test -v, and runs once even
// under go test -count=N (testing.RunTests obeys the global count, which
// would print the test's output N times), so the Example's output does not
// depend on the flags.
func runAsTest(f func(*testing.T)) bool {
	for flagName, value := range map[string]string{"test.v": "false", "test.count": "1"} {
		if v := flag.Lookup(flagName); v != nil {
			old := v.Value.String()
			_ = v.Value.Set(value)
			defer func() { _ = v.Value.Set(old) }()
		}
	}
	return testing.RunTests(func(string, string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: "TestGivesUpAfterADay", F: f}})
}
