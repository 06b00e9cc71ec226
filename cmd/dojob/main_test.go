package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: run must end
// everything it started (the Manager, the display). With
// asCommandEnv set, the test binary is the dojob command instead, so that
// tests can run it as a real second process (see startDojob).
func TestMain(m *testing.M) {
	if os.Getenv(asCommandEnv) == "1" {
		main()
	}
	if why := noUnixSockets(); why != "" {
		// Every command that opens a state directory serves it on a
		// control socket, and warns when it cannot: the tests would see
		// that warning everywhere, and the shared-directory tests could
		// not run at all.
		fmt.Println("skipping the command's tests: " + why)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// noUnixSockets says why this system has no AF_UNIX sockets, which the
// command's shared state directory needs, or "" if it has them (Unix;
// Windows 10 1803 and later). Wine 8 has none: socket() fails with
// WSAEAFNOSUPPORT.
func noUnixSockets() string {
	dir, err := os.MkdirTemp("", "dojob-sock")
	if err != nil {
		return ""
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("unix", filepath.Join(dir, "probe.sock"))
	if err != nil {
		return fmt.Sprintf("no AF_UNIX sockets here (%v); Wine 8 has none", err)
	}
	l.Close()
	return ""
}

// testSize is the size of the files the tests download.
const testSize = 256 << 10

// result is what one run of the command gave.
type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs the command with args and buffers for its outputs.
func runCmd(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	return runOpts(t, ctx, options{}, args...)
}

// runOpts is runCmd with explicit options.
func runOpts(t *testing.T, ctx context.Context, opts options, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := runWith(ctx, args, &out, &errb, opts)
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	t.Logf("dojob %s\n=> exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// testCtx returns a context that ends with the test, or after d.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// fileSHA256 returns the hex SHA-256 of the file at path.
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// assertNoCR checks that output meant for a non-terminal has no carriage
// return (no progress bar redraws).
func assertNoCR(t *testing.T, r result) {
	t.Helper()
	assert.NotContains(t, r.stdout, "\r")
	assert.NotContains(t, r.stderr, "\r")
}

// noTemps checks that dir holds no temporary file of dojob.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), ".dojob-"), "temporary file left: %s", e.Name())
	}
}

// idRE matches a job ID.
var idRE = regexp.MustCompile(`\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}`)

// jobID returns the first job ID in s.
func jobID(t *testing.T, s string) string {
	t.Helper()
	id := idRE.FindString(s)
	require.NotEmpty(t, id, "no job ID in %q", s)
	return id
}

func TestGetOneFile(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "out.bin")

	r := runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "-o", dest, s.FileURL("/file.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/file.bin"), fileSHA256(t, dest))
	assert.Empty(t, r.stderr)
	assert.Contains(t, r.stdout, "TRANSFERRED\n")
	assert.Regexp(t, `(?m)^done: 1 file, 256\.0 KiB in .*, job \{`, r.stdout)
	assertNoCR(t, r)
	noTemps(t, dir)

	// The job is ACKNOWLEDGED, so it is gone from the state directory.
	r = runCmd(t, testCtx(t, 10*time.Second), "list", "--state-dir", state)
	require.Equal(t, exitOK, r.code)
	assert.Equal(t, "no jobs\n", r.stdout)
}

func TestGetSeveralFiles(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	paths := []string{"/a.bin", "/sub/b.bin", "/c.iso"}
	args := []string{"get", "-d", dir, "--state-dir", state, "--priority", "high"}
	for _, p := range paths {
		args = append(args, s.FileURL(p))
	}

	r := runCmd(t, testCtx(t, 10*time.Second), args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, p := range paths {
		assert.Equal(t, s.SHA256(p), fileSHA256(t, filepath.Join(dir, filepath.Base(p))), p)
	}
	assert.Contains(t, r.stdout, "(a.bin (+2 more)): 3 files")
	assert.Contains(t, r.stdout, "done: 3 files, 768.0 KiB")
	assertNoCR(t, r)
	noTemps(t, dir)
}

func TestGetShowsTransientErrorsAndRetries(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize), dojobtest.Script(
		dojobtest.DropAfter(10_000),
		dojobtest.StatusRetryAfter(503, "0"),
		dojobtest.OK(),
	))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "f.bin")

	r := runCmd(t, testCtx(t, 10*time.Second), "get", "--state-dir", state, "--retry-delay", "10ms", "-o", dest, s.FileURL("/f.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/f.bin"), fileSHA256(t, dest))
	// The retry delay is so short that the next retry may have begun when
	// the line is printed; TestStallAndTransientLines checks its time.
	assert.Regexp(t, `(?m)^TRANSIENT_ERROR: ERROR_WINHTTP_CONNECTION_ERROR \(0x80072EFE\).*; retry 1( in \S+)?; gives up at [0-9:]+ \(in \S+\) without progress$`, r.stdout)
	assert.Regexp(t, `(?m)^TRANSIENT_ERROR: BG_E_HTTP_ERROR_503 \(0x801901F7\).*; retry 2( in \S+)?; gives up at [0-9:]+ \(in \S+\) without progress$`, r.stdout)
	assertNoCR(t, r)
	// The drop was resumed, not downloaded again.
	assert.Equal(t, int64(testSize), s.BodyBytes("/f.bin"))
}

