package dojob_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newManager returns an in-memory Manager closed when the test ends.
func newManager(t *testing.T, cfg dojob.Config) *dojob.Manager {
	t.Helper()
	m, err := dojob.NewManager(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.Close()) })
	return m
}

func TestNewJobDefaults(t *testing.T) {
	m := newManager(t, dojob.Config{})
	before := time.Now()
	j, err := m.CreateJob("nightly")
	require.NoError(t, err)

	assert.Equal(t, dojob.StateSuspended, j.State())
	assert.Equal(t, "nightly", j.DisplayName())
	assert.Equal(t, "", j.Description())
	assert.Equal(t, dojob.PriorityNormal, j.Priority())
	assert.Equal(t, 24*time.Hour, j.NoProgressTimeout())
	assert.Equal(t, 2*time.Second, j.MinimumRetryDelay())
	assert.Equal(t, dojob.NotifyJobTransferred|dojob.NotifyJobError, j.NotifyFlags())
	assert.Nil(t, j.NotifyInterface())
	assert.Equal(t, 0, j.ErrorCount())
	assert.Empty(t, j.Files())
	assert.Equal(t, dojob.Progress{BytesTotal: 0, FilesTotal: 0}, j.Progress())
	times := j.Times()
	assert.False(t, times.Creation.Before(before))
	assert.Equal(t, times.Creation, times.Modification)
	assert.True(t, times.TransferCompletion.IsZero())
	_, err = j.Error()
	assert.ErrorIs(t, err, dojob.ErrErrorInformationUnavailable)

	got, err := m.Job(j.ID())
	require.NoError(t, err)
	assert.Same(t, j, got)
	assert.Equal(t, []*dojob.Job{j}, m.Jobs())
	_, err = m.Job(dojob.JobID{1})
	assert.ErrorIs(t, err, dojob.ErrJobNotFound)
}

func TestNoProgressTimeoutDefaultsByPriority(t *testing.T) {
	m := newManager(t, dojob.Config{})
	j, err := m.CreateJob("")
	require.NoError(t, err)
	want := map[dojob.Priority]time.Duration{
		dojob.PriorityForeground: time.Hour,
		dojob.PriorityHigh:       24 * time.Hour,
		dojob.PriorityNormal:     24 * time.Hour,
		dojob.PriorityLow:        24 * time.Hour,
	}
	for p, d := range want {
		require.NoError(t, j.SetPriority(p))
		assert.Equal(t, d, j.NoProgressTimeout(), p.String())
	}
	// Once set, the timeout no longer follows the priority.
	require.NoError(t, j.SetNoProgressTimeout(5*time.Minute))
	require.NoError(t, j.SetPriority(dojob.PriorityForeground))
	assert.Equal(t, 5*time.Minute, j.NoProgressTimeout())
	require.NoError(t, j.SetNoProgressTimeout(0))
	assert.Equal(t, time.Duration(0), j.NoProgressTimeout())
}

func TestSettersValidate(t *testing.T) {
	m := newManager(t, dojob.Config{})
	j, err := m.CreateJob("")
	require.NoError(t, err)
	modified := j.Times().Modification

	assert.ErrorIs(t, j.SetDisplayName(strings.Repeat("é", 257)), dojob.ErrStringTooLong)
	assert.NoError(t, j.SetDisplayName(strings.Repeat("é", 256)))
	assert.ErrorIs(t, j.SetDescription(strings.Repeat("x", 1025)), dojob.ErrStringTooLong)
	assert.NoError(t, j.SetDescription(strings.Repeat("x", 1024)))
	_, err = m.CreateJob(strings.Repeat("x", 257))
	assert.ErrorIs(t, err, dojob.ErrStringTooLong)

	assert.ErrorIs(t, j.SetNoProgressTimeout(-time.Second), dojob.ErrInvalidArg)
	assert.ErrorIs(t, j.SetNoProgressTimeout(dojob.MaxTimeout+time.Second), dojob.ErrInvalidArg)
	assert.ErrorIs(t, j.SetMinimumRetryDelay(math.MaxInt64), dojob.ErrInvalidArg)
	require.NoError(t, j.SetNoProgressTimeout(dojob.MaxTimeout))
	require.NoError(t, j.SetMinimumRetryDelay(dojob.MaxTimeout))
	assert.ErrorIs(t, j.SetMinimumRetryDelay(0), dojob.ErrInvalidArg)
	assert.ErrorIs(t, j.SetMinimumRetryDelay(-time.Second), dojob.ErrInvalidArg)
	assert.ErrorIs(t, j.SetPriority(dojob.Priority(4)), dojob.ErrInvalidArg)
	assert.ErrorIs(t, j.SetPriority(dojob.Priority(-1)), dojob.ErrInvalidArg)
	assert.ErrorIs(t, j.SetNotifyFlags(0x40), dojob.ErrInvalidArg)

	require.NoError(t, j.SetMinimumRetryDelay(10*time.Second))
	assert.Equal(t, 10*time.Second, j.MinimumRetryDelay())
	require.NoError(t, j.SetNotifyFlags(dojob.NotifyJobModification|dojob.NotifyDisable))
	assert.Equal(t, dojob.NotifyJobModification|dojob.NotifyDisable, j.NotifyFlags())
	cb := dojob.CallbackFuncs{}
	require.NoError(t, j.SetNotifyInterface(cb))
	assert.NotNil(t, j.NotifyInterface())
	require.NoError(t, j.SetNotifyInterface(nil))
	assert.Nil(t, j.NotifyInterface())

	assert.True(t, j.Times().Modification.After(modified) || j.Times().Modification.Equal(modified))
	var hr dojob.HRESULT
	require.ErrorAs(t, j.SetPriority(7), &hr)
	assert.Equal(t, dojob.ErrInvalidArg, hr)
}

