package dojob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// JobID identifies a job: a random GUID. String gives the Windows GUID form
// {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}; ParseJobID reads it back. The zero
// value is the null GUID, which no job has.
type JobID [16]byte

// newJobID returns a random (version 4) GUID.
func newJobID() JobID {
	var id JobID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// String returns the GUID form, upper case in braces as Windows prints it.
func (id JobID) String() string {
	var b [38]byte
	b[0] = '{'
	hex.Encode(b[1:9], id[0:4])
	b[9] = '-'
	hex.Encode(b[10:14], id[4:6])
	b[14] = '-'
	hex.Encode(b[15:19], id[6:8])
	b[19] = '-'
	hex.Encode(b[20:24], id[8:10])
	b[24] = '-'
	hex.Encode(b[25:37], id[10:16])
	b[37] = '}'
	return strings.ToUpper(string(b[:]))
}

// hex32 returns the ID as 32 lower-case hex digits, for file names.
func (id JobID) hex32() string { return hex.EncodeToString(id[:]) }

// ParseJobID parses a GUID with or without braces, in either case, such as
// "{5CE34C0D-0DC9-4C1F-897C-DAA1B78CEE7C}". A malformed string gives an error
// matching ErrInvalidArg.
func ParseJobID(s string) (JobID, error) {
	var id JobID
	t := strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	if len(t) != 36 || len(s)-len(t) == 1 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-' {
		return id, errorf(ErrInvalidArg, "malformed job ID %q", s)
	}
	h := t[0:8] + t[9:13] + t[14:18] + t[19:23] + t[24:36]
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return JobID{}, errorf(ErrInvalidArg, "malformed job ID %q", s)
	}
	return id, nil
}

