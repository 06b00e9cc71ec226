// Package dojob runs download jobs the way Windows Delivery Optimization and
// BITS do (IBackgroundCopyManager, IBackgroundCopyJob,
// IBackgroundCopyCallback), on every platform Go runs on: jobs hold files,
// move through a state machine, retry transient errors with back-off, give
// up after a no-progress timeout that resets on every new byte (progress),
// resume HTTP(S) transfers where they stopped, make files appear atomically
// only when the job is completed, and — with a state directory — survive a
// crash or a restart of the process.
//
// # Manager, Job, files
//
// A Manager owns jobs. Manager.CreateJob makes a job in SUSPENDED; AddFile
// adds remote URLs with their destination paths; Resume queues the job; the
// Manager's scheduler starts it when a slot is free; its files transfer one
// after another (SetMaxParallelFiles: several at once), each over one
// connection (SetMaxConnections: a large file in segments over several),
// into hidden temporary files next to their destinations.
// When every file is transferred the job is TRANSFERRED and its callback's
// JobTransferred runs; Complete then renames the files into place
// (ACKNOWLEDGED). Cancel discards them (CANCELLED).
//
//	m, err := dojob.NewManager(dojob.Config{})
//	job, err := m.CreateJob("update")
//	err = job.AddFile("https://example.com/app.tar.gz", "/opt/app/app.tar.gz")
//	err = job.SetNotifyInterface(dojob.CallbackFuncs{
//		Transferred: func(j *dojob.Job) error { return j.Complete() },
//		Error: func(j *dojob.Job, e *dojob.JobError) error {
//			log.Print(e)
//			return j.Cancel()
//		},
//	})
//	err = job.Resume()
//
// # States
//
// The states are numbered as BG_JOB_STATE. Every change goes through one
// function that checks this table (the user's calls are in capitals):
//
//	CreateJob ──► SUSPENDED ──RESUME──► QUEUED ◄──────────────┐ retry delay over,
//	                                      │ scheduler         │ RESUME, or
//	                                      ▼                   │ pre-empted
//	                  ┌──────────────► CONNECTING ────────────┤
//	        next file │                   │ response accepted │
//	                  │                   ▼                   │
//	                  └─────────────  TRANSFERRING ───────────┤
//	                                      │ last file done    │ transient error
//	                                      ▼                   ▼
//	  RESUME after AddFile ◄──────── TRANSFERRED      TRANSIENT_ERROR
//	                                      │                   │ no progress for
//	                                      │                   ▼ the timeout
//	                                      │       fatal ──► ERROR ──RESUME──► QUEUED
//	                                      ▼
//	  COMPLETE (any non-final state) ──► ACKNOWLEDGED     CANCEL (any non-final state) ──► CANCELLED
//	  SUSPEND (any non-final state but TRANSFERRED) ──► SUSPENDED
//
// In words: SUSPENDED → QUEUED on Resume (a job without files returns
// ErrJobEmpty and stays); QUEUED → CONNECTING when the scheduler starts it
// (or straight to TRANSFERRED if nothing is left to transfer); CONNECTING →
// TRANSFERRING when the response is accepted; TRANSFERRING → CONNECTING for
// the next file, → TRANSFERRED after the last (CONNECTING → TRANSFERRED when
// a resumed last file turns out to be complete); CONNECTING and TRANSFERRING
// → TRANSIENT_ERROR or ERROR on failure, → QUEUED when pre-empted;
// TRANSIENT_ERROR → QUEUED after the retry delay; QUEUED, TRANSIENT_ERROR
// (and a retry that has not yet moved a byte) → ERROR when the no-progress
// window reaches the timeout; ERROR and TRANSIENT_ERROR → QUEUED on Resume;
// TRANSFERRED → QUEUED on Resume after AddFile. Suspend moves every
// non-final state except TRANSFERRED to SUSPENDED; Complete (→ ACKNOWLEDGED)
// and Cancel (→ CANCELLED) work in every non-final state. In ACKNOWLEDGED
// and CANCELLED every state-changing method and setter returns
// ErrInvalidState; getters keep working, and the job leaves Manager.Jobs.
//
// # Verified files
//
// AddFileSet adds files described by FileSpecs — all of them or none, in
// one durable write. A FileSpec may give the file's expected Size, checked
// against the response headers before a byte is written, and a Checksum
// ("sha256:<hex>" or "sha512:<hex>"), computed as the bytes are written and
// compared when the last one arrives; the digest's state is saved with each
// checkpoint, so a resume or a restart continues it without reading the
// file again. A file that fails its check is never transferred: the job
// moves to ERROR with ErrValidationFailed (context REMOTE_FILE), its data is
// discarded, and Resume downloads it again; JobTransferred is not called and
// Complete does not install it. SetValidationState lets the caller accept
// or reject a transferred file after a check of its own of
// FileInfo.TemporaryName, typically from FileTransferred.
//
// # Several connections per file
//
// Job.SetMaxConnections(n) lets each file use up to n connections, where a
// server caps each one: a whole file of known size whose server answers
// "bytes=0-" with a 206 carrying a strong ETag (or Last-Modified) is split
// into segments, and every free connection splits the largest part still
// to come at its middle. Each segment's 206 must carry exactly its range,
// the same total and the same validator — the rule every resume follows:
// bytes that follow bytes are accepted only from an answer that proves it
// serves the same content, so a file is never spliced from two. Written
// spans are checkpointed, so a restart resumes every gap. A file with a
// Checksum is fetched in pieces taken in the file's order instead, so its
// digest keeps up with the download rather than hashing most of the file
// after it. Config.MaxConnectionsPerHost bounds the connections to one host
// over all jobs.
//
// # Streams
//
// A FileSpec with a Writer instead of a LocalPath is a stream (Delivery
// Optimization's StreamInterface): its bytes go to the writer in order, with
// no temporary file and nothing installed at Complete; FileInfo.Stream
// reports it. Size and Checksum are checked as for any file. After an
// interruption an io.WriterAt or io.Seeker continues at its offset (an
// io.WriterAt may also be fetched over several connections); any other
// writer gets the file again from byte 0, after its Reset method if it has
// one. Writers are not persisted: after a restart, Job.SetFileWriter sets
// them again. FileSpec.Writer has the details.
//
// # Timeouts and retries
//
// A transient error (network errors, stalls, HTTP 408, 425, 429, and 5xx
// but 501 and 505) puts the job in TRANSIENT_ERROR and opens its
// no-progress window if none is open. After the retry delay — the minimum
// retry delay (2 s by default), doubled after each consecutive attempt that
// moved no byte, capped at max(60 s, the minimum), never shorter than a
// server's Retry-After — the job is queued again. Any byte of progress
// closes the window and resets the doubling; a byte is progress only when
// it takes its file past the most that file ever held (its high-water mark,
// kept when a file starts over and across restarts), so a server that makes
// every attempt start over and fetch the same bytes again does not keep a
// job alive. A finished file is progress too. If the window reaches the
// no-progress timeout (by default 1 hour for FOREGROUND jobs and 24 hours
// for the others) while the job is still trying, the job moves to ERROR
// with ErrNoProgress wrapping the last transient error, and JobError is
// called. A timeout of 0, or a retry delay longer than the timeout, sends
// transient errors straight to ERROR. A connection that delivers no
// response headers, or no body byte, for Config.StallTimeout is a transient
// ErrTimeout, so a server that hangs forever also ends in ERROR after the
// timeout. Job.SetMinimumSpeed (off by default, beyond BITS) also makes a
// connection that is merely too slow — on average below a number of bytes
// per second over a window, as curl's --speed-limit — a transient
// ErrTimeout; its bytes are still progress, so a server that keeps
// trickling new bytes keeps the job retrying. Fatal errors (other 4xx, 501, 505, TLS certificate errors, a
// refused https→http redirect, range errors, local file errors) go to ERROR
// at once. Job.SetMaximumDownloadTime bounds the time a job spends
// connecting and transferring (ErrMaxDownloadTimeout), and
// Job.SetMaximumDownloadSize the bytes its files hold (ErrMaxDownloadSize);
// both are off by default. Config.RetryJitter spreads the retries of jobs
// that failed together. All timing runs on the monotonic clock. One goroutine per
// Manager keeps every timer, so idle jobs cost no goroutine; the copy loop
// pays one atomic add and one atomic load per write for all this
// bookkeeping.
//
// # Bandwidth and cost
//
// Config.Bandwidth (Manager.SetBandwidthLimits at run time) limits the
// bytes per second of each priority, shared fairly by its jobs, with
// weekly windows as BITS's bandwidth policy; Job.SetMaximumBandwidth
// limits one job. A background limit of BandwidthBlocked, and a network
// cost (Config.NetworkCost) that a job's CostPolicy forbids, hold the job
// in TRANSIENT_ERROR with ErrBlockedByPolicy, ErrBlockedByCost or
// ErrBlockedByCellular: a hold is not an error (ErrorCount stays, no
// retry timer, no no-progress timeout) and ends on its own when the
// window ends or the cost allows it (Manager.NetworkCostChanged); Job.Held
// reports it.
//
// # Callbacks
//
// A Callback registered with SetNotifyInterface receives JobTransferred,
// JobError and (if NotifyJobModification is set) JobModification — for
// progress at most once per Job.SetMinimumNotificationInterval; a
// Callback that also implements StateCallback is told of every transition
// with the states it was between, and a FileCallback of every finished
// file. For each
// job they run one at a time and in order, on a goroutine the Manager owns,
// outside every lock, so a callback may call any method — Complete from
// JobTransferred is the canonical pattern. A JobTransferred or JobError that
// returns an error or panics is delivered again after the retry delay while
// the job stays in that state (Job.CallbackError tells how it fails, and a
// Wait whose ctx ends meanwhile returns it with ctx's error); registering on a job that is already
// TRANSFERRED or ERROR delivers the notification it owes. A callback may
// call Manager.Close (it then waits for every goroutine but the running
// callbacks, which end when they return); Job.Wait from a callback does not
// wait for a running callback of the job, and returns ErrPossibleDeadlock
// instead.
//
// # Errors
//
// Methods return errors that match the documented HRESULT codes with
// errors.Is (ErrInvalidState, ErrInvalidArg, ErrJobEmpty, ...), and give the
// code with errors.As into an HRESULT. A job in ERROR or TRANSIENT_ERROR
// has a *JobError (Job.Error) with the code, the context (REMOTE_FILE for
// an HTTP status, LOCAL_FILE for local I/O, GENERAL_TRANSPORT for network
// and TLS errors) and the file. Messages never show passwords embedded in
// URLs.
//
// # Proxies and TLS
//
// A job uses the Manager's client as it is until it is given settings of
// its own: Job.SetProxySettings (PRECONFIG, NO_PROXY, or OVERRIDE with
// BITS's proxy and bypass lists), Job.SetSecurityFlags (DO's WinHTTP
// SECURITY_FLAG_IGNORE_* values, each relaxing one certificate check),
// Job.SetCertificateAuthorities and Job.SetClientCertificate; it then
// uses a clone of the Manager's *http.Transport with those settings,
// shared with the jobs that have the same. A failed certificate check is
// ErrCertValidation and also matches the check's own code
// (ErrCertUntrustedRoot, ErrCertCNNoMatch, ErrCertExpired,
// ErrCertWrongUsage). The client certificate is never persisted.
//
// # Persistence
//
// With Config.StateDir every job is written to disk as it changes: once
// CreateJob, AddFile, a setter or a state-changing call returns, a crash
// loses neither the job nor its settings, and progress is checkpointed
// every Config.CheckpointInterval. NewManager on the same directory brings
// the jobs back; those that were transferring resume from their temporary
// files. Callbacks are not persisted: register them again after a restart.
// Config.Paused opens a directory without starting any transfer, for tools
// that only look at jobs.
//
// For tests, the dojobtest package provides a fault-injecting file server,
// the same faults as an in-memory http.RoundTripper for testing/synctest,
// and a callback Recorder.
//
// docs/design.md in the repository explains how the package is built (its
// goroutines, lock order, state table, record format and recovery rules);
// docs/decisions.md lists the decisions taken where the Windows
// documentation is silent.
package dojob
