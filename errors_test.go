package dojob_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dojob/dojob"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHRESULTValues(t *testing.T) {
	// The values of the DO and BITS headers.
	codes := map[dojob.HRESULT]uint32{
		dojob.ErrNoProgress:                  0x80D02002,
		dojob.ErrJobNotFound:                 0x80D02003,
		dojob.ErrJobEmpty:                    0x80D02004,
		dojob.ErrFileNotAvailable:            0x80D02010,
		dojob.ErrInvalidState:                0x80D02013,
		dojob.ErrErrorInformationUnavailable: 0x80D02014,
		dojob.ErrInvalidRange:                0x80D05010,
		dojob.ErrInsufficientRangeSupport:    0x80D05011,
		dojob.ErrOverlappingRanges:           0x80D05012,
		dojob.ErrStringTooLong:               0x80200021,
		dojob.ErrInvalidArg:                  0x80070057,
		dojob.ErrTimeout:                     0x80072EE2,
	}
	for hr, v := range codes {
		assert.Equal(t, v, uint32(hr), hr.Name())
	}
	assert.Equal(t, dojob.HRESULT(0x80190194), dojob.HTTPStatus(404))
	assert.Equal(t, dojob.HRESULT(0x80190193), dojob.HTTPStatus(403))
	assert.Equal(t, dojob.HRESULT(0x801901F7), dojob.HTTPStatus(503))
	assert.Equal(t, dojob.ErrFail, dojob.HTTPStatus(42))
	code, ok := dojob.HTTPStatus(416).HTTPStatus()
	assert.True(t, ok)
	assert.Equal(t, 416, code)
	_, ok = dojob.ErrTimeout.HTTPStatus()
	assert.False(t, ok)
}

func TestHRESULTError(t *testing.T) {
	assert.Equal(t, "DO_E_INVALID_STATE (0x80D02013)", dojob.ErrInvalidState.Error())
	assert.Equal(t, "BG_E_HTTP_ERROR_404 (0x80190194)", dojob.HTTPStatus(404).Error())
	assert.Equal(t, "HRESULT 0x80001234", dojob.HRESULT(0x80001234).Error())
	assert.Equal(t, "DO_E_DOWNLOAD_NO_PROGRESS", dojob.ErrNoProgress.Name())
}

func TestJobErrorMatching(t *testing.T) {
	inner := &dojob.JobError{Context: dojob.ErrorContextRemoteFile, Code: dojob.HTTPStatus(503), Err: errors.New("server answered 503")}
	outer := &dojob.JobError{Context: dojob.ErrorContextRemoteFile, Code: dojob.ErrNoProgress, Err: inner}
	var err error = fmt.Errorf("wrapped: %w", outer)

	assert.True(t, errors.Is(err, dojob.ErrNoProgress))
	assert.True(t, errors.Is(err, dojob.HTTPStatus(503)), "errors.Is reaches the wrapped transient error")
	assert.False(t, errors.Is(err, dojob.HTTPStatus(404)))

	var hr dojob.HRESULT
	require.True(t, errors.As(err, &hr))
	assert.Equal(t, dojob.ErrNoProgress, hr, "errors.As gives the outermost code")

	var je *dojob.JobError
	require.True(t, errors.As(err, &je))
	assert.Same(t, outer, je)
	assert.Equal(t, "REMOTE_FILE", je.Context.String())
}

func TestJobErrorHidesCredentials(t *testing.T) {
	e := &dojob.JobError{
		Code: dojob.HTTPStatus(401),
		File: &dojob.FileInfo{RemoteURL: "https://alice:s3cret@127.0.0.1/file"},
		Err:  errors.New(`Get "https://alice:s3cret@127.0.0.1/file": EOF`),
	}
	msg := e.Error()
	assert.NotContains(t, msg, "s3cret")
	assert.Contains(t, msg, "alice")
	assert.True(t, strings.HasPrefix(msg, "dojob: BG_E_HTTP_ERROR_401"), msg)
	assert.NotContains(t, e.File.String(), "s3cret")
}

func TestErrorContextNames(t *testing.T) {
	want := []string{"NONE", "UNKNOWN", "GENERAL_QUEUE_MANAGER", "QUEUE_MANAGER_NOTIFICATION", "LOCAL_FILE", "REMOTE_FILE", "GENERAL_TRANSPORT", "REMOTE_APPLICATION", "SERVER_CERTIFICATE_CALLBACK"}
	for i, n := range want {
		assert.Equal(t, n, dojob.ErrorContext(i).String())
	}
	assert.Equal(t, dojob.ErrorContext(8), dojob.ErrorContextServerCertificateCallback)
}

func TestJobID(t *testing.T) {
	id, err := dojob.ParseJobID("{5ce34c0d-0dc9-4c1f-897c-daa1b78cee7c}")
	require.NoError(t, err)
	assert.Equal(t, "{5CE34C0D-0DC9-4C1F-897C-DAA1B78CEE7C}", id.String())
	id2, err := dojob.ParseJobID("5CE34C0D-0DC9-4C1F-897C-DAA1B78CEE7C")
	require.NoError(t, err)
	assert.Equal(t, id, id2)
	for _, bad := range []string{"", "{5CE34C0D-0DC9-4C1F-897C-DAA1B78CEE7C", "5CE34C0D0DC94C1F897CDAA1B78CEE7C", "{ZCE34C0D-0DC9-4C1F-897C-DAA1B78CEE7C}"} {
		_, err := dojob.ParseJobID(bad)
		assert.ErrorIs(t, err, dojob.ErrInvalidArg, bad)
	}
	text, err := id.MarshalText()
	require.NoError(t, err)
	var back dojob.JobID
	require.NoError(t, back.UnmarshalText(text))
	assert.Equal(t, id, back)
}