func TestGetNotFound(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.Always(dojobtest.Status(404)))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "missing.bin")

	r := runCmd(t, testCtx(t, 10*time.Second), "get", "--state-dir", state, "-o", dest, s.FileURL("/missing.bin"))
	assert.Equal(t, exitFail, r.code)
	// The error is printed once, on stderr; the progress says ERROR.
	assert.Equal(t, "dojob: BG_E_HTTP_ERROR_404 (0x80190194) [REMOTE_FILE]: "+s.FileURL("/missing.bin")+": server answered 404 Not Found\n", r.stderr)
	assert.Contains(t, r.stdout, "\nERROR\n")
	assert.NotContains(t, r.stdout, "BG_E_HTTP_ERROR_404")
	assert.NoFileExists(t, dest)
	assertNoCR(t, r)

	// Without --keep the failed job is cancelled.
	r = runCmd(t, testCtx(t, 10*time.Second), "list", "--state-dir", state)
	assert.Equal(t, "no jobs\n", r.stdout)
}

func TestGetNotFoundKeep(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.Always(dojobtest.Status(404)))
	state, dir := t.TempDir(), t.TempDir()
	url := strings.Replace(s.FileURL("/missing.bin"), "://", "://user:s3cret@", 1)

	r := runCmd(t, testCtx(t, 10*time.Second), "get", "--keep", "--json", "-d", dir, "--state-dir", state, url)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "BG_E_HTTP_ERROR_404")
	assert.Regexp(t, `the job is kept; see: dojob --state-dir \S+ --json info \{`, r.stderr)
	assert.NotContains(t, r.stdout+r.stderr, "s3cret")
	var got resultJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, "ERROR", got.State)
	require.NotNil(t, got.Error)
	assert.Equal(t, "BG_E_HTTP_ERROR_404", got.Error.Name)
	assert.Equal(t, "0x80190194", got.Error.Code)
	assert.Equal(t, "REMOTE_FILE", got.Error.Context)

	r = runCmd(t, testCtx(t, 10*time.Second), "info", got.ID, "--state-dir", state)
	require.Equal(t, exitOK, r.code)
	assert.Regexp(t, `(?m)^State: +ERROR$`, r.stdout)
	assert.Regexp(t, `(?m)^Error: +BG_E_HTTP_ERROR_404 \(0x80190194\)$`, r.stdout)
	assert.Regexp(t, `(?m)^Error context: +REMOTE_FILE$`, r.stdout)
	assert.Contains(t, r.stdout, filepath.Join(dir, "missing.bin"))
	assert.Contains(t, r.stdout, "http://user:xxxxx@127.0.0.1")
	assert.NotContains(t, r.stdout+r.stderr, "s3cret")

	r = runCmd(t, testCtx(t, 10*time.Second), "list", "--state-dir", state)
	assert.Contains(t, r.stdout, got.ID+"  ERROR")
	assert.NotContains(t, r.stdout+r.stderr, "s3cret")
}

