package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// asCommandEnv, set to 1, makes the test binary run as the dojob command.
const asCommandEnv = "DOJOB_TEST_AS_COMMAND"

// procLimit bounds every wait for a child process.
const procLimit = 20 * time.Second

// proc is a dojob command running as a separate process: the test binary
// re-executed with asCommandEnv.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string   // stdout, line by line; closed at EOF
	exit  chan struct{} // closed once the process has exited and been waited for

	mu     sync.Mutex
	stdout bytes.Buffer
	stderr lockedBuffer
	code   int
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written.
func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startDojob starts "dojob args..." as a child process. Its stdout is read
// line by line by a goroutine that also waits for the process; the test's
// cleanup kills a process still running and waits for that goroutine.
func startDojob(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Args[0] = "dojob" // the name hints repeat, as a user's shell gives it
	cmd.Env = append(os.Environ(), asCommandEnv+"=1")
	p := &proc{t: t, cmd: cmd, lines: make(chan string, 1024), exit: make(chan struct{})}
	cmd.Stderr = &p.stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	go func() {
		defer close(p.exit)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.stdout.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default: // nobody waits for lines that far ahead
			}
		}
		close(p.lines)
		err := cmd.Wait()
		p.mu.Lock()
		p.code = cmd.ProcessState.ExitCode()
		p.mu.Unlock()
		_ = err // the exit code says it
	}()
	t.Cleanup(func() {
		select {
		case <-p.exit:
		default:
			_ = cmd.Process.Kill()
			<-p.exit
		}
		t.Logf("child dojob %s\n=> exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), p.code, p.stdout.String(), p.stderr.String())
	})
	return p
}

// awaitLine waits for a line of stdout that matches re and returns it.
func (p *proc) awaitLine(re string) string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	timer := time.NewTimer(procLimit)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("child exited before printing a line matching %q; stderr:\n%s", re, p.stderr.String())
			}
			if rx.MatchString(line) {
				return line
			}
		case <-timer.C:
			p.t.Fatalf("no line matching %q within %v", re, procLimit)
		}
	}
}

// wait waits for the process to exit and returns what it gave.
func (p *proc) wait() result {
	p.t.Helper()
	select {
	case <-p.exit:
	case <-time.After(procLimit):
		p.t.Fatalf("child did not exit within %v", procLimit)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return result{code: p.code, stdout: p.stdout.String(), stderr: p.stderr.String()}
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.exit:
		return true
	default:
		return false
	}
}

// slowServer serves testSize files; the first request of slow paths drips
// at rate bytes per second, later requests and other paths are fast.
func slowServer(t *testing.T, rate int64, slow ...string) *dojobtest.Server {
	opts := []dojobtest.Option{dojobtest.WithSize(testSize)}
	for _, p := range slow {
		opts = append(opts, dojobtest.ScriptFor(p, dojobtest.Drip(rate), dojobtest.OK()))
	}
	return dojobtest.NewServer(t, opts...)
}

// holdGet starts a get of path from s in a child process and waits until
// its job is TRANSFERRING. It returns the process and the job's ID.
func holdGet(t *testing.T, s *dojobtest.Server, state, dest, path string) (*proc, string) {
	t.Helper()
	p := startDojob(t, "get", "--state-dir", state, "--checkpoint-interval", "10ms", "-o", dest, s.FileURL(path))
	id := jobID(t, p.awaitLine(`^job \{`))
	p.awaitLine(`^TRANSFERRING$`)
	awaitBody(t, s, path, 8<<10)
	return p, id
}

// awaitBody waits until s has sent at least n bytes of path's body in one
// response.
func awaitBody(t *testing.T, s *dojobtest.Server, path string, n int64) {
	t.Helper()
	_, err := s.AwaitRequests(testCtx(t, procLimit), func(rs []dojobtest.Request) bool {
		for _, r := range rs {
			if r.Path == path && r.BodyBytes >= n {
				return true
			}
		}
		return false
	})
	require.NoError(t, err)
}

