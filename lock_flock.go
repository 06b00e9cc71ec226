//go:build unix && !aix && !solaris

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

// lockFile opens path and takes an exclusive, non-blocking flock on it. The
// kernel releases it when the process dies, so a crash never leaves a stale
// lock behind.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, err
	}
	return f, nil
}

func unlockFile(f *os.File) error {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return f.Close()
}
