package dojob_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentMethods has many goroutines call every method of shared jobs
// at once, with transfers, retries and callbacks running, under the race
// detector. Every call must return nil or one of the documented codes; the
// jobs must end consistent; nothing may leak (TestMain checks goroutines).
func TestConcurrentMethods(t *testing.T) {
	tr := dojobtest.NewTransport(dojobtest.WithSize(32<<10), dojobtest.WithRate(8<<20), // ~4 ms a file
		dojobtest.Script(dojobtest.DropAfter(5000), dojobtest.Status(503), dojobtest.OK()))
	defer tr.Close()
	m, err := dojob.NewManager(dojob.Config{HTTPClient: tr.Client(), MaxBackgroundJobs: 2, MaxForegroundJobs: 2})
	require.NoError(t, err)
	dir := t.TempDir()

	const nJobs, nWorkers, nOps = 4, 8, 300
	jobs := make([]*dojob.Job, nJobs)
	for i := range jobs {
		j, err := m.CreateJob(fmt.Sprint("shared ", i))
		require.NoError(t, err)
		require.NoError(t, j.AddFile(tr.FileURL(fmt.Sprintf("/j%d/first", i)), filepath.Join(dir, fmt.Sprintf("j%d-first", i))))
		require.NoError(t, j.SetMinimumRetryDelay(time.Millisecond))
		require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{
			Modification: func(j *dojob.Job) error { _ = j.Progress(); return nil },
			Transferred: func(j *dojob.Job) error {
				if rand.IntN(2) == 0 {
					return j.Complete()
				}
				return nil
			},
		}))
		jobs[i] = j
	}

	allowed := []error{dojob.ErrInvalidState, dojob.ErrJobEmpty, dojob.ErrInvalidArg, context.DeadlineExceeded}
	check := func(op string, err error) {
		if err == nil {
			return
		}
		for _, a := range allowed {
			if errors.Is(err, a) {
				return
			}
		}
		t.Errorf("%s: unexpected error %v", op, err)
	}

	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	for w := range nWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			op := func(n int) {
				j := jobs[rng.IntN(nJobs)]
				switch rng.IntN(22) {
				case 0, 1, 2:
					check("Resume", j.Resume())
				case 3, 4:
					check("Suspend", j.Suspend())
				case 5:
					if n > nOps-10 && rng.IntN(4) == 0 { // ending jobs early would leave little to race with
						check("Cancel", j.Cancel())
					}
				case 6:
					if n > nOps-10 && rng.IntN(4) == 0 {
						check("Complete", j.Complete())
					}
				case 7:
					check("AddFile", j.AddFile(tr.FileURL(fmt.Sprintf("/w%d/%d", w, n)), filepath.Join(dir, fmt.Sprintf("w%d-%d", w, n))))
				case 8:
					check("SetPriority", j.SetPriority(dojob.Priority(rng.IntN(4))))
				case 9:
					check("SetNoProgressTimeout", j.SetNoProgressTimeout(time.Duration(rng.IntN(3)+1)*time.Second))
				case 10:
					check("SetMinimumRetryDelay", j.SetMinimumRetryDelay(time.Duration(rng.IntN(3)+1)*time.Millisecond))
				case 11:
					check("SetDisplayName", j.SetDisplayName(fmt.Sprint("w", w)))
				case 12:
					check("SetDescription", j.SetDescription(fmt.Sprint("op ", n)))
				case 13:
					check("SetNotifyFlags", j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
				case 14:
					_ = j.NotifyInterface()
					_ = j.NotifyFlags()
					_ = j.NoProgressTimeout()
					_ = j.MinimumRetryDelay()
					_ = j.Priority()
					_ = j.DisplayName()
					_ = j.Description()
				case 15:
					p := j.Progress()
					if p.BytesTotal != dojob.SizeUnknown && p.BytesTransferred > p.BytesTotal {
						t.Errorf("progress %+v", p)
					}
				case 16:
					for _, f := range j.Files() {
						if f.Completed && !f.Transferred {
							t.Errorf("completed but not transferred: %+v", f)
						}
					}
				case 17:
					_ = j.Times()
					_ = j.ErrorCount()
					if e, err := j.Error(); err == nil && e == nil {
						t.Error("Error() gave neither an error object nor an error")
					}
				case 18:
					ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
					_, err := j.Wait(ctx)
					cancel()
					check("Wait", err)
				case 19:
					_ = m.Jobs()
					_, err := m.Job(j.ID())
					if err != nil && !errors.Is(err, dojob.ErrJobNotFound) {
						t.Errorf("Job: %v", err)
					}
				case 20:
					_ = j.State()
				case 21:
					check("SetNotifyInterface", j.SetNotifyInterface(nil))
				}
			}
			for n := range nOps {
				if n == nOps-10 {
					// Before the last calls, which may end jobs: go on with
					// the others until transfers have run during them (a
					// slow machine, or Wine, runs fewer in nOps calls), for
					// 20 s at most.
					for len(tr.Requests()) <= nJobs*3 && time.Now().Before(deadline) {
						op(0)
					}
				}
				op(n)
			}
		}()
	}
	wg.Wait()
	var states []dojob.State
	for _, j := range jobs {
		states = append(states, j.State())
	}
	t.Logf("states %v after %d requests", states, len(tr.Requests()))
	assert.Greater(t, len(tr.Requests()), nJobs*3, "transfers ran during the calls")

	// End every job and check what is left on disk. The callbacks may still
	// Complete a job, so first let each settle: Suspend stops it (a
	// TRANSFERRED or final job stays as it is) and Wait returns once no
	// JobTransferred owed is queued, due again or running. From then on
	// nothing but this loop changes the job, so its Complete or Cancel
	// cannot collide with a callback's and must succeed.
	for _, j := range jobs {
		check("Suspend", j.Suspend())
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		st, err := j.Wait(ctx)
		cancel()
		require.NoError(t, err)
		switch st {
		case dojob.StateAcknowledged, dojob.StateCancelled:
		case dojob.StateTransferred:
			require.NoError(t, j.Complete())
		case dojob.StateSuspended:
			require.NoError(t, j.Cancel())
		default:
			t.Fatalf("job %s settled in %v", j.ID(), st)
		}
	}
	require.NoError(t, m.Close())
	assert.Empty(t, tempFiles(t, dir), "no temporary file left behind")
	for _, j := range jobs {
		for _, f := range j.Files() {
			_, err := os.Stat(f.LocalPath)
			if f.Completed {
				assert.NoError(t, err, f.LocalPath)
				assert.Equal(t, tr.SHA256(urlPath(t, f.RemoteURL)), fileSHA256(t, f.LocalPath))
			} else {
				assert.ErrorIs(t, err, os.ErrNotExist, f.LocalPath)
			}
		}
	}
}

func urlPath(t *testing.T, u string) string {
	t.Helper()
	const prefix = "http://" + dojobtest.Host
	require.Contains(t, u, prefix)
	return u[len(prefix):]
}
