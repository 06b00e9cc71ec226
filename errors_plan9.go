//go:build plan9

package dojob

import "strings"

// Plan 9 reports errors as strings (syscall.ErrorString), not numbers; these
// match the kernel's and the file servers' messages.

// isDiskFull reports an out-of-space error.
func isDiskFull(err error) bool {
	s := err.Error()
	return strings.Contains(s, "file system full") || strings.Contains(s, "no space")
}

// isConnRefused reports a refused connection.
func isConnRefused(err error) bool { return strings.Contains(err.Error(), "connection refused") }

// isDirectory reports an operation on a file refused because a directory
// is at that path.
func isDirectory(err error) bool { return strings.Contains(err.Error(), "is a directory") }

// isReadOnlyFS reports a write to a read-only file system.
func isReadOnlyFS(err error) bool { return strings.Contains(err.Error(), "read only") }

// isSharingViolation reports a file held open by another program in a way
// that forbids what was asked: Windows only.
func isSharingViolation(error) bool { return false }

// isInUse reports a rename refused because another program has a file
// open: only Windows refuses that.
func isInUse(error) bool { return false }
