package dojob

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// recordVersion is the version of the record format this release writes.
// A record of another version is set aside, never guessed at; a later
// release that changes the format reads version 1 and migrates it.
const recordVersion = 1

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
	signal  chan struct{} // capacity 1: the writer has work
	stop    chan struct{} // closed by shutdown
	once    sync.Once
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

// markDirty queues a job for the writer. The job's mu may be held.
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
			took := time.Since(start)
			s.mu.Lock()
			s.writing += took
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

// jsonRecord encodes a record for its file: indented, so a person can read
// (and a support engineer diff) a state directory.
func jsonRecord(r *record) ([]byte, error) { return json.MarshalIndent(r, "", "\t") }

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

// record is the on-disk form of a job (version 1). Durations are in
// nanoseconds; times in RFC 3339.
type record struct {
	Version           int            `json:"version"`
	ID                JobID          `json:"id"`
	Seq               uint64         `json:"seq"`
	DisplayName       string         `json:"display_name"`
	Description       string         `json:"description,omitempty"`
	Priority          Priority       `json:"priority"`
	NoProgressTimeout *time.Duration `json:"no_progress_timeout_ns,omitempty"` // nil: the priority's default
	MinimumRetryDelay time.Duration  `json:"minimum_retry_delay_ns"`
	NotifyFlags       NotifyFlags    `json:"notify_flags"`
	State             State          `json:"state"`
	Completing        bool           `json:"completing,omitempty"`
	Created           time.Time      `json:"created"`
	Modified          time.Time      `json:"modified"`
	TransferCompleted time.Time      `json:"transfer_completed,omitzero"`
	ErrorCount        int            `json:"error_count"`
	Error             *recordError   `json:"error,omitempty"`
	LastTransient     *recordError   `json:"last_transient,omitempty"`
	WindowAge         *time.Duration `json:"window_age_ns,omitempty"` // age of the open no-progress window
	RetryIn           time.Duration  `json:"retry_in_ns,omitempty"`   // TRANSIENT_ERROR: time left before the retry
	Streak            int            `json:"streak,omitempty"`
	MaxParallelFiles  int            `json:"max_parallel_files,omitempty"` // added within version 1; absent: 1
	Files             []recordFile   `json:"files"`

	// Added within version 1 (HTTP options): secrets, kept as the rest of
	// the record is (0600 in a 0700 directory), never logged.
	CustomHeaders          http.Header   `json:"custom_headers,omitempty"`
	CustomHeadersWriteOnly bool          `json:"custom_headers_write_only,omitempty"`
	Credentials            []Credentials `json:"credentials,omitempty"`
}

type recordFile struct {
	Remote       string      `json:"remote"`
	Local        string      `json:"local"`
	Temp         string      `json:"temp"`
	Ranges       []FileRange `json:"ranges,omitempty"`
	Size         int64       `json:"size"`
	RemoteSize   int64       `json:"remote_size"`
	Durable      int64       `json:"durable"` // bytes fsynced in Temp
	ETag         string      `json:"etag,omitempty"`
	LastModified string      `json:"last_modified,omitempty"`
	Transferred  bool        `json:"transferred,omitempty"`
	Completed    bool        `json:"completed,omitempty"`

	// Added within version 1: a record without them (from an older
	// release) loads with the high-water mark at Durable and no restarts.
	HighWater     int64  `json:"high_water,omitempty"` // the most bytes the file ever held
	Restarts      int    `json:"restarts,omitempty"`
	RestartReason string `json:"restart_reason,omitempty"`

	// The last response's headers (FileInfo.ResponseHeaders).
	ResponseHeaders http.Header `json:"response_headers,omitempty"`

	// Added within version 1 (verification): absent means none given.
	ExpectedSize int64    `json:"expected_size,omitempty"`
	Checksum     string   `json:"checksum,omitempty"`
	Mirrors      []string `json:"mirrors,omitempty"`
	Verified     bool     `json:"verified,omitempty"`
	HashState    []byte   `json:"hash_state,omitempty"` // the digest of the first HashLen bytes of Temp
	HashLen      int64    `json:"hash_len,omitempty"`

	// Added within version 1 (mirrors): the source in use and the source
	// that gave ETag and LastModified (0 = Remote, i = Mirrors[i-1]).
	Source          int `json:"source,omitempty"`
	ValidatorSource int `json:"validator_source,omitempty"`
}

