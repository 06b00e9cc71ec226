package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInfoShowsStream: a job of a program's own, with a stream file
// (FileSpec.Writer), in a shared state directory: info shows "(stream)" for
// it, and its --json marks it, with no path.
func TestInfoShowsStream(t *testing.T) {
	state := t.TempDir()
	m, err := dojob.NewManager(dojob.Config{StateDir: state})
	require.NoError(t, err)
	j, err := m.CreateJob("streams")
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, j.AddFileSet([]dojob.FileSpec{{RemoteURL: "http://127.0.0.1:9/manifest.json", Writer: &buf}}))
	id := j.ID().String()
	require.NoError(t, m.Close())

	r := runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "info", id)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "http://127.0.0.1:9/manifest.json\n     -> (stream)\n")

	r = runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "--json", "info", id)
	require.Equal(t, exitOK, r.code, r.stderr)
	var got struct {
		Files []fileJSON `json:"files"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	require.Len(t, got.Files, 1)
	assert.True(t, got.Files[0].Stream)
	assert.Empty(t, got.Files[0].Path)
}
