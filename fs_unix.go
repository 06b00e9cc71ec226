//go:build !windows

package dojob

import (
	"os"
	"syscall"
)

// openNoFollow refuses to open a temporary file through a symbolic link.
const openNoFollow = syscall.O_NOFOLLOW

// syncDir fsyncs a directory, making renames and creations in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