type recordError struct {
	Context   ErrorContext `json:"context"`
	Code      HRESULT      `json:"code"`
	Message   string       `json:"message,omitempty"`
	File      int          `json:"file"` // index in Files, -1 when none
	Transient bool         `json:"transient,omitempty"`
	Cause     *recordError `json:"cause,omitempty"`
}

// recordLocked snapshots the job for its record.
func (j *Job) recordLocked(now time.Duration) *record {
	r := &record{
		Version:           recordVersion,
		ID:                j.id,
		Seq:               j.seq,
		DisplayName:       j.name,
		Description:       j.desc,
		Priority:          j.prio,
		MinimumRetryDelay: j.retryDelay,
		NotifyFlags:       j.flags,
		State:             j.state,
		Completing:        j.completing,
		Created:           j.created,
		Modified:          j.modified,
		TransferCompleted: j.completedAt,
		ErrorCount:        j.errCount,
		Error:             j.recordErrorLocked(j.jerr),
		LastTransient:     j.recordErrorLocked(j.lastTransient),
		Streak:            j.streak,
		MaxParallelFiles:  j.parallel,
		Files:             make([]recordFile, len(j.files)),

		CustomHeaders:          j.headers,
		CustomHeadersWriteOnly: j.headersWriteOnly,
		Credentials:            j.creds,
	}
	if j.timeoutSet {
		d := j.timeout
		r.NoProgressTimeout = &d
	}
	if j.windowOpen {
		age := now - j.windowStart
		r.WindowAge = &age
	}
	if j.state == StateTransientError {
		r.RetryIn = max(j.retryAt-now, 0)
	}
	for i, f := range j.files {
		r.Files[i] = recordFile{
			Remote: f.remote, Local: f.local, Temp: f.temp, Ranges: f.ranges,
			Size: f.size, RemoteSize: f.remoteSize, Durable: f.durable,
			ETag: f.etag, LastModified: f.lastMod,
			Transferred: f.transferred, Completed: f.completed,
			HighWater: f.markLocked(), Restarts: f.restarts, RestartReason: f.restartReason,
			ResponseHeaders: f.respHeader,
			ExpectedSize:    f.expSize, Checksum: f.checksum, Mirrors: f.mirrors, Verified: f.verified,
			HashState: f.hashState, HashLen: f.hashLen,
			Source: f.src, ValidatorSource: f.valSrc,
		}
	}
	return r
}

func (j *Job) recordErrorLocked(e *JobError) *recordError {
	if e == nil {
		return nil
	}
	r := &recordError{Context: e.Context, Code: e.Code, File: -1, Transient: e.transient}
	if e.File != nil {
		for i, f := range j.files {
			if f.local == e.File.LocalPath {
				r.File = i
			}
		}
	}
	var inner *JobError
	if errors.As(e.Err, &inner) && inner != e {
		r.Cause = j.recordErrorLocked(inner)
	} else if e.Err != nil {
		r.Message = e.Err.Error()
	}
	return r
}

// jobError rebuilds a JobError from its record; the cause chain keeps its
// codes (errors.Is still matches them) and its messages.
func (j *Job) jobError(r *recordError) *JobError {
	if r == nil {
		return nil
	}
	e := &JobError{Context: r.Context, Code: r.Code, transient: r.Transient}
	if r.File >= 0 && r.File < len(j.files) {
		fi := j.files[r.File].infoLocked()
		e.File = &fi
	}
	if r.Cause != nil {
		e.Err = j.jobError(r.Cause)
	} else if r.Message != "" {
		e.Err = errors.New(r.Message)
	}
	return e
}