// TestUsageErrors: a usage error prints its cause and one line that says
// where the help of the command is — not the whole help — and exits 2
// without touching anything.
func TestUsageErrors(t *testing.T) {
	s := dojobtest.NewServer(t)
	dir := t.TempDir()
	url := s.FileURL("/f.bin")
	for _, tc := range []struct {
		args []string
		help string // the command whose help the error points to
	}{
		{nil, ""},
		{[]string{"frobnicate"}, ""},
		{[]string{"--no-such-flag", "list"}, ""},
		{[]string{"list", "extra"}, "list"},
		{[]string{"get"}, "get"},
		{[]string{"get", "-o", filepath.Join(dir, "x"), url, s.FileURL("/g.bin")}, "get"},
		{[]string{"get", "-o", filepath.Join(dir, "x"), "-d", dir, url}, "get"},
		{[]string{"get", "-d", dir, s.URL + "/"}, "get"},
		{[]string{"get", "-d", dir, s.URL}, "get"},
		{[]string{"get", "-d", dir, "ftp://127.0.0.1/f.bin"}, "get"},
		{[]string{"get", "-d", dir, "not a url"}, "get"},
		{[]string{"get", "-o", dir, url}, "get"},
		{[]string{"get", "-d", dir, url, s.FileURL("/other/f.bin")}, "get"},
		{[]string{"get", "--priority", "urgent", "-d", dir, url}, "get"},
		{[]string{"get", "--retry-delay", "0s", "-d", dir, url}, "get"},
		{[]string{"get", "--no-progress-timeout", "-1s", "-d", dir, url}, "get"},
		{[]string{"get", "--stall-timeout", "soon", "-d", dir, url}, "get"},
		{[]string{"get", "--parallel", "0", "-d", dir, url}, "get"},
		{[]string{"get", "--parallel", "33", "-d", dir, url}, "get"},
		{[]string{"get", "--connections", "0", "-d", dir, url}, "get"},
		{[]string{"get", "--connections", "17", "-d", dir, url}, "get"},
		{[]string{"get", "--speed-limit", "-1", "-d", dir, url}, "get"},
		{[]string{"get", "--speed-limit", "fast", "-d", dir, url}, "get"},
		{[]string{"get", "--speed-time", "0", "-d", dir, url}, "get"},
		{[]string{"get", "--speed-time", "0.5", "-d", dir, url}, "get"},
		{[]string{"get", "--speed-time", "-3", "-d", dir, url}, "get"},
		{[]string{"get", "--speed-time", "soon", "-d", dir, url}, "get"},
		{[]string{"get", "--no-such-flag", "-d", dir, url}, "get"},
		{[]string{"info"}, "info"},
		{[]string{"info", "{not-an-id}"}, "info"},
		{[]string{"info", "3F2A}"}, "info"},
		{[]string{"resume", "1", "2"}, "resume"},
		{[]string{"suspend"}, "suspend"},
		{[]string{"version", "now"}, "version"},
		{[]string{"help", "frobnicate"}, ""},
		{[]string{"--state-dir", "", "list"}, ""},
	} {
		r := runCmd(t, testCtx(t, 10*time.Second), append([]string{"--state-dir", t.TempDir()}, tc.args...)...)
		assert.Equal(t, exitUsage, r.code, "%q", tc.args)
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		require.Len(t, lines, 2, "%q: %q", tc.args, r.stderr)
		assert.Regexp(t, `^dojob: \S`, lines[0], "%q", tc.args)
		assert.NotContains(t, lines[0], "dojob: dojob:", "%q", tc.args)
		want := "Run 'dojob help' for usage."
		if tc.help != "" {
			want = "Run 'dojob help " + tc.help + "' for usage."
		}
		assert.Equal(t, want, lines[1], "%q", tc.args)
		assert.Empty(t, r.stdout, "%q", tc.args)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
	assert.Empty(t, s.Requests())
}

// TestHelp: "help" and -h show the overview; "help COMMAND", "COMMAND -h"
// and "COMMAND --help" show that command's help, on stdout.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		r := runCmd(t, context.Background(), args...)
		assert.Equal(t, exitOK, r.code)
		assert.True(t, strings.HasPrefix(r.stdout, "usage: dojob [global flags] COMMAND"), "%q", args)
		assert.Contains(t, r.stdout, "Run \"dojob help COMMAND\"")
		assert.Empty(t, r.stderr)
	}
	for _, cmd := range []string{"get", "resume", "list", "info", "suspend", "cancel", "complete", "version", "help"} {
		for _, args := range [][]string{{"help", cmd}, {cmd, "-h"}, {cmd, "--help"}} {
			r := runCmd(t, context.Background(), args...)
			assert.Equal(t, exitOK, r.code, "%q", args)
			assert.True(t, strings.HasPrefix(r.stdout, "usage: dojob "+cmd), "%q: %q", args, r.stdout)
			assert.NotContains(t, r.stdout, "Commands:", "%q: only the command's help", args)
			assert.Empty(t, r.stderr, "%q", args)
		}
	}
	r := runCmd(t, context.Background(), "help", "get")
	for _, flag := range []string{"-o PATH", "-d DIR", "--force", "--create-dirs", "--keep", "--priority P", "--stall-timeout D"} {
		assert.Contains(t, r.stdout, flag)
	}
	// The program's name is the one the user typed.
	var out, errb bytes.Buffer
	assert.Equal(t, exitUsage, runWith(context.Background(), []string{"get"}, &out, &errb, options{prog: "dj"}))
	assert.Equal(t, "dojob: get: no URL\nRun 'dj help get' for usage.\n", errb.String())
}

// newJobs creates jobs in the state directory with the library, as an
// earlier dojob command would have left them, and returns their IDs.
// Each job downloads one file of s into dir; prepare may change it
// (resume it, ...) before the Manager is closed.
func newJobs(t *testing.T, state, dir string, s *dojobtest.Server, names []string, prepare func(*dojob.Job)) []string {
	t.Helper()
	m, err := dojob.NewManager(dojob.Config{StateDir: state})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	var ids []string
	for _, name := range names {
		j, err := m.CreateJob(name)
		require.NoError(t, err)
		require.NoError(t, j.AddFile(s.FileURL("/"+name), filepath.Join(dir, name)))
		if prepare != nil {
			prepare(j)
		}
		ids = append(ids, j.ID().String())
	}
	return ids
}

