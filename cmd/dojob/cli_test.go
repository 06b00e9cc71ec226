package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersion(t *testing.T) {
	r := runCmd(t, context.Background(), "version")
	require.Equal(t, exitOK, r.code)
	assert.Regexp(t, `^dojob \S+ \(go[0-9.]+\S* [a-z0-9]+/[a-z0-9]+\)\n$`, r.stdout)
	assert.Empty(t, r.stderr)

	assert.Equal(t, "(devel)", moduleVersion(func() (*debug.BuildInfo, bool) { return nil, false }))
	assert.Equal(t, "(devel)", moduleVersion(func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{}, true }))
	assert.Equal(t, "v1.2.3", moduleVersion(func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/dojob/dojob", Version: "v1.2.3"}}, true
	}))
}

// TestIDPrefixes: a job may be named by any prefix of its ID that names it
// alone, with or without the brace, in any case; an ambiguous prefix is a
// usage error that lists the candidates; a prefix of no job is
// DO_E_JOB_NOT_FOUND.
func TestIDPrefixes(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	// 17 jobs: two of them start with the same hex digit.
	var names []string
	for i := range 17 {
		names = append(names, fmt.Sprintf("j%02d.bin", i))
	}
	ids := newJobs(t, state, dir, s, names, nil)
	bare := func(id string) string { return strings.Trim(id, "{}") }
	// unique returns the shortest prefix of id that no other job has.
	unique := func(id string) string {
		for n := 1; ; n++ {
			p, shared := bare(id)[:n], false
			for _, o := range ids {
				shared = shared || (o != id && strings.HasPrefix(bare(o), p))
			}
			if !shared {
				return p
			}
		}
	}
	ctx := testCtx(t, 10*time.Second)

	for _, ref := range []string{unique(ids[0]), "{" + strings.ToLower(unique(ids[0])), bare(ids[0])[:13], ids[0], strings.ToLower(bare(ids[0]))} {
		r := runCmd(t, ctx, "--state-dir", state, "info", ref)
		require.Equal(t, exitOK, r.code, ref)
		assert.Regexp(t, `(?m)^ID: +`+regexp.QuoteMeta(ids[0])+`$`, r.stdout, ref)
	}

	// Ambiguous: the first hex digit that two jobs share.
	var shared []string
	byFirst := map[byte][]string{}
	for _, id := range ids {
		byFirst[bare(id)[0]] = append(byFirst[bare(id)[0]], id)
	}
	var prefix string
	for p, group := range byFirst {
		if len(group) > 1 {
			prefix, shared = string(p), group
			break
		}
	}
	require.NotEmpty(t, prefix)
	r := runCmd(t, ctx, "--state-dir", state, "suspend", strings.ToLower(prefix))
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, `dojob: job ID "`+strings.ToLower(prefix)+`" is ambiguous`)
	for _, id := range shared {
		assert.Contains(t, r.stderr, id+"  SUSPENDED  ")
	}
	assert.True(t, strings.HasSuffix(r.stderr, "\nRun 'dojob help suspend' for usage.\n"), r.stderr)
	assert.Empty(t, r.stdout)

	// No job: a prefix of none.
	none := "0"
	for n := 0; ; n++ {
		found := false
		for _, id := range ids {
			found = found || strings.HasPrefix(bare(id), none)
		}
		if !found {
			break
		}
		none = fmt.Sprintf("%08X", n)
	}
	r = runCmd(t, ctx, "--state-dir", state, "cancel", none)
	assert.Equal(t, exitFail, r.code)
	assert.Equal(t, fmt.Sprintf("dojob: no job ID starts with %q: DO_E_JOB_NOT_FOUND (0x80D02003)\n", none), r.stderr)

	// A prefix works for every command that takes an ID: resume it.
	r = runCmd(t, ctx, "--state-dir", state, "resume", unique(ids[1]))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/"+names[1]), fileSHA256(t, filepath.Join(dir, names[1])))
	// Nothing else changed state.
	r = runCmd(t, ctx, "--state-dir", state, "list")
	assert.Equal(t, 16, strings.Count(r.stdout, "SUSPENDED"))
}

