package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain checks that the example leaves no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestUpdater(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stateDir := t.TempDir()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, stateDir))
	got := out.String()
	t.Log(got)

	assert.Regexp(t, `(?m)^--- run 1\ncreated job \{[0-9A-F-]+\} \(myapp-update\)$`, got)
	assert.Regexp(t, `(?m)^crash! the process exits with \d+ of 4194304 bytes downloaded$`, got)
	assert.Contains(t, got, "after the crash myapp.bin still holds version 1.0")
	assert.Regexp(t, `(?m)^--- run 2 \(restart\)\nfound job \{[0-9A-F-]+\} \(myapp-update\) in [A-Z_]+ with [1-9]\d* bytes already downloaded$`, got)
	assert.Contains(t, got, "transferred and installed: ")
	assert.Regexp(t, `(?m)^updated: myapp.bin is the release \(SHA-256 [0-9a-f]{12}…\), 4194304 bytes; run 2 resumed with Range "bytes=[1-9]\d*-"`, got)

	// The job is finished: nothing is left in the state directory, and
	// the next start begins afresh.
	out.Reset()
	require.NoError(t, run(ctx, &out, stateDir))
	assert.Regexp(t, `(?m)^--- run 1\ncreated job `, out.String())
	assert.NotContains(t, out.String(), "stale")
}

func TestRunMainTemporaryDirs(t *testing.T) {
	// Without -state-dir, runMain works in temporary directories and
	// removes them. A temporary directory of the test's own, so that
	// another run of these tests beside this one is not counted.
	t.Setenv("TMPDIR", t.TempDir())
	glob := func() []string {
		a, err := filepath.Glob(filepath.Join(os.TempDir(), "myapp-*"))
		require.NoError(t, err)
		return a
	}
	before := glob()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, runMain(ctx, io.Discard, ""))
	assert.Equal(t, before, glob())
}
