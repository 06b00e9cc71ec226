package dojob

import (
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"time"
)

// Callback receives a job's notifications (IBackgroundCopyCallback).
//
// Per job, callbacks run one at a time, in the order the events happened, on
// a goroutine the Manager owns and waits for in Close, never while dojob holds
// a lock: a callback may call any method of the job or the Manager, and
// calling Complete from JobTransferred is the canonical pattern. Callbacks of
// different jobs may run concurrently. Manager.Close and Job.Wait called
// from a callback do not wait for the callbacks that are running (the
// caller among them): see their documentation.
//
// JobTransferred is called when the job enters TRANSFERRED, and JobError when
// it enters ERROR (never for transient errors). If either returns a non-nil
// error or panics (the panic is recovered and logged), it is called again
// after the job's minimum retry delay for as long as the job stays in that
// state: delivery is at least once. JobModification is called on state
// changes, property changes, added files and progress; its result is
// ignored. Which methods are called is chosen by the job's NotifyFlags.
type Callback interface {
	JobTransferred(j *Job) error
	JobError(j *Job, e *JobError) error
	JobModification(j *Job) error
}

// FileCallback is an optional extension of Callback: a Callback that also
// implements it is told when each file of a job finishes transferring, if
// the job's flags include NotifyFileTransferred (IBackgroundCopyCallback2),
// in the order the files finish (the order added unless the job transfers
// several at once: Job.SetMaxParallelFiles).
type FileCallback interface {
	FileTransferred(j *Job, f FileInfo) error
}

// StateCallback is an optional extension of Callback: a Callback that also
// implements it is told of every state change of the job, with the states
// it moved between, in order — including the moves into ERROR, TRANSFERRED
// and the final states, and even if the job has moved on again by the time
// the call runs. (JobModification only says that something changed; this is
// the status-with-the-call style of DO's IDODownloadStatusCallback.) It is
// called when the job's flags include NotifyJobModification, just before the
// JobModification of the same change; its result is ignored.
type StateCallback interface {
	JobStateChanged(j *Job, from, to State) error
}

// CallbackFuncs implements Callback (and FileCallback, StateCallback) with optional
// functions; a nil field is a no-op that returns nil. The zero value ignores
// every notification.
type CallbackFuncs struct {
	Transferred  func(j *Job) error                 // called by JobTransferred
	Error        func(j *Job, e *JobError) error    // called by JobError
	Modification func(j *Job) error                 // called by JobModification
	File         func(j *Job, f FileInfo) error     // called by FileTransferred
	StateChanged func(j *Job, from, to State) error // called by JobStateChanged
}

// JobTransferred calls Transferred if it is set.
func (c CallbackFuncs) JobTransferred(j *Job) error {
	if c.Transferred == nil {
		return nil
	}
	return c.Transferred(j)
}

// JobError calls Error if it is set.
func (c CallbackFuncs) JobError(j *Job, e *JobError) error {
	if c.Error == nil {
		return nil
	}
	return c.Error(j, e)
}

// JobModification calls Modification if it is set.
func (c CallbackFuncs) JobModification(j *Job) error {
	if c.Modification == nil {
		return nil
	}
	return c.Modification(j)
}

// FileTransferred calls File if it is set.
func (c CallbackFuncs) FileTransferred(j *Job, f FileInfo) error {
	if c.File == nil {
		return nil
	}
	return c.File(j, f)
}

// JobStateChanged calls StateChanged if it is set.
func (c CallbackFuncs) JobStateChanged(j *Job, from, to State) error {
	if c.StateChanged == nil {
		return nil
	}
	return c.StateChanged(j, from, to)
}

// NotifyFlags selects the notifications a job delivers (BG_NOTIFY_*).
type NotifyFlags uint32

// The notification flags, with their BITS values. A new job has
// NotifyJobTransferred|NotifyJobError.
const (
	NotifyJobTransferred  NotifyFlags = 0x1  // JobTransferred
	NotifyJobError        NotifyFlags = 0x2  // JobError
	NotifyDisable         NotifyFlags = 0x4  // no notification at all, whatever else is set
	NotifyJobModification NotifyFlags = 0x8  // JobModification
	NotifyFileTransferred NotifyFlags = 0x10 // FileCallback.FileTransferred
	notifyAll                         = NotifyJobTransferred | NotifyJobError | NotifyDisable | NotifyJobModification | NotifyFileTransferred

	// DefaultNotifyFlags are the flags of a new job.
	DefaultNotifyFlags = NotifyJobTransferred | NotifyJobError
)

