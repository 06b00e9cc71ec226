package dojob

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// store persists the jobs of a Manager in a state directory:
//
//	StateDir/lock               held (flock / exclusive open) while a Manager owns the directory
//	StateDir/jobs/<id>.json     one record per job, 0600, replaced atomically
//	StateDir/damaged/           records that could not be read, set aside
//
// A record is written to <id>.json.tmp, fsynced, renamed over <id>.json, and
// the directory is fsynced, so a crash at any instant leaves either the old
// record or the new one. User calls (CreateJob, AddFile, setters, Resume,
// Suspend, Cancel, Complete) write synchronously before they return; changes
// the engine makes (state changes, progress checkpoints) mark the job dirty
// for the writer goroutine, which coalesces them.
type store struct {
	dir  string
	jobs string
	log  *slog.Logger
	lock *os.File

	// readOnly: a Paused Manager that could not own the directory (it is
	// not writable, or another Manager owns it) only looks: it holds no
	// lock, writes nothing, and every change returns ErrWriteProtect.
	readOnly bool
	why      string // why the directory is read-only here, for the error

	mu      sync.Mutex
	dirty   map[*Job]struct{}
	writing time.Duration // the writer's time spent in batches (tests look)
	batches int           // batches written (tests look)
	// flushHook, when set (tests), runs after each batch as part of it: a
	// test inside a synctest bubble makes a batch take fake time with it.
	flushHook func()
	signal    chan struct{} // capacity 1: the writer has work
	stop      chan struct{} // closed by shutdown
	once      sync.Once
}

// openStore creates or opens a state directory and locks it. A paused
// Manager (Config.Paused) that finds the directory read-only (see
// readOnlyDir, or the lock cannot be created) opens it read-only instead,
// without a lock and without creating or re-securing anything.
func openStore(dir string, log *slog.Logger, paused bool) (*store, error) {
	if !persistenceSupported {
		return nil, errorf(ErrNotImplemented, "state directories are not supported on this platform (no file lock)")
	}
	if dir == "" || !filepath.IsAbs(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, errorf(ErrInvalidArg, "state directory %q: %v", dir, err)
		}
		dir = abs
	}
	s := &store{
		dir:    dir,
		jobs:   filepath.Join(dir, "jobs"),
		log:    log,
		dirty:  make(map[*Job]struct{}),
		signal: make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	if paused {
		if why := readOnlyDir(dir); why != "" {
			s.readOnly, s.why = true, why
			return s, nil
		}
	}
	for _, d := range []string{dir, s.jobs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, localError(fmt.Errorf("creating state directory: %w", err))
		}
		if paused {
			continue // a paused Manager changes no mode of the user's
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, localError(fmt.Errorf("securing state directory: %w", err))
		}
	}
	lock, err := lockFile(filepath.Join(dir, "lock"))
	if err != nil {
		// A directory another Manager owns is refused even when paused: a
		// paused Manager that owns its directory may change jobs (the
		// command line's suspend, cancel, complete), so it must hold the
		// lock. Opening it read-only instead, for a look beside a running
		// Manager, would be one more case here.
		if paused && isReadOnlyErr(err) {
			s.readOnly, s.why = true, "it is not writable"
			return s, nil
		}
		if errors.Is(err, errLocked) {
			return nil, errorf(ErrSharingViolation, "state directory %s is in use by another Manager", dir)
		}
		return nil, localError(fmt.Errorf("locking state directory: %w", err))
	}
	s.lock = lock
	return s, nil
}

// readOnlyDir says why a paused Manager must open dir read-only, or "" if
// it may own it: a directory (or its jobs/) whose mode denies its owner
// writing is read-only — the mode is what a user set with chmod, and
// checking it (rather than trying a write) keeps the look free of writes
// and behaves alike for every user, root included.
func readOnlyDir(dir string) string {
	for _, d := range []string{dir, filepath.Join(dir, "jobs")} {
		fi, err := os.Stat(d)
		if err == nil && fi.IsDir() && fi.Mode().Perm()&0o200 == 0 {
			return d + " is not writable"
		}
	}
	return ""
}

// isReadOnlyErr reports an error that says the file system refuses writes.
func isReadOnlyErr(err error) bool {
	var code HRESULT
	if errors.Is(err, fs.ErrPermission) {
		return true
	}
	return errors.As(localError(err), &code) && code == ErrWriteProtect
}

// writeProtected is the error of a change on a read-only Manager.
func (s *store) writeProtected() error {
	return errorf(ErrWriteProtect, "the state directory %s is open read-only (Config.Paused, and %s)", s.dir, s.why)
}

// close releases the directory lock.
func (s *store) close() error {
	if s.lock == nil {
		return nil
	}
	err := unlockFile(s.lock)
	s.lock = nil
	return err
}

