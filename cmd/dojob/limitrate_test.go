package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseRate: --limit-rate reads rates as curl does, 1024-based
// suffixes in either case, and also with B or iB after the suffix.
func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1000": 1000, "100k": 100 << 10, "100K": 100 << 10, "20M": 20 << 20, "20m": 20 << 20,
		"1G": 1 << 30, "1g": 1 << 30, "2.5M": 5 << 19, "1T": 1 << 40,
		"20MB": 20 << 20, "20MiB": 20 << 20, "512kB": 512 << 10, "1GiB": 1 << 30,
	} {
		got, err := parseRate(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "M", "-1", "-5k", "fast", "20B", "MB", "20BB", "20MiBs", "1e6", "0x10", "NaN", "Inf", "1_000", "99999999999T"} {
		_, err := parseRate(in)
		assert.Error(t, err, "%q", in)
	}
}

// TestGetLimitRate: --limit-rate sets the job's maximum bandwidth in get
// and in resume, a resume without it keeps the job's, a bad rate is a usage
// error, and info shows the limit and the cost policy.
func TestGetLimitRate(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.Always(dojobtest.Status(404)))
	bwOf := func(state, id string) (bw int64) {
		t.Helper()
		withJob(t, state, id, func(j *dojob.Job) { bw = j.MaximumBandwidth() })
		return bw
	}
	state := t.TempDir()
	args := []string{"get", "--keep", "--json", "-d", t.TempDir(), "--state-dir", state, "--limit-rate", "20M", s.FileURL("/a.bin")}
	r := runCmd(t, testCtx(t, 10*time.Second), args...)
	require.Equal(t, exitFail, r.code, r.stderr)
	var got resultJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, int64(20<<20), bwOf(state, got.ID))

	r = runCmd(t, testCtx(t, 10*time.Second), "resume", "--state-dir", state, got.ID)
	require.Equal(t, exitFail, r.code, r.stderr)
	assert.Equal(t, int64(20<<20), bwOf(state, got.ID), "resume without --limit-rate keeps the job's")

	r = runCmd(t, testCtx(t, 10*time.Second), "info", "--state-dir", state, got.ID)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Maximum bandwidth:")
	assert.Contains(t, r.stdout, "20.0 MiB/s")
	assert.Regexp(t, `Cost policy: +ALWAYS`, r.stdout, "get's jobs are FOREGROUND: Always")

	r = runCmd(t, testCtx(t, 10*time.Second), "resume", "--limit-rate", "0", "--state-dir", state, got.ID)
	require.Equal(t, exitFail, r.code, r.stderr)
	assert.Zero(t, bwOf(state, got.ID), "--limit-rate 0 removes the limit")

	r = runCmd(t, testCtx(t, 10*time.Second), "get", "--limit-rate", "fast", "-d", t.TempDir(), "--state-dir", t.TempDir(), s.FileURL("/a.bin"))
	assert.Equal(t, exitUsage, r.code)
	assert.True(t, strings.Contains(r.stderr, "limit-rate"), r.stderr)
}

// TestDescribeHold: the display names the policy that holds a job and,
// for a bandwidth window, until when.
func TestDescribeHold(t *testing.T) {
	now := time.Date(2026, 12, 7, 20, 0, 0, 0, time.Local)
	got := describeHold(dojob.HoldInfo{Code: dojob.ErrBlockedByPolicy, Until: now.Add(2 * time.Hour)}, now)
	assert.Contains(t, got, "held by the bandwidth limits until 22:00:00")
	assert.Contains(t, got, "(in 2h")
	got = describeHold(dojob.HoldInfo{Code: dojob.ErrBlockedByCost}, now)
	assert.Equal(t, "held by the cost policy until the network's cost allows it", got)
	got = describeHold(dojob.HoldInfo{Code: dojob.ErrBlockedByCellular}, now)
	assert.Contains(t, got, "no cellular")
}
