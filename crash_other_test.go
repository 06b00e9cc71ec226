//go:build !unix && !windows

package dojob_test

// runCrashChild: the crash tests need child processes that can be killed:
// Unix and Windows only.
func runCrashChild() (code int, isChild bool) { return 0, false }
