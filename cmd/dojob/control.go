package main

// Sharing a state directory between dojob processes.
//
// One dojob.Manager owns a state directory at a time (its lock). The
// command that holds it while it transfers (get, resume) also serves a
// control endpoint: a Unix-domain socket, control.sock, inside the state
// directory, mode 0600 (AF_UNIX works on Windows 10 and later too; no
// network port is ever opened). Every command first tries to own the
// directory; when it is held (dojob.ErrSharingViolation) it becomes a
// client of the holder and asks it to do the work:
//
//   - list, info, suspend, cancel and complete are one request each;
//   - a second get or resume creates or resumes its job in the holder and
//     follows it by asking for its status every pollInterval; the holder
//     reports the job's state changes as its own callback saw them, so the
//     client prints the same lines a local run would. The client decides
//     what a local run decides (Complete, Cancel on ERROR, Suspend on
//     Ctrl-C) and sends it as a request.
//
// The protocol is newline-delimited JSON on one connection per command: a
// request, its response, the next request. A holder whose own job is done
// keeps serving while a client follows a job in it, and exits once the
// last one has disconnected. When a client's connection ends while its job
// still runs (the client was killed), the holder suspends that job: a job
// moves only while a dojob command waits for it.
//
// If the holder goes away (Ctrl-C, a crash, kill -9), its clients see the
// connection end and start over: one of them takes the lock and continues
// its job from the state directory (the library reloads it and resumes the
// transfer from its temporary file), the others become its clients. So a
// killed holder never blocks anything. A control.sock that a killed holder
// left behind is removed by the next process that takes the lock: holding
// the lock proves that nobody serves it, and a holder removes its socket
// before it releases the lock, so the file a lock holder finds is always
// stale.
//
// A lock holder that serves no endpoint (list and the other one-request
// commands, which hold the lock for milliseconds, or a program using the
// library) makes a client wait and try again, for at most
// options.shareWait.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dojob/dojob"
)

// controlSocket is the name of the control endpoint in the state directory.
const controlSocket = "control.sock"

// pollInterval is how often a client asks the holder for its job's status.
const pollInterval = 100 * time.Millisecond

// requestTimeout bounds one request and its response on the control
// connection; a holder that does not answer in time counts as gone.
const requestTimeout = time.Minute

// defaultShareWait is how long a command waits for a state directory that
// is held by a process without a control endpoint.
const defaultShareWait = 10 * time.Second

// maxEvents bounds the state changes a holder keeps for a client that does
// not ask for them; the oldest are dropped.
const maxEvents = 1000

// errHolderGone reports that the process serving the control endpoint went
// away (its connection ended or it is closing its Manager): the command
// starts over, and may become the holder itself.
var errHolderGone = errors.New("the dojob command holding the state directory ended")

// jobView is what the command shows of a job: a *dojob.Job here, or a
// snapshot of a job that another dojob process runs.
type jobView interface {
	ID() dojob.JobID
	DisplayName() string
	Description() string
	State() dojob.State
	Priority() dojob.Priority
	NoProgressTimeout() time.Duration
	MinimumRetryDelay() time.Duration
	ErrorCount() int
	NotifyFlags() dojob.NotifyFlags
	Times() dojob.Times
	Progress() dojob.Progress
	Files() []dojob.FileInfo
	Error() (*dojob.JobError, error)
	NextRetry() time.Time
	NoProgressDeadline() time.Time
	MaximumBandwidth() int64
	CostPolicy() dojob.CostPolicy
	Held() (dojob.HoldInfo, bool)
	MaximumDownloadTime() time.Duration
	DownloadTimeUsed() time.Duration
	MaximumDownloadSize() int64
	MinimumNotificationInterval() time.Duration
}

