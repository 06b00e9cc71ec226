package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain checks that the example leaves no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out))
	got := out.String()
	t.Log(got)

	assert.Contains(t, got, "state: TRANSIENT_ERROR (error 1: dojob: ERROR_WINHTTP_CONNECTION_ERROR (0x80072EFE)")
	assert.Contains(t, got, "state: TRANSIENT_ERROR (error 2: dojob: ERROR_WINHTTP_TIMEOUT (0x80072EE2)")
	assert.Contains(t, got, "state: TRANSFERRED\nstate: ACKNOWLEDGED\n")
	assert.Contains(t, got, "the server saw 3 requests:")
	assert.Regexp(t, `2\. GET bytes=1048576- +→ 206`, got)
	assert.Regexp(t, `3\. GET bytes=3145728- +→ 206`, got)
	assert.Regexp(t, `(?m)^done: 4\.00 MiB in .*, 3 attempts, 0 bytes re-downloaded, SHA-256 [0-9a-f]{12}… verified$`, got)
}

func TestQuickstartInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	assert.ErrorIs(t, run(ctx, &out), context.Canceled)
}