func TestJobCommands(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	ids := newJobs(t, state, dir, s, []string{"one.bin", "two.bin", "three.bin"}, nil)
	ctx := testCtx(t, 10*time.Second)

	r := runCmd(t, ctx, "list", "--state-dir", state)
	require.Equal(t, exitOK, r.code)
	assert.Regexp(t, `^ID +STATE +BYTES +FILES +NAME\n`, r.stdout)
	for i, name := range []string{"one.bin", "two.bin", "three.bin"} {
		assert.Regexp(t, regexp.QuoteMeta(ids[i])+` +SUSPENDED +0 B / \? +0/1 +`+regexp.QuoteMeta(name), r.stdout)
	}

	r = runCmd(t, ctx, "--json", "list", "--state-dir", state)
	require.Equal(t, exitOK, r.code)
	var list []jobJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list), r.stdout)
	require.Len(t, list, 3)
	assert.Equal(t, ids[0], list[0].ID)
	assert.Equal(t, "SUSPENDED", list[0].State)
	assert.Equal(t, s.FileURL("/one.bin"), list[0].Files[0].URL)
	assert.Equal(t, int64(-1), list[0].BytesTotal)

	r = runCmd(t, ctx, "info", ids[0], "--state-dir", state)
	require.Equal(t, exitOK, r.code)
	for _, want := range []string{
		`(?m)^ID: +` + regexp.QuoteMeta(ids[0]) + `$`,
		`(?m)^State: +SUSPENDED$`,
		`(?m)^Priority: +NORMAL$`,
		`(?m)^No-progress timeout: +24h0m0s$`,
		`(?m)^Minimum retry delay: +2s$`,
		`(?m)^Error count: +0$`,
		`(?m)^  1\. ` + regexp.QuoteMeta(s.FileURL("/one.bin")) + `$`,
		`(?m)^     -> ` + regexp.QuoteMeta(filepath.Join(dir, "one.bin")) + `$`,
	} {
		assert.Regexp(t, want, r.stdout)
	}
	r = runCmd(t, ctx, "info", "--json", strings.Trim(ids[0], "{}"), "--state-dir", state)
	require.Equal(t, exitOK, r.code)
	var info jobJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &info), r.stdout)
	assert.Equal(t, ids[0], info.ID)
	assert.Equal(t, 86400.0, info.NoProgressTimeoutSeconds)

	// resume downloads and completes.
	r = runCmd(t, ctx, "resume", ids[0], "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/one.bin"), fileSHA256(t, filepath.Join(dir, "one.bin")))
	assert.Contains(t, r.stdout, "done: 1 file")
	assertNoCR(t, r)

	// suspend, cancel.
	r = runCmd(t, ctx, "suspend", ids[1], "--state-dir", state)
	require.Equal(t, exitOK, r.code)
	assert.Equal(t, "suspended job "+ids[1]+": SUSPENDED\n", r.stdout)
	r = runCmd(t, ctx, "cancel", ids[1], "--state-dir", state)
	require.Equal(t, exitOK, r.code)
	assert.Equal(t, "cancelled job "+ids[1]+": CANCELLED\n", r.stdout)
	r = runCmd(t, ctx, "--json", "complete", ids[2], "--state-dir", state)
	require.Equal(t, exitOK, r.code)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &info), r.stdout)
	assert.Equal(t, "ACKNOWLEDGED", info.State)
	assert.False(t, info.Files[0].Completed) // nothing was transferred

	// All three are final now.
	r = runCmd(t, ctx, "list", "--state-dir", state)
	assert.Equal(t, "no jobs\n", r.stdout)
	for _, cmd := range []string{"info", "suspend", "cancel", "complete", "resume"} {
		r = runCmd(t, ctx, cmd, ids[1], "--state-dir", state)
		assert.Equal(t, exitFail, r.code, cmd)
		assert.Contains(t, r.stderr, "DO_E_JOB_NOT_FOUND", cmd)
	}
	noTemps(t, dir)
}

func TestCompleteTransferredJob(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	ids := newJobs(t, state, dir, s, []string{"done.bin"}, func(j *dojob.Job) {
		require.NoError(t, j.Resume())
		st, err := j.Wait(testCtx(t, 10*time.Second))
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
	})
	dest := filepath.Join(dir, "done.bin")
	assert.NoFileExists(t, dest)

	r := runCmd(t, testCtx(t, 10*time.Second), "complete", ids[0], "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "completed job "+ids[0]+": ACKNOWLEDGED, 1 of 1 file in place\n", r.stdout)
	assert.Equal(t, s.SHA256("/done.bin"), fileSHA256(t, dest))
}

func TestResumeTransferredJobCompletesIt(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	ids := newJobs(t, state, dir, s, []string{"done.bin"}, func(j *dojob.Job) {
		require.NoError(t, j.Resume())
		_, err := j.Wait(testCtx(t, 10*time.Second))
		require.NoError(t, err)
	})
	r := runCmd(t, testCtx(t, 10*time.Second), "resume", ids[0], "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/done.bin"), fileSHA256(t, filepath.Join(dir, "done.bin")))
	assert.Len(t, s.Requests(), 1)
}