// reload brings back the jobs of the state directory (NewManager). A
// paused Manager (Config.Paused) only looks: it recovers nothing — damaged
// records are logged but stay where they are, an interrupted write, Complete
// or Cancel is left for the next Manager that is not paused, and no record
// is rewritten — so it writes nothing to the directory.
func (m *Manager) reload() error {
	s := m.store
	look := m.cfg.Paused
	entries, err := os.ReadDir(s.jobs)
	if err != nil {
		if look && errors.Is(err, fs.ErrNotExist) {
			return nil // nothing to look at
		}
		return localError(fmt.Errorf("reading state directory: %w", err))
	}
	var jobs []*Job
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".json.tmp") {
			if !look {
				_ = os.Remove(filepath.Join(s.jobs, name)) // a write a crash interrupted
			}
			continue
		}
		if !strings.HasSuffix(name, ".json") || e.IsDir() {
			continue
		}
		path := filepath.Join(s.jobs, name)
		rec, err := readRecord(path)
		if err == nil && rec.ID.hex32()+".json" != name {
			err = fmt.Errorf("record for job %s stored as %s", rec.ID, name)
		}
		if err != nil {
			if look {
				m.log.Error("dojob: damaged job record (left in place: the Manager is paused)", "record", path, "cause", err)
				continue
			}
			m.setAside(path, err)
			continue
		}
		if look && (rec.Completing || rec.State.Final()) {
			continue // an interrupted Complete or Cancel: the job has ended
		}
		if j := m.restore(rec); j != nil {
			jobs = append(jobs, j)
		}
	}
	slices.SortFunc(jobs, func(a, b *Job) int { return cmpUint64(a.seq, b.seq) })
	for _, j := range jobs {
		m.mu.Lock()
		m.jobs[j.id] = j
		m.seq = max(m.seq, j.seq)
		m.mu.Unlock()
		j.mu.Lock()
		if j.state == StateQueued {
			m.sched.enqueue(j)
		}
		j.mu.Unlock()
	}
	m.kick()
	return nil
}

// setAside moves a damaged record to StateDir/damaged and logs why.
func (m *Manager) setAside(path string, cause error) {
	s := m.store
	dir := filepath.Join(s.dir, "damaged")
	dest := filepath.Join(dir, filepath.Base(path))
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = os.Rename(path, dest)
	}
	m.log.Error("dojob: damaged job record set aside", "record", path, "moved_to", dest, "cause", cause, "move_err", err)
}

// readRecord reads and checks one record.
func readRecord(path string) (*record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("record does not parse: %w", err)
	}
	if rec.Version != recordVersion {
		return nil, fmt.Errorf("record version %d is not %d", rec.Version, recordVersion)
	}
	if err := rec.check(); err != nil {
		return nil, err
	}
	return &rec, nil
}

// check refuses a record no version of dojob writes: a job restored from it
// could act on values no call could have set — transfer to a relative path,
// fetch a non-HTTP URL, believe a file complete that was never requested,
// or delete another job's temporary file. Such a record is damaged and is
// set aside, never guessed at.
func (rec *record) check() error {
	if !rec.State.valid() || !rec.Priority.valid() || rec.MinimumRetryDelay <= 0 || rec.MinimumRetryDelay > MaxTimeout ||
		rec.NotifyFlags&^notifyAll != 0 || rec.ID == (JobID{}) ||
		(rec.NoProgressTimeout != nil && (*rec.NoProgressTimeout < 0 || *rec.NoProgressTimeout > MaxTimeout)) ||
		(rec.WindowAge != nil && (*rec.WindowAge < 0 || *rec.WindowAge > MaxTimeout)) || rec.RetryIn < 0 || rec.RetryIn > MaxTimeout {
		return errors.New("record holds invalid settings")
	}
	if utf8.RuneCountInString(rec.DisplayName) > maxDisplayName || utf8.RuneCountInString(rec.Description) > maxDescription ||
		rec.ErrorCount < 0 || rec.Streak < 0 || rec.MaxParallelFiles < 0 || rec.MaxParallelFiles > MaxParallelFilesLimit {
		return errors.New("record holds invalid settings")
	}
	if h, err := checkHeaders(rec.CustomHeaders); err != nil || len(h) != len(rec.CustomHeaders) {
		return errors.New("record holds invalid custom headers")
	}
	seen := map[[2]int]bool{}
	for _, c := range rec.Credentials {
		k := [2]int{int(c.Target), int(c.Scheme)}
		if c.check() != nil || seen[k] {
			return errors.New("record holds invalid credentials")
		}
		seen[k] = true
	}
	for _, e := range []*recordError{rec.Error, rec.LastTransient} {
		for ; e != nil; e = e.Cause {
			if e.File < -1 || e.File >= len(rec.Files) {
				return fmt.Errorf("record's error names file %d of %d", e.File, len(rec.Files))
			}
		}
	}
	tempPrefix := ".dojob-" + rec.ID.hex32() + "-"
	locals := make(map[string]bool, len(rec.Files))
	temps := make(map[string]bool, len(rec.Files))
	for i, f := range rec.Files {
		if err := f.check(tempPrefix); err != nil {
			return fmt.Errorf("record holds an invalid file %d: %w", i, err)
		}
		if locals[f.Local] || temps[f.Temp] {
			return fmt.Errorf("record holds an invalid file %d: its local or temporary path is another file's", i)
		}
		locals[f.Local], temps[f.Temp] = true, true
	}
	return nil
}

