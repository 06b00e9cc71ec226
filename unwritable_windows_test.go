package dojob_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/windows"
)

// Access rights on a directory (winnt.h) the windows package does not name.
const (
	fileAddFile         = 0x2 // FILE_ADD_FILE: create a file in it
	fileAddSubdirectory = 0x4 // FILE_ADD_SUBDIRECTORY
)

// unwritableDir returns a directory in which this process cannot create a
// file. What stops a Windows user is the folder's ACL (a folder under
// Program Files without elevation; a chmod, that is the read-only
// attribute, does not protect a folder), so the directory gets one that
// denies this user adding files. Wine enforces no ACL; there the directory
// is the host's /sys/kernel (Wine's Z: drive is the host's root), where the
// kernel refuses every new file, root's too — ERROR_ACCESS_DENIED either
// way.
func unwritableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	require.NoError(t, err)
	trustee := windows.TRUSTEE{
		TrusteeForm:  windows.TRUSTEE_IS_SID,
		TrusteeType:  windows.TRUSTEE_IS_USER,
		TrusteeValue: windows.TrusteeValueFromSID(u.User.Sid),
	}
	acl, err := windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{
		{AccessPermissions: fileAddFile | fileAddSubdirectory, AccessMode: windows.DENY_ACCESS, Inheritance: windows.NO_INHERITANCE, Trustee: trustee},
		{AccessPermissions: windows.GENERIC_ALL, AccessMode: windows.GRANT_ACCESS, Inheritance: windows.NO_INHERITANCE, Trustee: trustee},
	}, nil)
	require.NoError(t, err)
	require.NoError(t, windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, acl, nil))
	probe := filepath.Join(dir, "probe")
	err = os.WriteFile(probe, nil, 0o600)
	if errors.Is(err, fs.ErrPermission) {
		return dir
	}
	require.NoError(t, err)
	require.NoError(t, os.Remove(probe))
	// The ACL was not enforced: Wine.
	const wineSysfs = `Z:\sys\kernel`
	if fi, err := os.Stat(wineSysfs); err == nil && fi.IsDir() {
		return wineSysfs
	}
	t.Skip("the folder's ACL was not enforced (Wine checks no ACL) and no host /sys/kernel is reachable as Z:\\sys\\kernel")
	return ""
}