func TestAddFileValidates(t *testing.T) {
	m := newManager(t, dojob.Config{})
	j, err := m.CreateJob("")
	require.NoError(t, err)
	dir := t.TempDir()
	dest := filepath.Join(dir, "a.bin")

	bad := []struct{ url, path string }{
		{"ftp://127.0.0.1/a", dest},
		{"file:///etc/passwd", dest},
		{"http:///nohost", dest},
		{"http://127.0.0.1/" + strings.Repeat("a", 2200), dest},
		{"://bad", dest},
		{"http://127.0.0.1/a", "relative/a.bin"},
		{"http://127.0.0.1/a", dir + "/x/../a.bin"},
		{"http://127.0.0.1/a", dir + "/a.bin/"},
		{"http://127.0.0.1/a", dir}, // a directory
		{"http://127.0.0.1/a", string(filepath.Separator)},
		{"http://127.0.0.1/a", ""},
	}
	for _, b := range bad {
		assert.ErrorIs(t, j.AddFile(b.url, b.path), dojob.ErrInvalidArg, "%q -> %q", b.url, b.path)
	}
	assert.Empty(t, j.Files())

	require.NoError(t, j.AddFile("HTTPS://127.0.0.1/"+strings.Repeat("a", 2200-len("HTTPS://127.0.0.1/")), dest))
	assert.ErrorIs(t, j.AddFile("http://127.0.0.1/other", dest), dojob.ErrInvalidArg, "duplicate local path")
	require.NoError(t, j.AddFile("http://127.0.0.1/b", filepath.Join(dir, "b.bin")))
	files := j.Files()
	require.Len(t, files, 2)
	assert.Equal(t, dest, files[0].LocalPath)
	assert.Equal(t, dojob.SizeUnknown, files[0].BytesTotal)
	assert.False(t, files[0].Transferred)
	assert.Equal(t, dojob.SizeUnknown, j.Progress().BytesTotal)
	assert.Equal(t, 2, j.Progress().FilesTotal)

	// Nothing appears in the directory before the job runs.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestAddFileWithRangesValidates(t *testing.T) {
	m := newManager(t, dojob.Config{})
	j, err := m.CreateJob("")
	require.NoError(t, err)
	dir := t.TempDir()
	url := "http://127.0.0.1/a"
	dest := filepath.Join(dir, "a")
	R := func(rs ...int64) []dojob.FileRange {
		var out []dojob.FileRange
		for i := 0; i < len(rs); i += 2 {
			out = append(out, dojob.FileRange{Offset: rs[i], Length: rs[i+1]})
		}
		return out
	}
	cases := []struct {
		ranges []dojob.FileRange
		want   dojob.HRESULT
	}{
		{nil, dojob.ErrInvalidArg},
		{R(0, 0), dojob.ErrInvalidRange},
		{R(-1, 10), dojob.ErrInvalidRange},
		{R(0, -2), dojob.ErrInvalidRange},
		{R(dojob.LengthToEOF, 10), dojob.ErrInvalidRange},
		{R(1<<62, 1<<62), dojob.ErrInvalidRange},
		{R(0, 10, 5, 10), dojob.ErrOverlappingRanges},
		{R(100, 10, 100, 10), dojob.ErrOverlappingRanges},
		{R(100, 10, 100, 5), dojob.ErrOverlappingRanges},
		{R(100, dojob.LengthToEOF, 200, 10), dojob.ErrOverlappingRanges},
	}
	for _, c := range cases {
		assert.ErrorIs(t, j.AddFileWithRanges(url, dest, c.ranges), c.want, "%v", c.ranges)
	}
	require.NoError(t, j.AddFileWithRanges(url, dest, R(100, 100, 900, 100, 400, 100)))
	require.NoError(t, j.AddFileWithRanges(url, filepath.Join(dir, "b"), R(50, dojob.LengthToEOF, 0, 50)))
	files := j.Files()
	assert.Equal(t, R(100, 100, 900, 100, 400, 100), files[0].Ranges)
	assert.Equal(t, int64(300), files[0].BytesTotal, "the requested bytes only")
	assert.Equal(t, dojob.SizeUnknown, files[1].BytesTotal, "to-EOF range: size unknown until the server says")
}