// check validates one file of a record, as AddFile and the transfer would
// have left it.
func (f *recordFile) check(tempPrefix string) error {
	switch {
	case checkRemoteURL(f.Remote) != nil:
		return errors.New("the remote URL is not an http or https URL")
	case checkLocalPath(f.Local) != nil:
		return errors.New("the local path is not absolute and clean")
	case filepath.Dir(f.Temp) != filepath.Dir(f.Local) || !strings.HasPrefix(filepath.Base(f.Temp), tempPrefix) ||
		!strings.HasSuffix(f.Temp, ".tmp"):
		return errors.New("the temporary path is not the job's, next to the local path")
	case f.Ranges != nil && checkRanges(f.Ranges) != nil:
		return errors.New("invalid ranges")
	case f.Size < SizeUnknown || f.RemoteSize < SizeUnknown:
		return errors.New("negative size")
	case f.Durable < 0 || (f.Size != SizeUnknown && f.Durable > f.Size):
		return fmt.Errorf("%d bytes recorded of a file of %d", f.Durable, f.Size)
	case f.Transferred && (f.Size == SizeUnknown || f.Durable != f.Size):
		return errors.New("transferred, but not all of its bytes are recorded")
	case f.Completed && !f.Transferred:
		return errors.New("completed, but not transferred")
	case f.ExpectedSize < 0:
		return errors.New("negative expected size")
	case f.HashLen < 0 || f.HashLen > f.Durable:
		return errors.New("a digest of bytes that are not recorded")
	case f.Source < 0 || f.Source > len(f.Mirrors) || f.ValidatorSource < 0 || f.ValidatorSource > len(f.Mirrors):
		return errors.New("a source that is neither the remote URL nor a mirror")
	}
	if _, _, err := parseChecksum(f.Checksum); err != nil {
		return errors.New("invalid checksum")
	}
	if f.Checksum != "" && f.Transferred && !f.Verified {
		// Only a file whose digest matched is ever recorded transferred.
		return errors.New("transferred, but its checksum was never matched")
	}
	for _, u := range f.Mirrors {
		if checkRemoteURL(u) != nil {
			return errors.New("a mirror is not an http or https URL")
		}
	}
	return nil
}