func TestSharedListInfoSuspendResume(t *testing.T) {
	s := slowServer(t, 32<<10, "/held.bin")
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "held.bin")
	holder, id := holdGet(t, s, state, dest, "/held.bin")
	assert.FileExists(t, filepath.Join(state, controlSocket))
	fi, err := os.Stat(filepath.Join(state, controlSocket))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	ctx := testCtx(t, procLimit)
	r := runCmd(t, ctx, "list", "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, regexp.QuoteMeta(id)+` +TRANSFERRING +.* / 256\.0 KiB \(\d+%\) +0/1 +held\.bin`, r.stdout)

	r = runCmd(t, ctx, "--json", "info", id, "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	var info jobJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &info), r.stdout)
	assert.Equal(t, id, info.ID)
	assert.Equal(t, "TRANSFERRING", info.State)
	assert.Equal(t, "FOREGROUND", info.Priority)
	assert.Equal(t, dest, info.Files[0].Path)

	r = runCmd(t, ctx, "info", "{00000000-0000-0000-0000-000000000000}", "--state-dir", state)
	assert.Equal(t, exitFail, r.code)
	assert.Equal(t, "dojob: no job {00000000-0000-0000-0000-000000000000}: DO_E_JOB_NOT_FOUND (0x80D02003)\n", r.stderr)

	// suspend takes effect in the holder at once, and its get stops as on
	// Ctrl-C.
	r = runCmd(t, ctx, "suspend", id, "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "suspended job "+id+": SUSPENDED\n", r.stdout)
	hr := holder.wait()
	assert.Equal(t, exitFail, hr.code)
	assert.Contains(t, hr.stdout, "SUSPENDED\n")
	assert.Contains(t, hr.stderr, "job "+id+" was suspended; continue with: dojob --state-dir "+state+" resume "+id)
	assert.NoFileExists(t, filepath.Join(state, controlSocket), "the holder removes its endpoint")
	assert.NoFileExists(t, dest)

	// resume continues it where it stopped.
	r = runCmd(t, ctx, "resume", id, "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/held.bin"), fileSHA256(t, dest))
	assertResumedWithRange(t, s, "/held.bin")
	for _, out := range []string{r.stderr, hr.stderr} {
		assert.NotContains(t, out, "SHARING_VIOLATION")
	}
}

func TestSharedCancel(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize), dojobtest.Always(dojobtest.Drip(32<<10)))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "c.bin")
	holder, id := holdGet(t, s, state, dest, "/c.bin")

	r := runCmd(t, testCtx(t, procLimit), "cancel", id, "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "cancelled job "+id+": CANCELLED\n", r.stdout)
	hr := holder.wait()
	assert.Equal(t, exitFail, hr.code)
	assert.Contains(t, hr.stderr, "dojob: job "+id+" ended in CANCELLED")
	assert.NoFileExists(t, dest)
	noTemps(t, dir)
	r = runCmd(t, testCtx(t, procLimit), "list", "--state-dir", state)
	assert.Equal(t, "no jobs\n", r.stdout)
}

// TestSharedSecondGetResumeComplete: while a get runs, a second get runs
// its own job in the holder, resume runs a suspended job there and
// complete completes a transferred one; the holder's get goes on.
func TestSharedSecondGetResumeComplete(t *testing.T) {
	t.Parallel() // seconds of bytes dripping, the CPU idle: it waits beside the others
	s := slowServer(t, 64<<10, "/first.bin")
	state, dir := t.TempDir(), t.TempDir()
	ids := newJobs(t, state, dir, s, []string{"suspended.bin"}, nil)
	done := newJobs(t, state, dir, s, []string{"done.bin"}, func(j *dojob.Job) {
		require.NoError(t, j.Resume())
		st, err := j.Wait(testCtx(t, procLimit))
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
	})
	first := filepath.Join(dir, "first.bin")
	holder, id := holdGet(t, s, state, first, "/first.bin")
	ctx := testCtx(t, procLimit)

	second := filepath.Join(dir, "second.bin")
	r := runCmd(t, ctx, "get", "--state-dir", state, "--retry-delay", "10ms", "-o", second, s.FileURL("/second.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/second.bin"), fileSHA256(t, second))
	assert.Regexp(t, `(?m)^job \{.*\} \(second\.bin\): 1 file\nQUEUED\n(CONNECTING\n)?(TRANSFERRING\n)?TRANSFERRED\nACKNOWLEDGED\ndone: 1 file, 256\.0 KiB in .*, job \{`, r.stdout)
	assert.Empty(t, r.stderr)
	assert.False(t, holder.exited(), "the first get still runs")

	r = runCmd(t, ctx, "resume", ids[0], "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/suspended.bin"), fileSHA256(t, filepath.Join(dir, "suspended.bin")))

	r = runCmd(t, ctx, "complete", done[0], "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "completed job "+done[0]+": ACKNOWLEDGED, 1 of 1 file in place\n", r.stdout)
	assert.Equal(t, s.SHA256("/done.bin"), fileSHA256(t, filepath.Join(dir, "done.bin")))

	// The holder's own transfer was never disturbed.
	hr := holder.wait()
	require.Equal(t, exitOK, hr.code, hr.stderr)
	assert.Contains(t, hr.stdout, "done: 1 file, 256.0 KiB")
	assert.Contains(t, hr.stdout, id)
	assert.Equal(t, s.SHA256("/first.bin"), fileSHA256(t, first))
	assert.Len(t, s.RequestsFor("/first.bin"), 1)
	assert.NoFileExists(t, filepath.Join(state, controlSocket))
	noTemps(t, dir)
}

