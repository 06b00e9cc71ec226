//go:build !windows && !plan9

package dojob

import (
	"errors"
	"syscall"
)

// isDiskFull reports an out-of-space or out-of-quota error.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// isConnRefused reports a refused connection.
func isConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// isDirectory reports an operation on a file refused because a directory
// is at that path (EISDIR: a rename over it, an open for writing).
func isDirectory(err error) bool { return errors.Is(err, syscall.EISDIR) }

// isReadOnlyFS reports a write to a read-only file system.
func isReadOnlyFS(err error) bool { return errors.Is(err, syscall.EROFS) }

// isSharingViolation reports a file held open by another program in a way
// that forbids what was asked: Windows only.
func isSharingViolation(error) bool { return false }

// isInUse reports a rename refused because another program has a file
// open: only Windows refuses that.
func isInUse(error) bool { return false }
