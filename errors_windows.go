//go:build windows

package dojob

import (
	"errors"
	"syscall"
)

// isDirectory is false on Windows, which reports a directory in the way of
// a file as ERROR_ACCESS_DENIED itself.
func isDirectory(error) bool { return false }

// Windows error numbers (winerror.h) the syscall package does not name.
const (
	errorWriteProtect     syscall.Errno = 19    // ERROR_WRITE_PROTECT: the medium is write-protected
	errorLockViolation    syscall.Errno = 33    // ERROR_LOCK_VIOLATION: part of the file is locked
	errorHandleDiskFull   syscall.Errno = 39    // ERROR_HANDLE_DISK_FULL
	errorDiskFull         syscall.Errno = 112   // ERROR_DISK_FULL
	errorConnRefused      syscall.Errno = 1225  // ERROR_CONNECTION_REFUSED
	wsaeConnRefused       syscall.Errno = 10061 // WSAECONNREFUSED: what a refused connect returns
	errorSharingViolation syscall.Errno = 32    // ERROR_SHARING_VIOLATION: another handle forbids it
)

// isDiskFull reports an out-of-space error.
func isDiskFull(err error) bool {
	return errors.Is(err, errorDiskFull) || errors.Is(err, errorHandleDiskFull) || errors.Is(err, syscall.ENOSPC)
}

// isConnRefused reports a refused connection. Windows reports it as
// WSAECONNREFUSED, never as syscall.ECONNREFUSED (a number the syscall
// package invents on Windows).
func isConnRefused(err error) bool {
	return errors.Is(err, wsaeConnRefused) || errors.Is(err, errorConnRefused) || errors.Is(err, syscall.ECONNREFUSED)
}

// isReadOnlyFS reports a write to a read-only file system or a
// write-protected medium.
func isReadOnlyFS(err error) bool {
	return errors.Is(err, errorWriteProtect) || errors.Is(err, syscall.EROFS)
}

// isSharingViolation reports a file another program holds open in a way
// that forbids what was asked (ERROR_SHARING_VIOLATION), or a byte range it
// locked (ERROR_LOCK_VIOLATION).
func isSharingViolation(err error) bool {
	return errors.Is(err, errorSharingViolation) || errors.Is(err, errorLockViolation)
}

// isInUse reports a rename or an open that another program's handle
// refuses for now: a sharing or lock violation, or ERROR_ACCESS_DENIED,
// which is what renaming over a file open without FILE_SHARE_DELETE
// returns (a file in use cannot be told from a denying ACL by the code).
// Complete retries such a rename for a while (inUseWindow).
func isInUse(err error) bool {
	return isSharingViolation(err) || errors.Is(err, syscall.ERROR_ACCESS_DENIED)
}
