//go:build windows

package dojob

// openNoFollow is not needed on Windows.
const openNoFollow = 0

// syncDir is a no-op on Windows, where a rename is made durable by the file
// system itself and directories cannot be opened for fsync.
func syncDir(string) error { return nil }
