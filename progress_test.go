package dojob_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests in this file check that progress means new bytes: a byte counts
// for the no-progress timeout and the retry back-off only when it takes a
// file past the most it ever held (its high-water mark).

// TestRedownloadIsNotProgress: a server that cuts every answer at the same
// offset and makes each attempt start the file over — it has no validators,
// or ignores Range, or changes its ETag on every request — must not keep the
// job alive. The retry delay doubles (2 s, 4 s, 8 s, 16 s), the job reaches
// ERROR exactly at the timeout after the first failure with ErrNoProgress
// wrapping the last transient error, and JobError fires once. The control
// server cuts at the same place in every answer but resumes, so each
// attempt brings new bytes: the delay stays at 2 s and the file arrives.
func TestRedownloadIsNotProgress(t *testing.T) {
	const (
		size    = 64 << 10
		cut     = 16 << 10
		timeout = time.Minute
	)
	for _, tc := range []struct {
		name   string
		opts   []dojobtest.Option
		ranges []string // the Range header of each request
		reason string   // RestartReason at the end; "" for the control
	}{
		{"no validators",
			[]dojobtest.Option{dojobtest.WithoutETag(), dojobtest.WithoutLastModified(), dojobtest.Always(dojobtest.DropAfter(cut))},
			[]string{"", "", "", "", ""}, "no validator to resume safely"},
		{"ignores range",
			[]dojobtest.Option{dojobtest.Always(dojobtest.IgnoreRange().And(dojobtest.DropAfter(cut)))},
			[]string{"", "bytes=16384-", "bytes=16384-", "bytes=16384-", "bytes=16384-"}, "server ignored the range"},
		{"etag changes on every request",
			[]dojobtest.Option{dojobtest.Always(dojobtest.ChangeContent().And(dojobtest.DropAfter(cut)))},
			[]string{"", "bytes=16384-", "bytes=16384-", "bytes=16384-", "bytes=16384-"}, "content changed (ETag)"},
		{"control: resumes",
			[]dojobtest.Option{dojobtest.Always(dojobtest.DropAfter(cut))},
			[]string{"", "bytes=16384-", "bytes=32768-", "bytes=49152-"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{}, append([]dojobtest.Option{dojobtest.WithSize(size)}, tc.opts...)...)
				rec := dojobtest.NewRecorder()
				j := r.job("same offset", "/f")
				require.NoError(t, j.SetNoProgressTimeout(timeout))
				require.NoError(t, j.SetNotifyInterface(rec))
				start := time.Now()
				require.NoError(t, j.Resume())
				// The old code retried every 2 s forever; a bound makes it fail.
				ctx, cancel := context.WithTimeout(t.Context(), 10*timeout)
				defer cancel()
				st, err := j.Wait(ctx)
				require.NoError(t, err, "the job must end")
				reqs := r.tr.RequestsFor("/f")
				var ranges []string
				for _, q := range reqs {
					ranges = append(ranges, q.Range)
				}
				assert.Equal(t, tc.ranges, ranges)
				fi := j.Files()[0]

				if tc.reason == "" {
					require.Equal(t, dojob.StateTransferred, st)
					assert.Equal(t, []time.Duration{0, 2 * time.Second, 4 * time.Second, 6 * time.Second},
						requestOffsets(reqs, start), "new bytes keep the retry delay at its minimum")
					assert.Equal(t, 0, fi.Restarts)
					assert.Equal(t, "", fi.RestartReason)
					assert.Equal(t, int64(size), r.tr.BodyBytes("/f"))
					require.NoError(t, j.Complete())
					r.requireFile("/f")
					synctest.Wait()
					assert.Equal(t, 0, rec.Count(dojobtest.EventError))
					return
				}

				require.Equal(t, dojob.StateError, st)
				assert.Equal(t, timeout, time.Since(start), "ERROR exactly at the timeout after the first failure")
				assert.Equal(t, []time.Duration{0, 2 * time.Second, 6 * time.Second, 14 * time.Second, 30 * time.Second},
					requestOffsets(reqs, start), "the retry delay doubles: re-downloaded bytes are not progress")
				for i, q := range reqs {
					assert.Equal(t, int64(cut), q.BodyBytes, "request %d", i)
				}
				assert.Equal(t, 6, j.ErrorCount(), "five attempts in TRANSIENT_ERROR, then ERROR once")
				assert.Equal(t, 4, fi.Restarts, "every attempt after the first started over")
				assert.Equal(t, tc.reason, fi.RestartReason)
				assert.Equal(t, int64(cut), fi.BytesTransferred)

				evs, err := rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
				require.NoError(t, err)
				synctest.Wait()
				require.Equal(t, 1, rec.Count(dojobtest.EventError), "JobError exactly once")
				jerr := evs[len(evs)-1].Err
				require.NotNil(t, jerr)
				assert.Equal(t, dojob.ErrNoProgress, jerr.Code)
				assert.True(t, errors.Is(jerr, dojob.ErrConnectionError), "wraps the last transient error: %v", jerr)
				var last *dojob.JobError
				require.True(t, errors.As(jerr.Err, &last))
				assert.Equal(t, dojob.ErrConnectionError, last.Code)
				assert.Equal(t, dojob.ErrorContextGeneralTransport, jerr.Context)
				require.NotNil(t, jerr.File)
				assert.Equal(t, r.local("/f"), jerr.File.LocalPath)
				assert.Equal(t, start.Add(timeout), evs[len(evs)-1].Time)
			})
		})
	}
}