func TestGetJSON(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	r := runCmd(t, testCtx(t, 10*time.Second), "--json", "--state-dir", state, "get", "-d", dir, s.FileURL("/a.bin"), s.FileURL("/b.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	var got resultJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, "ACKNOWLEDGED", got.State)
	assert.Equal(t, "FOREGROUND", got.Priority)
	assert.Equal(t, int64(2*testSize), got.BytesTotal)
	assert.Nil(t, got.Error)
	require.Len(t, got.Files, 2)
	for i, p := range []string{"/a.bin", "/b.bin"} {
		assert.True(t, got.Files[i].Completed)
		assert.Equal(t, filepath.Join(dir, filepath.Base(p)), got.Files[i].Path)
		assert.Equal(t, s.SHA256(p), fileSHA256(t, got.Files[i].Path))
	}
}

func TestQuiet(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	r := runCmd(t, testCtx(t, 10*time.Second), "get", "--quiet", "--state-dir", state, "-d", dir, s.FileURL("/q.bin"))
	require.Equal(t, exitOK, r.code)
	assert.Empty(t, r.stdout)
	assert.Empty(t, r.stderr)
	assert.Equal(t, s.SHA256("/q.bin"), fileSHA256(t, filepath.Join(dir, "q.bin")))
}

// interrupt runs a get of url into dest, from a server that drips its
// first answer, and cancels it once the server has sent a third of the
// file: the command must stop, keep the job and say how to continue.
// It returns the job's ID.
func interrupt(t *testing.T, s *dojobtest.Server, state, dest, url string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		wg sync.WaitGroup
		r  result
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A short checkpoint interval makes the bytes received durable
		// before the interruption (see the report on Close/Suspend).
		r = runCmd(t, ctx, "get", "--state-dir", state, "--checkpoint-interval", "10ms", "-o", dest, url)
	}()
	_, err := s.AwaitRequests(testCtx(t, 10*time.Second), func(rs []dojobtest.Request) bool {
		return len(rs) > 0 && rs[0].BodyBytes >= testSize/3
	})
	require.NoError(t, err)
	cancel()
	wg.Wait()

	assert.Equal(t, exitFail, r.code)
	// The hint repeats the global flags and the Manager settings given.
	assert.Regexp(t, `interrupted; continue with: dojob --state-dir \S+ resume \{[0-9A-F-]+\} --checkpoint-interval 10ms\n`, r.stderr)
	assert.NoFileExists(t, dest)
	assert.True(t, strings.HasSuffix(r.stdout, "\nSUSPENDED\n"), "the progress ends on SUSPENDED: %q", r.stdout)
	assertNoCR(t, r)
	return jobID(t, r.stderr)
}

func TestInterruptThenResume(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize), dojobtest.Script(dojobtest.Drip(testSize), dojobtest.OK()))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "slow.bin")
	id := interrupt(t, s, state, dest, s.FileURL("/slow.bin"))

	r := runCmd(t, testCtx(t, 10*time.Second), "info", id, "--state-dir", state)
	assert.Regexp(t, `(?m)^State: +SUSPENDED$`, r.stdout)

	r = runCmd(t, testCtx(t, 10*time.Second), "resume", id, "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/slow.bin"), fileSHA256(t, dest))
	assertResumedWithRange(t, s, "/slow.bin")
	noTemps(t, dir)
}

func TestInterruptThenGetAgain(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize), dojobtest.Script(dojobtest.Drip(testSize), dojobtest.OK()))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "slow.bin")
	id := interrupt(t, s, state, dest, s.FileURL("/slow.bin"))

	r := runCmd(t, testCtx(t, 10*time.Second), "get", "--state-dir", state, "-o", dest, s.FileURL("/slow.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "continuing job "+id)
	assert.Equal(t, s.SHA256("/slow.bin"), fileSHA256(t, dest))
	assertResumedWithRange(t, s, "/slow.bin")
}

// assertResumedWithRange checks that the second request for path asked
// for the rest of the file with a Range and got it.
func assertResumedWithRange(t *testing.T, s *dojobtest.Server, path string) {
	t.Helper()
	reqs := s.RequestsFor(path)
	require.Len(t, reqs, 2)
	assert.Regexp(t, `^bytes=[1-9][0-9]*-$`, reqs[1].Range)
	assert.NotEmpty(t, reqs[1].IfRange)
	assert.Equal(t, 206, reqs[1].Status)
	assert.Less(t, s.BodyBytes(path), int64(2*testSize))
}

func TestStateDirInUse(t *testing.T) {
	state := t.TempDir()
	m, err := dojob.NewManager(dojob.Config{StateDir: state})
	require.NoError(t, err)
	defer m.Close()
	// A holder without a control endpoint (a program using the library)
	// is waited for, then reported.
	start := time.Now()
	r := runOpts(t, testCtx(t, 10*time.Second), options{shareWait: 300 * time.Millisecond}, "list", "--state-dir", state)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "in use by another dojob command")
	assert.Contains(t, r.stderr, "ERROR_SHARING_VIOLATION")
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
}

