//go:build !windows

package dojob_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// unwritableDir returns a directory in which this process cannot create a
// file: a 0500 directory, or for root, whom permissions do not stop, sysfs,
// which refuses new files to everyone.
func unwritableDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() == 0 {
		if runtime.GOOS != "linux" {
			t.Skip("needs a directory root cannot write to")
		}
		return "/sys/kernel"
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o500))
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	return dir
}