// jobSnapshot is a job as the holder sends it to a client.
type jobSnapshot struct {
	JobID      dojob.JobID       `json:"id"`
	Name       string            `json:"name"`
	Desc       string            `json:"description,omitempty"`
	St         dojob.State       `json:"state"`
	Prio       dojob.Priority    `json:"priority"`
	Timeout    time.Duration     `json:"no_progress_timeout"`
	RetryDelay time.Duration     `json:"retry_delay"`
	Errors     int               `json:"error_count"`
	Flags      dojob.NotifyFlags `json:"notify_flags"`
	JobTimes   dojob.Times       `json:"times"`
	Prog       dojob.Progress    `json:"progress"`
	FileList   []dojob.FileInfo  `json:"files"` // with Restarts and RestartReason
	Err        *errorSnapshot    `json:"error,omitempty"`
	// The job's deadlines in wall-clock time, which both processes share:
	// the next retry of a TRANSIENT_ERROR job and the end of its open
	// no-progress window (zero: none).
	RetryAt  time.Time `json:"next_retry,omitzero"`
	GiveUpAt time.Time `json:"no_progress_deadline,omitzero"`
	// Added later (an older holder sends none): the job's own bandwidth
	// limit, its cost policy and the hold by policy it waits in.
	MaxBandwidth int64             `json:"maximum_bandwidth,omitempty"`
	Cost         *dojob.CostPolicy `json:"cost_policy,omitempty"`
	Hold         *dojob.HoldInfo   `json:"hold,omitempty"`
	// The limits and the notification interval (added later: an older
	// holder sends none, which reads as no limit and no interval).
	MaxTime   time.Duration `json:"max_download_time,omitempty"`
	TimeUsed  time.Duration `json:"download_time_used,omitempty"`
	MaxSize   int64         `json:"max_download_size,omitempty"`
	NotifyIvl time.Duration `json:"min_notification_interval,omitempty"`

	Net *netSnapshot `json:"net,omitempty"` // proxy and TLS settings other than the defaults (netflags.go)
}

// errorSnapshot is a job's *dojob.JobError in a jobSnapshot. A cause that
// is itself a job error (ErrNoProgress wraps the last transient error) is
// kept as one, so that the client describes it as the holder would.
type errorSnapshot struct {
	Code    dojob.HRESULT      `json:"code"`
	Context dojob.ErrorContext `json:"context"`
	File    *dojob.FileInfo    `json:"file,omitempty"`
	Message string             `json:"message,omitempty"` // of the underlying cause, without Inner
	Inner   *errorSnapshot     `json:"inner,omitempty"`   // the underlying cause, a job error
}

// errorSnapshotOf takes a snapshot of e, following its chain of job errors
// (at most a few deep: the library wraps one in another only for
// ErrNoProgress).
func errorSnapshotOf(e *dojob.JobError) *errorSnapshot {
	s := &errorSnapshot{Code: e.Code, Context: e.Context, File: e.File}
	var inner *dojob.JobError
	switch {
	case e.Err == nil:
	case errors.As(e.Err, &inner):
		s.Inner = errorSnapshotOf(inner)
	default:
		s.Message = e.Err.Error()
	}
	return s
}

// jobError rebuilds the *dojob.JobError of s.
func (s *errorSnapshot) jobError() *dojob.JobError {
	e := &dojob.JobError{Context: s.Context, Code: s.Code, File: s.File}
	switch {
	case s.Inner != nil:
		e.Err = s.Inner.jobError()
	case s.Message != "":
		e.Err = errors.New(s.Message)
	}
	return e
}

// snapshotOf takes a snapshot of j.
func snapshotOf(j *dojob.Job) jobSnapshot {
	s := jobSnapshot{
		JobID: j.ID(), Name: j.DisplayName(), Desc: j.Description(), St: j.State(), Prio: j.Priority(),
		Timeout: j.NoProgressTimeout(), RetryDelay: j.MinimumRetryDelay(), Errors: j.ErrorCount(),
		Flags: j.NotifyFlags(), JobTimes: j.Times(), Prog: j.Progress(), FileList: j.Files(),
		RetryAt: j.NextRetry(), GiveUpAt: j.NoProgressDeadline(),
		MaxBandwidth: j.MaximumBandwidth(),
		MaxTime:      j.MaximumDownloadTime(), TimeUsed: j.DownloadTimeUsed(), MaxSize: j.MaximumDownloadSize(),
		NotifyIvl: j.MinimumNotificationInterval(),
		Net:       netSnapshotOf(j),
	}
	cp := j.CostPolicy()
	s.Cost = &cp
	if h, ok := j.Held(); ok {
		s.Hold = &h
	}
	if e, err := j.Error(); err == nil {
		s.Err = errorSnapshotOf(e)
	}
	return s
}

// ID returns the job's ID.
func (s jobSnapshot) ID() dojob.JobID { return s.JobID }

// DisplayName returns the job's display name.
func (s jobSnapshot) DisplayName() string { return s.Name }