// fakeConsole is a console that pretends to be a terminal (of 100 columns
// and 40 rows unless width and height say otherwise) and records what is
// drawn: each Write is a frame.
type fakeConsole struct {
	width, height int
	mu            sync.Mutex
	buf           bytes.Buffer
	flushed       []string      // each frame
	drawn         chan struct{} // closed and replaced at each frame
}

// Write records a frame.
func (c *fakeConsole) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushed = append(c.flushed, string(p))
	if c.drawn != nil {
		close(c.drawn)
	}
	c.drawn = make(chan struct{})
	return c.buf.Write(p)
}

// GetTermSize gives a fixed size.
func (c *fakeConsole) GetTermSize() (int, int, error) {
	if c.width == 0 {
		return 100, 40, nil
	}
	return c.width, c.height, nil
}

// awaitFrame waits until a frame that contains all of subs is flushed, or
// ctx ends, and returns it ("" then).
func (c *fakeConsole) awaitFrame(ctx context.Context, subs ...string) string {
	for {
		c.mu.Lock()
		for _, f := range c.flushed {
			all := true
			for _, s := range subs {
				all = all && strings.Contains(f, s)
			}
			if all {
				c.mu.Unlock()
				return f
			}
		}
		if c.drawn == nil {
			c.drawn = make(chan struct{})
		}
		ch := c.drawn
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ""
		}
	}
}

// frames returns the frames flushed so far.
func (c *fakeConsole) frames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.flushed...)
}

// String returns everything drawn.
func (c *fakeConsole) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func TestBars(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize), dojobtest.Script(dojobtest.StatusRetryAfter(503, "0"), dojobtest.Drip(4*testSize)))
	state, dir := t.TempDir(), t.TempDir()
	console := &fakeConsole{}
	r := runOpts(t, testCtx(t, 10*time.Second), options{tty: true, console: console},
		"get", "--state-dir", state, "--retry-delay", "10ms", "-d", dir, s.FileURL("/bar1.bin"), s.FileURL("/bar2.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	drawn := console.String()
	t.Logf("drawn:\n%s", drawn)
	assert.Contains(t, drawn, "bar1.bin")
	assert.Contains(t, drawn, "bar2.bin")
	assert.Contains(t, drawn, "256.0 KiB / 256.0 KiB")
	assert.Contains(t, drawn, "TRANSIENT_ERROR: BG_E_HTTP_ERROR_503")
	assert.Contains(t, drawn, "ACKNOWLEDGED")
	assert.Contains(t, r.stdout, "done: 2 files")
	for _, p := range []string{"/bar1.bin", "/bar2.bin"} {
		assert.Equal(t, s.SHA256(p), fileSHA256(t, filepath.Join(dir, filepath.Base(p))))
	}
}

// TestBarsInterrupted: on a terminal, a file that stops sending shows how
// long it has been stalled (not its last speed and "ETA 0s") — with
// parallel files (get's default) the second file too, as it stalls as
// well — and Ctrl-C ends the bars on SUSPENDED.
func TestBarsInterrupted(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize), dojobtest.Always(dojobtest.StallAfter(1000)))
	state, dir := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	console := &fakeConsole{}
	done := make(chan result, 1)
	go func() {
		done <- runOpts(t, ctx, options{tty: true, console: console}, "get", "--state-dir", state, "--stall-timeout", "4s",
			"-d", dir, s.FileURL("/stall.bin"), s.FileURL("/next.bin"))
	}()
	frame := console.awaitFrame(testCtx(t, 10*time.Second), "stall.bin", "stalled for ")
	cancel()
	r := <-done
	require.NotEmpty(t, frame, "a frame shows the stall")
	t.Logf("frame:\n%s", frame)
	for _, line := range strings.Split(frame, "\n") {
		if strings.Contains(line, "stall.bin") {
			assert.Regexp(t, `stalled for [0-9.]+m?s`, line)
			assert.NotContains(t, line, "ETA")
		}
		if strings.Contains(line, "next.bin") {
			assert.NotContains(t, line, "/s", "a stalled bar shows no last speed")
			assert.NotContains(t, line, "ETA")
		}
	}
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "interrupted; continue with: dojob --state-dir "+state+" resume {")
	// The bars end on what the job is after the interruption: SUSPENDED.
	frames := console.frames()
	require.NotEmpty(t, frames)
	last := frames[len(frames)-1]
	assert.Contains(t, last, "SUSPENDED")
	assert.NotContains(t, last, "TRANSFERRING")
}

