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

// isReadOnlyFS reports a write to a read-only file system.
func isReadOnlyFS(err error) bool { return errors.Is(err, syscall.EROFS) }