// Description returns the job's description.
func (s jobSnapshot) Description() string { return s.Desc }

// State returns the job's state.
func (s jobSnapshot) State() dojob.State { return s.St }

// Priority returns the job's priority.
func (s jobSnapshot) Priority() dojob.Priority { return s.Prio }

// NoProgressTimeout returns the job's no-progress timeout.
func (s jobSnapshot) NoProgressTimeout() time.Duration { return s.Timeout }

// MinimumRetryDelay returns the job's minimum retry delay.
func (s jobSnapshot) MinimumRetryDelay() time.Duration { return s.RetryDelay }

// ErrorCount returns the job's error count.
func (s jobSnapshot) ErrorCount() int { return s.Errors }

// MaximumDownloadTime returns the job's maximum download time; 0: none.
func (s jobSnapshot) MaximumDownloadTime() time.Duration { return s.MaxTime }

// DownloadTimeUsed returns the time the job spent connecting and
// transferring, as its maximum download time counts it.
func (s jobSnapshot) DownloadTimeUsed() time.Duration { return s.TimeUsed }

// MaximumDownloadSize returns the job's maximum download size; 0: none.
func (s jobSnapshot) MaximumDownloadSize() int64 { return s.MaxSize }

// MinimumNotificationInterval returns the job's minimum notification
// interval; 0 from an older holder that did not send it.
func (s jobSnapshot) MinimumNotificationInterval() time.Duration { return s.NotifyIvl }

// NotifyFlags returns the job's notify flags.
func (s jobSnapshot) NotifyFlags() dojob.NotifyFlags { return s.Flags }

// Times returns the job's times.
func (s jobSnapshot) Times() dojob.Times { return s.JobTimes }

// Progress returns the job's progress.
func (s jobSnapshot) Progress() dojob.Progress { return s.Prog }

// Files returns the job's files.
func (s jobSnapshot) Files() []dojob.FileInfo { return s.FileList }

// Error returns the job's error, rebuilt from the snapshot, or an error
// matching dojob.ErrErrorInformationUnavailable when it has none (as
// dojob.Job.Error does).
func (s jobSnapshot) Error() (*dojob.JobError, error) {
	if s.Err == nil {
		return nil, dojob.ErrErrorInformationUnavailable
	}
	return s.Err.jobError(), nil
}

// NextRetry returns when the holder queues the job again after a
// transient error; zero otherwise.
func (s jobSnapshot) NextRetry() time.Time { return s.RetryAt }

// NoProgressDeadline returns when the job's no-progress window expires;
// zero when none is open.
func (s jobSnapshot) NoProgressDeadline() time.Time { return s.GiveUpAt }

// MaximumBandwidth returns the job's own bandwidth limit (0: none).
func (s jobSnapshot) MaximumBandwidth() int64 { return s.MaxBandwidth }

// CostPolicy returns the job's cost policy (Always from a holder too old
// to send it).
func (s jobSnapshot) CostPolicy() dojob.CostPolicy {
	if s.Cost == nil {
		return dojob.CostPolicyAlways
	}
	return *s.Cost
}

// Held returns the hold by policy the job waits in, if any.
func (s jobSnapshot) Held() (dojob.HoldInfo, bool) {
	if s.Hold == nil {
		return dojob.HoldInfo{}, false
	}
	return *s.Hold, true
}

// remoteJob is the jobView of a job a client follows: the latest snapshot,
// replaced at each poll. Its methods are safe for concurrent use (the
// display's ticker reads it).
type remoteJob struct {
	mu sync.Mutex
	s  jobSnapshot
}

// snap returns the latest snapshot.
func (r *remoteJob) snap() jobSnapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s
}

// set replaces the snapshot.
func (r *remoteJob) set(s jobSnapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s = s
}

// ID returns the job's ID.
func (r *remoteJob) ID() dojob.JobID { return r.snap().ID() }

// DisplayName returns the job's display name.
func (r *remoteJob) DisplayName() string { return r.snap().DisplayName() }

// Description returns the job's description.
func (r *remoteJob) Description() string { return r.snap().Description() }

// State returns the job's state.
func (r *remoteJob) State() dojob.State { return r.snap().State() }

// Priority returns the job's priority.
func (r *remoteJob) Priority() dojob.Priority { return r.snap().Priority() }

