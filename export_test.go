package dojob

import (
	"sync/atomic"
	"time"
)

// FailWritesAfter makes the temporary files of m's transfers fail every
// write with err once limit bytes have been written to them all together —
// a full disk, for tests. Call it before any job runs.
func FailWritesAfter(m *Manager, limit int64, err error) {
	base := m.fs.openTemp
	var written atomic.Int64
	m.fs.openTemp = func(path string, fresh bool) (tempFile, error) {
		f, e := base(path, fresh)
		if e != nil {
			return nil, e
		}
		return &failingFile{tempFile: f, written: &written, limit: limit, err: err}, nil
	}
}

type failingFile struct {
	tempFile
	written *atomic.Int64
	limit   int64
	err     error
}

func (f *failingFile) Write(p []byte) (int, error) {
	room := f.limit - f.written.Load()
	if room <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > room {
		n, err := f.tempFile.Write(p[:room])
		f.written.Add(int64(n))
		if err == nil {
			err = f.err
		}
		return n, err
	}
	n, err := f.tempFile.Write(p)
	f.written.Add(int64(n))
	return n, err
}

// Rehashes is how many times m hashed a temporary file from disk because no
// saved digest covered the bytes it kept (verify.go).
func Rehashes(m *Manager) int64 { return m.rehashes.Load() }

// HoldRenames makes Complete's renames of m's files wait until release is
// closed, and closes started when the first one begins — a slow or stuck
// file system, for tests.
func HoldRenames(m *Manager, started chan<- struct{}, release <-chan struct{}) {
	base := m.fs.rename
	var once atomic.Bool
	m.fs.rename = func(from, to string) error {
		if once.CompareAndSwap(false, true) {
			close(started)
		}
		<-release
		return base(from, to)
	}
}

// PausePromote makes Complete's renames of m's files call hook at three
// points of each: with step "closed" once the temporary file from was
// checked, chmod-ed and closed, before it is checked by name once more; with
// step "rename" after that check, just before it is renamed to to; and with
// step "renamed" just after the rename, before the destination is checked —
// for tests that must act between those steps. It replaces m's rename: call it before HoldRenames or AfterRenameTry.
func PausePromote(m *Manager, hook func(step, from, to string)) {
	m.fs.rename = func(from, to string) error {
		return promoteFile(from, to, func(step string) { hook(step, from, to) })
	}
}

// BeforeTempOpen makes every opening of a temporary file by m's transfers
// call hook first, n counting the openings from 1 — a slow file system, for
// tests that must act between a transfer's steps. Call it before any job
// runs.
func BeforeTempOpen(m *Manager, hook func(n int)) {
	base := m.fs.openTemp
	var calls atomic.Int64
	m.fs.openTemp = func(path string, fresh bool) (tempFile, error) {
		hook(int(calls.Add(1)))
		return base(path, fresh)
	}
}

// StateDefects is the number of state changes the engine made that the
// transition table refused (moveLocked): dojob's own bugs.
func StateDefects(m *Manager) int64 { return m.defects.Load() }

// SetInUseWindow sets how long m's Complete retries a rename refused
// because another program has a file open (Windows), for tests.
func SetInUseWindow(m *Manager, d time.Duration) { m.fs.inUseWindow = d }

// AfterRenameTry makes m call hook with the result of every try of a
// Complete's rename (the retries of a file in use included), for tests.
func AfterRenameTry(m *Manager, hook func(err error)) {
	base := m.fs.rename
	m.fs.rename = func(from, to string) error {
		err := base(from, to)
		hook(err)
		return err
	}
}

// ReadBack is the number of bytes of files fetched in segments that m read
// back from their temporary files to hash them.
func ReadBack(m *Manager) int64 { return m.readBack.Load() }