// TestGetRefusesExistingFile: -o (or -d) onto an existing file refuses
// before anything is requested and keeps the file; --force replaces it.
func TestGetRefusesExistingFile(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "f.bin")
	require.NoError(t, os.WriteFile(dest, []byte("precious"), 0o600))
	ctx := testCtx(t, 10*time.Second)

	for _, args := range [][]string{{"-o", dest}, {"-d", dir}} {
		r := runCmd(t, ctx, append([]string{"--state-dir", state, "get", s.FileURL("/f.bin")}, args...)...)
		assert.Equal(t, exitFail, r.code, "%q", args)
		assert.Equal(t, "dojob: get: "+dest+" already exists (use --force to replace it)\n", r.stderr, "%q", args)
		got, err := os.ReadFile(dest)
		require.NoError(t, err)
		assert.Equal(t, "precious", string(got), "the file is kept")
	}
	assert.Empty(t, s.Requests(), "nothing was requested")
	r := runCmd(t, ctx, "--state-dir", state, "list")
	assert.Equal(t, "no jobs\n", r.stdout, "no job was created")

	r = runCmd(t, ctx, "--state-dir", state, "get", "--force", "-o", dest, s.FileURL("/f.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/f.bin"), fileSHA256(t, dest))
}

// TestGetOntoADirectory: a destination that is a directory (or a link to
// one) is a usage error before anything is requested, --force or not, and
// the directory is left alone.
func TestGetOntoADirectory(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	sub := filepath.Join(dir, "f.bin")
	require.NoError(t, os.Mkdir(sub, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sub, "inside"), []byte("kept"), 0o600))
	ctx := testCtx(t, 10*time.Second)

	cases := [][]string{{"-o", sub}, {"-d", dir}, {"--force", "-o", sub}}
	link := filepath.Join(dir, "link.bin")
	if err := os.Symlink(sub, link); err == nil {
		if fi, err := os.Stat(link); err == nil && fi.IsDir() { // Wine's links are stubs
			cases = append(cases, []string{"-o", link})
		}
	}
	for _, args := range cases {
		r := runCmd(t, ctx, append([]string{"--state-dir", state, "get", s.FileURL("/f.bin")}, args...)...)
		assert.Equal(t, exitUsage, r.code, "%q", args)
		assert.Contains(t, r.stderr, " is a directory\n", "%q", args)
	}
	assert.Empty(t, s.Requests(), "nothing was requested")
	got, err := os.ReadFile(filepath.Join(sub, "inside"))
	require.NoError(t, err)
	assert.Equal(t, "kept", string(got))
	r := runCmd(t, ctx, "--state-dir", state, "list")
	assert.Equal(t, "no jobs\n", r.stdout, "no job was created")
}

// TestGetMissingDirectory: a destination directory that does not exist is
// named before anything is requested; --create-dirs creates it.
func TestGetMissingDirectory(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	missing := filepath.Join(dir, "no", "such")
	ctx := testCtx(t, 10*time.Second)

	for _, args := range [][]string{{"-o", filepath.Join(missing, "f.bin")}, {"-d", missing}} {
		r := runCmd(t, ctx, append([]string{"--state-dir", state, "get", s.FileURL("/f.bin")}, args...)...)
		assert.Equal(t, exitFail, r.code, "%q", args)
		assert.Equal(t, "dojob: get: destination directory "+missing+" does not exist (use --create-dirs to create it)\n", r.stderr)
		assert.Empty(t, r.stdout)
	}
	assert.Empty(t, s.Requests(), "nothing was requested")
	assert.NoDirExists(t, filepath.Join(dir, "no"))

	r := runCmd(t, ctx, "--state-dir", state, "get", "--create-dirs", "-d", missing, s.FileURL("/f.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/f.bin"), fileSHA256(t, filepath.Join(missing, "f.bin")))
}