// TestRestartReasons: FileInfo tells that a file started over and why.
func TestRestartReasons(t *testing.T) {
	const size = 256 << 10
	for _, tc := range []struct {
		name     string
		opts     []dojobtest.Option
		second   dojobtest.Fault
		restarts int
		reason   string
	}{
		{"ignored range", nil, dojobtest.IgnoreRange(), 1, "server ignored the range"},
		{"etag changed", nil, dojobtest.ChangeContent(), 1, "content changed (ETag)"},
		{"last-modified changed", []dojobtest.Option{dojobtest.WithoutETag()}, dojobtest.ChangeContent(), 1, "content changed (Last-Modified)"},
		{"weak etag only", []dojobtest.Option{dojobtest.WithWeakETag(), dojobtest.WithoutLastModified()}, dojobtest.OK(), 1, "no validator to resume safely"},
		{"resumed", nil, dojobtest.OK(), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := append([]dojobtest.Option{dojobtest.WithSize(size),
					dojobtest.Script(dojobtest.DropAfter(100<<10), tc.second)}, tc.opts...)
				r := newRig(t, dojob.Config{}, opts...)
				j := r.job("reasons", "/f")
				require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
				fi := j.Files()[0]
				assert.Equal(t, tc.restarts, fi.Restarts)
				assert.Equal(t, tc.reason, fi.RestartReason)
				assert.Equal(t, int64(size), fi.BytesTransferred)
				require.NoError(t, j.Complete())
				r.requireFile("/f")
			})
		})
	}
}

// rangesSHA256 is the SHA-256 of the given ranges of data, one after another.
func rangesSHA256(data []byte, ranges []dojob.FileRange) string {
	h := sha256.New()
	for _, rg := range ranges {
		h.Write(data[rg.Offset : rg.Offset+rg.Length])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestRangedFileNeverResumesBlind: a ranged file interrupted in its first
// range, whose content then changes (same size) before the next attempt.
// Without a validator the next attempt cannot know, so it must start over
// rather than append new bytes to old ones; with an ETag, If-Range catches
// the change. Either way the file holds the new content's ranges.
func TestRangedFileNeverResumesBlind(t *testing.T) {
	const size = 512 << 10
	ranges := []dojob.FileRange{{Offset: 1000, Length: 50000}, {Offset: 200000, Length: 30000}}
	for _, tc := range []struct {
		name   string
		opts   []dojobtest.Option
		second []string // Range, If-Range? of the second and third requests
		reason string
	}{
		{"no validators", []dojobtest.Option{dojobtest.WithoutETag(), dojobtest.WithoutLastModified()},
			[]string{"bytes=1000-50999", "bytes=200000-229999"}, "no validator to resume safely"},
		{"etag", nil,
			[]string{"bytes=21000-50999", "bytes=1000-50999"}, "content changed (ETag)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := append([]dojobtest.Option{dojobtest.WithSize(size),
					dojobtest.Script(dojobtest.DropAfter(20000), dojobtest.ChangeContent())}, tc.opts...)
				r := newRig(t, dojob.Config{}, opts...)
				old := r.tr.Content("/f")
				j, err := r.m.CreateJob("ranged")
				require.NoError(t, err)
				require.NoError(t, j.AddFileWithRanges(r.tr.FileURL("/f"), r.local("/f"), ranges))
				require.Equal(t, dojob.StateTransferred, resumeWait(t, j))

				reqs := r.tr.RequestsFor("/f")
				require.GreaterOrEqual(t, len(reqs), 3)
				assert.Equal(t, "bytes=1000-50999", reqs[0].Range)
				assert.Equal(t, tc.second, []string{reqs[1].Range, reqs[2].Range})
				fi := j.Files()[0]
				assert.Equal(t, 1, fi.Restarts)
				assert.Equal(t, tc.reason, fi.RestartReason)
				assert.Equal(t, int64(80000), fi.BytesTransferred)
				require.NoError(t, j.Complete())

				cur := r.tr.Content("/f")
				require.NotEqual(t, rangesSHA256(old, ranges), rangesSHA256(cur, ranges), "the content did change")
				assert.Equal(t, rangesSHA256(cur, ranges), fileSHA256(t, r.local("/f")), "the new content's ranges, not a splice")
			})
		})
	}
}