// NoProgressTimeout returns the job's no-progress timeout.
func (r *remoteJob) NoProgressTimeout() time.Duration { return r.snap().NoProgressTimeout() }

// MinimumRetryDelay returns the job's minimum retry delay.
func (r *remoteJob) MinimumRetryDelay() time.Duration { return r.snap().MinimumRetryDelay() }

// ErrorCount returns the job's error count.
func (r *remoteJob) ErrorCount() int { return r.snap().ErrorCount() }

// NotifyFlags returns the job's notify flags.
func (r *remoteJob) NotifyFlags() dojob.NotifyFlags { return r.snap().NotifyFlags() }

// Times returns the job's times.
func (r *remoteJob) Times() dojob.Times { return r.snap().Times() }

// Progress returns the job's progress.
func (r *remoteJob) Progress() dojob.Progress { return r.snap().Progress() }

// Files returns the job's files.
func (r *remoteJob) Files() []dojob.FileInfo { return r.snap().Files() }

// Error returns the job's error.
func (r *remoteJob) Error() (*dojob.JobError, error) { return r.snap().Error() }

// NextRetry returns when the job is queued again after a transient error.
func (r *remoteJob) NextRetry() time.Time { return r.snap().NextRetry() }

// NoProgressDeadline returns when the job's no-progress window expires.
func (r *remoteJob) NoProgressDeadline() time.Time { return r.snap().NoProgressDeadline() }

// MaximumBandwidth returns the job's own bandwidth limit.
func (r *remoteJob) MaximumBandwidth() int64 { return r.snap().MaximumBandwidth() }

// CostPolicy returns the job's cost policy.
func (r *remoteJob) CostPolicy() dojob.CostPolicy { return r.snap().CostPolicy() }

// Held returns the hold by policy the job waits in, if any.
func (r *remoteJob) Held() (dojob.HoldInfo, bool) { return r.snap().Held() }

// MaximumDownloadTime returns the job's maximum download time.
func (r *remoteJob) MaximumDownloadTime() time.Duration { return r.snap().MaximumDownloadTime() }

// DownloadTimeUsed returns the time the job spent connecting and
// transferring.
func (r *remoteJob) DownloadTimeUsed() time.Duration { return r.snap().DownloadTimeUsed() }

// MaximumDownloadSize returns the job's maximum download size.
func (r *remoteJob) MaximumDownloadSize() int64 { return r.snap().MaximumDownloadSize() }

// MinimumNotificationInterval returns the job's minimum notification
// interval.
func (r *remoteJob) MinimumNotificationInterval() time.Duration {
	return r.snap().MinimumNotificationInterval()
}

// ctlRequest is one request of a client.
type ctlRequest struct {
	// Op is list, info, suspend, cancel, complete (ID), get (Files,
	// Settings), resume (ID, Settings) or status (of the job this
	// connection follows since its get or resume).
	Op       string       `json:"op"`
	ID       dojob.JobID  `json:"id"`
	Files    []ctlFile    `json:"files,omitempty"`
	Settings *ctlSettings `json:"settings,omitempty"`
}

// ctlFile is a file of a get: its URL, its absolute destination, its
// mirrors (--mirror), and how it is checked. Size and Checksum were added later and are omitted when
// not given, so a request without them is the request of an older dojob,
// and means what it meant then.
type ctlFile struct {
	URL      string   `json:"url"`
	Path     string   `json:"path"`
	Mirrors  []string `json:"mirrors,omitempty"`
	Size     int64    `json:"size,omitempty"`     // expected size in bytes; 0: not given
	Checksum string   `json:"checksum,omitempty"` // sha256:<hex> or sha512:<hex>; "": none
}

// ctlSettings are the job flags of a get or resume.
type ctlSettings struct {
	Priority          *dojob.Priority `json:"priority,omitempty"`
	NoProgressTimeout *time.Duration  `json:"no_progress_timeout,omitempty"`
	RetryDelay        *time.Duration  `json:"retry_delay,omitempty"`
	Parallel          *int            `json:"parallel,omitempty"`
	Connections       *int            `json:"connections,omitempty"` // added later: an older holder ignores it
	// --speed-limit and --speed-time, as jobFlags.minimumSpeed reads them
	// (added later: an older holder ignores them).
	MinimumSpeed       *int64         `json:"minimum_speed,omitempty"`
	MinimumSpeedWindow *time.Duration `json:"minimum_speed_window,omitempty"`
	// --limit-rate (added later: an older holder ignores it).
	MaximumBandwidth *int64 `json:"maximum_bandwidth,omitempty"`
	// --max-time (added later: an older holder ignores it).
	MaxDownloadTime *time.Duration `json:"max_download_time,omitempty"`
}

