//go:build windows

package dojob

import (
	"io/fs"
	"os"
	"syscall"
	"unicode/utf16"
)

// openNoFollow opens a reparse point (symbolic link, junction) itself
// instead of its target; the descriptor check then refuses it as not a
// regular file.
const openNoFollow = syscall.FILE_FLAG_OPEN_REPARSE_POINT

// maxNameUnits is the longest file name (one path element) NTFS and ReFS
// take, in UTF-16 code units.
const maxNameUnits = 255

// nameTooLong reports whether a path element is too long for the file
// system.
func nameTooLong(name string) bool {
	return len(name) > maxNameUnits && len(utf16.Encode([]rune(name))) > maxNameUnits
}

// checkOwned refuses a file with more than one link (a hard link planted at
// the temporary path would make dojob overwrite the file it links to). The
// link count needs a handle: without one (a check by name) the file is
// opened for reading only, not following reparse points. Ownership is not
// checked on Windows: it would need the security API.
func checkOwned(path string, fi fs.FileInfo, f *os.File) error {
	if f == nil {
		g, err := os.OpenFile(path, os.O_RDONLY|openNoFollow, 0)
		if err != nil {
			return err
		}
		defer g.Close()
		gi, err := g.Stat()
		if err != nil {
			return err
		}
		if err := checkMode(path, gi); err != nil {
			return err
		}
		if !os.SameFile(fi, gi) {
			return &unsafeFileError{path, "replaced while it was being checked"}
		}
		f = g
	}
	var info syscall.ByHandleFileInformation
	if err := syscall.GetFileInformationByHandle(syscall.Handle(f.Fd()), &info); err != nil {
		return err
	}
	if info.FileAttributes&syscall.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		return &unsafeFileError{path, "a reparse point"}
	}
	if info.NumberOfLinks != 1 {
		return &unsafeFileError{path, "the file has other names (hard links)"}
	}
	return nil
}

// renameFile is os.Rename (MoveFileEx, replacing the destination).
func renameFile(from, to string) error { return os.Rename(from, to) }

// syncDir is a no-op on Windows, where a rename is made durable by the file
// system itself and directories cannot be opened for fsync.
func syncDir(string) error { return nil }
