package dojob_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// Manager a test creates must be closed, and Close must leave nothing behind.
//
// When the crash tests start the binary as their child process, it runs
// the child instead (crash_test.go).
func TestMain(m *testing.M) {
	if code, ok := runCrashChild(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}
