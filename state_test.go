package dojob_test

import (
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type edge = [2]dojob.State

// edgeLog records, through StateCallback, every move of the jobs it
// watches.
type edgeLog struct {
	mu   sync.Mutex
	seen map[edge]int
	jobs map[*dojob.Job][]edge
}

func newEdgeLog() *edgeLog {
	return &edgeLog{seen: make(map[edge]int), jobs: make(map[*dojob.Job][]edge)}
}

func (l *edgeLog) watch(t *testing.T, j *dojob.Job) {
	t.Helper()
	require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
	require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{StateChanged: func(j *dojob.Job, from, to dojob.State) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.seen[edge{from, to}]++
		l.jobs[j] = append(l.jobs[j], edge{from, to})
		return nil
	}}))
}

func (l *edgeLog) of(j *dojob.Job) []edge {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]edge(nil), l.jobs[j]...)
}

// stateRig serves, by path: /ok normally, /ok2 normally, /stall never
// answering, /stallbody stopping after 100 bytes, /503 and /404 for ever.
// One background slot, so a second job waits in QUEUED; stalls last an
// hour.
func stateRig(t *testing.T) *rig {
	return newRig(t, dojob.Config{MaxBackgroundJobs: 1, StallTimeout: time.Hour},
		dojobtest.WithSize(8<<10),
		dojobtest.AlwaysFor("/stall", dojobtest.StallHeaders()),
		dojobtest.AlwaysFor("/stallbody", dojobtest.StallAfter(100)),
		dojobtest.AlwaysFor("/503", dojobtest.Status(503)),
		dojobtest.AlwaysFor("/404", dojobtest.Status(404)))
}

// reach drives a new watched job into state s with public calls and server
// answers only.
func reach(t *testing.T, r *rig, l *edgeLog, s dojob.State) *dojob.Job {
	t.Helper()
	path := map[dojob.State]string{
		dojob.StateSuspended: "/ok", dojob.StateQueued: "/ok", dojob.StateConnecting: "/stall",
		dojob.StateTransferring: "/stallbody", dojob.StateTransientError: "/503", dojob.StateError: "/404",
		dojob.StateTransferred: "/ok", dojob.StateAcknowledged: "/ok", dojob.StateCancelled: "/ok",
	}[s]
	if s == dojob.StateQueued {
		blocker := r.job("blocker", "/stall") // holds the only background slot
		l.watch(t, blocker)
		require.NoError(t, blocker.Resume())
		synctest.Wait()
		require.Equal(t, dojob.StateConnecting, blocker.State())
	}
	j := r.job(s.String(), path)
	l.watch(t, j)
	if s != dojob.StateSuspended {
		require.NoError(t, j.Resume())
	}
	switch s {
	case dojob.StateAcknowledged:
		synctest.Wait()
		require.NoError(t, j.Complete())
	case dojob.StateCancelled:
		require.NoError(t, j.Cancel())
	}
	synctest.Wait()
	require.Equal(t, s, j.State(), "reaching %v", s)
	return j
}

// testMethodsInEveryState calls Resume, Suspend, Cancel and Complete on a
// job in each of the nine states and checks the error, the move the job
// makes (as its StateCallback reports it) and where it ends, against the
// methods' documented contracts.
func testMethodsInEveryState(t *testing.T, l *edgeLog) {
	type method struct {
		name string
		call func(*dojob.Job) error
		// want gives, for a non-final state, the state the call moves the
		// job to (from itself: no move).
		want func(dojob.State) dojob.State
	}
	methods := []method{
		{"Resume", (*dojob.Job).Resume, func(s dojob.State) dojob.State {
			switch s {
			case dojob.StateSuspended, dojob.StateError, dojob.StateTransientError:
				return dojob.StateQueued
			}
			return s // already trying; TRANSFERRED without new files stays
		}},
		{"Suspend", (*dojob.Job).Suspend, func(s dojob.State) dojob.State {
			if s == dojob.StateTransferred {
				return s
			}
			return dojob.StateSuspended
		}},
		{"Cancel", (*dojob.Job).Cancel, func(dojob.State) dojob.State { return dojob.StateCancelled }},
		{"Complete", (*dojob.Job).Complete, func(dojob.State) dojob.State { return dojob.StateAcknowledged }},
	}
	for s := dojob.StateQueued; s <= dojob.StateCancelled; s++ {
		for _, m := range methods {
			t.Run(s.String()+"/"+m.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					r := stateRig(t)
					j := reach(t, r, l, s)
					before := len(l.of(j))
					err := m.call(j)
					synctest.Wait()
					moves := l.of(j)[before:]
					if s.Final() {
						require.ErrorIs(t, err, dojob.ErrInvalidState)
						assert.Empty(t, moves)
						assert.Equal(t, s, j.State())
						return
					}
					require.NoError(t, err)
					to := m.want(s)
					if to == s {
						assert.Empty(t, moves, "no move")
						assert.Equal(t, s, j.State())
						return
					}
					require.NotEmpty(t, moves)
					assert.Equal(t, edge{s, to}, moves[0])
					if to != dojob.StateQueued { // a queued job moves on at once
						assert.Len(t, moves, 1)
						assert.Equal(t, to, j.State())
					}
				})
			})
		}
	}
	t.Run("Resume/empty", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := stateRig(t)
			j := r.job("empty")
			l.watch(t, j)
			require.ErrorIs(t, j.Resume(), dojob.ErrJobEmpty)
			synctest.Wait()
			assert.Equal(t, dojob.StateSuspended, j.State())
			assert.Empty(t, l.of(j))
		})
	})
}

