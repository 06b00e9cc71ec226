package dojob_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stuckHandler is a slog.Handler, enabled from Info up, that blocks on the
// first record of one job until release is closed, and counts the records
// it is handed.
type stuckHandler struct {
	job     dojob.JobID
	blocked chan struct{} // closed when the first record of job arrives
	release chan struct{}
	once    sync.Once
	handled atomic.Int32
	debug   atomic.Int32 // records below Info that reached Handle
}

func (h *stuckHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *stuckHandler) Handle(_ context.Context, r slog.Record) error {
	h.handled.Add(1)
	if r.Level < slog.LevelInfo {
		h.debug.Add(1)
	}
	mine := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "job" {
			id, ok := a.Value.Any().(dojob.JobID)
			mine = ok && id == h.job
		}
		return true
	})
	if mine {
		first := false
		h.once.Do(func() { first = true; close(h.blocked) })
		if first {
			<-h.release
		}
	}
	return nil
}

func (h *stuckHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *stuckHandler) WithGroup(string) slog.Handler      { return h }

// TestSlowLoggerDoesNotStallTimers: the Logger blocks on the first record
// of job A (its transient error, logged by A's transfer with A's lock held
// before this fix); meanwhile job B's retries and its no-progress window —
// timers of the Manager's one loop, which also serves A's retry — must run
// on: B reaches ERROR with ErrNoProgress while the Logger is still stuck.
// Real clock, bounded waits: before the fix the loop blocked on A's lock
// for good and B never moved.
func TestSlowLoggerDoesNotStallTimers(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.Always(dojobtest.Status(503)))
	h := &stuckHandler{blocked: make(chan struct{}), release: make(chan struct{})}
	m, err := dojob.NewManager(dojob.Config{HTTPClient: s.Client(), Logger: slog.New(h)})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	released := false
	release := func() {
		if !released {
			released = true
			close(h.release)
		}
	}
	defer release() // before Close, which waits for the Logger

	dir := t.TempDir()
	a, err := m.CreateJob("a")
	require.NoError(t, err)
	require.NoError(t, a.AddFile(s.FileURL("/a"), filepath.Join(dir, "a")))
	require.NoError(t, a.SetMinimumRetryDelay(10*time.Millisecond))
	h.job = a.ID()
	b, err := m.CreateJob("b")
	require.NoError(t, err)
	require.NoError(t, b.AddFile(s.FileURL("/b"), filepath.Join(dir, "b")))
	require.NoError(t, b.SetMinimumRetryDelay(10*time.Millisecond))
	require.NoError(t, b.SetNoProgressTimeout(300*time.Millisecond))

	require.NoError(t, a.Resume())
	select {
	case <-h.blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("job A logged nothing")
	}
	require.NoError(t, b.Resume())
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	st, err := b.Wait(ctx)
	require.NoError(t, err, "job B's timers stalled behind the Logger (state %v)", st)
	assert.Equal(t, dojob.StateError, st)
	assert.Equal(t, dojob.ErrNoProgress, mustJobError(t, b).Code)
	assert.GreaterOrEqual(t, len(s.RequestsFor("/a")), 2, "job A's own retry timer fired too")
	release()
	assert.Zero(t, h.debug.Load(), "records below the Logger's level are never built or handed over")
}