// TestStallAndTransientLines: without a terminal, a transfer that stops
// sending gets a "stalled" line well before the watchdog drops it, and the
// transient error that follows says when the next retry is and when the job
// gives up.
func TestStallAndTransientLines(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize), dojobtest.Script(dojobtest.StallAfter(64<<10), dojobtest.OK()))
	state, dir := t.TempDir(), t.TempDir()
	r := runCmd(t, testCtx(t, 20*time.Second), "--state-dir", state, "get", "-d", dir,
		"--stall-timeout", "1200ms", "--retry-delay", "700ms", "--no-progress-timeout", "2h", s.FileURL("/stall.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/stall.bin"), fileSHA256(t, filepath.Join(dir, "stall.bin")))
	assertNoCR(t, r)

	// The notice comes after a quarter of the stall timeout (300 ms), at a
	// sample (every 200 ms), before the watchdog gives up at 1.2 s.
	m := regexp.MustCompile(`(?m)^stall\.bin: stalled: no data for ([0-9.]+m?s) \(the connection is dropped after 1\.2s without data\)$`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	silent, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	assert.GreaterOrEqual(t, silent, 300*time.Millisecond)
	assert.Less(t, silent, 1200*time.Millisecond)
	assert.Equal(t, 1, strings.Count(r.stdout, "stalled"), "one line per stall")

	m = regexp.MustCompile(`(?m)^TRANSIENT_ERROR: ERROR_WINHTTP_TIMEOUT \(0x80072EE2\) \[GENERAL_TRANSPORT\]: ` + regexp.QuoteMeta(s.FileURL("/stall.bin")) +
		`: .*; retry 1 in ([0-9.]+m?s); gives up at \d\d:\d\d:\d\d \(in (\S+)\) without progress$`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	next, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	assert.InDelta(t, 700*time.Millisecond, next, float64(200*time.Millisecond), "the retry delay")
	giveUp, err := time.ParseDuration(m[2])
	require.NoError(t, err)
	assert.InDelta(t, 2*time.Hour, giveUp, float64(5*time.Second), "the no-progress timeout")
	// The order of the story.
	assert.Less(t, strings.Index(r.stdout, "stalled"), strings.Index(r.stdout, "TRANSIENT_ERROR"))
}

// TestSpeedLimitLine: a server far slower than --speed-limit is dropped
// after --speed-time (1 s here) with a transient ERROR_WINHTTP_TIMEOUT that
// says it was too slow; the retry resumes at the offset and completes.
func TestSpeedLimitLine(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize), dojobtest.Script(dojobtest.Drip(1000), dojobtest.OK()))
	state, dir := t.TempDir(), t.TempDir()
	start := time.Now()
	r := runCmd(t, testCtx(t, 20*time.Second), "--state-dir", state, "get", "-d", dir,
		"--speed-limit", "100000", "--speed-time", "1", "--retry-delay", "10ms", s.FileURL("/slow.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "not before the window")
	assert.Equal(t, s.SHA256("/slow.bin"), fileSHA256(t, filepath.Join(dir, "slow.bin")))
	assert.Regexp(t, `(?m)^TRANSIENT_ERROR: ERROR_WINHTTP_TIMEOUT \(0x80072EE2\) \[GENERAL_TRANSPORT\]: `+regexp.QuoteMeta(s.FileURL("/slow.bin"))+
		`: .*slower than the minimum speed: \d+ bytes in [0-9.]+m?s, under the minimum of 100000 bytes/s; retry 1 in`, r.stdout)
	reqs := s.RequestsFor("/slow.bin")
	require.Len(t, reqs, 2)
	// The server counts bytes as it sends them: the last may not have
	// reached the client when it hung up.
	m := regexp.MustCompile(`^bytes=(\d+)-$`).FindStringSubmatch(reqs[1].Range)
	require.NotNil(t, m, "the retry resumes: %q", reqs[1].Range)
	off, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	assert.Greater(t, off, int64(0))
	assert.LessOrEqual(t, off, reqs[0].BodyBytes, "at the offset the first attempt reached")
}

// TestSummaryAfterResume: the summary of a resumed download tells the bytes
// of this run from those already on disk, and its speed counts only this
// run's.
func TestSummaryAfterResume(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize), dojobtest.Script(dojobtest.Drip(testSize), dojobtest.OK()))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "slow.bin")
	id := interrupt(t, s, state, dest, s.FileURL("/slow.bin"))

	r := runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "resume", id[:9])
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/slow.bin"), fileSHA256(t, dest))
	reqs := s.RequestsFor("/slow.bin")
	require.Len(t, reqs, 2)
	var onDisk int64
	_, err := fmt.Sscanf(reqs[1].Range, "bytes=%d-", &onDisk)
	require.NoError(t, err)
	require.Positive(t, onDisk)
	want := fmt.Sprintf("done: 1 file, 256.0 KiB in \\S+: %s this run \\(\\S+ \\S+/s\\), %s already on disk, job %s\n",
		regexp.QuoteMeta(formatBytes(testSize-onDisk)), regexp.QuoteMeta(formatBytes(onDisk)), regexp.QuoteMeta(id))
	assert.Regexp(t, want, r.stdout)
}