// MarshalText encodes the ID in its GUID form.
func (id JobID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a GUID form written by MarshalText.
func (id *JobID) UnmarshalText(b []byte) error {
	v, err := ParseJobID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Priority is a job's priority, numbered as BG_JOB_PRIORITY. FOREGROUND jobs
// run concurrently up to Config.MaxForegroundJobs; the three background
// levels share Config.MaxBackgroundJobs, HIGH before NORMAL before LOW.
type Priority int

// The priorities, numbered as BG_JOB_PRIORITY. A new job is NORMAL.
const (
	PriorityForeground Priority = iota
	PriorityHigh
	PriorityNormal
	PriorityLow
)

// String returns the priority's name, e.g. "FOREGROUND".
func (p Priority) String() string {
	switch p {
	case PriorityForeground:
		return "FOREGROUND"
	case PriorityHigh:
		return "HIGH"
	case PriorityNormal:
		return "NORMAL"
	case PriorityLow:
		return "LOW"
	}
	return fmt.Sprintf("Priority(%d)", int(p))
}

func (p Priority) valid() bool { return p >= PriorityForeground && p <= PriorityLow }

// SizeUnknown is the BytesTotal of a file, or of a job, whose size is not
// known yet (BG_SIZE_UNKNOWN).
const SizeUnknown int64 = -1

// Progress is a snapshot of a job's progress (BG_JOB_PROGRESS).
type Progress struct {
	BytesTotal       int64 // SizeUnknown until the size of every file is known; with ranges, only the requested bytes
	BytesTransferred int64 // bytes in the job's temporary files
	FilesTotal       int   // files in the job
	FilesTransferred int   // files whose every byte is transferred
}

// Times is a snapshot of a job's times (BG_JOB_TIMES), in wall-clock time.
type Times struct {
	Creation           time.Time // CreateJob
	Modification       time.Time // the last state change, property change, added file or transferred byte
	TransferCompletion time.Time // the last entry into TRANSFERRED; zero before
}

// Limits on strings, in characters (BITS).
const (
	maxDisplayName = 256
	maxDescription = 1024
)

// Default no-progress timeouts (DO): a FOREGROUND job gives up after an hour
// without progress, every other priority after a day (DO treats all
// non-foreground priorities alike).
const (
	DefaultForegroundNoProgressTimeout = 3600 * time.Second
	DefaultBackgroundNoProgressTimeout = 86400 * time.Second
	// DefaultMinimumRetryDelay is the first wait after a transient error.
	DefaultMinimumRetryDelay = 2 * time.Second

	// MaxTimeout is the longest no-progress timeout or retry delay a job
	// takes: BITS takes them as a ULONG of seconds (about 136 years). It
	// also keeps the deadline arithmetic far from overflowing.
	MaxTimeout = (1<<32 - 1) * time.Second
)

// Job is a download job: an ordered list of files, a state, settings and an
// error object (the IBackgroundCopyJob of BITS/DO). A Job is created by
// Manager.CreateJob and is safe for concurrent use by any number of
// goroutines; its methods may also be called from inside its callbacks.
// A *Job stays valid after the job reaches a final state: its getters keep
// working and its state-changing methods and setters return ErrInvalidState.
// After Manager.Close they return ErrNoService. The zero Job is not usable:
// it belongs to no Manager, and its state-changing methods would panic.
//
// Lock order (for maintainers; docs/design.md, Lock order): a Job's opMu,
// then its persistMu, then its mu, then one of the Manager's index lock,
// the scheduler's, the clock's, the store's or the log queue's (none of
// these is taken under another), and last the Manager's goMu. A goroutine
// never takes a lock that comes earlier than one it holds; mu is never held
// across I/O, a callback, the Logger or a wait. Helpers named …Locked need
// mu held and say which other locks they take.
type Job struct {
	m       *Manager
	id      JobID
	seq     uint64 // creation order within the Manager
	created time.Time

	// opMu serialises the operations that wait for the transfer goroutine
	// or touch files — Resume, Suspend, Cancel, Complete — so no two of them
	// interleave. It is taken before mu, never while holding mu, and never by
	// a Manager goroutine other than a callback.
	opMu sync.Mutex

	// mu guards every field below unless a comment says otherwise. It is
	// never held across I/O, a callback or a wait.
	mu          sync.Mutex
	state       State
	changed     chan struct{} // closed and replaced on every state change (Wait)
	name        string
	desc        string
	prio        Priority
	timeout     time.Duration // no-progress timeout, when timeoutSet
	timeoutSet  bool
	retryDelay  time.Duration // MinimumRetryDelay
	flags       NotifyFlags
	cb          Callback
	files       []*file
	jerr        *JobError // the error object: non-nil only in ERROR and TRANSIENT_ERROR
	errCount    int
	modified    time.Time
	completedAt time.Time
	completing  bool          // Complete is promoting files; nothing may start a transfer
	parallel    int           // MaxParallelFiles; 0 means 1 (parallel.go)
	conns       int           // MaxConnections; 0 means 1 (connections.go)
	minSpeed    int64         // SetMinimumSpeed's bytes per second; 0: no limit (speed.go)
	speedWindow time.Duration // and its window; 0 when there is no limit
	// Pacing and holds by policy (pace.go, cost.go, hold.go). bucket is
	// read by the copy loops without the lock.
	maxBandwidth int64                        // SetMaximumBandwidth; 0: no limit
	bucket       atomic.Pointer[rate.Limiter] // its bucket; nil when no limit
	cost         CostPolicy                   // SetCostPolicy, when costSet
	costSet      bool
	holdUntil    time.Duration // a held job: when the hold ends (Manager clock); 0 unknown
	version      uint64        // bumped on every change persistence must record

	// HTTP options (httpopts.go). headers and creds are replaced, never
	// modified in place, so a request may keep a reference outside the lock.
	headers          http.Header   // custom request headers, canonical; nil when none
	headersWriteOnly bool          // CustomHeaders refuses to return them
	creds            []Credentials // at most one per target and scheme
	net              *jobNet       // proxy and TLS settings (netopts.go); nil: the defaults

	// Retries and the no-progress window (timeout.go).
	streak        int           // consecutive failed attempts that moved no byte
	windowOpen    bool          // the no-progress window is open
	windowStart   time.Duration // when it opened, on the Manager's monotonic clock
	lastTransient *JobError     // the transient error ErrNoProgress will wrap
	retryAt       time.Duration // when a TRANSIENT_ERROR job is queued again

	// Deadlines in the Manager's clock; their heap positions are guarded by
	// the clock's own lock.
	retryDL, windowDL, tickDL, redeliverDL, maxTimeDL deadline

	// Limits and notification pacing (dltime.go).
	maxTime  time.Duration // SetMaximumDownloadTime; 0: no limit
	dlUsed   time.Duration // time spent CONNECTING/TRANSFERRING before dlSince
	dlSince  time.Duration // when the current CONNECTING/TRANSFERRING stretch began (Manager clock)
	dlSaved  time.Duration // when a running transfer last asked to persist dlUsed
	maxSize  int64         // SetMaximumDownloadSize; 0: no limit
	notifyIv time.Duration // SetMinimumNotificationInterval; 0: the default
	notedAt  time.Duration // when the last progress JobModification was queued (Manager clock)

	// The running transfer (transfer.go), nil when none; last is the most
	// recent one, whose goroutine may still be exiting.
	xfer, last *transfer

	// Notifications (callback.go).
	notes        []note
	draining     bool           // a drain goroutine is running for this job
	episode      uint64         // entries into TRANSFERRED or ERROR so far
	pendingFinal bool           // JobTransferred / JobError owed for the current episode
	cbErr        *CallbackError // the owed JobTransferred / JobError that failed so far (CallbackError)
	finalBusy    bool           // a JobTransferred / JobError call is running (Wait waits for it)
	calling      bool           // a callback of any kind is running (Wait from a callback does not wait then)
	queuedEp     uint64         // the episode whose JobTransferred/JobError is queued or being delivered; 0 when none
	notedBytes   int64          // BytesTransferred at the last progress JobModification

	// Scheduler bookkeeping, guarded by m.sched.mu.
	qidx       int      // index in the scheduler's queue; -1 when not queued
	qseq       uint64   // queue order within a priority (first come, first served)
	qprio      Priority // the priority the scheduler sorts by
	requeueSeq uint64   // a pre-empted job's place in line, restored by enqueue (set under mu)

	// Persistence (store.go), guarded by persistMu, which is taken before
	// mu and held across the record's write.
	persistMu sync.Mutex
	saved     uint64 // the version last written
	removed   bool   // the record is deleted (final job); guarded by mu
}

// ID returns the job's identifier.
func (j *Job) ID() JobID { return j.id }

// State returns the job's current state.
func (j *Job) State() State {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state
}

// mutableLocked returns the error for a state-changing call or a setter on a
// job that can no longer change: ErrNoService after Manager.Close,
// ErrInvalidState in ACKNOWLEDGED and CANCELLED.
func (j *Job) mutableLocked() error {
	if j.m.closed.Load() {
		return errorf(ErrNoService, "the manager is closed")
	}
	if err := j.m.writeProtected(); err != nil {
		return err
	}
	if j.state.Final() {
		return errorf(ErrInvalidState, "job %s is %s", j.id, j.state)
	}
	return nil
}

// update applies a change to a settable property: it checks the job can
// change and runs fn under the lock. If fn reports a change, update stamps
// the modification time, queues JobModification and writes the change to
// disk before returning. A setter that sets the value already there
// changes nothing and notifies no one (so a JobModification callback that
// sets a property does not call itself forever).
func (j *Job) update(fn func() (changed bool, err error)) error {
	j.mu.Lock()
	if err := j.mutableLocked(); err != nil {
		j.mu.Unlock()
		return err
	}
	changed, err := fn()
	if err != nil || !changed {
		j.mu.Unlock()
		return err
	}
	j.modified = time.Now()
	j.changedLocked()
	j.queueModificationLocked()
	j.mu.Unlock()
	return j.m.persist(j)
}

// Resume queues the job for transfer: SUSPENDED, ERROR and TRANSIENT_ERROR
// move to QUEUED (closing any no-progress window and starting the retry
// back-off afresh); QUEUED, CONNECTING and TRANSFERRING are left as they are;
// a TRANSFERRED job moves to QUEUED only if files were added since. A job
// with no file returns ErrJobEmpty and stays SUSPENDED. A job it queues
// starts its maximum download time over, unless it was SUSPENDED
// (SetMaximumDownloadTime).
func (j *Job) Resume() error {
	j.opMu.Lock()
	defer j.opMu.Unlock()
	j.mu.Lock()
	if err := j.mutableLocked(); err != nil {
		j.mu.Unlock()
		return err
	}
	if len(j.files) == 0 {
		j.mu.Unlock()
		return errorf(ErrJobEmpty, "job %s has no file", j.id)
	}
	for _, f := range j.files {
		f.skip = nil // the caller's Resume gives every mirror its chance again
	}
	var err error
	switch j.state {
	case StateSuspended, StateError, StateTransientError:
		j.closeWindowLocked()
		j.streak = 0
		j.resumeDownloadTimeLocked()
		err = j.moveLocked(StateQueued)
	case StateTransferred:
		if j.nextFileLocked() != nil {
			j.resumeDownloadTimeLocked()
			err = j.moveLocked(StateQueued)
		}
	}
	j.mu.Unlock()
	if err != nil {
		return err
	}
	return j.m.persist(j)
}

// Suspend stops the job's transfer and moves it to SUSPENDED, where it stays
// until Resume, Complete or Cancel. The temporary files are kept, so Resume
// continues where the transfer stopped. Suspending a SUSPENDED job does
// nothing; a TRANSFERRED job stays TRANSFERRED (there is nothing to stop).
func (j *Job) Suspend() error {
	j.opMu.Lock()
	defer j.opMu.Unlock()
	j.mu.Lock()
	if err := j.mutableLocked(); err != nil {
		j.mu.Unlock()
		return err
	}
	if j.state != StateSuspended && j.state != StateTransferred {
		j.stopTransferLocked()
		if err := j.moveLocked(StateSuspended); err != nil {
			j.mu.Unlock()
			return err
		}
	}
	j.mu.Unlock()
	return j.m.persist(j)
}

// Cancel ends the job in CANCELLED: it stops the transfer and deletes every
// temporary file; nothing appears at any destination. It works in every
// non-final state and returns once the files are gone. A temporary file that
// cannot be deleted is logged, not returned (BITS returns a success code).
func (j *Job) Cancel() error {
	j.opMu.Lock()
	defer j.opMu.Unlock()
	j.mu.Lock()
	if err := j.mutableLocked(); err != nil {
		j.mu.Unlock()
		return err
	}
	last := j.last
	j.stopTransferLocked()
	if err := j.moveLocked(StateCancelled); err != nil {
		j.mu.Unlock()
		return err
	}
	temps := make([]string, 0, len(j.files))
	for _, f := range j.files {
		if !f.Stream { // a stream has no temporary file
			temps = append(temps, f.Temp)
		}
	}
	j.mu.Unlock()

	// Record the intent first: a crash from here on still ends in CANCELLED.
	if err := j.m.persist(j); err != nil {
		j.m.log.Error("dojob: recording cancel", "job", j.id.String(), "err", err)
	}
	if last != nil {
		<-last.done
	}
	_ = j.m.removeTemps(j, temps) // logged; BITS reports success here too
	j.m.unpersist(j)
	return nil
}

// Complete ends the job in ACKNOWLEDGED and makes its finished files appear
// at their destinations: each fully transferred file (already fsynced) is
// renamed atomically over its destination path, and the temporary files of
// unfinished ones are deleted — a job on file 3 of 5 keeps files 1 and 2.
// It works in every non-final state; a running transfer is stopped first.
//
// On Windows, a rename that another program's open handle refuses (the
// destination is open in a viewer or a running program; an antivirus
// scanner holds the new file for a moment) is retried for up to 2 seconds.
// If a rename fails, Complete returns that error (a *JobError with context
// LOCAL_FILE; ERROR_PATH_NOT_FOUND naming the directory if the destination's
// directory is gone; on Windows E_ACCESSDENIED or ERROR_SHARING_VIOLATION
// for a file still in use) and the job stays in its state, with the files renamed
// before the failure already in place and marked Completed; a job that was
// trying to transfer is queued again. A file whose temporary file is gone
// with its folder is no longer transferred: Resume downloads it again (a
// TRANSFERRED job is queued), and Cancel cleans up. A file whose temporary
// file is still there stays transferred for another Complete. Calling
// Complete from JobTransferred is the canonical way to finish a job.
func (j *Job) Complete() error {
	j.opMu.Lock()
	defer j.opMu.Unlock()
	j.mu.Lock()
	if err := j.mutableLocked(); err != nil {
		j.mu.Unlock()
		return err
	}
	last := j.last
	j.stopTransferLocked()
	j.completing = true
	// Complete closes the no-progress window, as Resume, Suspend and Cancel
	// do: renaming files can take a while, and an expiry meanwhile would
	// move the job to ERROR under Complete's feet.
	j.closeWindowLocked()
	j.changedLocked()
	j.m.sched.remove(j)
	files := make([]*file, len(j.files))
	copy(files, j.files)
	j.mu.Unlock()

	// Record the intent: after a crash the reload finishes the promotion.
	if err := j.m.persist(j); err != nil {
		j.mu.Lock()
		j.completing = false
		j.reactivateLocked()
		j.mu.Unlock()
		return err
	}
	if last != nil {
		<-last.done // no goroutine touches the files from here on
	}

	perr := j.m.promote(j, files)
	if perr != nil {
		j.m.forgetLost(j, files)
	}

	j.mu.Lock()
	j.completing = false
	if perr != nil {
		j.changedLocked()
		j.reactivateLocked()
		j.mu.Unlock()
		_ = j.m.persist(j)
		return perr
	}
	if err := j.moveLocked(StateAcknowledged); err != nil {
		j.mu.Unlock()
		return err
	}
	j.mu.Unlock()
	j.m.discardPartials(j, files)
	j.m.unpersist(j)
	return nil
}

// reactivateLocked puts a job whose transfer Complete stopped back to work
// after Complete failed: an active job is queued again. It takes the
// scheduler's lock, and those of setStateLocked.
func (j *Job) reactivateLocked() {
	switch j.state {
	case StateQueued:
		j.m.sched.enqueue(j)
		j.m.kick()
	case StateConnecting, StateTransferring, StateTransientError:
		j.moveLocked(StateQueued)
	}
}

// Wait blocks until the job is in a state that needs the caller —
// TRANSFERRED, ERROR, SUSPENDED, ACKNOWLEDGED or CANCELLED — and no
// JobTransferred or JobError callback owed for that state is queued, waiting
// to be delivered again, or running; it returns that state. So a
// JobTransferred that calls Complete makes Wait return ACKNOWLEDGED (with the
// files in place), and one that calls Cancel makes it return CANCELLED.
//
// A callback that keeps failing is still owed: Wait keeps waiting through
// its re-deliveries, until one returns nil or the job leaves the state; if
// ctx ends meanwhile, Wait's error matches ctx's and is also a
// *CallbackError (errors.As) with the failures and the last error, which
// Job.CallbackError reports at any time. A
// notification that nothing can deliver — no callback registered, or flags
// that exclude it — is not waited for. If ctx ends first Wait returns the
// current state and ctx's error. Once the Manager is closed (Close drops the
// callbacks not yet running, so nothing will change any more), Wait returns
// at once with the current state and ErrNoService, whatever the state. Wait
// does not poll: it sleeps on a channel that is closed at every state change
// and whenever a callback owed for the state finishes or stops being owed.
//
// Wait may be called from a callback, but there it never waits for a
// callback that is running. Called on the goroutine of a callback (in the
// callback or a function it calls) while a callback of this job is running
// — the caller itself, when a callback waits for its own job, or one
// running beside it — Wait returns at once: the state and nil if it would
// have returned at once anyway (a SUSPENDED job, say), otherwise the current
// state and an error matching ErrPossibleDeadlock. Waiting would be for the
// callback that called Wait, or for the notifications queued behind it, or
// for another job's callback that may itself be waiting for the caller's
// job. A callback of one job may wait for another job none of whose
// callbacks runs when Wait is called: it waits as any caller does, including
// for that job's JobTransferred or JobError if it starts meanwhile. Such
// waits cannot form a cycle: a callback that waits is running, so a Wait
// for its job from another callback does not block.
func (j *Job) Wait(ctx context.Context) (State, error) {
	for first := true; ; first = false {
		j.mu.Lock()
		s, ch := j.state, j.changed
		settled := j.settledLocked()
		calling := j.calling
		j.mu.Unlock()
		if j.m.closed.Load() {
			return s, errorf(ErrNoService, "the manager is closed")
		}
		if settled {
			return s, nil
		}
		if first && calling && inCallback() {
			return s, errorf(ErrPossibleDeadlock, "Wait called from a callback while a callback of job %s is running; not waiting", j.id)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			j.mu.Lock()
			ce := j.owedErrLocked()
			j.mu.Unlock()
			if ce != nil {
				// Waiting for a callback that keeps failing: say so.
				return s, errors.Join(context.Cause(ctx), ce)
			}
			return s, context.Cause(ctx)
		case <-j.m.done:
			return s, errorf(ErrNoService, "the manager is closed")
		}
	}
}

// Progress returns a snapshot of the job's progress.
func (j *Job) Progress() Progress {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.progressLocked()
}

func (j *Job) progressLocked() Progress {
	p := Progress{FilesTotal: len(j.files)}
	for _, f := range j.files {
		// Sums saturate at math.MaxInt64: ranges near the int64 limit, or
		// many files, must not wrap to a negative total.
		p.BytesTransferred = addSat(p.BytesTransferred, f.done.Load())
		if f.Size == SizeUnknown {
			p.BytesTotal = SizeUnknown
		} else if p.BytesTotal != SizeUnknown {
			p.BytesTotal = addSat(p.BytesTotal, f.Size)
		}
		if f.Transferred {
			p.FilesTransferred++
		}
	}
	return p
}

// Times returns the job's creation, modification and transfer-completion
// times.
func (j *Job) Times() Times {
	j.mu.Lock()
	defer j.mu.Unlock()
	return Times{Creation: j.created, Modification: j.modified, TransferCompletion: j.completedAt}
}

// Error returns the job's error object. It exists only in ERROR and
// TRANSIENT_ERROR; in any other state Error returns
// ErrErrorInformationUnavailable. The *JobError is a snapshot that is never
// modified.
func (j *Job) Error() (*JobError, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if (j.state == StateError || j.state == StateTransientError) && j.jerr != nil {
		return j.jerr, nil
	}
	return nil, errorf(ErrErrorInformationUnavailable, "job %s is %s", j.id, j.state)
}

// ErrorCount returns how many times the job entered TRANSIENT_ERROR or
// ERROR. It never resets.
func (j *Job) ErrorCount() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.errCount
}

// SetNoProgressTimeout sets how long the job keeps retrying without moving a
// byte before it gives up in ERROR with ErrNoProgress. The no-progress window
// opens at the first transient error and closes on any byte of progress (and
// on Resume, Suspend, Complete and Cancel); a new value applies to an open
// window at once, so a window already older than d ends it now. Zero sends
// every transient error straight to ERROR (BITS). A negative d, or one over
// MaxTimeout, returns ErrInvalidArg. Until it is set the timeout follows the priority: 1 hour for
// FOREGROUND, 24 hours for the others.
func (j *Job) SetNoProgressTimeout(d time.Duration) error {
	if d < 0 || d > MaxTimeout {
		return errorf(ErrInvalidArg, "no-progress timeout %v is outside 0 to %v", d, MaxTimeout)
	}
	return j.update(func() (bool, error) {
		if j.timeoutSet && j.timeout == d {
			return false, nil
		}
		j.timeout, j.timeoutSet = d, true
		j.rearmWindowLocked()
		return true, nil
	})
}

// NoProgressTimeout returns the no-progress timeout in force: the value set,
// or the default for the job's priority.
func (j *Job) NoProgressTimeout() time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.timeoutLocked()
}

