package main

import (
	"encoding/base64"
	"path/filepath"
	"testing"
	"time"

	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGetHeadersAndUser: -H headers and --user credentials (password from
// DOJOB_PASSWORD) go with the request; the password is never printed.
func TestGetHeadersAndUser(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "out.bin")
	t.Setenv(passwordEnv, "s3cr3t-pw")
	r := runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "-H", "X-Api: one", "-H", "X-Api: two",
		"--user", "alice", "-o", dest, s.FileURL("/file.bin")+"?sig=SIGNATURE")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/file.bin"), fileSHA256(t, dest))
	reqs := s.RequestsFor("/file.bin")
	require.NotEmpty(t, reqs)
	assert.Equal(t, []string{"one", "two"}, reqs[0].Header.Values("X-Api"))
	assert.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:s3cr3t-pw")), reqs[0].Header.Get("Authorization"))
	assert.NotContains(t, r.stdout+r.stderr, "s3cr3t-pw")
	assert.NotContains(t, r.stdout+r.stderr, "SIGNATURE")
}

// TestGetBadHeader: a header dojob owns, or one without a colon, is
// refused.
func TestGetBadHeader(t *testing.T) {
	s := dojobtest.NewServer(t)
	state, dir := t.TempDir(), t.TempDir()
	r := runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "-H", "no colon", "-d", dir, s.FileURL("/f"))
	assert.Equal(t, exitUsage, r.code)
	r = runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "-H", "Range: bytes=0-", "-d", dir, s.FileURL("/f"))
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "E_INVALIDARG")
	r = runCmd(t, testCtx(t, 10*time.Second), "list", "--state-dir", state)
	require.Equal(t, exitOK, r.code)
	assert.Equal(t, "no jobs\n", r.stdout, "the refused job is not left behind")
}