// TestHolderWaitsForClientJob: a get whose own job is done keeps serving
// until the job it runs for another get is done.
func TestHolderWaitsForClientJob(t *testing.T) {
	t.Parallel() // seconds of bytes dripping, the CPU idle: it waits beside the others
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize),
		dojobtest.ScriptFor("/short.bin", dojobtest.Drip(256<<10)),
		dojobtest.ScriptFor("/long.bin", dojobtest.Drip(96<<10)))
	state, dir := t.TempDir(), t.TempDir()
	holder, _ := holdGet(t, s, state, filepath.Join(dir, "short.bin"), "/short.bin")

	long := filepath.Join(dir, "long.bin")
	r := runCmd(t, testCtx(t, procLimit), "get", "--state-dir", state, "-o", long, s.FileURL("/long.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/long.bin"), fileSHA256(t, long))
	assert.NotContains(t, r.stdout, "continuing the job here", "the holder ran the job to the end")
	assert.Len(t, s.RequestsFor("/long.bin"), 1)

	hr := holder.wait()
	require.Equal(t, exitOK, hr.code, hr.stderr)
	assert.Regexp(t, `(?m)^done: 1 file.*\nother dojob commands follow jobs here; waiting for them`, hr.stdout)
	assert.Equal(t, s.SHA256("/short.bin"), fileSHA256(t, filepath.Join(dir, "short.bin")))
}

// TestKilledHolder: kill -9 of the holder mid-transfer leaves nothing that
// blocks: the get that followed a job in it continues that job itself,
// and the killed get's job resumes.
func TestKilledHolder(t *testing.T) {
	s := slowServer(t, 32<<10, "/a.bin", "/b.bin")
	state, dir := t.TempDir(), t.TempDir()
	a, b := filepath.Join(dir, "a.bin"), filepath.Join(dir, "b.bin")
	holder, idA := holdGet(t, s, state, a, "/a.bin")

	var (
		wg sync.WaitGroup
		rb result
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		rb = runCmd(t, testCtx(t, procLimit), "get", "--state-dir", state, "-o", b, s.FileURL("/b.bin"))
	}()
	awaitBody(t, s, "/b.bin", 20_000)
	require.NoError(t, holder.cmd.Process.Kill())
	hr := holder.wait()
	assert.NotEqual(t, exitOK, hr.code)

	wg.Wait()
	require.Equal(t, exitOK, rb.code, rb.stderr)
	assert.Contains(t, rb.stdout, "continuing the job here")
	assert.Equal(t, s.SHA256("/b.bin"), fileSHA256(t, b))
	assertResumedWithRange(t, s, "/b.bin")
	assert.NotContains(t, rb.stderr, "SHARING_VIOLATION")

	r := runCmd(t, testCtx(t, procLimit), "resume", idA, "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/a.bin"), fileSHA256(t, a))
	assert.NoFileExists(t, filepath.Join(state, controlSocket))
	noTemps(t, dir)
}