// ctlResponse is the holder's answer to one request.
type ctlResponse struct {
	Error     *ctlError     `json:"error,omitempty"`
	Jobs      []jobSnapshot `json:"jobs,omitempty"`      // list
	Job       *jobSnapshot  `json:"job,omitempty"`       // every op on a job
	Continued bool          `json:"continued,omitempty"` // get: an existing job was continued
	Events    []ctlEvent    `json:"events,omitempty"`    // status: state changes since the last one
	// get, resume: the holder's stall timeout (0: dojob's default), which
	// the client's display needs to tell a stall.
	StallTimeout time.Duration `json:"stall_timeout,omitempty"`
	// get, resume: each file's bytes before the holder resumed the job
	// (on disk from an earlier run): the job in the answer may have moved
	// on already, and the summary tells this run's bytes from those.
	Before []int64 `json:"before,omitempty"`
}

// ctlError is a failed request: the message the command prints and the
// HRESULT it matches.
type ctlError struct {
	Code    dojob.HRESULT `json:"code"`
	Message string        `json:"message"`
	// Conflict is the job a get found with the same URLs and destinations
	// but another checksum or size (a *conflictError), so that the client
	// prints the commands that end or continue it.
	Conflict *dojob.JobID `json:"conflict,omitempty"`
}

// ctlEvent is a state change of a followed job, with the line that shows
// it, described when the holder's callback saw it.
type ctlEvent struct {
	To   dojob.State `json:"to"`
	Text string      `json:"text"`
}

// remoteError is a ctlError as an error: its message, matching its code.
type remoteError struct {
	code     dojob.HRESULT
	msg      string
	conflict *dojob.JobID // ctlError.Conflict
}

// Error returns the holder's message.
func (e *remoteError) Error() string { return e.msg }

// Unwrap returns the HRESULT, for errors.Is and errors.As.
func (e *remoteError) Unwrap() error { return e.code }

// settingsOf converts the job flags given on the command line; with always
// the priority is sent even if it was not given (get's default).
func settingsOf(jf *jobFlags, always bool) *ctlSettings {
	s := &ctlSettings{}
	if jf.priority.set || always {
		p := jf.priority.p
		s.Priority = &p
	}
	if jf.set["no-progress-timeout"] {
		d := jf.noProgressTimeout
		s.NoProgressTimeout = &d
	}
	if jf.set["retry-delay"] {
		d := jf.retryDelay
		s.RetryDelay = &d
	}
	if jf.set["parallel"] || always {
		n := jf.parallel
		s.Parallel = &n
	}
	if jf.set["connections"] || always {
		n := jf.connections
		s.Connections = &n
	}
	if bps, window, ok := jf.minimumSpeed(); ok {
		s.MinimumSpeed, s.MinimumSpeedWindow = &bps, &window
	}
	if jf.set["limit-rate"] {
		n := jf.limitRate
		s.MaximumBandwidth = &n
	}
	if jf.set["max-time"] {
		d := jf.maxTime
		s.MaxDownloadTime = &d
	}
	return s
}

// flags converts s back to job flags, for jobFlags.apply.
func (s *ctlSettings) flags() *jobFlags {
	jf := &jobFlags{parallel: defaultParallel, connections: defaultConnections, set: map[string]bool{}}
	if s == nil {
		return jf
	}
	if s.Priority != nil {
		jf.priority = priorityFlag{p: *s.Priority, set: true}
	}
	if s.NoProgressTimeout != nil {
		jf.noProgressTimeout, jf.set["no-progress-timeout"] = *s.NoProgressTimeout, true
	}
	if s.RetryDelay != nil {
		jf.retryDelay, jf.set["retry-delay"] = *s.RetryDelay, true
	}
	if s.Parallel != nil {
		jf.parallel, jf.set["parallel"] = *s.Parallel, true
	}
	if s.Connections != nil {
		jf.connections, jf.set["connections"] = *s.Connections, true
	}
	if s.MinimumSpeed != nil {
		jf.speedLimit, jf.set["speed-limit"] = *s.MinimumSpeed, true
		if s.MinimumSpeedWindow != nil && *s.MinimumSpeedWindow != 0 {
			jf.speedTime, jf.set["speed-time"] = *s.MinimumSpeedWindow, true
		}
	}
	if s.MaximumBandwidth != nil {
		jf.limitRate, jf.set["limit-rate"] = *s.MaximumBandwidth, true
	}
	if s.MaxDownloadTime != nil {
		jf.maxTime, jf.set["max-time"] = *s.MaxDownloadTime, true
	}
	return jf
}