// SetMinimumRetryDelay sets the wait after a transient error before the job
// is queued again (default 2 s). The wait doubles after every consecutive
// attempt that moved no byte, up to max(60 s, d), and is never shorter than
// a server's Retry-After. A delay longer than the no-progress timeout sends
// transient errors straight to ERROR (BITS). d must be positive and at most
// MaxTimeout (ErrInvalidArg otherwise). A retry already scheduled keeps its time.
func (j *Job) SetMinimumRetryDelay(d time.Duration) error {
	if d <= 0 || d > MaxTimeout {
		return errorf(ErrInvalidArg, "retry delay %v is not positive, or above %v", d, MaxTimeout)
	}
	return j.update(func() (bool, error) {
		changed := j.retryDelay != d
		j.retryDelay = d
		return changed, nil
	})
}

// MinimumRetryDelay returns the minimum retry delay.
func (j *Job) MinimumRetryDelay() time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.retryDelay
}

// SetPriority sets the job's priority (ErrInvalidArg for a value outside the
// four). A queued job is re-sorted at once; a running background job whose
// priority drops may be pre-empted by a waiting higher one. The default
// no-progress timeout follows the new priority unless a timeout was set.
func (j *Job) SetPriority(p Priority) error {
	if !p.valid() {
		return errorf(ErrInvalidArg, "unknown priority %d", int(p))
	}
	return j.update(func() (bool, error) {
		if j.prio == p {
			return false, nil
		}
		j.prio = p
		j.m.sched.reprioritize(j, p)
		j.rearmWindowLocked()
		j.applyPolicyLocked() // the limits and default cost policy follow the priority (hold.go)
		j.m.kick()
		return true, nil
	})
}

