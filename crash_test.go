//go:build unix || windows

package dojob_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The crash tests really crash: the test binary runs itself again as a
// child process (crashChild) that uses a state directory, and the parent
// kills it at a chosen moment — SIGKILL on Unix, TerminateProcess on
// Windows (os.Process.Kill does either): no deferred function runs, nothing
// is flushed, and the kernel closes the files and releases the lock. Then the parent opens the same
// directory with a new Manager and checks what survived.

const crashModeEnv = "DOJOB_CRASH_MODE"

// crashChild is the child side, run from TestMain when the environment
// names a mode. It prints a line after each step, then, at the step its
// mode names, waits to be killed. It returns the process's exit code.
func crashChild(mode string) int {
	say := func(format string, args ...any) { fmt.Fprintf(os.Stdout, format+"\n", args...) }
	wait := func() int {
		// Until SIGKILL. A timer, not select{}: it keeps the runtime from
		// calling an idle child deadlocked, and bounds an orphan's life.
		<-time.After(2 * time.Minute)
		return 1
	}
	m, err := dojob.NewManager(dojob.Config{StateDir: os.Getenv("DOJOB_STATE"), CheckpointInterval: 20 * time.Millisecond, MinSegmentSize: 256 << 10})
	if err != nil {
		say("ERR %v", err)
		return 1
	}
	j, err := m.CreateJob("crash test")
	if err != nil {
		say("ERR %v", err)
		return 1
	}
	say("CREATED %s", j.ID())
	if mode == "create" {
		return wait()
	}
	spec := dojob.FileSpec{RemoteURL: os.Getenv("DOJOB_URL"), LocalPath: os.Getenv("DOJOB_DEST"), Checksum: os.Getenv("DOJOB_SUM")}
	if err := j.AddFileSet([]dojob.FileSpec{spec}); err != nil {
		say("ERR %v", err)
		return 1
	}
	say("ADDED")
	if mode == "add" {
		return wait()
	}
	for _, err := range []error{
		j.SetDescription("survives kill -9"),
		j.SetPriority(dojob.PriorityHigh),
		j.SetNoProgressTimeout(42 * time.Minute),
		j.SetMinimumRetryDelay(3 * time.Second),
		setConns(j, os.Getenv("DOJOB_CONNS")),
	} {
		if err != nil {
			say("ERR %v", err)
			return 1
		}
	}
	say("SET")
	if mode == "set" {
		return wait()
	}
	if err := j.Resume(); err != nil {
		say("ERR %v", err)
		return 1
	}
	say("RESUMED")
	return wait()
}

// setConns sets the job's connections per file from DOJOB_CONNS, if given.
func setConns(j *dojob.Job, s string) error {
	if s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return err
	}
	return j.SetMaxConnections(n)
}

// runCrashChild runs the crash-test child instead of the tests when the
// process was started as one (see TestMain).
func runCrashChild() (code int, isChild bool) {
	mode := os.Getenv(crashModeEnv)
	if mode == "" {
		return 0, false
	}
	return crashChild(mode), true
}

// child is a running crash-test child.
type child struct {
	cmd   *exec.Cmd
	lines chan string
}

func startChild(t *testing.T, mode, stateDir, url, dest string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0]) // TestMain sees the mode and runs crashChild
	cmd.Env = append(os.Environ(), crashModeEnv+"="+mode, "DOJOB_STATE="+stateDir, "DOJOB_URL="+url, "DOJOB_DEST="+dest)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(c.kill)
	return c
}

// expect waits for the child's next line starting with prefix and returns
// the rest of it.
func (c *child) expect(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			require.True(t, ok, "the child exited before printing %q", prefix)
			require.False(t, strings.HasPrefix(line, "ERR"), line)
			if rest, found := strings.CutPrefix(line, prefix); found {
				return strings.TrimSpace(rest)
			}
		case <-timeout.C:
			t.Fatalf("no %q from the child", prefix)
		}
	}
}

// kill sends SIGKILL (Unix) or calls TerminateProcess (Windows) — no
// deferred function, no Close, nothing flushed — and reaps the process.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	for range c.lines {
	}
}

