package dojob_test

import (
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// setups put a job with one file, "/f", into each state, using a fault
// scripted for "/f". A second job, "/block", stalls without headers and
// holds the only background slot once it is resumed, so a job that goes
// back to QUEUED stays there for the assertions.
var setups = []struct {
	state dojob.State
	fault dojobtest.Fault
	after func(t *testing.T, j *dojob.Job) // beyond resuming and settling
}{
	{state: dojob.StateSuspended},
	{state: dojob.StateQueued}, // Resume while /block holds the slot
	{state: dojob.StateConnecting, fault: dojobtest.StallHeaders()},
	{state: dojob.StateTransferring, fault: dojobtest.StallAfter(1000)},
	{state: dojob.StateTransientError, fault: dojobtest.Status(503)},
	{state: dojob.StateError, fault: dojobtest.Status(404)},
	{state: dojob.StateTransferred, fault: dojobtest.OK()},
	{state: dojob.StateAcknowledged, after: func(t *testing.T, j *dojob.Job) { require.NoError(t, j.Complete()) }},
	{state: dojob.StateCancelled, after: func(t *testing.T, j *dojob.Job) { require.NoError(t, j.Cancel()) }},
}

// TestOperationsInEveryState checks the user's rows of the state table in
// docs/design.md (States): Resume, Suspend, Cancel and Complete from each of
// the nine states, with the state each leaves the job in, its error, and
// what is left on disk.
func TestOperationsInEveryState(t *testing.T) {
	const (
		S  = dojob.StateSuspended
		Q  = dojob.StateQueued
		C  = dojob.StateConnecting
		T  = dojob.StateTransferring
		E  = dojob.StateError
		TE = dojob.StateTransientError
		TD = dojob.StateTransferred
		A  = dojob.StateAcknowledged
		X  = dojob.StateCancelled
	)
	type step struct {
		want    dojob.State
		wantErr dojob.HRESULT
	}
	inv := step{wantErr: dojob.ErrInvalidState}
	table := map[dojob.State]map[string]step{
		S:  {"Resume": {want: Q}, "Suspend": {want: S}, "Cancel": {want: X}, "Complete": {want: A}},
		Q:  {"Resume": {want: Q}, "Suspend": {want: S}, "Cancel": {want: X}, "Complete": {want: A}},
		C:  {"Resume": {want: C}, "Suspend": {want: S}, "Cancel": {want: X}, "Complete": {want: A}},
		T:  {"Resume": {want: T}, "Suspend": {want: S}, "Cancel": {want: X}, "Complete": {want: A}},
		TE: {"Resume": {want: Q}, "Suspend": {want: S}, "Cancel": {want: X}, "Complete": {want: A}},
		E:  {"Resume": {want: Q}, "Suspend": {want: S}, "Cancel": {want: X}, "Complete": {want: A}},
		TD: {"Resume": {want: TD}, "Suspend": {want: TD}, "Cancel": {want: X}, "Complete": {want: A}},
		A:  {"Resume": inv, "Suspend": inv, "Cancel": inv, "Complete": inv},
		X:  {"Resume": inv, "Suspend": inv, "Cancel": inv, "Complete": inv},
	}
	for _, su := range setups {
		for _, op := range []string{"Resume", "Suspend", "Cancel", "Complete"} {
			t.Run(su.state.String()+"/"+op, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					r := newRig(t, dojob.Config{MaxBackgroundJobs: 1},
						dojobtest.WithSize(64<<10),
						dojobtest.AlwaysFor("/block", dojobtest.StallHeaders()),
						dojobtest.ScriptFor("/f", su.fault))
					j := r.job("j", "/f")
					blocker := r.job("blocker", "/block")
					switch su.state {
					case dojob.StateSuspended, dojob.StateAcknowledged, dojob.StateCancelled:
					case dojob.StateQueued:
						require.NoError(t, blocker.Resume())
						synctest.Wait()
						require.NoError(t, j.Resume())
					default:
						require.NoError(t, j.Resume())
						synctest.Wait()
						require.NoError(t, blocker.Resume())
					}
					if su.after != nil {
						su.after(t, j)
					}
					synctest.Wait()
					require.Equal(t, su.state, j.State(), "setup")
					jerr, err := j.Error()
					if su.state == dojob.StateError || su.state == dojob.StateTransientError {
						require.NoError(t, err)
						require.NotNil(t, jerr)
					} else {
						require.ErrorIs(t, err, dojob.ErrErrorInformationUnavailable)
					}

					var opErr error
					switch op {
					case "Resume":
						opErr = j.Resume()
					case "Suspend":
						opErr = j.Suspend()
					case "Cancel":
						opErr = j.Cancel()
					case "Complete":
						opErr = j.Complete()
					}
					want := table[su.state][op]
					if want.wantErr != 0 {
						require.ErrorIs(t, opErr, want.wantErr)
						require.Equal(t, su.state, j.State(), "a refused call changes nothing")
						return
					}
					require.NoError(t, opErr)
					require.Equal(t, want.want, j.State())
					synctest.Wait()

					// What is left on disk.
					dest := r.local("/f")
					_, statErr := os.Stat(dest)
					switch {
					case want.want == dojob.StateAcknowledged && su.state == dojob.StateTransferred:
						r.requireFile("/f")
					default:
						assert.ErrorIs(t, statErr, os.ErrNotExist, "nothing at the destination before a Complete of a transferred file")
					}
					if want.want == dojob.StateCancelled || want.want == dojob.StateAcknowledged {
						assert.Empty(t, tempFiles(t, r.dir), "Cancel and Complete leave no temporary file")
						_, err := r.m.Job(j.ID())
						assert.ErrorIs(t, err, dojob.ErrJobNotFound)
					}
					if su.state == dojob.StateTransferring && want.want == dojob.StateSuspended {
						require.Len(t, tempFiles(t, r.dir), 1, "Suspend keeps the partial file")
						assert.Equal(t, int64(1000), j.Progress().BytesTransferred)
					}
				})
			})
		}
	}
}