// jobOp finds the job with id in m and runs the command cmd on it: info
// (nothing), suspend, cancel or complete. The error is worded as the
// command prints it. The holder runs it for its clients too.
func jobOp(m *dojob.Manager, cmd string, id dojob.JobID) (*dojob.Job, error) {
	j, err := m.Job(id)
	if err != nil {
		return nil, err // the library's message names the job
	}
	switch cmd {
	case "suspend":
		err = j.Suspend()
	case "cancel":
		err = j.Cancel()
	case "complete":
		err = j.Complete()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err) // the library's message names the job
	}
	return j, nil
}

// server serves the control endpoint of a holder. Each connection is a
// session on its own goroutine; close ends them all and waits for them.
type server struct {
	m            *dojob.Manager
	stallTimeout time.Duration // m's Config.StallTimeout (0: the default), for the clients' displays
	ln           net.Listener
	path         string
	wg           sync.WaitGroup // the accept loop and the sessions

	mu       sync.Mutex
	sessions map[*session]struct{}
	closing  bool          // close has begun: no new session, no suspension at disconnect
	watching int           // sessions that follow a job
	changed  chan struct{} // closed and replaced when watching changes
}

// removeStaleSocket removes a control endpoint that a killed holder left
// in dir. Only a process that holds dir's lock calls it.
func removeStaleSocket(dir string) {
	_ = os.Remove(filepath.Join(dir, controlSocket))
}

// startServer serves the control endpoint of m in dir; stallTimeout is
// m's. The caller holds dir's lock (m) and has removed any stale socket.
func startServer(dir string, m *dojob.Manager, stallTimeout time.Duration) (*server, error) {
	path := filepath.Join(dir, controlSocket)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// close removes the file itself, while the lock is still held: after
	// the lock is released the path may belong to the next holder. (Asked
	// through an interface: plan9's UnixListener, which never listens,
	// lacks the method.)
	if u, ok := ln.(interface{ SetUnlinkOnClose(bool) }); ok {
		u.SetUnlinkOnClose(false)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, err
	}
	s := &server{m: m, stallTimeout: stallTimeout, ln: ln, path: path, sessions: map[*session]struct{}{}, changed: make(chan struct{})}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// accept starts a session for each connection until the listener closes.
func (s *server) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return // closed by close
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			conn.Close()
			continue
		}
		ss := &session{srv: s, conn: conn}
		s.sessions[ss] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go ss.serve()
	}
}

// watchers returns how many sessions follow a job.
func (s *server) watchers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watching
}