// String lists the set flags, e.g. "JOB_TRANSFERRED|JOB_ERROR".
func (f NotifyFlags) String() string {
	if f == 0 {
		return "0"
	}
	var parts []string
	for _, n := range []struct {
		f    NotifyFlags
		name string
	}{
		{NotifyJobTransferred, "JOB_TRANSFERRED"},
		{NotifyJobError, "JOB_ERROR"},
		{NotifyDisable, "DISABLE"},
		{NotifyJobModification, "JOB_MODIFICATION"},
		{NotifyFileTransferred, "FILE_TRANSFERRED"},
	} {
		if f&n.f != 0 {
			parts = append(parts, n.name)
		}
	}
	if rest := f &^ notifyAll; rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint32(rest)))
	}
	return strings.Join(parts, "|")
}

// SetNotifyFlags chooses which notifications the job delivers. Unknown bits
// return ErrInvalidArg. Enabling JobTransferred or JobError on a job already
// in TRANSFERRED or ERROR delivers the notification it owes.
func (j *Job) SetNotifyFlags(f NotifyFlags) error {
	if f&^notifyAll != 0 {
		return errorf(ErrInvalidArg, "unknown notify flags %#x", uint32(f&^notifyAll))
	}
	return j.update(func() (bool, error) {
		if j.flags == f {
			return false, nil
		}
		j.flags = f
		j.queueFinalLocked()
		j.armTickLocked()
		j.wakeLocked() // a notification Wait waited for may no longer be deliverable
		return true, nil
	})
}

// NotifyFlags returns the job's notification flags.
func (j *Job) NotifyFlags() NotifyFlags {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.flags
}

// SetNotifyInterface registers cb for the job's notifications, replacing any
// earlier one; nil clears it. Registering on a job that is already
// TRANSFERRED or ERROR delivers that notification (BITS: at least once).
// Callbacks are not persisted: after a restart, register again.
// Registering raises no JobModification.
func (j *Job) SetNotifyInterface(cb Callback) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.mutableLocked(); err != nil {
		return err
	}
	// Not a modification of the job: nothing is persisted and no
	// JobModification is raised. Registering again is how an application
	// asks for what is owed (BITS).
	j.cb = cb
	j.queueFinalLocked()
	j.armTickLocked()
	j.wakeLocked() // a notification Wait waited for may no longer be deliverable
	return nil
}

// NotifyInterface returns the registered callback, or nil.
func (j *Job) NotifyInterface() Callback {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cb
}

type noteKind uint8

const (
	noteModification noteKind = iota
	noteTransferred
	noteError
	noteFile
	noteState
)

// maxNotes bounds a job's queue: past it, modifications merge into the last
// one even when they are not progress (a callback that blocks for days
// cannot make the queue grow without bound).
const maxNotes = 1024

// note is one queued notification.
type note struct {
	kind     noteKind
	progress bool      // a progress JobModification, which later progress merges into
	from, to State     // for noteState
	episode  uint64    // for noteTransferred/noteError: the entry it belongs to
	file     *FileInfo // for noteFile
}

// wantsLocked reports whether a notification of kind k would be delivered.
func (j *Job) wantsLocked(k noteKind) bool {
	if j.cb == nil || j.flags&NotifyDisable != 0 {
		return false
	}
	switch k {
	case noteTransferred:
		return j.flags&NotifyJobTransferred != 0
	case noteError:
		return j.flags&NotifyJobError != 0
	case noteFile:
		_, ok := j.cb.(FileCallback)
		return ok && j.flags&NotifyFileTransferred != 0
	case noteState:
		_, ok := j.cb.(StateCallback)
		return ok && j.flags&NotifyJobModification != 0
	default:
		return j.flags&NotifyJobModification != 0
	}
}

// queueModificationLocked queues a JobModification for a state change, a
// property change or an added file. Each gets its own call (up to maxNotes
// queued). It may take goMu (pushLocked).
func (j *Job) queueModificationLocked() {
	if !j.wantsLocked(noteModification) {
		return
	}
	n := len(j.notes)
	if n >= maxNotes && j.notes[n-1].kind == noteModification {
		return
	}
	j.notedBytes = j.bytesLocked()
	j.pushLocked(note{kind: noteModification})
}

// queueProgressLocked queues a JobModification for progress. Progress is
// coalesced: one already waiting at the end of the queue absorbs the new
// one, so a slow callback sees the latest progress, not a backlog. It may
// take goMu (pushLocked).
func (j *Job) queueProgressLocked() {
	if !j.wantsLocked(noteModification) {
		return
	}
	if n := len(j.notes); n > 0 && j.notes[n-1].kind == noteModification && (j.notes[n-1].progress || n >= maxNotes) {
		return
	}
	j.pushLocked(note{kind: noteModification, progress: true})
}