func reopen(t *testing.T, stateDir string) *dojob.Manager {
	t.Helper()
	m, err := dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m
}

// TestCrashRightAfterReturn: once CreateJob, AddFile or a setter has
// returned, a kill -9 loses neither the job nor the change.
func TestCrashRightAfterReturn(t *testing.T) {
	for _, mode := range []string{"create", "add", "set"} {
		t.Run(mode, func(t *testing.T) {
			stateDir, dir := t.TempDir(), t.TempDir()
			url, dest := "http://127.0.0.1:9/file.bin", filepath.Join(dir, "file.bin")
			c := startChild(t, mode, stateDir, url, dest)
			id := c.expect(t, "CREATED")
			switch mode {
			case "add":
				c.expect(t, "ADDED")
			case "set":
				c.expect(t, "SET")
			}
			c.kill()

			m := reopen(t, stateDir)
			jid, err := dojob.ParseJobID(id)
			require.NoError(t, err)
			j, err := m.Job(jid)
			require.NoError(t, err, "the job survived")
			assert.Equal(t, "crash test", j.DisplayName())
			assert.Equal(t, dojob.StateSuspended, j.State())
			if mode == "create" {
				assert.Empty(t, j.Files())
				return
			}
			require.Len(t, j.Files(), 1)
			assert.Equal(t, url, j.Files()[0].RemoteURL)
			assert.Equal(t, dest, j.Files()[0].LocalPath)
			if mode == "set" {
				assert.Equal(t, "survives kill -9", j.Description())
				assert.Equal(t, dojob.PriorityHigh, j.Priority())
				assert.Equal(t, 42*time.Minute, j.NoProgressTimeout())
				assert.Equal(t, 3*time.Second, j.MinimumRetryDelay())
			}
		})
	}
}

// TestCrashMidTransfer: a child downloading from a slow server is killed
// halfway; a new Manager on its state directory finishes the job from the
// temporary file, re-downloading only what arrived after the last
// checkpoint, and leaves no temporary file behind.
func TestCrashMidTransfer(t *testing.T) { testCrashMidTransfer(t, false) }

// TestCrashMidTransferChecksum: the same with a Checksum. The digest of the
// bytes up to the last checkpoint is in the record, so the new Manager
// continues it without reading the temporary file, and the file verifies.
func TestCrashMidTransferChecksum(t *testing.T) { testCrashMidTransfer(t, true) }

func testCrashMidTransfer(t *testing.T, withSum bool) {
	const size = 2 << 20
	s := dojobtest.NewServer(t, dojobtest.WithSize(size), dojobtest.WithRate(1<<20)) // 2 s for the whole file
	stateDir, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "file.bin")
	var env []string
	if withSum {
		env = append(env, "DOJOB_SUM=sha256:"+s.SHA256("/file.bin"))
	}
	c := startChild(t, "transfer", stateDir, s.FileURL("/file.bin"), dest, env...)
	id := c.expect(t, "CREATED")
	c.expect(t, "RESUMED")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := s.AwaitRequests(ctx, func(rs []dojobtest.Request) bool { return len(rs) == 1 && rs[0].BodyBytes >= size/2 })
	require.NoError(t, err)
	c.kill()
	sentBeforeKill := s.BodyBytes("/file.bin")
	require.Less(t, sentBeforeKill, int64(size), "killed mid-transfer")
	require.NotEmpty(t, tempFiles(t, dir), "the partial file is on disk")

	m := reopen(t, stateDir)
	jid, err := dojob.ParseJobID(id)
	require.NoError(t, err)
	j, err := m.Job(jid)
	require.NoError(t, err)
	resumedFrom := j.Progress().BytesTransferred
	rec := dojobtest.NewRecorder(dojobtest.CompleteOnTransferred())
	require.NoError(t, j.SetNotifyInterface(rec))
	_, err = rec.AwaitCount(ctx, dojobtest.EventTransferred, 1)
	require.NoError(t, err)
	require.Equal(t, dojob.StateAcknowledged, j.State())

	assert.Equal(t, s.SHA256("/file.bin"), fileSHA256(t, dest))
	reqs := s.RequestsFor("/file.bin")
	require.Len(t, reqs, 2)
	assert.Equal(t, fmt.Sprintf("bytes=%d-", resumedFrom), reqs[1].Range, "resumed from the temporary file")
	again := s.BodyBytes("/file.bin") - size
	t.Logf("killed after %d bytes sent; resumed from %d; %d bytes downloaded twice", sentBeforeKill, resumedFrom, again)
	assert.Greater(t, resumedFrom, int64(0))
	assert.LessOrEqual(t, again, int64(size/4), "a restart re-downloads little")
	assert.Zero(t, dojob.Rehashes(m), "the digest continued from the checkpoint, not from the disk")
	if withSum {
		fi := j.Files()[0]
		assert.True(t, fi.Verified)
		assert.Equal(t, "sha256:"+s.SHA256("/file.bin"), fi.Checksum)
	}
	assert.Empty(t, tempFiles(t, dir), "no temporary file after Complete")
	records, err := os.ReadDir(filepath.Join(stateDir, "jobs"))
	require.NoError(t, err)
	assert.Empty(t, records, "the finished job left the state directory")
}