// Priority returns the job's priority.
func (j *Job) Priority() Priority {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.prio
}

// SetDisplayName sets the job's display name, at most 256 characters
// (ErrStringTooLong).
func (j *Job) SetDisplayName(s string) error {
	return j.setString(&j.name, s, maxDisplayName, "display name")
}

// DisplayName returns the job's display name.
func (j *Job) DisplayName() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.name
}

// SetDescription sets the job's description, at most 1,024 characters
// (ErrStringTooLong).
func (j *Job) SetDescription(s string) error {
	return j.setString(&j.desc, s, maxDescription, "description")
}

// setString sets a string property (a field of j, written under j.mu) of
// at most limit characters.
func (j *Job) setString(field *string, s string, limit int, what string) error {
	if utf8.RuneCountInString(s) > limit {
		return errorf(ErrStringTooLong, "%s longer than %d characters", what, limit)
	}
	return j.update(func() (bool, error) {
		changed := *field != s
		*field = s
		return changed, nil
	})
}

// Description returns the job's description.
func (j *Job) Description() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.desc
}

// timeoutLocked is the no-progress timeout in force.
func (j *Job) timeoutLocked() time.Duration {
	if j.timeoutSet {
		return j.timeout
	}
	if j.prio == PriorityForeground {
		return DefaultForegroundNoProgressTimeout
	}
	return DefaultBackgroundNoProgressTimeout
}

// stopTransferLocked stops the running transfer, if any; its goroutine exits
// on its own without touching the job's state. j.last still names it, so a
// caller that must wait for the goroutine can. It takes the clock's lock.
func (j *Job) stopTransferLocked() {
	if x := j.xfer; x != nil {
		j.xfer = nil
		x.cancel(errStopped)
		j.m.clock.stop(&j.tickDL)
	}
}