func TestDefaultStateDir(t *testing.T) {
	// The paths are absolute on the system running the test (a drive on
	// Windows), as the real ones are.
	abs := func(p string) string {
		if runtime.GOOS == "windows" {
			return `C:` + filepath.FromSlash(p)
		}
		return p
	}
	env := func(m map[string]string) func(string) string {
		return func(k string) string {
			if v := m[k]; strings.HasPrefix(v, "/") {
				return abs(v)
			}
			return m[k]
		}
	}
	home := func() (string, error) { return abs("/home/u"), nil }
	config := func() (string, error) { return abs("/cfg"), nil }
	noHome := func() (string, error) { return "", os.ErrNotExist }
	for _, tc := range []struct {
		goos    string
		env     map[string]string
		home    func() (string, error)
		want    string
		wantErr bool
	}{
		{goos: "linux", env: map[string]string{"XDG_STATE_HOME": "/xdg/state"}, home: home, want: "/xdg/state/dojob"},
		{goos: "linux", home: home, want: "/home/u/.local/state/dojob"},
		{goos: "freebsd", env: map[string]string{"XDG_STATE_HOME": "relative"}, home: home, want: "/home/u/.local/state/dojob"},
		{goos: "linux", home: noHome, wantErr: true},
		{goos: "darwin", env: map[string]string{"XDG_STATE_HOME": "/xdg/state"}, home: home, want: "/cfg/dojob"},
		{goos: "windows", home: home, want: "/cfg/dojob"},
	} {
		got, err := defaultStateDir(tc.goos, env(tc.env), tc.home, config)
		if tc.wantErr {
			assert.Error(t, err, tc.goos)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, abs(filepath.FromSlash(tc.want)), got, "%s %v", tc.goos, tc.env)
	}
}

func TestParseArgs(t *testing.T) {
	c := &cli{}
	fs := c.flagSet("x")
	o := fs.String("o", "", "")
	pos, err := parseArgs(fs, []string{"a", "-o", "out", "b", "--json", "--", "-c", "--quiet"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "-c", "--quiet"}, pos)
	assert.Equal(t, "out", *o)
	assert.True(t, c.json)
	assert.False(t, c.quiet)
}

// TestLookingDoesNotStartJobs: list and info open the state directory
// paused, so a job a killed command left QUEUED does not start downloading.
func TestLookingDoesNotStartJobs(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	m, err := dojob.NewManager(dojob.Config{StateDir: state, Paused: true})
	require.NoError(t, err)
	j, err := m.CreateJob("left queued")
	require.NoError(t, err)
	require.NoError(t, j.AddFile(s.FileURL("/f"), filepath.Join(dir, "f")))
	require.NoError(t, j.Resume())
	require.NoError(t, m.Close())

	ctx := testCtx(t, 10*time.Second)
	r := runCmd(t, ctx, "--state-dir", state, "list")
	require.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "QUEUED")
	r = runCmd(t, ctx, "--state-dir", state, "info", j.ID().String())
	require.Equal(t, exitOK, r.code)
	assert.Empty(t, s.Requests(), "looking at jobs transferred nothing")

	// The commands that only look or change a job open the directory
	// paused; get and resume, which wait for a transfer, do not.
	assert.True(t, managerFlags{}.config(state).Paused)
	assert.False(t, managerFlags{transfers: true}.config(state).Paused)

}

// TestGetParallel: get gives its job 8 parallel files and 4 connections
// per file unless --parallel and --connections say otherwise, and resume
// changes them only when given; the values are the job's, in the state
// directory.
func TestGetParallel(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.Always(dojobtest.Status(404)))
	settingsOf := func(state, id string) (parallel, conns int) {
		t.Helper()
		withJob(t, state, id, func(j *dojob.Job) { parallel, conns = j.MaxParallelFiles(), j.MaxConnections() })
		return parallel, conns
	}
	parallelOf := func(state, id string) int {
		t.Helper()
		p, _ := settingsOf(state, id)
		return p
	}
	connsOf := func(state, id string) int {
		t.Helper()
		_, c := settingsOf(state, id)
		return c
	}
	getKept := func(state string, args ...string) string {
		t.Helper()
		args = append([]string{"get", "--keep", "--json", "-d", t.TempDir(), "--state-dir", state}, args...)
		r := runCmd(t, testCtx(t, 10*time.Second), append(args, s.FileURL("/a.bin"), s.FileURL("/b.bin"))...)
		require.Equal(t, exitFail, r.code, r.stderr)
		var got resultJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
		return got.ID
	}

	state := t.TempDir()
	id := getKept(state)
	assert.Equal(t, 8, parallelOf(state, id), "get's default")
	assert.Equal(t, 4, connsOf(state, id), "get's default")
	r := runCmd(t, testCtx(t, 10*time.Second), "resume", "--state-dir", state, id)
	require.Equal(t, exitFail, r.code, r.stderr)
	assert.Equal(t, 8, parallelOf(state, id), "resume without --parallel keeps it")
	assert.Equal(t, 4, connsOf(state, id), "resume without --connections keeps it")
	r = runCmd(t, testCtx(t, 10*time.Second), "resume", "--parallel", "2", "--connections", "16", "--state-dir", state, id)
	require.Equal(t, exitFail, r.code, r.stderr)
	assert.Equal(t, 2, parallelOf(state, id))
	assert.Equal(t, 16, connsOf(state, id))

	state = t.TempDir()
	id = getKept(state, "--parallel", "3", "--connections", "1")
	assert.Equal(t, 3, parallelOf(state, id))
	assert.Equal(t, 1, connsOf(state, id))
}

