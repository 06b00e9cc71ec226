package main

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/dojob/dojob"
	"github.com/stretchr/testify/assert"
)

// TestDescribeErrorURLOnce: a network error from net/http names the URL
// again ("Get \"URL\": dial tcp …"); the message shows it once. A URL the
// error names that is not the file's (a redirect target) is kept.
func TestDescribeErrorURLOnce(t *testing.T) {
	const u = "http://127.0.0.1:1/x.bin"
	e := &dojob.JobError{Code: dojob.ErrNoProgress, Context: dojob.ErrorContextGeneralTransport,
		File: &dojob.FileInfo{RemoteURL: u},
		Err:  &url.Error{Op: "Get", URL: u, Err: errors.New("dial tcp 127.0.0.1:1: connect: connection refused")}}
	got := describeError(e)
	assert.Equal(t, 1, strings.Count(got, u), got)
	assert.True(t, strings.HasSuffix(got, ": dial tcp 127.0.0.1:1: connect: connection refused"), got)

	e.Err = &url.Error{Op: "Get", URL: "http://127.0.0.1:2/elsewhere", Err: errors.New("refused")}
	assert.Contains(t, describeError(e), "http://127.0.0.1:2/elsewhere", "another URL is kept")
}

// TestDescribeErrorRedactedURLOnce: dojob hands out net/http's errors with
// the URL redacted; the message still shows a presigned URL once.
func TestDescribeErrorRedactedURLOnce(t *testing.T) {
	const u = "http://127.0.0.1:1/x.bin?X-Amz-Signature=abc"
	e := &dojob.JobError{Code: dojob.ErrNoProgress, Context: dojob.ErrorContextGeneralTransport,
		File: &dojob.FileInfo{RemoteURL: u},
		Err:  &url.Error{Op: "Get", URL: dojob.RedactURL(u), Err: errors.New("dial tcp 127.0.0.1:1: connect: connection refused")}}
	got := describeError(e)
	assert.Equal(t, 1, strings.Count(got, "X-Amz-Signature=REDACTED"), got)
	assert.NotContains(t, got, "abc")
}
