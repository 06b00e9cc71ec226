//go:build unix

package dojob

import (
	"io/fs"
	"os"
	"syscall"
)

// openNoFollow refuses to open a temporary file through a symbolic link.
const openNoFollow = syscall.O_NOFOLLOW

// maxNameBytes is the longest file name (one path element) the file
// systems of unix-like systems take: NAME_MAX, in bytes.
const maxNameBytes = 255

// nameTooLong reports whether a path element is too long for the file
// system.
func nameTooLong(name string) bool { return len(name) > maxNameBytes }

// checkOwned refuses a file with more than one link (a hard link planted at
// the temporary path would make dojob overwrite the file it links to) or
// owned by another user. The file's status, whether by name or through its
// descriptor, carries both.
func checkOwned(path string, fi fs.FileInfo, _ *os.File) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &unsafeFileError{path, "file status unavailable"}
	}
	if uint64(st.Nlink) != 1 {
		return &unsafeFileError{path, "the file has other names (hard links)"}
	}
	if int(st.Uid) != os.Geteuid() {
		return &unsafeFileError{path, "the file belongs to another user"}
	}
	return nil
}

// renameFile renames from to to with one rename(2). os.Rename first looks
// at the destination (an Lstat) only to refuse a directory there with its
// own error; rename(2) refuses a directory itself (EISDIR), and Complete
// renames a thousand small files in a few milliseconds where that look is a
// third of the system calls. An interrupted call is made again, as
// os.Rename does.
func renameFile(from, to string) error {
	for {
		err := syscall.Rename(from, to)
		switch {
		case err == nil:
			return nil
		case err != syscall.EINTR:
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
		}
	}
}

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