// shutdown tells the writer to flush what is dirty and exit.
func (s *store) shutdown() {
	s.once.Do(func() { close(s.stop) })
}

// changedLocked records that the job changed in a way its record must show
// — the one place the job's version moves. It bumps the version (persist
// writes a record only when the version moved since the last write) and
// queues the job for the writer goroutine, so no change can be counted
// without being written, nor queued without being counted. Engine changes
// (a state change, a checkpoint, a file done or started over, a source
// switch) rely on the writer; a user call that must be durable before it
// returns calls persist after releasing mu too (update, Complete,
// SetValidationState), and the writer then finds nothing left to write.
// It takes the store's lock.
func (j *Job) changedLocked() {
	j.version++
	j.m.markDirty(j)
}

// markDirty queues a job for the writer; only changedLocked calls it. The
// job's mu may be held.
func (m *Manager) markDirty(j *Job) {
	s := m.store
	if s == nil || s.readOnly {
		return
	}
	s.mu.Lock()
	s.dirty[j] = struct{}{}
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// writer is the persistence goroutine: it writes dirty jobs until shutdown,
// then once more.
//
// After a batch it rests for 16 times as long as the batch took (at most
// a checkpoint interval), so that changes arriving meanwhile are written
// together: a job whose thousand files finish within a second would
// otherwise have its whole record — a thousand files long — rewritten for
// each of them. Nothing waits for these writes (user calls write their own
// changes before they return), and what a crash loses in the rest is at
// most what a checkpoint interval loses anyway.
func (m *Manager) writer() {
	s := m.store
	for {
		select {
		case <-s.signal:
			start := time.Now()
			m.flush()
			s.mu.Lock()
			hook := s.flushHook
			s.mu.Unlock()
			if hook != nil {
				hook()
			}
			took := time.Since(start)
			s.mu.Lock()
			s.writing += took
			s.batches++
			s.mu.Unlock()
			if rest := min(writerRest*took, m.cfg.CheckpointInterval); rest > 0 {
				t := time.NewTimer(rest)
				select {
				case <-t.C:
				case <-s.stop:
					t.Stop()
					m.flush()
					return
				}
			}
		case <-s.stop:
			m.flush()
			return
		}
	}
}

// writerRest is how many times as long as its last batch took the writer
// rests before the next: it spends at most a seventeenth of its time
// writing, so rewriting a large record takes little from the transfers.
const writerRest = 16

// flush writes every dirty job.
func (m *Manager) flush() {
	s := m.store
	s.mu.Lock()
	batch := s.dirty
	s.dirty = make(map[*Job]struct{})
	s.mu.Unlock()
	for j := range batch {
		if err := m.persist(j); err != nil {
			m.logAsync(slog.LevelError, "dojob: writing job record", "job", j.id.String(), "err", err)
		}
	}
}

// persist writes the job's record if it changed since the last write, and
// returns when it is durable. A no-op for an in-memory Manager.
func (m *Manager) persist(j *Job) error {
	s := m.store
	if s == nil || s.readOnly {
		return nil
	}
	j.persistMu.Lock()
	defer j.persistMu.Unlock()
	j.mu.Lock()
	if j.removed || j.version == j.saved {
		j.mu.Unlock()
		return nil
	}
	rec := j.recordLocked(m.now())
	v := j.version
	j.mu.Unlock()
	data, err := jsonRecord(rec)
	if err != nil {
		return err
	}
	if err := s.write(j.id, data); err != nil {
		return localError(fmt.Errorf("writing job record: %w", err))
	}
	j.saved = v
	return nil
}

// unpersist deletes the record of a job that reached a final state.
func (m *Manager) unpersist(j *Job) {
	s := m.store
	if s == nil || s.readOnly {
		return
	}
	j.persistMu.Lock()
	defer j.persistMu.Unlock()
	j.mu.Lock()
	j.removed = true
	j.mu.Unlock()
	s.mu.Lock()
	delete(s.dirty, j)
	s.mu.Unlock()
	if err := s.remove(j.id); err != nil && m.logEnabled(slog.LevelError) {
		// Queued: the job's persistMu is held, and the writer waits for it.
		m.queueLog(slog.LevelError, "dojob: deleting job record", slog.Any("job", j.id), slog.Any("err", err))
	}
}

func (s *store) path(id JobID) string { return filepath.Join(s.jobs, id.hex32()+".json") }

// write replaces a record atomically and durably.
func (s *store) write(id JobID, data []byte) error {
	final := s.path(id)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(s.jobs)
}

// remove deletes a record durably.
func (s *store) remove(id JobID) error {
	if err := removeIfExists(s.path(id)); err != nil {
		return err
	}
	return syncDir(s.jobs)
}
