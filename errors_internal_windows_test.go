package dojob

import (
	"io/fs"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestLocalErrorWindows: the numbers Windows really returns (winerror.h),
// not the errnos the syscall package invents there, get their HRESULTs.
func TestLocalErrorWindows(t *testing.T) {
	tests := []struct {
		errno syscall.Errno
		code  HRESULT
	}{
		{112, ErrDiskFull},        // ERROR_DISK_FULL
		{39, ErrDiskFull},         // ERROR_HANDLE_DISK_FULL
		{5, ErrAccessDenied},      // ERROR_ACCESS_DENIED
		{19, ErrWriteProtect},     // ERROR_WRITE_PROTECT
		{32, ErrSharingViolation}, // ERROR_SHARING_VIOLATION
		{33, ErrSharingViolation}, // ERROR_LOCK_VIOLATION
		{2, ErrPathNotFound},      // ERROR_FILE_NOT_FOUND
		{3, ErrPathNotFound},      // ERROR_PATH_NOT_FOUND
		{1117, ErrFail},           // ERROR_IO_DEVICE
	}
	for _, tt := range tests {
		e := localError(&fs.PathError{Op: "open", Path: `C:\d\.dojob-x-0.tmp`, Err: tt.errno})
		assert.Equal(t, tt.code, e.Code, "%d %v", uint32(tt.errno), tt.errno)
		assert.Equal(t, ErrorContextLocalFile, e.Context)
		assert.False(t, e.Transient())
	}
}

// TestClassifyConnRefusedWindows: a refused connection is WSAECONNREFUSED
// on Windows (ERROR_CONNECTION_REFUSED from some APIs): a transient
// BG_E_CANNOT_CONNECT, wherever in the attempt it shows.
func TestClassifyConnRefusedWindows(t *testing.T) {
	for _, errno := range []syscall.Errno{10061, 1225} {
		e := classify(getErr(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("wsarecv", errno)}))
		assert.Equal(t, ErrCannotConnect, e.Code, "%d", uint32(errno))
		assert.True(t, e.Transient())
	}
}
