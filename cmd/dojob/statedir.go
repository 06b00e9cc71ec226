package main

import (
	"errors"
	"path/filepath"
)

// defaultStateDir returns the state directory used without --state-dir:
// on Linux and the BSDs (every Unix but macOS), $XDG_STATE_HOME/dojob, or
// ~/.local/state/dojob when XDG_STATE_HOME is unset or not absolute (as the
// XDG Base Directory specification says); on Windows, macOS and Plan 9,
// os.UserConfigDir()/dojob (%AppData%\dojob, ~/Library/Application
// Support/dojob). The environment and the home and config directories are
// parameters so that a test can fix them (pass os.Getenv, os.UserHomeDir
// and os.UserConfigDir).
func defaultStateDir(goos string, getenv func(string) string, userHome, userConfig func() (string, error)) (string, error) {
	switch goos {
	case "windows", "darwin", "ios", "plan9":
		dir, err := userConfig()
		if err != nil {
			return "", err
		}
		return filepath.Join(dir, "dojob"), nil
	}
	if dir := getenv("XDG_STATE_HOME"); dir != "" && filepath.IsAbs(dir) {
		return filepath.Join(dir, "dojob"), nil
	}
	home, err := userHome()
	if err != nil {
		return "", err
	}
	if home == "" {
		return "", errors.New("no home directory")
	}
	return filepath.Join(home, ".local", "state", "dojob"), nil
}
