//go:build windows

package dojob

import (
	"errors"
	"os"
	"syscall"
)

// persistenceSupported: this platform has a file lock that the kernel
// releases when the process dies, which a state directory needs.
const persistenceSupported = true

// errLocked reports a lock held by another Manager.
var errLocked = errors.New("locked")

// lockFile opens path with no sharing allowed: a second open fails until
// the handle is closed, which Windows does when the process dies.
func lockFile(path string) (*os.File, error) {
	p, err := syscall.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	h, err := syscall.CreateFile(p, syscall.GENERIC_READ|syscall.GENERIC_WRITE, 0, nil, syscall.OPEN_ALWAYS, syscall.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		if errors.Is(err, errorSharingViolation) {
			return nil, errLocked
		}
		return nil, err
	}
	return os.NewFile(uintptr(h), path), nil
}

func unlockFile(f *os.File) error { return f.Close() }
