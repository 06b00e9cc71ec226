package dojob

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// tempFile is what a transfer needs of its temporary file.
type tempFile interface {
	io.Writer
	io.WriterAt // a file fetched in segments (segment.go)
	io.ReaderAt // its prefix hasher
	io.Seeker
	Truncate(size int64) error
	Sync() error
	Close() error
}

// fileSystem is the Manager's seam to the local file system: tests replace
// it to simulate a full disk; everything else uses osFileSystem.
type fileSystem struct {
	// openTemp opens a temporary file for writing. With fresh it creates a
	// new, empty file exclusively; otherwise it opens the file already
	// there (fs.ErrNotExist if it is gone). Either way the file is checked
	// to be one dojob may write (see openTempFile).
	openTemp func(path string, fresh bool) (tempFile, error)
	// rename promotes a finished temporary file to its destination.
	rename func(from, to string) error
	// inUseWindow is how long Complete retries a rename refused because
	// another program has the temporary file or the destination open
	// (Windows: see isInUse).
	inUseWindow time.Duration
}

// inUseWindow is how long Complete keeps retrying a rename that Windows
// refuses because another program holds the temporary file or the
// destination open. Antivirus scanners, indexers and thumbnailers open a
// new file for a moment — often the very file just written — and Windows
// renames neither a file opened without FILE_SHARE_DELETE nor over one;
// Go's own toolchain retries its renames on Windows for the same reason
// and for as long. A program that keeps the destination open longer (a
// running executable, a viewer) makes Complete fail after the window with
// the error; the file stays transferred for another Complete.
const inUseWindow = 2 * time.Second

// retryInUse calls rename until it succeeds, fails for another reason than
// a file in use (inUse), or window has passed since the first call. The
// waits between calls double from 1 ms to at most 100 ms.
func retryInUse(rename func(from, to string) error, inUse func(error) bool, window time.Duration, from, to string) error {
	start := time.Now()
	wait := time.Millisecond
	for {
		err := rename(from, to)
		if err == nil || !inUse(err) {
			return err
		}
		left := window - time.Since(start)
		if left <= 0 {
			return err
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, 100*time.Millisecond)
	}
}

func osFileSystem() fileSystem {
	return fileSystem{
		openTemp: func(path string, fresh bool) (tempFile, error) {
			f, err := openTempFile(path, fresh)
			if err != nil {
				return nil, err
			}
			return f, nil
		},
		rename:      func(from, to string) error { return promoteFile(from, to, nil) },
		inUseWindow: inUseWindow,
	}
}

// unsafeFileError reports something at a temporary file's path that dojob
// must not write through: a symbolic link or reparse point, a file with
// more than one name (a hard link planted to make dojob overwrite a file
// elsewhere), another user's file, or no regular file at all. It matches
// fs.ErrPermission, so it becomes a fatal LOCAL_FILE error with
// E_ACCESSDENIED, and the file it found is left untouched.
type unsafeFileError struct {
	path, why string
}

func (e *unsafeFileError) Error() string {
	return fmt.Sprintf("refusing to use %s: %s", e.path, e.why)
}

func (e *unsafeFileError) Unwrap() error { return fs.ErrPermission }

// checkMode refuses anything but a regular file: links, reparse points,
// directories, devices, pipes.
func checkMode(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return &unsafeFileError{path, "not a regular file (" + fi.Mode().Type().String() + ")"}
	}
	return nil
}

// inspect checks the file at path without opening it for writing: by
// name (Lstat, so a link is seen as a link), then through the platform's
// checks (one link, owned by this user where the platform can tell).
func inspect(path string) (fs.FileInfo, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if err := checkMode(path, fi); err != nil {
		return nil, err
	}
	return fi, checkOwned(path, fi, nil)
}

// verifyOpen checks an open file through its descriptor: a regular file
// with a single link, owned by this user (where the platform can tell), and
// the same file that was inspected by name before it was opened.
func verifyOpen(path string, f *os.File, before fs.FileInfo) (fs.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkMode(path, fi); err != nil {
		return nil, err
	}
	if err := checkOwned(path, fi, f); err != nil {
		return nil, err
	}
	if before != nil && !os.SameFile(before, fi) {
		return nil, &unsafeFileError{path, "replaced while it was being opened"}
	}
	return fi, nil
}

