package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGetMirror: --mirror gives the file another source; a primary that
// refuses connections hands the download to the mirror.
func TestGetMirror(t *testing.T) {
	dead := dojobtest.NewServer(t)
	primary := dead.FileURL("/file.bin")
	dead.Close()
	mirror := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "out.bin")
	r := runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "--mirror", mirror.FileURL("/file.bin"), "-o", dest, primary)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, mirror.SHA256("/file.bin"), fileSHA256(t, dest))
	assert.Len(t, mirror.RequestsFor("/file.bin"), 1)
}

// TestGetMirrorSeveralURLs: --mirror with more than one URL is a usage
// error, before anything is requested.
func TestGetMirrorSeveralURLs(t *testing.T) {
	s := dojobtest.NewServer(t)
	state, dir := t.TempDir(), t.TempDir()
	r := runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "--mirror", s.FileURL("/m"), "-d", dir, s.FileURL("/a"), s.FileURL("/b"))
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "--mirror takes a single URL")
	assert.Empty(t, s.Requests())
}
