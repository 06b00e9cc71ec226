package main

import (
	"encoding/json"
	"flag"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMaxTimeFlag: --max-time takes curl's seconds, fractional too, or a Go
// duration, and refuses a negative or unreadable value before anything is
// requested; it reaches a holder over the control protocol unchanged.
func TestMaxTimeFlag(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want time.Duration
	}{
		{"90", 90 * time.Second}, {"2.5", 2500 * time.Millisecond}, {"0", 0}, {"5m", 5 * time.Minute}, {"1h30m", 90 * time.Minute},
	} {
		fs := flag.NewFlagSet("get", flag.ContinueOnError)
		var jf jobFlags
		jf.register(fs)
		require.NoError(t, fs.Parse([]string{"--max-time", tc.arg}), tc.arg)
		require.NoError(t, jf.parsed(fs), tc.arg)
		assert.Equal(t, tc.want, jf.maxTime, tc.arg)
		data, err := json.Marshal(settingsOf(&jf, false))
		require.NoError(t, err)
		var s ctlSettings
		require.NoError(t, json.Unmarshal(data, &s))
		back := s.flags()
		assert.True(t, back.set["max-time"], tc.arg)
		assert.Equal(t, tc.want, back.maxTime, tc.arg)
	}
	for _, bad := range []string{"-1", "-5m", "soon", "NaN", "1e30"} {
		fs := flag.NewFlagSet("get", flag.ContinueOnError)
		fs.SetOutput(discard{})
		var jf jobFlags
		jf.register(fs)
		err := fs.Parse([]string{"--max-time", bad})
		if err == nil {
			err = jf.parsed(fs)
		}
		assert.Error(t, err, bad)
	}
	// Not given: nothing is sent, and the holder leaves the job's limit.
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	var jf jobFlags
	jf.register(fs)
	require.NoError(t, fs.Parse(nil))
	require.NoError(t, jf.parsed(fs))
	assert.Nil(t, settingsOf(&jf, false).MaxDownloadTime)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestMaxTimeGet: a server that never answers, a stall timeout far away:
// get --max-time 1 ends after 1 s of CONNECTING with
// BG_E_MAXDOWNLOAD_TIMEOUT, and info shows the limit and the time used.
func TestMaxTimeGet(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.Always(dojobtest.StallHeaders()))
	state, dir := t.TempDir(), t.TempDir()
	start := time.Now()
	r := runCmd(t, testCtx(t, 20*time.Second), "--state-dir", state, "get", "--keep", "--json", "-d", dir,
		"--stall-timeout", "1h", "--max-time", "1", s.FileURL("/slow.bin"))
	took := time.Since(start)
	require.Equal(t, exitFail, r.code, r.stderr)
	assert.GreaterOrEqual(t, took, time.Second)
	assert.Less(t, took, 15*time.Second)
	var got resultJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Contains(t, r.stdout, "BG_E_MAXDOWNLOAD_TIMEOUT")
	assert.Contains(t, r.stdout, "0x80200054")

	withJob(t, state, got.ID, func(j *dojob.Job) {
		assert.Equal(t, time.Second, j.MaximumDownloadTime())
		used := j.DownloadTimeUsed()
		assert.GreaterOrEqual(t, used, time.Second)
		assert.Less(t, used, 2*time.Second, "the timer fires late by a moment, not more")
		assert.Equal(t, dojob.StateError, j.State())
		e, err := j.Error()
		require.NoError(t, err)
		assert.Equal(t, dojob.ErrMaxDownloadTimeout, e.Code)
	})

	r = runCmd(t, testCtx(t, 10*time.Second), "info", got.ID, "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, want := range []string{
		`(?m)^Max download time: +1s \(used: 1(\.\d+)?s\)$`,
		`(?m)^Max download size: +none$`,
		`(?m)^Notify interval: +100ms$`,
		`(?m)^Error: +BG_E_MAXDOWNLOAD_TIMEOUT \(0x80200054\)$`,
	} {
		assert.Regexp(t, regexp.MustCompile(want), r.stdout)
	}
	r = runCmd(t, testCtx(t, 10*time.Second), "info", "--json", got.ID, "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	var info jobJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &info), r.stdout)
	assert.Equal(t, 1.0, info.MaxDownloadTimeSeconds)
	assert.InDelta(t, 1.0, info.DownloadTimeUsedSeconds, 0.5)
	assert.Equal(t, 0.1, info.MinNotificationIntervalSeconds)
	assert.Zero(t, info.MaxDownloadSize)
	assert.NoFileExists(t, filepath.Join(dir, "slow.bin"))
}
