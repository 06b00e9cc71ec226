//go:build !unix

package dojob_test

// runCrashChild: the crash tests need SIGKILL and run on Unix only.
func runCrashChild() (code int, isChild bool) { return 0, false }
