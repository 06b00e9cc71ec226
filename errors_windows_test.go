//go:build windows

package dojob_test

import "syscall"

// errConnRefused is the error a refused connection carries on Windows:
// WSAECONNREFUSED (syscall.ECONNREFUSED is a number Go invents there).
const errConnRefused syscall.Errno = 10061