// queueStateLocked queues JobStateChanged for a StateCallback. It may take
// goMu (pushLocked).
func (j *Job) queueStateLocked(from, to State) {
	if j.wantsLocked(noteState) && len(j.notes) < maxNotes {
		j.pushLocked(note{kind: noteState, from: from, to: to})
	}
}

// queueFinalLocked queues the JobTransferred or JobError the job owes for
// its current stay in TRANSFERRED or ERROR, unless it is already queued or
// cannot be delivered yet (no callback, or flags off). It takes the clock's
// lock, and may take goMu (pushLocked).
func (j *Job) queueFinalLocked() {
	if !j.pendingFinal || j.queuedEp == j.episode {
		return
	}
	k := noteTransferred
	if j.state == StateError {
		k = noteError
	}
	if !j.wantsLocked(k) {
		return
	}
	j.queuedEp = j.episode
	j.m.clock.stop(&j.redeliverDL)
	j.pushLocked(note{kind: k, episode: j.episode})
}

// queueFileLocked queues FileTransferred for f. It may take goMu
// (pushLocked).
func (j *Job) queueFileLocked(f *file) {
	if !j.wantsLocked(noteFile) {
		return
	}
	fi := f.infoLocked()
	j.pushLocked(note{kind: noteFile, file: &fi})
}

// pushLocked appends n to the queue and makes sure a drain goroutine runs;
// starting one takes the Manager's goMu (spawn).
func (j *Job) pushLocked(n note) {
	j.notes = append(j.notes, n)
	if !j.draining && j.m.spawnTask(j, "callbacks", j.drain) != nil {
		j.draining = true
	}
}

// drain delivers the job's queued notifications one at a time, outside the
// lock, and exits when the queue is empty or the Manager is closing. t is
// its task: it is marked while a callback runs (Manager.enterCallback), so
// that a Close called from a callback does not wait for it. Once Close has
// begun no callback starts, and after a callback that was running returns
// the drain exits without re-delivering or logging anything.
func (j *Job) drain(t *task) {
	for {
		j.mu.Lock()
		if len(j.notes) == 0 || j.m.closed.Load() {
			j.draining = false
			j.mu.Unlock()
			return
		}
		n := j.notes[0]
		j.notes[0] = note{}
		j.notes = j.notes[1:]
		if len(j.notes) == 0 {
			j.notes = nil // let the backing array go
		}
		cb := j.cb
		deliver := j.wantsLocked(n.kind)
		var jerr *JobError
		switch n.kind {
		case noteTransferred, noteError:
			// Delivered only while the job is still in the state it owes
			// the notification for.
			if n.episode != j.episode || !j.pendingFinal {
				deliver = false
			}
			if !deliver && j.queuedEp == n.episode {
				j.queuedEp = 0 // may be queued again, e.g. when the flags allow it
			}
			jerr = j.jerr
		}
		final := deliver && (n.kind == noteTransferred || n.kind == noteError)
		if final {
			j.finalBusy = true
		}
		j.calling = deliver
		j.mu.Unlock()
		if !deliver {
			continue
		}

		var err error
		called := j.m.enterCallback(t) // false once Close has begun
		if called {
			err = j.call(cb, n, jerr)
			j.m.leaveCallback(t)
		}

		j.mu.Lock()
		j.calling = false
		if final {
			j.finalBusy = false
			j.wakeLocked() // Wait may have been waiting for this call
			if j.queuedEp == n.episode {
				j.queuedEp = 0
			}
			// After Close has begun nothing is re-delivered or logged: the
			// outcome of a call that ran is kept in memory only (a reloaded
			// job owes its notification again anyway).
			if called && n.episode == j.episode && j.pendingFinal {
				if err == nil {
					j.pendingFinal = false
					j.cbErr = nil
				} else {
					// What CallbackError (and a Wait whose ctx ends) tells.
					fails := 1
					if j.cbErr != nil && j.cbErr.episode == n.episode {
						fails = j.cbErr.Failures + 1
					}
					j.cbErr = &CallbackError{Notification: n.kind.callbackName(), Failures: fails, Err: err, episode: n.episode}
				}
				if err != nil && !j.m.closed.Load() {
					if j.m.logEnabled(slog.LevelWarn) {
						j.m.queueLog(slog.LevelWarn, "dojob: callback failed; it will be called again", slog.Any("job", j.id), slog.Any("err", err))
					}
					j.m.clock.set(&j.redeliverDL, j.m.now()+j.retryDelay)
				}
			}
		}
		j.mu.Unlock()
	}
}

