//go:build js || wasip1 || plan9

package dojob

import (
	"errors"
	"os"
)

// persistenceSupported is false where the syscall package offers no file
// lock that the kernel releases when the process dies (js, wasip1, plan9):
// without one, two Managers could write the same state directory. Jobs in
// memory work as everywhere else; NewManager with a StateDir returns
// ErrNotImplemented.
const persistenceSupported = false

// errLocked reports a lock held by another Manager.
var errLocked = errors.New("locked")

func lockFile(string) (*os.File, error) {
	return nil, errorf(ErrNotImplemented, "state directories are not supported on this platform")
}

func unlockFile(f *os.File) error { return f.Close() }