// addWatchingLocked changes the number of sessions that follow a job.
func (s *server) addWatchingLocked(n int) {
	s.watching += n
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitIdle waits until no session follows a job, or ctx ends.
func (s *server) waitIdle(ctx context.Context) {
	for {
		s.mu.Lock()
		n, ch := s.watching, s.changed
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// close stops serving: no new connection is accepted, each session
// finishes the request it is handling and ends, and the socket file is
// removed. It returns when every goroutine of the server has ended. The
// jobs that clients follow are left as they are: the clients see their
// connection end and continue them. Only the first call does anything.
func (s *server) close() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	s.ln.Close()
	for ss := range s.sessions {
		// A read deadline in the past ends a session's wait for the next
		// request without cutting off a response it is writing.
		_ = ss.conn.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	s.wg.Wait()
	_ = os.Remove(s.path)
}

// session is one client connection.
type session struct {
	srv  *server
	conn net.Conn

	// The job the session follows since its get or resume, and how: with
	// cb set, the session's callback reports its state changes; without
	// (another party's callback is on the job), status derives them from
	// the state it last reported. Only the session's goroutine uses them.
	job   *dojob.Job
	cb    *sessionCallback
	flags dojob.NotifyFlags // the job's flags before the session's callback
	last  dojob.State

	mu     sync.Mutex
	events []ctlEvent // from cb, until the next status
}

// serve answers requests until the connection ends, then lets go of the
// followed job.
func (ss *session) serve() {
	defer ss.srv.wg.Done()
	defer ss.conn.Close()
	defer ss.end()
	r := bufio.NewReader(ss.conn)
	enc := json.NewEncoder(ss.conn)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var req ctlRequest
		var resp ctlResponse
		if err := json.Unmarshal(line, &req); err != nil {
			resp.Error = &ctlError{Code: dojob.ErrInvalidArg, Message: "bad request: " + err.Error()}
		} else {
			resp = ss.handle(req)
		}
		_ = ss.conn.SetWriteDeadline(time.Now().Add(requestTimeout))
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

// end runs when the connection ends: the session's callback comes off the
// job, and a job still running for a client that went away without a word
// is suspended — unless the server is closing, and the client will
// continue it.
func (ss *session) end() {
	s := ss.srv
	s.mu.Lock()
	delete(s.sessions, ss)
	closing := s.closing
	s.mu.Unlock()
	if ss.job == nil {
		return
	}
	ss.detach()
	if !closing {
		switch ss.job.State() {
		case dojob.StateQueued, dojob.StateConnecting, dojob.StateTransferring, dojob.StateTransientError:
			_ = ss.job.Suspend()
		}
	}
	s.mu.Lock()
	s.addWatchingLocked(-1)
	s.mu.Unlock()
}

// handle answers one request.
func (ss *session) handle(req ctlRequest) (resp ctlResponse) {
	fail := func(err error) ctlResponse {
		var hr dojob.HRESULT
		if !errors.As(err, &hr) {
			hr = dojob.ErrFail
		}
		e := &ctlError{Code: hr, Message: err.Error()}
		if ce := (*conflictError)(nil); errors.As(err, &ce) {
			e.Conflict = &ce.id
		}
		return ctlResponse{Error: e}
	}
	m := ss.srv.m
	switch req.Op {
	case "list":
		resp.Jobs = []jobSnapshot{}
		for _, j := range m.Jobs() {
			resp.Jobs = append(resp.Jobs, snapshotOf(j))
		}
		return resp
	case "info", "suspend", "cancel", "complete":
		j, err := jobOp(m, req.Op, req.ID)
		if err != nil {
			return fail(err)
		}
		snap := snapshotOf(j)
		resp.Job = &snap
		return resp
	case "get", "resume":
		if ss.job != nil {
			return fail(fmt.Errorf("%w: this connection already follows job %s", dojob.ErrInvalidState, ss.job.ID()))
		}
		var j *dojob.Job
		var err error
		always := false
		if req.Op == "get" {
			if len(req.Files) == 0 {
				return fail(fmt.Errorf("%w: get: no file", dojob.ErrInvalidArg))
			}
			specs := make([]fileSpec, len(req.Files))
			for i, f := range req.Files {
				specs[i] = fileSpec{url: f.URL, path: f.Path, mirrors: f.Mirrors, size: f.Size, checksum: f.Checksum}
			}
			always = true
			if j, err = findJob(m, specs); err != nil {
				return fail(err)
			} else if j != nil {
				resp.Continued = true
			} else if j, err = createJob(m, specs, func(j *dojob.Job) error { return req.Settings.flags().apply(j, true) }); err != nil {
				return fail(err)
			}
		} else if j, err = m.Job(req.ID); err != nil {
			return fail(fmt.Errorf("job %s: %w", req.ID, err))
		}
		// A job just created has its settings already (a no-op here).
		if err := req.Settings.flags().apply(j, always); err != nil {
			return fail(err)
		}
		for _, f := range j.Files() {
			resp.Before = append(resp.Before, f.BytesTransferred)
		}
		if err := ss.follow(j); err != nil {
			return fail(err)
		}
		snap := snapshotOf(j)
		resp.Job = &snap
		resp.StallTimeout = ss.srv.stallTimeout
		return resp
	case "status":
		if ss.job == nil {
			return fail(fmt.Errorf("%w: status: this connection follows no job", dojob.ErrInvalidState))
		}
		ss.mu.Lock()
		resp.Events, ss.events = ss.events, nil
		ss.mu.Unlock()
		snap := snapshotOf(ss.job)
		if ss.cb == nil && snap.St != ss.last {
			resp.Events = append(resp.Events, ctlEvent{To: snap.St, Text: describeState(ss.job, snap.St, time.Now())})
		}
		ss.last = snap.St
		resp.Job = &snap
		return resp
	}
	return fail(fmt.Errorf("%w: unknown request %q", dojob.ErrInvalidArg, req.Op))
}

// follow makes the session follow j and resumes it, as a local get or
// resume does. If j has no callback, the session's callback reports its
// state changes; otherwise (its own command runs it here too) the session
// leaves that one alone.
func (ss *session) follow(j *dojob.Job) error {
	s := ss.srv
	s.mu.Lock()
	ss.job, ss.last = j, j.State()
	s.addWatchingLocked(1)
	s.mu.Unlock()
	if j.NotifyInterface() == nil {
		ss.flags = j.NotifyFlags()
		cb := &sessionCallback{ss: ss}
		if err := j.SetNotifyFlags(ss.flags | dojob.NotifyJobModification); err != nil {
			return err
		}
		if err := j.SetNotifyInterface(cb); err != nil {
			_ = j.SetNotifyFlags(ss.flags)
			return err
		}
		ss.cb = cb
	}
	return j.Resume()
}

// detach takes the session's callback off its job (if it is still the
// job's) and puts the job's flags back.
func (ss *session) detach() {
	if ss.cb == nil {
		return
	}
	if cb, ok := ss.job.NotifyInterface().(*sessionCallback); ok && cb == ss.cb {
		_ = ss.job.SetNotifyInterface(nil)
		_ = ss.job.SetNotifyFlags(ss.flags)
	}
	ss.cb = nil
}

// sessionCallback records the state changes of a followed job for the
// session's next status.
type sessionCallback struct {
	ss *session
}

// JobTransferred does nothing: the client completes the job.
func (*sessionCallback) JobTransferred(*dojob.Job) error { return nil }

// JobError does nothing: the client decides.
func (*sessionCallback) JobError(*dojob.Job, *dojob.JobError) error { return nil }

// JobModification does nothing: status sends the progress.
func (*sessionCallback) JobModification(*dojob.Job) error { return nil }

// JobStateChanged records the change and its line.
func (cb *sessionCallback) JobStateChanged(j *dojob.Job, from, to dojob.State) error {
	ev := ctlEvent{To: to, Text: describeState(j, to, time.Now())}
	cb.ss.mu.Lock()
	defer cb.ss.mu.Unlock()
	if len(cb.ss.events) >= maxEvents {
		cb.ss.events = cb.ss.events[1:]
	}
	cb.ss.events = append(cb.ss.events, ev)
	return nil
}

// ctlClient is a client's connection to the holder.
type ctlClient struct {
	conn net.Conn
	r    *bufio.Reader
}

// dialControl connects to the control endpoint in dir.
func dialControl(dir string) (*ctlClient, error) {
	conn, err := net.DialTimeout("unix", filepath.Join(dir, controlSocket), requestTimeout)
	if err != nil {
		return nil, err
	}
	return &ctlClient{conn: conn, r: bufio.NewReader(conn)}, nil
}

// close ends the connection.
func (cl *ctlClient) close() { cl.conn.Close() }

// do sends req and returns the response. A connection that ends, fails or
// times out, and a holder that is closing its Manager, give an error
// matching errHolderGone; a failed request gives a *remoteError.
func (cl *ctlClient) do(req ctlRequest) (ctlResponse, error) {
	var resp ctlResponse
	b, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	_ = cl.conn.SetDeadline(time.Now().Add(requestTimeout))
	if _, err := cl.conn.Write(append(b, '\n')); err != nil {
		return resp, fmt.Errorf("%w: %v", errHolderGone, err)
	}
	line, err := cl.r.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return resp, fmt.Errorf("%w: %v", errHolderGone, err)
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return resp, fmt.Errorf("bad response from the dojob command holding the state directory: %w", err)
	}
	if e := resp.Error; e != nil {
		if e.Code == dojob.ErrNoService {
			return resp, fmt.Errorf("%w: %s", errHolderGone, e.Message)
		}
		return resp, &remoteError{code: e.Code, msg: e.Message, conflict: e.Conflict}
	}
	if (req.Op != "list") && resp.Job == nil {
		return resp, errors.New("bad response from the dojob command holding the state directory: no job")
	}
	return resp, nil
}