// TestCrashMidSegments: a child downloading one file over 4 connections is
// killed halfway; a new Manager on its state directory resumes every gap
// with an exact Range, fetches again only what arrived after the last
// checkpoint, and the file (with its Checksum) is right.
func TestCrashMidSegments(t *testing.T) {
	const size = 8 << 20
	s := dojobtest.NewServer(t, dojobtest.WithSize(size), dojobtest.WithRate(1<<20)) // 2 s over 4 connections
	stateDir, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "file.bin")
	c := startChild(t, "transfer", stateDir, s.FileURL("/file.bin"), dest,
		"DOJOB_SUM=sha256:"+s.SHA256("/file.bin"), "DOJOB_CONNS=4")
	id := c.expect(t, "CREATED")
	c.expect(t, "RESUMED")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := s.AwaitRequests(ctx, func(rs []dojobtest.Request) bool {
		var n int64
		for _, r := range rs {
			n += r.BodyBytes
		}
		return len(rs) >= 4 && n >= size/2
	})
	require.NoError(t, err)
	c.kill()
	first := len(s.RequestsFor("/file.bin"))
	sentBeforeKill := s.BodyBytes("/file.bin")
	require.Less(t, sentBeforeKill, int64(size), "killed mid-transfer")

	m := reopen(t, stateDir)
	jid, err := dojob.ParseJobID(id)
	require.NoError(t, err)
	j, err := m.Job(jid)
	require.NoError(t, err)
	assert.Equal(t, 4, j.MaxConnections(), "persisted")
	resumedFrom := j.Progress().BytesTransferred
	require.Positive(t, resumedFrom)
	rec := dojobtest.NewRecorder(dojobtest.CompleteOnTransferred())
	require.NoError(t, j.SetNotifyInterface(rec))
	_, err = rec.AwaitCount(ctx, dojobtest.EventTransferred, 1)
	require.NoError(t, err)
	require.Equal(t, dojob.StateAcknowledged, j.State())
	assert.Equal(t, s.SHA256("/file.bin"), fileSHA256(t, dest))

	later := s.RequestsFor("/file.bin")[first:]
	var fetched int64
	for _, r := range later {
		assert.Regexp(t, `^bytes=\d+-\d+$`, r.Range, "a gap, asked exactly")
		fetched += r.BodyBytes
	}
	again := sentBeforeKill + fetched - size
	t.Logf("killed after %d bytes sent; resumed with %d; %d bytes downloaded twice", sentBeforeKill, resumedFrom, again)
	assert.LessOrEqual(t, fetched, int64(size)-resumedFrom+int64(len(later))*(64<<10), "no recorded byte fetched again")
	assert.LessOrEqual(t, again, int64(size/4), "a restart re-downloads little")
	assert.True(t, j.Files()[0].Verified)
	assert.Empty(t, tempFiles(t, dir), "no temporary file after Complete")
}