// TestStepSequence walks one job through a scripted life in the step
// table form {op, transitions, wantState, wantErr}: after each call and
// everything it set off has settled, the job made exactly those transitions
// (seen by a StateCallback) and is in wantState.
func TestStepSequence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(32<<10),
			dojobtest.ScriptFor("/a", dojobtest.Status(404), dojobtest.OK()))
		j, err := r.m.CreateJob("steps")
		require.NoError(t, err)
		rec := dojobtest.NewRecorder()
		require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
		require.NoError(t, j.SetNotifyInterface(rec))
		const (
			S, Q, C, T = dojob.StateSuspended, dojob.StateQueued, dojob.StateConnecting, dojob.StateTransferring
			E, TD, A   = dojob.StateError, dojob.StateTransferred, dojob.StateAcknowledged
		)
		type step struct {
			name        string
			op          func() error
			transitions []dojob.State
			wantState   dojob.State
			wantErr     dojob.HRESULT
		}
		add := func(p string) func() error { return func() error { return j.AddFile(r.tr.FileURL(p), r.local(p)) } }
		steps := []step{
			{"resume empty", j.Resume, nil, S, dojob.ErrJobEmpty},
			{"add /a", add("/a"), nil, S, 0},
			{"suspend again", j.Suspend, nil, S, 0},
			{"resume: 404", j.Resume, []dojob.State{Q, C, E}, E, 0},
			{"add /b in ERROR", add("/b"), nil, E, 0},
			{"resume after fixing", j.Resume, []dojob.State{Q, C, T, C, T, TD}, TD, 0},
			{"suspend transferred", j.Suspend, nil, TD, 0},
			{"resume transferred", j.Resume, nil, TD, 0},
			{"add /c to a transferred job", add("/c"), nil, TD, 0},
			{"resume for /c", j.Resume, []dojob.State{Q, C, T, TD}, TD, 0},
			{"complete", j.Complete, []dojob.State{A}, A, 0},
			{"complete again", j.Complete, nil, A, dojob.ErrInvalidState},
			{"cancel after complete", j.Cancel, nil, A, dojob.ErrInvalidState},
		}
		seen := 0
		for _, s := range steps {
			err := s.op()
			if s.wantErr != 0 {
				require.ErrorIs(t, err, s.wantErr, s.name)
			} else {
				require.NoError(t, err, s.name)
			}
			synctest.Wait()
			states := rec.States()
			moved := states[seen:]
			if len(moved) == 0 {
				moved = nil
			}
			require.Equal(t, s.transitions, moved, s.name)
			seen = len(states)
			require.Equal(t, s.wantState, j.State(), s.name)
		}
		for _, p := range []string{"/a", "/b", "/c"} {
			r.requireFile(p)
		}
		assert.Equal(t, 1, j.ErrorCount())
		assert.Equal(t, []string{"a", "b", "c"}, dirEntries(t, r.dir))
		assert.Equal(t, filepath.Join(r.dir, "c"), j.Files()[2].LocalPath)
		for _, f := range j.Files() {
			assert.True(t, f.Completed)
			assert.True(t, f.Transferred)
		}
	})
}
