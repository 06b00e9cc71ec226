package dojob_test

import (
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
)

// TestJobErrorFileInfo: FileInfo gives the file of an error tied to one and
// ErrFileNotAvailable (DO_E_FILE_NOT_AVAILABLE, 0x80D02010) otherwise, as
// IBackgroundCopyError::GetFile does.
func TestJobErrorFileInfo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.Always(dojobtest.Status(404)))
		j := r.job("404", "/missing")
		require.NoError(t, j.Resume())
		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateError, st)
		jerr, err := j.Error()
		require.NoError(t, err)
		fi, err := jerr.FileInfo()
		require.NoError(t, err)
		assert.Equal(t, r.tr.FileURL("/missing"), fi.RemoteURL)
		assert.Equal(t, r.local("/missing"), fi.LocalPath)
	})

	for _, e := range []*dojob.JobError{{Code: dojob.ErrNoProgress}, {}, nil} {
		fi, err := e.FileInfo()
		require.ErrorIs(t, err, dojob.ErrFileNotAvailable)
		var hr dojob.HRESULT
		require.ErrorAs(t, err, &hr)
		assert.Equal(t, dojob.HRESULT(0x80D02010), hr)
		assert.Equal(t, dojob.FileInfo{}, fi)
	}
}

// TestZeroJobError: a zero JobError is usable, as its doc says.
func TestZeroJobError(t *testing.T) {
	var e dojob.JobError
	assert.Equal(t, "dojob: HRESULT 0x00000000", e.Error())
	assert.False(t, e.Transient())
	assert.Nil(t, e.Unwrap())
}
