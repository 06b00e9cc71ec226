package dojob_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireMaxSizeError checks the error object of a job the maximum download
// size stopped, for the file with the given local path.
func requireMaxSizeError(t *testing.T, j *dojob.Job, local string) {
	t.Helper()
	e := mustJobError(t, j)
	assert.Equal(t, dojob.ErrMaxDownloadSize, e.Code)
	assert.Equal(t, dojob.ErrorContextRemoteFile, e.Context)
	assert.True(t, errors.Is(e, dojob.ErrMaxDownloadSize))
	assert.Contains(t, e.Error(), "BG_E_MAX_DOWNLOAD_SIZE_LIMIT_REACHED (0x80200064)")
	require.NotNil(t, e.File)
	assert.Equal(t, local, e.File.LocalPath)
}

// TestMaxDownloadSizeBoundsAnEndlessBody: a server streams 48 MiB with no
// Content-Length; the job's maximum download size is 64 KiB. dojob reads
// 64 KiB and one byte more, fails with BG_E_MAX_DOWNLOAD_SIZE_LIMIT_REACHED,
// and its temporary file holds exactly the 64 KiB: nothing beyond the
// limit is written. JobError is called once.
func TestMaxDownloadSizeBoundsAnEndlessBody(t *testing.T) {
	const limit, stream = 64 << 10, 48 << 20
	s, written := endlessServer(stream)
	defer s.Close()
	ct := &countingTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
	m := newMirrorManager(t, dojob.Config{HTTPClient: &http.Client{Transport: ct}})
	j, local := mirrorJob(t, m, dojob.FileSpec{RemoteURL: s.URL + "/f"})
	rec := dojobtest.NewRecorder()
	require.NoError(t, j.SetNotifyInterface(rec))
	require.NoError(t, j.SetMaximumDownloadSize(limit))
	assert.Equal(t, int64(limit), j.MaximumDownloadSize())
	require.Equal(t, dojob.StateError, resumeWait(t, j))
	requireMaxSizeError(t, j, local)
	assert.Equal(t, int64(limit+1), ct.read.Load(), "read up to the limit and one byte more")
	assert.Equal(t, int64(limit), j.Progress().BytesTransferred, "the bytes up to the limit are kept")
	temps := tempFiles(t, filepath.Dir(local))
	require.Len(t, temps, 1)
	st, err := os.Stat(filepath.Join(filepath.Dir(local), temps[0]))
	require.NoError(t, err)
	assert.Equal(t, int64(limit), st.Size(), "nothing beyond the limit is written")
	_, err = rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
	require.NoError(t, err)
	require.NoError(t, j.Cancel())
	assert.Equal(t, 1, rec.Count(dojobtest.EventError), "JobError exactly once")
	s.CloseClientConnections()
	assert.Less(t, written.Load(), int64(stream), "the server was not drained")
}

// TestMaxDownloadSizeUnannouncedResumes: a 100,000-byte file served
// without Content-Length, under a limit of 60,000 bytes: the job stops at
// 60,000 bytes with the code; with the limit raised, Resume continues from
// there and the file arrives whole.
func TestMaxDownloadSizeUnannouncedResumes(t *testing.T) {
	const size, limit = 100_000, 60_000
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.WithoutContentLength())
		j := r.job("unannounced", "/f")
		require.NoError(t, j.SetMaximumDownloadSize(limit))
		require.Equal(t, dojob.StateError, resumeWait(t, j))
		requireMaxSizeError(t, j, r.local("/f"))
		assert.Equal(t, int64(limit), j.Progress().BytesTransferred)
		assert.Equal(t, int64(limit+1), r.tr.BodyBytes("/f"), "the limit and one byte more were read")

		require.NoError(t, j.SetMaximumDownloadSize(size))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		reqs := r.tr.RequestsFor("/f")
		require.Len(t, reqs, 2)
		assert.Equal(t, "bytes=60000-", reqs[1].Range, "the kept bytes are not fetched again")
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestMaxDownloadSizeAnnouncedTooLarge: two files of 40,000 bytes under a
// limit of 64,000: the first arrives; the second announces 40,000 bytes
// when 24,000 are left and fails before a byte of its body is read, its
// mirror untried (another source of the same file breaks the same limit).
// Without the limit, Resume finishes the job.
func TestMaxDownloadSizeAnnouncedTooLarge(t *testing.T) {
	const size, limit = 40_000, 64_000
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size))
		rec := dojobtest.NewRecorder()
		j, err := r.m.CreateJob("announced")
		require.NoError(t, err)
		require.NoError(t, j.AddFileSet([]dojob.FileSpec{
			{RemoteURL: r.tr.FileURL("/a"), LocalPath: r.local("/a")},
			{RemoteURL: r.tr.FileURL("/b"), LocalPath: r.local("/b"), Mirrors: []string{r.tr.FileURL("/b?mirror")}},
		}))
		require.NoError(t, j.SetNotifyInterface(rec))
		require.NoError(t, j.SetMaximumDownloadSize(limit))
		require.Equal(t, dojob.StateError, resumeWait(t, j))
		requireMaxSizeError(t, j, r.local("/b"))
		assert.Contains(t, mustJobError(t, j).Error(), "40000 bytes exceed the 24000")
		files := j.Files()
		assert.True(t, files[0].Transferred)
		assert.Zero(t, files[1].BytesTransferred)
		assert.Zero(t, r.tr.BodyBytes("/b"), "no byte of the body was read")
		assert.Len(t, r.tr.RequestsFor("/b"), 1, "the mirror is not tried")
		_, err = rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
		require.NoError(t, err)
		synctest.Wait()
		assert.Equal(t, 1, rec.Count(dojobtest.EventError))

		require.NoError(t, j.SetMaximumDownloadSize(0))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		require.NoError(t, j.Complete())
		r.requireFile("/a")
		r.requireFile("/b")
	})
}

// TestMaxDownloadSizeExactFit: files that fill the limit exactly, announced
// or not, are within it.
func TestMaxDownloadSizeExactFit(t *testing.T) {
	const size = 30_000
	for _, tc := range []struct {
		name string
		opts []dojobtest.Option
	}{{"announced", nil}, {"unannounced", []dojobtest.Option{dojobtest.WithoutContentLength()}}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{}, append([]dojobtest.Option{dojobtest.WithSize(size)}, tc.opts...)...)
				j := r.job("fit", "/a", "/b")
				require.NoError(t, j.SetMaximumDownloadSize(2*size))
				require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
				require.NoError(t, j.Complete())
				r.requireFile("/a")
				r.requireFile("/b")
			})
		})
	}
}

func TestSetMaximumDownloadSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{})
		j := r.job("setter", "/f")
		assert.Zero(t, j.MaximumDownloadSize(), "no limit by default")
		assert.ErrorIs(t, j.SetMaximumDownloadSize(-1), dojob.ErrInvalidArg)
		require.NoError(t, j.SetMaximumDownloadSize(1))
		assert.Equal(t, int64(1), j.MaximumDownloadSize())
		require.NoError(t, j.Cancel())
		assert.ErrorIs(t, j.SetMaximumDownloadSize(5), dojob.ErrInvalidState)
	})
}