func TestResumeEmptyJob(t *testing.T) {
	m := newManager(t, dojob.Config{})
	j, err := m.CreateJob("")
	require.NoError(t, err)
	assert.ErrorIs(t, j.Resume(), dojob.ErrJobEmpty)
	assert.Equal(t, dojob.StateSuspended, j.State())
}

// TestFinalStatesRefuseChanges checks that ACKNOWLEDGED and CANCELLED jobs
// refuse every state-changing call and setter with ErrInvalidState, keep
// their getters, and leave the Manager's index.
func TestFinalStatesRefuseChanges(t *testing.T) {
	for _, end := range []string{"Cancel", "Complete"} {
		t.Run(end, func(t *testing.T) {
			m := newManager(t, dojob.Config{})
			j, err := m.CreateJob("j")
			require.NoError(t, err)
			require.NoError(t, j.AddFile("http://127.0.0.1/a", filepath.Join(t.TempDir(), "a")))
			want := dojob.StateCancelled
			if end == "Cancel" {
				require.NoError(t, j.Cancel())
			} else {
				require.NoError(t, j.Complete())
				want = dojob.StateAcknowledged
			}
			assert.Equal(t, want, j.State())
			calls := map[string]error{
				"Resume":               j.Resume(),
				"Suspend":              j.Suspend(),
				"Cancel":               j.Cancel(),
				"Complete":             j.Complete(),
				"AddFile":              j.AddFile("http://127.0.0.1/b", filepath.Join(t.TempDir(), "b")),
				"AddFileWithRanges":    j.AddFileWithRanges("http://127.0.0.1/b", filepath.Join(t.TempDir(), "c"), []dojob.FileRange{{Offset: 0, Length: 1}}),
				"SetNoProgressTimeout": j.SetNoProgressTimeout(time.Minute),
				"SetMinimumRetryDelay": j.SetMinimumRetryDelay(time.Minute),
				"SetPriority":          j.SetPriority(dojob.PriorityHigh),
				"SetDisplayName":       j.SetDisplayName("x"),
				"SetDescription":       j.SetDescription("x"),
				"SetNotifyFlags":       j.SetNotifyFlags(dojob.NotifyJobModification),
				"SetNotifyInterface":   j.SetNotifyInterface(dojob.CallbackFuncs{}),
			}
			for name, err := range calls {
				assert.ErrorIs(t, err, dojob.ErrInvalidState, name)
			}
			assert.Equal(t, want, j.State())
			assert.Equal(t, "j", j.DisplayName())
			assert.Len(t, j.Files(), 1)
			_, err = m.Job(j.ID())
			assert.ErrorIs(t, err, dojob.ErrJobNotFound)
			assert.Empty(t, m.Jobs())
		})
	}
}

func TestClosedManager(t *testing.T) {
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	j, err := m.CreateJob("j")
	require.NoError(t, err)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "Close is idempotent")
	_, err = m.CreateJob("k")
	assert.ErrorIs(t, err, dojob.ErrNoService)
	assert.ErrorIs(t, j.Resume(), dojob.ErrNoService)
	assert.ErrorIs(t, j.SetDescription("x"), dojob.ErrNoService)
	assert.Equal(t, dojob.StateSuspended, j.State())
	st, err := j.Wait(t.Context())
	assert.ErrorIs(t, err, dojob.ErrNoService)
	assert.Equal(t, dojob.StateSuspended, st)
}

func TestNewManagerValidates(t *testing.T) {
	for _, cfg := range []dojob.Config{
		{MaxForegroundJobs: -1},
		{MaxBackgroundJobs: -1},
		{StallTimeout: -time.Second},
		{CheckpointInterval: -time.Second},
	} {
		_, err := dojob.NewManager(cfg)
		assert.ErrorIs(t, err, dojob.ErrInvalidArg, "%+v", cfg)
	}
}
