//go:build !windows

package dojob

import (
	"errors"
	"syscall"
)

// isDiskFull reports an out-of-space or out-of-quota error.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
