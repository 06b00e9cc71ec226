package dojob_test

import (
	"math"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// retryGaps runs j against a server that answers 503 to everything until
// it has made n requests, cancels it, and returns the waits between the
// requests: the retry delays as they happened.
func retryGaps(t *testing.T, tr *dojobtest.Transport, j *dojob.Job, path string, n int) []time.Duration {
	t.Helper()
	require.NoError(t, j.Resume())
	reqs, err := tr.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool { return countPath(rs, path) >= n })
	require.NoError(t, err)
	require.NoError(t, j.Cancel())
	var at []time.Time
	for _, r := range reqs {
		if r.Path == path {
			at = append(at, r.Time)
		}
	}
	var gaps []time.Duration
	for i := 1; i < n; i++ {
		gaps = append(gaps, at[i].Sub(at[i-1]))
	}
	return gaps
}

// TestRetryJitter: with Config.RetryJitter 0.5 and a minimum retry delay of
// 10 s, each wait after a 503 lies between the delay BITS's rules give
// (10, 20, 40, 60, 60 s) and 1.5 times it; two jobs wait differently; and
// the same job — the same ID, reloaded in another Manager from a copy of
// its record — waits exactly the same in both runs.
func TestRetryJitter(t *testing.T) {
	const jit = 0.5
	base := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	synctest.Test(t, func(t *testing.T) {
		tr := dojobtest.NewTransport(dojobtest.Always(dojobtest.Status(503)))
		defer tr.Close()
		dir := t.TempDir()
		cfg := dojob.Config{StateDir: dir, HTTPClient: tr.Client(), RetryJitter: jit}
		m1, err := dojob.NewManager(cfg)
		require.NoError(t, err)
		defer func() { require.NoError(t, m1.Close()) }()
		mk := func(m *dojob.Manager, name, path string) *dojob.Job {
			j, err := m.CreateJob(name)
			require.NoError(t, err)
			require.NoError(t, j.AddFile(tr.FileURL(path), filepath.Join(dir, name)))
			require.NoError(t, j.SetMinimumRetryDelay(10*time.Second))
			return j
		}
		a := mk(m1, "a", "/a")
		copied := copyRecords(t, dir) // a, before it ever ran
		b := mk(m1, "b", "/b")

		gapsA := retryGaps(t, tr, a, "/a", len(base)+1)
		gapsB := retryGaps(t, tr, b, "/b", len(base)+1)
		for i, d := range base {
			for _, g := range [][]time.Duration{gapsA, gapsB} {
				assert.GreaterOrEqual(t, g[i], d, "retry %d waits at least the delay", i)
				assert.LessOrEqual(t, g[i], d+time.Duration(jit*float64(d)), "retry %d waits at most the delay and half of it", i)
			}
		}
		assert.NotEqual(t, gapsA, gapsB, "two jobs retry at different instants")
		assert.NotEqual(t, base, gapsA, "the jitter adds")

		m2, err := dojob.NewManager(dojob.Config{StateDir: copied, HTTPClient: tr.Client(), RetryJitter: jit})
		require.NoError(t, err)
		defer func() { require.NoError(t, m2.Close()) }()
		again, err := m2.Job(a.ID())
		require.NoError(t, err)
		// The copy's file has the same URL: its requests join a's in the
		// log, after them.
		n := len(tr.RequestsFor("/a"))
		require.NoError(t, again.Resume())
		reqs, err := tr.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool { return countPath(rs, "/a") >= n+len(base)+1 })
		require.NoError(t, err)
		require.NoError(t, again.Cancel())
		var at []time.Time
		for _, r := range reqs {
			if r.Path == "/a" {
				at = append(at, r.Time)
			}
		}
		var gapsAgain []time.Duration
		for i := n + 1; i < n+len(base)+1; i++ {
			gapsAgain = append(gapsAgain, at[i].Sub(at[i-1]))
		}
		assert.Equal(t, gapsA, gapsAgain, "the same job waits the same in every run")
	})
}

func countPath(rs []dojobtest.Request, path string) int {
	c := 0
	for _, r := range rs {
		if r.Path == path {
			c++
		}
	}
	return c
}

// TestRetryJitterOffByDefault: without RetryJitter the waits are BITS's
// exact delays.
func TestRetryJitterOffByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.Always(dojobtest.Status(503)))
		j := r.job("exact", "/f")
		require.NoError(t, j.SetMinimumRetryDelay(10*time.Second))
		assert.Equal(t, []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute},
			retryGaps(t, r.tr, j, "/f", 6))
	})
}

func TestRetryJitterValidated(t *testing.T) {
	for _, bad := range []float64{-0.1, 1.0001, math.NaN(), math.Inf(1), math.Inf(-1)} {
		_, err := dojob.NewManager(dojob.Config{RetryJitter: bad})
		assert.ErrorIs(t, err, dojob.ErrInvalidArg, "%v", bad)
	}
	for _, good := range []float64{0, 0.1, 1} {
		m, err := dojob.NewManager(dojob.Config{RetryJitter: good})
		require.NoError(t, err, "%v", good)
		require.NoError(t, m.Close())
	}
}
