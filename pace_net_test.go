package dojob_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMaximumBandwidthLoopback: over real connections to 127.0.0.1, a job
// limited to 8 MiB/s fetching three 4 MiB files at once, each over two
// connections, takes at least 90 % of the 1.5 s the limit allows for its
// 12 MiB (the limit is never exceeded by more than 10 %), and the files
// are right. The upper bound on the time is loose: a busy machine may be
// slower than the limit.
func TestMaximumBandwidthLoopback(t *testing.T) {
	const (
		size  = 4 * mib
		limit = 8 * mib
	)
	s := dojobtest.NewServer(t, dojobtest.WithSize(size))
	m, err := dojob.NewManager(dojob.Config{HTTPClient: s.Client(), MinSegmentSize: 1 << 20})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	dir := t.TempDir()
	j, err := m.CreateJob("loopback")
	require.NoError(t, err)
	paths := []string{"/a", "/b", "/c"}
	for _, p := range paths {
		require.NoError(t, j.AddFile(s.FileURL(p), filepath.Join(dir, p)))
	}
	require.NoError(t, j.SetMaxParallelFiles(3))
	require.NoError(t, j.SetMaxConnections(2))
	require.NoError(t, j.SetMaximumBandwidth(limit))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, j.Resume())
	st, err := j.Wait(ctx)
	elapsed := time.Since(start)
	require.NoError(t, err)
	require.Equal(t, dojob.StateTransferred, st)
	total := int64(len(paths) * size)
	floor := time.Duration(float64(total) / limit * 0.9 * float64(time.Second))
	t.Logf("%d bytes in %v: %.2f MiB/s (limit %d MiB/s)", total, elapsed, float64(total)/elapsed.Seconds()/mib, limit/mib)
	assert.GreaterOrEqual(t, elapsed, floor, "faster than the limit")
	assert.Less(t, elapsed, 30*time.Second)
	require.NoError(t, j.Complete())
	for _, p := range paths {
		require.Equal(t, s.SHA256(p), fileSHA256(t, filepath.Join(dir, p)), p)
	}
}
