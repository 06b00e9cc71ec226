//go:build linux

package dojob

import "syscall"

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE: start writing back the dirty
// pages of a range, without waiting for them and without flushing metadata.
const syncFileRangeWrite = 0x2

// startWriteback asks the kernel to begin writing the bytes [off, off+n) of
// tf to the disk now, rather than when the page cache decides to. It does
// not wait and makes nothing durable (the checkpoint's fsync does that); it
// only spreads the disk's work over the download, so the fsync at a
// checkpoint and at the end finds little left to write. A file that is not
// an *os.File (a test's fake) or a file system that does not support it is
// left alone: this is an optimisation, never an error.
func startWriteback(tf tempFile, off, n int64) {
	sc, ok := tf.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SyncFileRange(int(fd), off, n, syncFileRangeWrite)
	})
}
