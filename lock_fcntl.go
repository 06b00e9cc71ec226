//go:build aix || solaris

package dojob

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// persistenceSupported: this platform has a file lock that the kernel
// releases when the process dies, which a state directory needs.
const persistenceSupported = true

// errLocked reports a lock held by another Manager.
var errLocked = errors.New("locked")

// AIX and Solaris (and illumos, which the solaris build tag includes) have
// no flock in the syscall package, so the lock is a POSIX record lock
// (fcntl F_SETLK) on the whole file. The kernel releases it when the process
// dies, like flock. Unlike flock it belongs to the process, not to the open
// file: a second lock from the same process would succeed, and closing any
// descriptor of the file would release it. held keeps the paths this
// process has locked, so a second Manager on the same directory in the same
// process is refused as it is elsewhere, and nothing else opens a lock file.
var held struct {
	sync.Mutex
	paths map[string]bool
}

// lockFile opens path and takes an exclusive, non-blocking record lock on
// all of it.
func lockFile(path string) (*os.File, error) {
	key, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	held.Lock()
	defer held.Unlock()
	if held.paths[key] {
		return nil, errLocked
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		f.Close()
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			return nil, errLocked
		}
		return nil, err
	}
	if held.paths == nil {
		held.paths = map[string]bool{}
	}
	held.paths[key] = true
	return f, nil
}

func unlockFile(f *os.File) error {
	lk := syscall.Flock_t{Type: syscall.F_UNLCK, Whence: io.SeekStart}
	_ = syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
	err := f.Close()
	if key, aerr := filepath.Abs(f.Name()); aerr == nil {
		held.Lock()
		delete(held.paths, key)
		held.Unlock()
	}
	return err
}