// TestHighWaterMarkSurvivesRestart: a file got 48 KiB, then started over
// (the server ignored the range) and holds 16 KiB when the Manager closes in
// TRANSIENT_ERROR, its no-progress window open. The next Manager's server
// ignores ranges and cuts at 40 KiB: those bytes were held before, so they
// are not progress, the back-off keeps doubling and the job ends at the
// timeout counted from the first failure, before the restart. A record
// from an older release, without the mark, loads with the mark at the
// durable length (16 KiB): there the 40 KiB are progress, and the window
// starts again from the first failure after them.
func TestHighWaterMarkSurvivesRestart(t *testing.T) {
	const (
		size    = 64 << 10
		timeout = time.Minute
	)
	for _, tc := range []struct {
		name     string
		strip    bool // remove the new fields from the record
		reqs     []time.Duration
		end      time.Duration
		restarts int
		reason   string
	}{
		{"current record", false, []time.Duration{6 * time.Second, 14 * time.Second, 30 * time.Second}, timeout, 1, "server ignored the range"},
		{"older record", true, []time.Duration{6 * time.Second, 8 * time.Second, 12 * time.Second, 20 * time.Second, 36 * time.Second}, 6*time.Second + timeout, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stateDir, dir := t.TempDir(), t.TempDir()
				start := time.Now()
				tr1 := dojobtest.NewTransport(dojobtest.WithSize(size),
					dojobtest.Script(dojobtest.DropAfter(48<<10), dojobtest.IgnoreRange().And(dojobtest.DropAfter(16<<10))),
					dojobtest.Always(dojobtest.StallHeaders()))
				defer tr1.Close()
				m, err := dojob.NewManager(dojob.Config{StateDir: stateDir, HTTPClient: tr1.Client()})
				require.NoError(t, err)
				j, err := m.CreateJob("mark")
				require.NoError(t, err)
				require.NoError(t, j.AddFile(tr1.FileURL("/f"), filepath.Join(dir, "f")))
				require.NoError(t, j.SetNoProgressTimeout(timeout))
				require.NoError(t, j.Resume())
				_, err = tr1.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool { return len(rs) == 2 && !rs[1].End.IsZero() })
				require.NoError(t, err)
				synctest.Wait()
				require.Equal(t, dojob.StateTransientError, j.State())
				require.Equal(t, 2*time.Second, time.Since(start))
				require.Equal(t, int64(16<<10), j.Files()[0].BytesTransferred)
				require.NoError(t, m.Close())
				if tc.strip {
					stripRecordFileFields(t, stateDir, "high_water", "restarts", "restart_reason")
				}

				tr2 := dojobtest.NewTransport(dojobtest.WithSize(size), dojobtest.Always(dojobtest.IgnoreRange().And(dojobtest.DropAfter(40<<10))))
				defer tr2.Close()
				m2, err := dojob.NewManager(dojob.Config{StateDir: stateDir, HTTPClient: tr2.Client()})
				require.NoError(t, err)
				defer m2.Close()
				k, err := m2.Job(j.ID())
				require.NoError(t, err)
				require.Equal(t, dojob.StateTransientError, k.State())
				fi := k.Files()[0]
				assert.Equal(t, int64(16<<10), fi.BytesTransferred)
				assert.Equal(t, tc.restarts, fi.Restarts, "restarts are persisted")
				assert.Equal(t, tc.reason, fi.RestartReason)

				ctx, cancel := context.WithTimeout(t.Context(), 10*timeout) // fail, not hang, if it never ends
				defer cancel()
				st, err := k.Wait(ctx)
				require.NoError(t, err, "the job must end")
				require.Equal(t, dojob.StateError, st)
				assert.Equal(t, tc.end, time.Since(start))
				assert.Equal(t, tc.reqs, requestOffsets(tr2.RequestsFor("/f"), start))
				jerr, err := k.Error()
				require.NoError(t, err)
				assert.Equal(t, dojob.ErrNoProgress, jerr.Code)
				assert.True(t, errors.Is(jerr, dojob.ErrConnectionError), "%v", jerr)
				fi = k.Files()[0]
				assert.Equal(t, tc.restarts+len(tc.reqs), fi.Restarts)
				assert.Equal(t, "server ignored the range", fi.RestartReason)
			})
		})
	}
}

