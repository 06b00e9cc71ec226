//go:build js || wasip1 || plan9

package dojob

import (
	"io/fs"
	"os"
)

// openNoFollow is 0 where the syscall package has no O_NOFOLLOW (js,
// plan9; wasip1 is treated alike): the check by name before opening
// refuses links, and the descriptor check refuses anything not regular.
const openNoFollow = 0

// maxNameBytes is the longest file name (one path element) accepted: the
// common NAME_MAX, in bytes.
const maxNameBytes = 255

// nameTooLong reports whether a path element is too long for the file
// system.
func nameTooLong(name string) bool { return len(name) > maxNameBytes }

// checkOwned has nothing more to check on these systems than that the file
// is regular (checkMode): their file status has no portable link count or
// owner.
func checkOwned(string, fs.FileInfo, *os.File) error { return nil }

// renameFile is os.Rename.
func renameFile(from, to string) error { return os.Rename(from, to) }

// syncDir fsyncs a directory where the system allows it.
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