// call runs one callback method, turning a panic into an error.
func (j *Job) call(cb Callback, n note, jerr *JobError) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("dojob: callback panicked: %v", r)
			if !j.m.closed.Load() && j.m.logEnabled(slog.LevelError) {
				j.m.queueLog(slog.LevelError, "dojob: callback panicked", slog.Any("job", j.id), slog.String("panic", fmt.Sprint(r)))
			}
		}
	}()
	return deliver(j, cb, n, jerr)
}

// deliver calls the callback method for n. Its frame on a goroutine's stack
// is what makes that goroutine "inside a callback" (inCallback), so it is
// never inlined and every user callback is called from here alone.
//
//go:noinline
func deliver(j *Job, cb Callback, n note, jerr *JobError) error {
	switch n.kind {
	case noteTransferred:
		return cb.JobTransferred(j)
	case noteError:
		return cb.JobError(j, jerr)
	case noteFile:
		return cb.(FileCallback).FileTransferred(j, *n.file)
	case noteState:
		return cb.(StateCallback).JobStateChanged(j, n.from, n.to)
	default:
		return cb.JobModification(j)
	}
}

// deliverName is deliver's name as runtime.Frame reports it.
var deliverName = runtime.FuncForPC(reflect.ValueOf(deliver).Pointer()).Name()

// inCallback reports whether the calling goroutine is running a user
// callback of any Manager: whether deliver is on its stack. (Go has no
// goroutine identity; the stack is the goroutine's own record of what it
// is doing, and this asks it by function, not by parsing text.) A goroutine
// that a callback starts is not inside the callback. It walks the whole
// stack, so it is for Close and for a Wait that would block, not for hot
// paths.
func inCallback() bool {
	pcs := make([]uintptr, 64)
	for {
		n := runtime.Callers(2, pcs)
		if n < len(pcs) {
			pcs = pcs[:n]
			break
		}
		pcs = make([]uintptr, 2*len(pcs))
	}
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.Function == deliverName {
			return true
		}
		if !more {
			return false
		}
	}
}

// wakeLocked wakes every Wait: it closes the job's changed channel and
// replaces it. Called on every state change and whenever what Wait waits
// for (settledLocked) may have changed.
func (j *Job) wakeLocked() {
	close(j.changed)
	j.changed = make(chan struct{})
}

// settledLocked reports whether Wait may return: the job is in a state that
// needs the caller, and no JobTransferred/JobError is running or owed and
// deliverable (queued, or waiting to be delivered again after a failure).
// An owed notification that cannot be delivered (no callback, flags off) is
// not waited for: nothing would ever deliver it while Wait waits.
func (j *Job) settledLocked() bool {
	switch j.state {
	case StateTransferred, StateError, StateSuspended, StateAcknowledged, StateCancelled:
	default:
		return false
	}
	if j.finalBusy {
		return false
	}
	if j.pendingFinal {
		k := noteTransferred
		if j.state == StateError {
			k = noteError
		}
		return !j.wantsLocked(k)
	}
	return true
}

// onRedeliver re-queues a JobTransferred or JobError whose callback failed,
// if the job still owes it.
func (j *Job) onRedeliver(time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.queueFinalLocked()
}

// CallbackError is a notification the job owes — JobTransferred or
// JobError, delivered at least once — that its callback has failed to take:
// each call returned an error or panicked (a typed nil Callback panics), and
// the notification is delivered again after the retry delay while the job
// stays in its state. Job.CallbackError returns it; a Wait whose ctx ends
// while it is owed returns it joined with ctx's error, so a caller that
// bounds Wait learns why it did not return.
type CallbackError struct {
	Notification string // "JobTransferred" or "JobError"
	Failures     int    // calls that failed in a row
	Err          error  // the last call's error (or its recovered panic)

	episode uint64 // the state's episode the notification is owed for
}

// Error describes the failing notification and its last error.
func (e *CallbackError) Error() string {
	return fmt.Sprintf("dojob: the %s callback failed %d time(s); it is called again: %v", e.Notification, e.Failures, e.Err)
}

// Unwrap returns the last call's error.
func (e *CallbackError) Unwrap() error { return e.Err }

// CallbackError returns the JobTransferred or JobError notification the job
// owes and that its callback has failed to take so far (CallbackError), or
// nil when no notification owed for the job's current state has failed.
func (j *Job) CallbackError() *CallbackError {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.owedErrLocked()
}

// owedErrLocked is CallbackError: the failure is reported only while the
// notification is still owed for the state the job is in.
func (j *Job) owedErrLocked() *CallbackError {
	if e := j.cbErr; e != nil && j.pendingFinal && e.episode == j.episode {
		c := *e
		return &c
	}
	return nil
}

// callbackName is the Callback method a final notification calls.
func (k noteKind) callbackName() string {
	if k == noteError {
		return "JobError"
	}
	return "JobTransferred"
}