// stripRecordFileFields removes fields from the files of the one job record
// in stateDir, as a record written before they existed.
func stripRecordFileFields(t *testing.T, stateDir string, fields ...string) {
	t.Helper()
	jobs := filepath.Join(stateDir, "jobs")
	var path string
	for _, name := range dirEntries(t, jobs) {
		if strings.HasSuffix(name, ".json") {
			require.Empty(t, path, "one record")
			path = filepath.Join(jobs, name)
		}
	}
	require.NotEmpty(t, path)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var rec map[string]any
	require.NoError(t, json.Unmarshal(data, &rec))
	files, ok := rec["files"].([]any)
	require.True(t, ok)
	for _, f := range files {
		fm, ok := f.(map[string]any)
		require.True(t, ok)
		for _, k := range fields {
			_, had := fm[k]
			require.True(t, had, "the record has %s", k)
			delete(fm, k)
		}
	}
	data, err = json.Marshal(rec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// TestFinishedFileIsProgress: file /a gets all its bytes, but the body ends
// without its last chunk, so it is not known to be complete; the next
// attempt's server ignores the range and /a is fetched again whole — no byte
// past its mark — and finishes. That is progress: the window the first
// failure opened closes, and the window opened by /b, which fails forever,
// runs its full timeout from /b's first failure.
func TestFinishedFileIsProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			size    = 64 << 10
			timeout = time.Minute
		)
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.WithoutContentLength(),
			dojobtest.ScriptFor("/a", dojobtest.DropAfter(size), dojobtest.IgnoreRange()),
			dojobtest.AlwaysFor("/b", dojobtest.Status(503)))
		j := r.job("finished", "/a", "/b")
		require.NoError(t, j.SetNoProgressTimeout(timeout))
		start := time.Now()
		require.NoError(t, j.Resume())
		ctx, cancel := context.WithTimeout(t.Context(), 10*timeout)
		defer cancel()
		st, err := j.Wait(ctx)
		require.NoError(t, err)
		require.Equal(t, dojob.StateError, st)
		assert.Equal(t, 2*time.Second+timeout, time.Since(start), "the window opened by /b's first failure, after /a finished")
		assert.Equal(t, []time.Duration{0, 2 * time.Second}, requestOffsets(r.tr.RequestsFor("/a"), start))
		assert.Equal(t, []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second},
			requestOffsets(r.tr.RequestsFor("/b"), start), "the back-off starts again after the finished file")
		files := j.Files()
		assert.True(t, files[0].Transferred)
		assert.Equal(t, int64(size), files[0].BytesTransferred)
		assert.Equal(t, 1, files[0].Restarts)
		assert.Equal(t, "server ignored the range", files[0].RestartReason)
		jerr, err := j.Error()
		require.NoError(t, err)
		assert.Equal(t, dojob.ErrNoProgress, jerr.Code)
		assert.True(t, errors.Is(jerr, dojob.HTTPStatus(503)), "%v", jerr)
	})
}