// restore rebuilds a job from its record, or finishes a job that ended
// (Cancel, Complete) while the previous Manager crashed; it returns nil for
// those.
func (m *Manager) restore(r *record) *Job {
	j := m.newJob(r.ID, r.Created)
	j.seq = r.Seq
	j.name, j.desc = r.DisplayName, r.Description
	j.prio, j.qprio = r.Priority, r.Priority
	if r.NoProgressTimeout != nil {
		j.timeout, j.timeoutSet = *r.NoProgressTimeout, true
	}
	j.retryDelay = r.MinimumRetryDelay
	j.flags = r.NotifyFlags
	j.modified, j.completedAt = r.Modified, r.TransferCompleted
	j.errCount, j.streak = r.ErrorCount, r.Streak
	j.parallel = r.MaxParallelFiles
	if len(r.CustomHeaders) > 0 {
		j.headers, _ = checkHeaders(r.CustomHeaders) // checked by readRecord
	}
	j.headersWriteOnly = r.CustomHeadersWriteOnly
	if len(r.Credentials) > 0 {
		j.creds = r.Credentials
	}
	for _, rf := range r.Files {
		checksum, sum, _ := parseChecksum(rf.Checksum) // checked by readRecord
		j.files = append(j.files, &file{
			remote: rf.Remote, local: rf.Local, temp: rf.Temp, ranges: rf.Ranges,
			size: rf.Size, remoteSize: rf.RemoteSize, durable: rf.Durable,
			etag: rf.ETag, lastMod: rf.LastModified,
			transferred: rf.Transferred, completed: rf.Completed,
			hwm: max(rf.HighWater, rf.Durable), restarts: max(rf.Restarts, 0), restartReason: rf.RestartReason,
			respHeader: rf.ResponseHeaders,
			expSize:    rf.ExpectedSize, checksum: checksum, sum: sum, mirrors: rf.Mirrors, verified: rf.Verified,
			hashState: rf.HashState, hashLen: rf.HashLen,
			src: rf.Source, valSrc: rf.ValidatorSource,
		})
	}

	switch {
	case r.Completing || r.State == StateAcknowledged:
		// Complete was under way: finish promoting what was transferred.
		// A temporary file already gone was renamed before the crash.
		for _, f := range j.files {
			if f.transferred && !f.completed {
				if _, err := os.Stat(f.temp); err == nil {
					if err := m.fs.rename(f.temp, f.local); err != nil {
						m.log.Error("dojob: finishing an interrupted Complete", "job", r.ID.String(), "file", f.local, "err", err)
						continue
					}
					_ = syncDir(filepath.Dir(f.local))
				}
				f.completed = true
			}
		}
		m.discardPartials(j, j.files)
		m.unpersist(j)
		return nil
	case r.State == StateCancelled:
		temps := make([]string, len(j.files))
		for i, f := range j.files {
			temps[i] = f.temp
		}
		_ = m.removeTemps(j, temps)
		m.unpersist(j)
		return nil
	}
	for _, f := range j.files {
		m.checkTemp(j, f)
		if !f.transferred {
			f.verified = false // it will be checked again when it is
		}
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	j.jerr = j.jobError(r.Error)
	j.lastTransient = j.jobError(r.LastTransient)
	now := m.now()
	if r.WindowAge != nil {
		j.windowOpen, j.windowStart = true, now-*r.WindowAge
	}
	switch r.State {
	case StateConnecting, StateTransferring, StateQueued:
		// The transfer died with the previous Manager: queue it again; it
		// resumes from the temporary files.
		j.state = StateQueued
	case StateTransientError:
		j.state = StateTransientError
		j.retryAt = now + r.RetryIn
		if !m.store.readOnly { // a read-only Manager's jobs stay as recorded
			m.clock.set(&j.retryDL, j.retryAt)
		}
	case StateTransferred, StateError:
		j.state = r.State
		j.episode, j.pendingFinal = 1, true
		if r.State == StateTransferred && j.nextFileLocked() != nil {
			// A transferred file lost its temporary file: fetch it again.
			j.state = StateQueued
			j.pendingFinal = false
		}
	default:
		j.state = r.State
	}
	if j.state != StateError && j.state != StateTransientError {
		j.jerr = nil
	}
	if j.windowOpen && j.state.active() {
		if !m.store.readOnly {
			m.clock.set(&j.windowDL, j.windowStart+j.timeoutLocked())
		}
	} else {
		j.windowOpen = false
	}
	j.version++ // the restored state (e.g. QUEUED) is written on the next save
	j.saved = 0
	if m.cfg.Paused {
		// Written only if a change is made (by a Manager that owns the
		// directory): a paused Manager writes nothing of its own accord.
		j.saved = j.version
		return j
	}
	m.markDirty(j)
	return j
}

// checkTemp reconciles a restored file with its temporary file: a transfer
// resumes from the last checkpoint (the bytes fsynced and recorded); a
// temporary file shorter than that (data lost) resumes from what it holds;
// a missing one starts over.
func (m *Manager) checkTemp(j *Job, f *file) {
	if f.completed {
		return
	}
	fi, err := os.Stat(f.temp)
	switch {
	case err != nil && errors.Is(err, fs.ErrNotExist):
		if f.transferred || f.durable > 0 {
			m.log.Warn("dojob: temporary file missing; the file starts over", "job", j.id.String(), "file", f.temp)
			f.restarts++
			f.restartReason = "temporary file missing"
		}
		f.transferred = false
		f.durable = 0
		f.etag, f.lastMod = "", ""
	case err != nil:
		m.log.Warn("dojob: temporary file unreadable", "job", j.id.String(), "file", f.temp, "err", err)
	case f.transferred && fi.Size() != f.size:
		f.transferred = false
		f.durable = min(f.durable, fi.Size())
	case fi.Size() < f.durable:
		f.durable = fi.Size()
	}
	f.done.Store(f.durable)
}
