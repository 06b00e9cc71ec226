package dojob

import (
	"io"
	"os"
)

// tempFile is what a transfer needs of its temporary file.
type tempFile interface {
	io.Writer
	io.Seeker
	Truncate(size int64) error
	Sync() error
	Close() error
}

// fileSystem is the Manager's seam to the local file system: tests replace
// it to simulate a full disk; everything else uses osFileSystem.
type fileSystem struct {
	openTemp func(path string) (tempFile, error)
	rename   func(from, to string) error
}

func osFileSystem() fileSystem {
	return fileSystem{
		openTemp: func(path string) (tempFile, error) {
			f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|openNoFollow, 0o600)
			if err != nil {
				return nil, err
			}
			return f, nil
		},
		rename: promoteFile,
	}
}

// promoteFile gives a finished temporary file the mode of an ordinary
// download (0644; it was 0600 while partial) and renames it over its
// destination, atomically.
func promoteFile(from, to string) error {
	if err := os.Chmod(from, 0o644); err != nil {
		return err
	}
	return os.Rename(from, to)
}