// openTempFile opens a temporary file so that nothing planted at its path
// is ever written through.
//
// A fresh file is created exclusively (O_EXCL, and no following of links).
// If something is already there it is a leftover of an earlier run of the
// same file (a run that stopped before it recorded a byte, or a crash before
// the first checkpoint) or something planted. It is removed — which only
// unlinks that name, never touching another file — if it is a regular file
// with a single link owned by this user, and the exclusive creation is
// tried once more; anything else fails with an unsafeFileError and stays as
// it is.
//
// An existing file (the job has recorded bytes for it) is opened without
// following links and without creating or truncating, then checked through
// its descriptor before a byte is written; its mode is set through the
// descriptor too.
func openTempFile(path string, fresh bool) (*os.File, error) {
	if fresh {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|openNoFollow, 0o600)
		if err == nil || !errors.Is(err, fs.ErrExist) {
			return f, err
		}
		if _, err := inspect(path); err != nil {
			return nil, err
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|openNoFollow, 0o600)
	}
	before, err := inspect(path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|openNoFollow, 0)
	if err != nil {
		return nil, err
	}
	if _, err := verifyOpen(path, f, before); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// promoteFile renames a finished temporary file over its destination,
// atomically, giving it the mode of an ordinary download (0644; a file is
// 0600 while partial).
//
// The transfer that finished the file set 0644 through the descriptor it
// wrote with (finishedMode), so usually only the checks and the rename are
// left. A file still 0600 (transferred by an earlier version of dojob, or
// on Windows, where the mode bits do not show it) gets the mode here,
// through a descriptor of the file it verified (regular, one link, ours),
// never by name, and is checked by name once more after that: it must be
// the very file verified and chmod-ed.
//
// What must be ours is the file renamed — the temporary file — not which
// file is at the destination afterwards. Just before the rename the
// temporary file is checked by name (inspect): a symbolic link, a hard link
// or another user's file planted there fails with an unsafeFileError, and
// nothing is moved. After the rename the destination is checked by name
// (inspect) to be a file dojob would accept — regular, one link, ours where
// the platform can tell — whether or not it is still our file: if another
// job's Complete to the same destination, or any program saving there,
// replaced it right after our rename, that is legitimate and the last
// rename wins (BITS). Anything else there — a symbolic link, a hard link,
// another user's file — fails with an unsafeFileError, as it may be a link
// swapped in at the temporary path in the instant between the last check
// and the rename. Identity alone (os.SameFile) does not tell: the inode
// number of a temporary file swapped out is free again and may be the
// planted link's. A file accepted there is at worst one of this user's own
// files with a single name, which the user's programs could as well have
// renamed there after Complete: nothing was written through a link, and no
// link was installed.
//
// pause, if not nil, is called with "closed" once a file still 0600 was
// checked, chmod-ed and closed (before it is checked by name once more),
// "rename" just before the rename and "renamed" just after it (tests act
// there).
func promoteFile(from, to string, pause func(step string)) error {
	if pause == nil {
		pause = func(string) {}
	}
	before, err := inspect(from)
	if err != nil {
		return err
	}
	if before.Mode().Perm() != finishedMode {
		if err := chmodChecked(from, to, before, pause); err != nil {
			return err
		}
	}
	pause("rename")
	if err := renameFile(from, to); err != nil {
		return err
	}
	pause("renamed")
	if _, err := inspect(to); err != nil {
		var ue *unsafeFileError
		if errors.As(err, &ue) {
			return &unsafeFileError{from, "renamed to " + to + ", where a file dojob must not leave is found instead: " + ue.why}
		}
		return err
	}
	return nil
}

// finishedMode is the mode of a file dojob installs, that of an ordinary
// download; a temporary file is 0600 until its transfer has finished.
const finishedMode = 0o644

// chmodChecked gives the temporary file from (to be renamed to to),
// inspected as before, the finished mode through a descriptor of the very file inspected, and checks
// by name that it is still that file.
func chmodChecked(from, to string, before fs.FileInfo, pause func(step string)) error {
	f, err := os.OpenFile(from, os.O_RDWR|openNoFollow, 0)
	if err != nil {
		return err
	}
	fi, err := verifyOpen(from, f, before)
	if err == nil {
		err = f.Chmod(finishedMode)
	}
	// Closed before the rename: Windows renames no file that is open.
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	pause("closed")
	now, err := inspect(from)
	if err != nil {
		return err
	}
	if !os.SameFile(fi, now) {
		return &unsafeFileError{from, "replaced by another file before it was renamed to " + to}
	}
	return nil
}