// testAutomaticTransitions drives the moves no method makes — the
// scheduler, server answers, retries, the no-progress timeout and
// pre-emption — and checks each job's exact sequence of moves.
func testAutomaticTransitions(t *testing.T, l *edgeLog) {
	const (
		Q, C, T, S = dojob.StateQueued, dojob.StateConnecting, dojob.StateTransferring, dojob.StateSuspended
		E, TE, TD  = dojob.StateError, dojob.StateTransientError, dojob.StateTransferred
	)
	run := func(name string, fn func(t *testing.T, r *rig)) {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { fn(t, stateRig(t)) })
		})
	}
	run("two files", func(t *testing.T, r *rig) {
		j := r.job("two", "/ok", "/ok2")
		l.watch(t, j)
		require.NoError(t, j.Resume())
		synctest.Wait()
		assert.Equal(t, []edge{{S, Q}, {Q, C}, {C, T}, {T, C}, {C, T}, {T, TD}}, l.of(j))
		// A file added to a TRANSFERRED job, then Resume.
		require.NoError(t, j.AddFile(r.tr.FileURL("/404"), r.local("/404")))
		require.NoError(t, j.Resume())
		synctest.Wait()
		assert.Equal(t, []edge{{TD, Q}, {Q, C}, {C, E}}, l.of(j)[6:])
	})
	run("retry, then the no-progress timeout in TRANSIENT_ERROR", func(t *testing.T, r *rig) {
		j := r.job("503", "/503")
		l.watch(t, j)
		require.NoError(t, j.SetNoProgressTimeout(5*time.Second))
		require.NoError(t, j.Resume())
		advance(5 * time.Second) // attempts at 0 and 2 s; the next would be at 6 s
		assert.Equal(t, []edge{{S, Q}, {Q, C}, {C, TE}, {TE, Q}, {Q, C}, {C, TE}, {TE, E}}, l.of(j))
		jerr, err := j.Error()
		require.NoError(t, err)
		assert.Equal(t, dojob.ErrNoProgress, jerr.Code)
	})
	run("the no-progress timeout while QUEUED", func(t *testing.T, r *rig) {
		j := r.job("503", "/503")
		l.watch(t, j)
		require.NoError(t, j.SetNoProgressTimeout(5*time.Second))
		require.NoError(t, j.Resume())
		synctest.Wait()
		blocker := r.job("blocker", "/stall")
		require.NoError(t, blocker.Resume())
		advance(5 * time.Second) // the retry at 2 s waits for the slot until the window ends
		assert.Equal(t, []edge{{S, Q}, {Q, C}, {C, TE}, {TE, Q}, {Q, E}}, l.of(j))
		assert.Len(t, r.tr.RequestsFor("/503"), 1)
	})
	run("pre-empted while CONNECTING and while TRANSFERRING", func(t *testing.T, r *rig) {
		for _, path := range []string{"/stall", "/stallbody"} {
			low := r.job("low", path)
			l.watch(t, low)
			require.NoError(t, low.SetPriority(dojob.PriorityLow))
			require.NoError(t, low.Resume())
			synctest.Wait()
			state := low.State()
			high := r.job("high", "/ok")
			require.NoError(t, high.SetPriority(dojob.PriorityHigh))
			require.NoError(t, high.Resume())
			synctest.Wait()
			require.Equal(t, dojob.StateTransferred, high.State())
			// Back to QUEUED, and started again once the slot is free.
			moves := l.of(low)
			i := slices.Index(moves, edge{state, Q})
			require.GreaterOrEqual(t, i, 0, "%s: %v", path, moves)
			require.Greater(t, len(moves), i+1)
			assert.Equal(t, edge{Q, C}, moves[i+1], path)
			require.NoError(t, low.Cancel())
			require.NoError(t, high.Complete())
		}
	})
	run("a full temporary file completed by a 416", func(t *testing.T, r *rig) {
		// Without Content-Length a body dropped after its last byte looks
		// cut short; the retry asks for the bytes after the end and the 416
		// says there are none: TRANSFERRED straight from CONNECTING.
		tr := dojobtest.NewTransport(dojobtest.WithSize(8<<10), dojobtest.WithoutContentLength(),
			dojobtest.Script(dojobtest.DropAfter(8<<10)))
		defer tr.Close()
		m, err := dojob.NewManager(tr.Config())
		require.NoError(t, err)
		defer func() {
			require.NoError(t, m.Close())
			require.Zero(t, dojob.StateDefects(m))
		}()
		j, err := m.CreateJob("416")
		require.NoError(t, err)
		require.NoError(t, j.AddFile(tr.FileURL("/f"), r.local("/f")))
		l.watch(t, j)
		require.NoError(t, j.Resume())
		advance(dojob.DefaultMinimumRetryDelay)
		assert.Equal(t, []edge{{S, Q}, {Q, C}, {C, T}, {T, TE}, {TE, Q}, {Q, C}, {C, TD}}, l.of(j))
		reqs := tr.RequestsFor("/f")
		require.Len(t, reqs, 2)
		assert.Equal(t, http.StatusRequestedRangeNotSatisfiable, reqs[1].Status)
		require.NoError(t, j.Complete())
		require.Equal(t, tr.SHA256("/f"), fileSHA256(t, r.local("/f")))
	})
	run("a transferred file rejected with SetValidationState", func(t *testing.T, r *rig) {
		j := r.job("reject", "/ok")
		l.watch(t, j)
		require.NoError(t, j.Resume())
		synctest.Wait()
		require.NoError(t, j.SetValidationState(0, false))
		synctest.Wait()
		assert.Equal(t, []edge{{S, Q}, {Q, C}, {C, T}, {T, TD}, {TD, E}}, l.of(j))
		assert.Equal(t, dojob.ErrValidationFailed, mustJobError(t, j).Code)
	})
	run("a local write error while TRANSFERRING", func(t *testing.T, r *rig) {
		dojob.FailWritesAfter(r.m, 100, errors.New("disk full"))
		j := r.job("disk", "/ok")
		l.watch(t, j)
		require.NoError(t, j.Resume())
		synctest.Wait()
		assert.Equal(t, []edge{{S, Q}, {Q, C}, {C, T}, {T, E}}, l.of(j))
		jerr, err := j.Error()
		require.NoError(t, err)
		assert.Equal(t, dojob.ErrorContextLocalFile, jerr.Context)
	})
}

