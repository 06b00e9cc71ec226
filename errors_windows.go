//go:build windows

package dojob

import (
	"errors"
	"syscall"
)

// Windows error numbers for a full disk (winerror.h).
const (
	errorHandleDiskFull syscall.Errno = 39
	errorDiskFull       syscall.Errno = 112
)

// isDiskFull reports an out-of-space error.
func isDiskFull(err error) bool {
	return errors.Is(err, errorDiskFull) || errors.Is(err, errorHandleDiskFull) || errors.Is(err, syscall.ENOSPC)
}

// isConnRefused reports a refused connection.
func isConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// isReadOnlyFS reports a write to a read-only file system.
func isReadOnlyFS(err error) bool { return errors.Is(err, syscall.EROFS) }
