//go:build windows

package main

import (
	"os"

	"golang.org/x/sys/windows"
)

// enableANSI turns on virtual terminal processing on the console f, so that
// it interprets the ANSI sequences the progress bars are drawn with, and
// reports whether it is on. Windows 10 and later have it (Windows Terminal
// has it on already); an older console refuses the mode, and the command
// prints lines there instead of bars. The mode is left on when the command
// exits: it changes only how escape sequences written later are shown, and
// shells that care set their own mode.
func enableANSI(f *os.File) bool {
	h := windows.Handle(f.Fd())
	var mode uint32
	if err := windows.GetConsoleMode(h, &mode); err != nil {
		return false
	}
	if mode&windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0 {
		return true
	}
	return windows.SetConsoleMode(h, mode|windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING) == nil
}