// TestTransitions drives real jobs through every move, by public calls and
// server answers, and checks the moves they made against the transition table of state.go, the one source of
// which moves are legal: every move seen is in it, and every move in it was
// seen except the one move no public call can bring about on purpose.
func TestTransitions(t *testing.T) {
	l := newEdgeLog()
	t.Run("methods", func(t *testing.T) { testMethodsInEveryState(t, l) })
	t.Run("automatic", func(t *testing.T) { testAutomaticTransitions(t, l) })
	if t.Failed() {
		return
	}
	// QUEUED → TRANSFERRED happens when a run starts with nothing left to
	// transfer: only when Suspend lands between the last file's end and the
	// move to TRANSFERRED (a race), or when a job is reloaded from disk in
	// that state.
	unreachable := map[edge]bool{{dojob.StateQueued, dojob.StateTransferred}: true}
	table := dojob.TransitionTable()
	for e, n := range l.seen {
		assert.True(t, table[e], "move %v -> %v (seen %d times) is not in the table", e[0], e[1], n)
	}
	for e := range table {
		if unreachable[e] {
			assert.Zero(t, l.seen[e], "%v -> %v is listed as unreachable but was seen", e[0], e[1])
			continue
		}
		assert.NotZero(t, l.seen[e], "the table allows %v -> %v but no test made that move", e[0], e[1])
	}
	for e := range unreachable {
		assert.True(t, table[e], "%v -> %v is listed as unreachable but is not in the table", e[0], e[1])
	}
}

func TestStateNames(t *testing.T) {
	want := []string{"QUEUED", "CONNECTING", "TRANSFERRING", "SUSPENDED", "ERROR", "TRANSIENT_ERROR", "TRANSFERRED", "ACKNOWLEDGED", "CANCELLED"}
	for i, name := range want {
		assert.Equal(t, name, dojob.State(i).String())
		assert.Equal(t, i == 7 || i == 8, dojob.State(i).Final())
	}
	assert.Equal(t, "State(42)", dojob.State(42).String())
	assert.Equal(t, dojob.State(0), dojob.StateQueued)
	assert.Equal(t, dojob.State(8), dojob.StateCancelled)
}
