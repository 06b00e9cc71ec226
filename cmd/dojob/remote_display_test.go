package main

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSnapshotKeepsWhatTheDisplayNeeds: a job snapshot, through JSON,
// keeps the deadlines, the files' restarts and an error that wraps a job
// error, so a client describes the job as the holder would.
func TestSnapshotKeepsWhatTheDisplayNeeds(t *testing.T) {
	file := &dojob.FileInfo{RemoteURL: "http://127.0.0.1:1/f.bin", LocalPath: "/tmp/f.bin", BytesTotal: 10,
		BytesTransferred: 4, Restarts: 2, RestartReason: "server ignored the range"}
	jerr := &dojob.JobError{Code: dojob.ErrNoProgress, Context: dojob.ErrorContextRemoteFile, File: file,
		Err: &dojob.JobError{Code: dojob.HRESULT(0x801901F7), Context: dojob.ErrorContextRemoteFile, File: file,
			Err: errors.New("server answered 503 Service Unavailable")}}
	retry, giveUp := time.Now().Add(3*time.Second), time.Now().Add(time.Hour)
	snap := jobSnapshot{JobID: dojob.JobID{1}, St: dojob.StateTransientError, FileList: []dojob.FileInfo{*file},
		Err: errorSnapshotOf(jerr), RetryAt: retry, GiveUpAt: giveUp}

	b, err := json.Marshal(snap)
	require.NoError(t, err)
	var got jobSnapshot
	require.NoError(t, json.Unmarshal(b, &got))

	assert.True(t, got.NextRetry().Equal(retry))
	assert.True(t, got.NoProgressDeadline().Equal(giveUp))
	n, why := restartInfo(got.Files()[0])
	assert.Equal(t, 2, n)
	assert.Equal(t, "server ignored the range", why)
	e, err := got.Error()
	require.NoError(t, err)
	assert.Equal(t, describeError(jerr), describeError(e))
	assert.Equal(t, "DO_E_DOWNLOAD_NO_PROGRESS (0x80D02002) [REMOTE_FILE]: http://127.0.0.1:1/f.bin: "+
		"BG_E_HTTP_ERROR_503 (0x801901F7): server answered 503 Service Unavailable", describeError(e))

	// Without deadlines nothing is sent, and the getters say "none".
	b, err = json.Marshal(jobSnapshot{})
	require.NoError(t, err)
	assert.NotContains(t, string(b), "next_retry")
	assert.NotContains(t, string(b), "no_progress_deadline")
}

// TestRemoteProgressAndPrefix: beside a holder, a second get shows a stall
// (after a quarter of the holder's stall timeout) and the transient error
// with its retry and give-up times, as a local run does; and job ID
// prefixes are found through the holder, for info and for suspend.
func TestRemoteProgressAndPrefix(t *testing.T) {
	t.Parallel() // seconds of bytes dripping, the CPU idle: it waits beside the others
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize),
		dojobtest.ScriptFor("/held.bin", dojobtest.Drip(32<<10), dojobtest.OK()),
		dojobtest.ScriptFor("/stall.bin", dojobtest.StallAfter(64<<10), dojobtest.OK()))
	state, dir := t.TempDir(), t.TempDir()
	holder := startDojob(t, "get", "--state-dir", state, "--checkpoint-interval", "10ms", "--stall-timeout", "1200ms",
		"-o", filepath.Join(dir, "held.bin"), s.FileURL("/held.bin"))
	id := jobID(t, holder.awaitLine(`^job \{`))
	holder.awaitLine(`^TRANSFERRING$`)
	awaitBody(t, s, "/held.bin", 8<<10)
	ctx := testCtx(t, procLimit)

	prefix := strings.ToLower(strings.Trim(id, "{}")[:8])
	r := runCmd(t, ctx, "--state-dir", state, "info", prefix)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `(?m)^ID: +`+regexp.QuoteMeta(id)+`$`, r.stdout)
	assert.Regexp(t, `(?m)^State: +TRANSFERRING$`, r.stdout)

	// The second get runs in the holder, under the holder's stall timeout.
	r = runCmd(t, ctx, "--state-dir", state, "get", "-d", dir, "--retry-delay", "700ms", "--no-progress-timeout", "2h",
		s.FileURL("/stall.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/stall.bin"), fileSHA256(t, filepath.Join(dir, "stall.bin")))
	assert.False(t, holder.exited(), "the second get ran in the holder")
	m := regexp.MustCompile(`(?m)^stall\.bin: stalled: no data for ([0-9.]+m?s) \(the connection is dropped after 1\.2s without data\)$`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	silent, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	assert.GreaterOrEqual(t, silent, 300*time.Millisecond)
	assert.Less(t, silent, 1200*time.Millisecond)
	m = regexp.MustCompile(`(?m)^TRANSIENT_ERROR: ERROR_WINHTTP_TIMEOUT \(0x80072EE2\) \[GENERAL_TRANSPORT\]: ` + regexp.QuoteMeta(s.FileURL("/stall.bin")) +
		`: .*; retry 1 in ([0-9.]+m?s); gives up at \d\d:\d\d:\d\d \(in (\S+)\) without progress$`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	next, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	assert.InDelta(t, 700*time.Millisecond, next, float64(200*time.Millisecond), "the retry delay")
	giveUp, err := time.ParseDuration(m[2])
	require.NoError(t, err)
	assert.InDelta(t, 2*time.Hour, giveUp, float64(5*time.Second), "the no-progress timeout")
	assert.Less(t, strings.Index(r.stdout, "stalled"), strings.Index(r.stdout, "TRANSIENT_ERROR"))
	assert.Regexp(t, `(?m)^done: 1 file, 256\.0 KiB in \S+ \(\S+ \S+/s\), job \{`, r.stdout)

	// A prefix suspends the holder's own job through the holder.
	r = runCmd(t, ctx, "--state-dir", state, "suspend", "{"+prefix)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "suspended job "+id+": SUSPENDED\n", r.stdout)
	hr := holder.wait()
	assert.Equal(t, exitFail, hr.code)
	assert.Contains(t, hr.stderr, "job "+id+" was suspended; continue with: dojob --state-dir "+state+" resume "+id)
}
