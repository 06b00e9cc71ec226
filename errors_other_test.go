//go:build !windows

package dojob_test

import "syscall"

// errConnRefused is the error a refused connection carries.
const errConnRefused = syscall.ECONNREFUSED