// TestErrorsOnce: a failure is reported once, on stderr, with one "dojob:"
// and its URL or ID once — also for ErrNoProgress, which wraps the last
// transient error, and for errors of the library wrapped by the command.
func TestErrorsOnce(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.Always(dojobtest.Status(503)))
	state, dir := t.TempDir(), t.TempDir()
	url := s.FileURL("/down.bin")
	r := runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "-d", dir,
		"--no-progress-timeout", "300ms", "--retry-delay", "100ms", url)
	assert.Equal(t, exitFail, r.code)
	assert.Equal(t, "dojob: DO_E_DOWNLOAD_NO_PROGRESS (0x80D02002) [REMOTE_FILE]: "+url+
		": BG_E_HTTP_ERROR_503 (0x801901F7): server answered 503 Service Unavailable\n", r.stderr)
	assert.NotContains(t, r.stdout, "DO_E_DOWNLOAD_NO_PROGRESS")
	assert.Contains(t, r.stdout, "\nERROR\n")

	ids := newJobs(t, state, dir, s, []string{"x.bin"}, nil)
	r = runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "cancel", ids[0])
	require.Equal(t, exitOK, r.code)
	for _, cmd := range []string{"info", "suspend"} {
		r = runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, cmd, ids[0])
		assert.Equal(t, exitFail, r.code)
		assert.Equal(t, "dojob: no job "+ids[0]+": DO_E_JOB_NOT_FOUND (0x80D02003)\n", r.stderr, cmd)
	}
}

// TestIsTerminal: /dev/null is a character device but not a terminal, and
// a buffer or a regular file is neither: no bars for them.
func TestIsTerminal(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer null.Close()
	fi, err := null.Stat()
	require.NoError(t, err)
	if fi.Mode()&os.ModeCharDevice != 0 {
		t.Logf("%s is a character device", os.DevNull)
	}
	assert.False(t, isTerminal(null))
	assert.False(t, barsFor(null))
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, isTerminal(f))
	assert.False(t, isTerminal(&strings.Builder{}))
}

// TestRestartIsShown: a file that starts over (the server ignored the
// Range) says so, and the summary counts none of its earlier bytes as
// already on disk.
func TestRestartIsShown(t *testing.T) {
	t.Parallel() // seconds of bytes dripping, the CPU idle: it waits beside the others
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize), dojobtest.Script(
		dojobtest.Drip(testSize),
		dojobtest.IgnoreRange().And(dojobtest.Drip(testSize/2)), // ~26 KiB per sample: below what the first run had
	))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "slow.bin")
	id := interrupt(t, s, state, dest, s.FileURL("/slow.bin"))

	r := runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "resume", id)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/slow.bin"), fileSHA256(t, dest))
	reqs := s.RequestsFor("/slow.bin")
	require.Len(t, reqs, 2)
	require.Equal(t, 200, reqs[1].Status, "the server ignored the Range")
	assert.Regexp(t, `(?m)^slow\.bin: starting over: \S.*$`, r.stdout)
	assert.Regexp(t, `(?m)^done: 1 file, 256\.0 KiB in \S+ \(\S+ \S+/s\), job `, r.stdout)
	assert.NotContains(t, r.stdout, "already on disk")
}
