package dojob_test

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// errSharingViolation is ERROR_SHARING_VIOLATION.
const errSharingViolation syscall.Errno = 32

// TestCompleteDestinationInUse: Windows replaces no file that another
// program holds open without FILE_SHARE_DELETE (Go's os.Open, most
// programs). Complete retries for the in-use window, then fails with
// LOCAL_FILE E_ACCESSDENIED (what Windows answers); the job stays
// TRANSFERRED, the destination keeps its content and the temporary file
// its bytes. Once the program lets go, Complete installs the file.
func TestCompleteDestinationInUse(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(64<<10))
	dojob.SetInUseWindow(r.m, 50*time.Millisecond)
	var tries int
	dojob.AfterRenameTry(r.m, func(error) { tries++ })
	j, _ := r.job("/f")
	require.Equal(t, dojob.StateTransferred, r.run(j))
	dest := r.local("/f")
	require.NoError(t, os.WriteFile(dest, []byte("version 1"), 0o644))
	holder, err := os.Open(dest)
	require.NoError(t, err)
	defer holder.Close()

	err = j.Complete()
	var jerr *dojob.JobError
	require.ErrorAs(t, err, &jerr)
	assert.Equal(t, dojob.ErrorContextLocalFile, jerr.Context)
	assert.Equal(t, dojob.ErrAccessDenied, jerr.Code, "%v", jerr)
	assert.Greater(t, tries, 1, "retried while the destination was in use")
	assert.Equal(t, dojob.StateTransferred, j.State())
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	assert.Equal(t, "version 1", string(got), "the destination is untouched")
	require.Len(t, tempFiles(t, r.dir), 1, "the temporary file is kept for another Complete")

	require.NoError(t, holder.Close())
	r.complete(j, "/f")
	assert.Equal(t, dojob.StateAcknowledged, j.State())
}

// TestCompleteWaitsOutScanner: a program that opens the finished
// temporary file for a moment — an antivirus scanner, an indexer — and lets
// go while Complete retries does not make Complete fail.
func TestCompleteWaitsOutScanner(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(64<<10))
	j, _ := r.job("/f")
	require.Equal(t, dojob.StateTransferred, r.run(j))
	temps := tempFiles(t, r.dir)
	require.Len(t, temps, 1)
	scanner, err := os.Open(r.local("/" + temps[0]))
	require.NoError(t, err)
	defer scanner.Close()
	var failed []error
	dojob.AfterRenameTry(r.m, func(err error) {
		if err != nil {
			failed = append(failed, err)
			scanner.Close() // the scan ends after the first refusal
		}
	})

	r.complete(j, "/f")
	require.Len(t, failed, 1, "refused once, while the scanner had the file open")
	assert.True(t, errors.Is(failed[0], errSharingViolation) || errors.Is(failed[0], syscall.ERROR_ACCESS_DENIED), "%v", failed[0])
	assert.Equal(t, dojob.StateAcknowledged, j.State())
}