// TestStaleSocketRemoved: a holder killed alone leaves control.sock
// behind; the next command takes the lock, removes it and works.
func TestStaleSocketRemoved(t *testing.T) {
	s := slowServer(t, 32<<10, "/k.bin")
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "k.bin")
	holder, id := holdGet(t, s, state, dest, "/k.bin")
	require.NoError(t, holder.cmd.Process.Kill())
	holder.wait()
	require.FileExists(t, filepath.Join(state, controlSocket), "a killed holder leaves its socket")

	r := runCmd(t, testCtx(t, procLimit), "get", "--state-dir", state, "-o", dest, s.FileURL("/k.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "continuing job "+id)
	assert.Equal(t, s.SHA256("/k.bin"), fileSHA256(t, dest))
	assert.NoFileExists(t, filepath.Join(state, controlSocket))
}

// TestClientInterruptSuspendsInHolder: Ctrl-C of a get that follows its
// job in the holder suspends the job there and says how to continue.
func TestClientInterruptSuspendsInHolder(t *testing.T) {
	s := slowServer(t, 32<<10, "/h.bin", "/i.bin")
	state, dir := t.TempDir(), t.TempDir()
	holder, idH := holdGet(t, s, state, filepath.Join(dir, "h.bin"), "/h.bin")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	go func() {
		done <- runCmd(t, ctx, "get", "--state-dir", state, "-o", filepath.Join(dir, "i.bin"), s.FileURL("/i.bin"))
	}()
	awaitBody(t, s, "/i.bin", 1)
	cancel()
	r := <-done
	assert.Equal(t, exitFail, r.code)
	assert.Regexp(t, `interrupted; continue with: dojob --state-dir \S+ resume \{[0-9A-F-]+\}\n`, r.stderr)
	idI := jobID(t, r.stderr)

	r = runCmd(t, testCtx(t, procLimit), "--json", "list", "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	var list []jobJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list), r.stdout)
	states := map[string]string{}
	for _, j := range list {
		states[j.ID] = j.State
	}
	assert.Equal(t, map[string]string{idH: "TRANSFERRING", idI: "SUSPENDED"}, states)
	assert.False(t, holder.exited())

	// The holder's own get is unaffected; stop it with Ctrl-C.
	require.NoError(t, holder.cmd.Process.Signal(os.Interrupt))
	hr := holder.wait()
	assert.Equal(t, exitFail, hr.code)
	assert.Contains(t, hr.stderr, "interrupted; continue with: dojob --state-dir "+state+" resume "+idH)
	assert.NoFileExists(t, filepath.Join(state, controlSocket))
}

// TestKilledClientSuspendsItsJob: the holder suspends the job of a client
// that was killed, rather than running it for nobody.
func TestKilledClientSuspendsItsJob(t *testing.T) {
	s := slowServer(t, 32<<10, "/h.bin", "/k.bin")
	state, dir := t.TempDir(), t.TempDir()
	holder, _ := holdGet(t, s, state, filepath.Join(dir, "h.bin"), "/h.bin")
	client, idK := holdGet(t, s, state, filepath.Join(dir, "k.bin"), "/k.bin")
	require.NoError(t, client.cmd.Process.Kill())
	client.wait()

	// The holder notices the connection end on its own goroutine; nothing
	// in this process can wait for that, so poll the job's state, bounded.
	deadline := time.Now().Add(procLimit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		r := runCmd(t, testCtx(t, procLimit), "--json", "info", idK, "--state-dir", state)
		require.Equal(t, exitOK, r.code, r.stderr)
		var info jobJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &info), r.stdout)
		if info.State == "SUSPENDED" {
			break
		}
		require.True(t, time.Now().Before(deadline), "job %s still %s", idK, info.State)
		<-tick.C
	}
	assert.False(t, holder.exited(), "the holder's own get goes on")
	n := s.BodyBytes("/k.bin")
	require.NoError(t, holder.cmd.Process.Signal(os.Interrupt))
	holder.wait()
	assert.Equal(t, n, s.BodyBytes("/k.bin"), "nothing more was transferred for the killed client")
}