// TestGetSpeedLimit: --speed-limit and --speed-time set the job's minimum
// speed as curl reads them — the limit alone is over 30 s, the time alone
// is a limit of 1 byte per second — in get and in resume, and a resume
// without them keeps the job's.
func TestGetSpeedLimit(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.Always(dojobtest.Status(404)))
	speedOf := func(state, id string) (bps int64, window time.Duration) {
		t.Helper()
		withJob(t, state, id, func(j *dojob.Job) { bps, window = j.MinimumSpeed() })
		return bps, window
	}
	getKept := func(state string, args ...string) string {
		t.Helper()
		args = append([]string{"get", "--keep", "--json", "-d", t.TempDir(), "--state-dir", state}, args...)
		r := runCmd(t, testCtx(t, 10*time.Second), append(args, s.FileURL("/a.bin"))...)
		require.Equal(t, exitFail, r.code, r.stderr)
		var got resultJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
		return got.ID
	}
	type speed struct {
		bps    int64
		window time.Duration
	}
	for _, tc := range []struct {
		args []string
		want speed
	}{
		{nil, speed{0, 0}},
		{[]string{"--speed-limit", "1000"}, speed{1000, 30 * time.Second}},
		{[]string{"--speed-limit", "500", "--speed-time", "10"}, speed{500, 10 * time.Second}},
		{[]string{"--speed-time", "2.5"}, speed{1, 2500 * time.Millisecond}},
		{[]string{"--speed-limit", "64", "--speed-time", "1m"}, speed{64, time.Minute}},
		{[]string{"--speed-limit", "0", "--speed-time", "10"}, speed{0, 0}},
	} {
		state := t.TempDir()
		id := getKept(state, tc.args...)
		bps, window := speedOf(state, id)
		assert.Equal(t, tc.want, speed{bps, window}, "%q", tc.args)
	}

	state := t.TempDir()
	id := getKept(state, "--speed-limit", "1000", "--speed-time", "20")
	r := runCmd(t, testCtx(t, 10*time.Second), "resume", "--state-dir", state, id)
	require.Equal(t, exitFail, r.code, r.stderr)
	bps, window := speedOf(state, id)
	assert.Equal(t, speed{1000, 20 * time.Second}, speed{bps, window}, "resume without the flags keeps the job's")
	r = runCmd(t, testCtx(t, 10*time.Second), "resume", "--speed-limit", "0", "--state-dir", state, id)
	require.Equal(t, exitFail, r.code, r.stderr)
	bps, window = speedOf(state, id)
	assert.Equal(t, speed{0, 0}, speed{bps, window}, "--speed-limit 0 turns it off")
}

// TestSpeedSettingsOverControl: a client's --speed-limit and --speed-time
// reach the holder as the same minimum speed (settingsOf, then flags, as
// the control protocol carries them in JSON).
func TestSpeedSettingsOverControl(t *testing.T) {
	for _, args := range [][]string{
		nil, {"--speed-limit", "1000"}, {"--speed-time", "20"}, {"--speed-limit", "7", "--speed-time", "3"}, {"--speed-limit", "0"},
	} {
		fs := flag.NewFlagSet("get", flag.ContinueOnError)
		var jf jobFlags
		jf.register(fs)
		require.NoError(t, fs.Parse(args))
		require.NoError(t, jf.parsed(fs))
		data, err := json.Marshal(settingsOf(&jf, false))
		require.NoError(t, err)
		var s ctlSettings
		require.NoError(t, json.Unmarshal(data, &s))
		bps, window, ok := jf.minimumSpeed()
		gbps, gwindow, gok := s.flags().minimumSpeed()
		assert.Equal(t, []any{bps, window, ok}, []any{gbps, gwindow, gok}, "%q", args)
		assert.Equal(t, len(args) > 0, gok, "%q", args)
	}
}

// withJob calls fn with the job id of the state directory, opened paused.
func withJob(t *testing.T, state, id string, fn func(*dojob.Job)) {
	t.Helper()
	m, err := dojob.NewManager(dojob.Config{StateDir: state, Paused: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	jid, err := dojob.ParseJobID(id)
	require.NoError(t, err)
	j, err := m.Job(jid)
	require.NoError(t, err)
	fn(j)
}
