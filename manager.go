package dojob

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Config configures a Manager. NewManager copies it, so changing a Config
// afterwards changes nothing. The zero value is an in-memory Manager with the
// defaults below.
type Config struct {
	// StateDir is where jobs persist. "" keeps jobs in memory only: they end
	// with the Manager (Close then deletes their temporary files). Otherwise
	// every job is written to this directory (created 0700 if missing) and
	// NewManager on the same directory brings the jobs back; one Manager
	// owns a directory at a time.
	StateDir string

	// HTTPClient performs the transfers. nil means a client of dojob's own:
	// TLS verified, proxies from the environment, at most 10 redirects and
	// no redirect from https to http. A client given here is used as is,
	// except that a nil CheckRedirect gets that same redirect policy, and
	// that no CheckRedirect can allow a redirect to a scheme other than
	// http and https (dojob uses a copy of the client for that). Leave
	// its Timeout zero: it would cut off long downloads; StallTimeout and
	// the no-progress timeout bound them instead. A job given its own proxy
	// or TLS settings (Job.SetProxySettings, SetSecurityFlags,
	// SetCertificateAuthorities, SetClientCertificate) uses a clone of the
	// client's Transport with those settings, which must then be an
	// *http.Transport.
	HTTPClient *http.Client

	// RootCAs are the certificate authorities dojob's own client trusts;
	// nil means the system's. A job's SetCertificateAuthorities replaces
	// them for that job. With HTTPClient set, configure its Transport
	// instead: RootCAs then returns ErrInvalidArg.
	RootCAs *x509.CertPool

	// MaxForegroundJobs caps the FOREGROUND jobs that transfer at once;
	// 0 means 8.
	MaxForegroundJobs int

	// MaxBackgroundJobs caps the HIGH, NORMAL and LOW jobs that transfer at
	// once; 0 means 2.
	MaxBackgroundJobs int

	// StallTimeout is how long an attempt may go without response headers,
	// or without a body byte, before it is abandoned as a transient
	// ErrTimeout; 0 means 60 s. A stall is noticed within StallTimeout/8
	// after it is due.
	StallTimeout time.Duration

	// CheckpointInterval is how often a running transfer records its
	// progress in StateDir (an fsync of the data, then of the record); a
	// restart re-downloads at most about this much transfer time. 0 means
	// 1 s. Unused without StateDir.
	CheckpointInterval time.Duration

	// MaxConnectionsPerHost bounds the connections the Manager's transfers
	// keep open to one host (host and port) at once, over all its jobs, so
	// parallel files × connections per file (Job.SetMaxConnections) never
	// flood one server. A file's connection waits for room (in CONNECTING;
	// the wait is not a stall); a file's further connections open only when
	// there is room and no file waits, and give their room up to a waiting
	// file. 0 means 8.
	MaxConnectionsPerHost int

	// MinSegmentSize is the smallest half a split of a segment leaves
	// (Job.SetMaxConnections); 0 means 1 MiB. A file with a Checksum is
	// fetched over several connections in pieces of 4 times this size (at
	// least 1 MiB, at most 64 MiB or this size).
	MinSegmentSize int64

	// Paused makes the Manager start no transfer until Manager.Start is
	// called, and write nothing of its own accord: jobs can be listed and
	// inspected (a command-line tool showing a state directory) without the
	// reloaded QUEUED jobs starting to download, and nothing is recovered —
	// damaged records stay in place (logged), interrupted Complete and
	// Cancel calls are left for the next Manager that is not paused.
	//
	// With a StateDir that is writable and free, a paused Manager owns it
	// like any other, and its jobs can be changed (each change is written
	// as usual; one that another Manager owns gives ErrSharingViolation).
	// A StateDir that is not writable (its mode denies the owner writing,
	// or the file system is read-only) is opened read-only, without a lock:
	// the jobs can be looked at as recorded (their timers do not run), and
	// every change — CreateJob, a setter, a state change, Start — returns
	// an error matching ErrWriteProtect. Otherwise timers still run.
	Paused bool

	// Logger receives dojob's diagnostics: transient errors, failing
	// callbacks, damaged records. nil discards them. dojob never calls it
	// with a lock held: what the engine logs is queued (only at the levels
	// the Logger is enabled for) and handed to it in order by a goroutine
	// of the Manager, so a slow handler delays no job; Close waits for it.
	Logger *slog.Logger

	// Bandwidth limits the bandwidth of the Manager's jobs per priority,
	// with weekly windows (BandwidthLimits); the zero value limits
	// nothing. Manager.SetBandwidthLimits changes them at run time.
	Bandwidth BandwidthLimits

	// NetworkCost reports the cost of the network now, for the jobs' cost
	// policies (Job.SetCostPolicy). dojob asks it before each attempt of a
	// file and when Manager.NetworkCostChanged is called; it must be safe
	// for concurrent use and should answer quickly (ctx ends with the
	// attempt). nil, or an error, means the cost is unknown, which every
	// policy allows: dojob cannot know on its own, on every system,
	// whether a network is metered.
	NetworkCost func(ctx context.Context) (NetworkCost, error)

	// CacheHosts are HTTP caches to fetch files through, as Delivery
	// Optimization's cache hosts (DOCacheHost, a Microsoft Connected Cache):
	// each "host" or "host:port" (port 80 by default; an IPv6 address in
	// brackets). Anything else is ErrInvalidArg at NewManager. A file of an
	// http URL is asked of the first cache host not banned, as the file's
	// URL with the cache's host and port and the query parameter
	// cacheHostOrigin=<origin host[:port]> appended; a cache host is a
	// source in front of RemoteURL and the mirrors (FileSpec.Mirrors), and
	// FileInfo.CacheHost tells which one served the file. Files of https
	// URLs never go through a cache host (it would see the bytes without
	// the origin's TLS). A cache host gets the job's custom headers but
	// never its credentials, Authorization, Proxy-Authorization or Cookie
	// (they belong to the origin). Connecting to a cache host gives up
	// after 3 s with dojob's own client (Config.HTTPClient nil). A cache host
	// that answers a request for an origin with a 4xx is not asked for that
	// origin for CacheHostBan (15 min), one dojob cannot connect to is not
	// asked for any origin for as long; the bans are the Manager's, in
	// memory. See CacheHostFallback.
	CacheHosts []string

	// CacheHostFallback is how long a file is tried on its cache hosts
	// before its own sources are used (DO's DelayCacheServerFallback):
	// 0 falls back at once — a failure of a cache host moves the file to its
	// next source within the same attempt, as a mirror's does; a positive
	// delay keeps the file on its cache hosts, retrying them after
	// transient errors as usual, until that long after it first asked one —
	// the first failure past it moves the file to its own sources for the
	// rest of the Manager's life; NoCacheFallback (-1) never falls back
	// (and bans nothing: a 4xx from the cache then fails the job). A banned
	// cache host is skipped whatever the delay. Other negative values are
	// ErrInvalidArg.
	CacheHostFallback time.Duration

	// RetryJitter spreads the retries of jobs that failed together: after a
	// transient error, each job waits its retry delay plus up to this
	// fraction of it more (0.1: up to 10 % more), so a fleet of machines
	// whose downloads broke at the same moment does not come back at the
	// same moment. The extra wait is derived from the job's ID and its
	// error count, not drawn at random: the same job waits the same after
	// the same failure, in every run. The jitter only adds — the wait is
	// never shorter than MinimumRetryDelay, its doubling or a server's
	// Retry-After. 0, the default, keeps BITS's exact timing; a value
	// outside 0 to 1 (or NaN) makes NewManager return ErrInvalidArg.
	RetryJitter float64
}

// Defaults for Config fields left zero.
const (
	DefaultStallTimeout       = 60 * time.Second
	DefaultCheckpointInterval = time.Second
)

// Manager owns jobs and runs them: it schedules transfers, keeps their
// timers, delivers their callbacks and, with Config.StateDir, persists them
// (the IBackgroundCopyManager of BITS/DO). A Manager is safe for concurrent
// use. Every goroutine it starts — one loop for timers and scheduling, one
// per running transfer, one per job that has callbacks to deliver, one
// writer for persistence — is waited for by Close (a Close called from a
// callback leaves the running callbacks to return on their own; see
// Close). Idle jobs have none.
// A Manager must be created by NewManager: the zero Manager is not usable
// (its methods would panic).
type Manager struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	ownTr  *http.Transport // the transport of dojob's own client, closed by Close
	nets   netCache        // transports derived for jobs' proxy and TLS settings (netopts.go)
	epoch  time.Time       // origin of the monotonic clock (now)
	fs     fileSystem
	store  *store     // nil for an in-memory Manager
	logq   logQueue   // records logged under a lock, waiting for the Logger (log.go)
	bufs   sync.Pool  // *[]byte copy buffers of bufSize
	hosts  hostBudget // connections open per host (Config.MaxConnectionsPerHost)

	caches *cacheHosts // Config.CacheHosts and their bans (cache.go)

	// defects counts state changes the engine made that setStateLocked
	// refused (moveLocked): dojob's own bugs, which the tests require to
	// stay 0.
	defects atomic.Int64

	rehashes atomic.Int64 // temporary files hashed from disk (verify.go), for tests
	readBack atomic.Int64 // bytes of files in segments read back to be hashed (segment.go), for tests

	sched scheduler
	clock clock
	pace  pacer   // bandwidth limits (pace.go)
	cost  netCost // the NetworkCost last reported (cost.go)

	holdHook func(*Job) // tests: runs when a worker's check finds the job held (hold.go)

	mu   sync.Mutex     // guards jobs and seq
	jobs map[JobID]*Job // jobs not in a final state
	seq  uint64

	// Goroutine ownership: spawn adds to tasks under goMu unless closed is
	// set, and Close sets closed under goMu before it waits, so no
	// goroutine starts once Close waits for them all. goCond (on goMu) is
	// signalled when a task ends or enters a callback.
	goMu   sync.Mutex
	goCond sync.Cond
	tasks  map[*task]struct{} // goroutines started by spawn and still running; guarded by goMu
	inCall int                // tasks running a user callback (task.calling); guarded by goMu
	closed atomic.Bool        // Close has begun: no new goroutine or delivery; state-changing calls return ErrNoService

	kicked    atomic.Bool   // a scheduling pass is due
	paused    atomic.Bool   // Config.Paused until Start
	wake      chan struct{} // wakes the loop (capacity 1)
	done      chan struct{} // closed when Close begins: stops the loop, ends Job.Wait
	beginOnce sync.Once     // Close's first half: stop everything (beginClose)
	closeOnce sync.Once     // Close's second half: the final writes (finishClose)
	closing   []*Job        // the jobs open when Close began; set by beginClose
	closeErr  error
}

// NewManager returns a running Manager. With cfg.StateDir it creates or
// opens the state directory, locks it (a second Manager on it gets an error
// matching ErrSharingViolation) and brings back its jobs: CONNECTING and
// TRANSFERRING jobs are queued again and resume from their temporary files;
// damaged records are set aside and logged. Negative limits or timeouts
// return ErrInvalidArg.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.MaxForegroundJobs < 0 || cfg.MaxBackgroundJobs < 0 || cfg.StallTimeout < 0 || cfg.CheckpointInterval < 0 ||
		cfg.MaxConnectionsPerHost < 0 || cfg.MinSegmentSize < 0 {
		return nil, errorf(ErrInvalidArg, "negative limit or timeout in Config")
	}
	if !(cfg.RetryJitter >= 0 && cfg.RetryJitter <= 1) { // NaN fails both
		return nil, errorf(ErrInvalidArg, "Config.RetryJitter %v is outside 0 to 1", cfg.RetryJitter)
	}
	if err := cfg.Bandwidth.check(); err != nil {
		return nil, err
	}
	cfg.Bandwidth.Windows = slices.Clone(cfg.Bandwidth.Windows)

	caches, err := newCacheHosts(cfg.CacheHosts, cfg.CacheHostFallback)
	if err != nil {
		return nil, err
	}
	if cfg.RootCAs != nil && cfg.HTTPClient != nil {
		return nil, errorf(ErrInvalidArg, "Config.RootCAs applies to dojob's own client: set the roots in Config.HTTPClient's Transport")
	}
	if cfg.MaxForegroundJobs == 0 {
		cfg.MaxForegroundJobs = DefaultMaxForegroundJobs
	}
	if cfg.MaxBackgroundJobs == 0 {
		cfg.MaxBackgroundJobs = DefaultMaxBackgroundJobs
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.MaxConnectionsPerHost == 0 {
		cfg.MaxConnectionsPerHost = DefaultMaxConnectionsPerHost
	}
	if cfg.MinSegmentSize == 0 {
		cfg.MinSegmentSize = DefaultMinSegmentSize
	}
	m := &Manager{
		cfg:   cfg,
		log:   cfg.Logger,
		epoch: time.Now(),
		fs:    osFileSystem(),
		jobs:  make(map[JobID]*Job),
		tasks: make(map[*task]struct{}),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	m.goCond.L = &m.goMu
	m.caches = caches
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.bufs.New = func() any { b := make([]byte, bufSize); return &b }
	m.client, m.ownTr = newHTTPClient(cfg.HTTPClient, &m.nets)
	m.nets.m, m.nets.base = m, baseTransport(m.ownTr, cfg)
	m.sched.maxFg, m.sched.maxBg = cfg.MaxForegroundJobs, cfg.MaxBackgroundJobs
	m.hosts.max = cfg.MaxConnectionsPerHost
	m.paused.Store(cfg.Paused)
	m.clock.wake = m.poke
	m.pace.limits, m.pace.dl = cfg.Bandwidth, deadline{kind: dlPace}
	if next, ok := m.pace.evaluate(time.Now(), m.now()); ok {
		m.clock.set(&m.pace.dl, next)
	}
	if cfg.StateDir != "" {
		s, err := openStore(cfg.StateDir, m.log, cfg.Paused)
		if err != nil {
			return nil, err
		}
		m.store = s
		if err := m.reload(); err != nil {
			s.close()
			return nil, err
		}
		if !s.readOnly {
			m.spawn(nil, "the state writer", m.writer)
		}
	}
	m.spawn(nil, "the scheduling loop", m.loop)
	return m, nil
}

// now is the Manager's monotonic clock: time since NewManager. Wall-clock
// changes do not move it.
func (m *Manager) now() time.Duration { return time.Since(m.epoch) }

// task is a goroutine started by spawn, as Close reports it while it waits.
type task struct {
	job     *Job   // the job it works for; nil for the Manager's own
	what    string // what it does, e.g. "callbacks"
	calling bool   // a drain running a user callback (enterCallback); guarded by goMu
}

func (t *task) String() string {
	if t.job == nil {
		return t.what
	}
	return t.what + " of job " + t.job.id.String()
}

// spawn runs fn on a goroutine that Close waits for; j and what describe it
// in Close's report (j is nil for the Manager's own goroutines). It returns
// false, and runs nothing, once Close has begun.
func (m *Manager) spawn(j *Job, what string, fn func()) bool {
	return m.spawnTask(j, what, func(*task) { fn() }) != nil
}

// spawnTask is spawn for a goroutine that needs its task (a drain marks it
// while it runs a callback); it returns nil once Close has begun.
func (m *Manager) spawnTask(j *Job, what string, fn func(*task)) *task {
	m.goMu.Lock()
	defer m.goMu.Unlock()
	if m.closed.Load() {
		return nil
	}
	t := &task{job: j, what: what}
	m.tasks[t] = struct{}{}
	go func() {
		defer func() {
			m.goMu.Lock()
			delete(m.tasks, t)
			m.goCond.Broadcast()
			m.goMu.Unlock()
		}()
		fn(t)
	}()
	return t
}

// enterCallback marks t, a drain, as running a user callback, so that a
// Close called from a callback does not wait for it (see Close). It
// returns false, and marks nothing, once Close has begun: no callback
// starts after that.
func (m *Manager) enterCallback(t *task) bool {
	m.goMu.Lock()
	defer m.goMu.Unlock()
	if m.closed.Load() {
		return false
	}
	t.calling = true
	m.inCall++
	m.goCond.Broadcast()
	return true
}

// leaveCallback undoes enterCallback once the callback has returned.
func (m *Manager) leaveCallback(t *task) {
	m.goMu.Lock()
	t.calling = false
	m.inCall--
	m.goMu.Unlock()
}

// Start lets a Manager created with Config.Paused start transfers. It
// returns an error matching ErrWriteProtect on a Manager that opened its
// state directory read-only (see Config.Paused): it cannot run jobs it does
// not own. It is a no-op otherwise, and after Close (ErrNoService).
func (m *Manager) Start() error {
	if m.closed.Load() {
		return errorf(ErrNoService, "the manager is closed")
	}
	if err := m.writeProtected(); err != nil {
		return err
	}
	if m.paused.Swap(false) {
		m.kick()
	}
	return nil
}

// writeProtected returns ErrWriteProtect on a read-only Manager (a paused
// one that does not own its state directory), nil otherwise.
func (m *Manager) writeProtected() error {
	if m.store != nil && m.store.readOnly {
		return m.store.writeProtected()
	}
	return nil
}

// poke wakes the loop.
func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// kick asks the loop for a scheduling pass.
func (m *Manager) kick() {
	m.kicked.Store(true)
	m.poke()
}

// loop is the Manager's one long-lived goroutine: it fires due deadlines
// (retries, no-progress windows, watchdog ticks, callback re-deliveries) and
// runs scheduling passes. It never runs a callback or does I/O.
func (m *Manager) loop() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	var due []*deadline
	var p plan
	for {
		now := m.now()
		due = m.clock.popDue(now, due[:0])
		for i, d := range due {
			m.fire(d, now)
			due[i] = nil
		}
		if !m.paused.Load() && m.kicked.Swap(false) {
			m.sched.pass(&p)
			for i, j := range p.start {
				j.start(p.kinds[i])
				p.start[i] = nil
			}
			if v := p.victim; v != nil {
				v.j.preempt(v)
				p.victim = nil
			}
		}
		if next, ok := m.clock.next(); ok {
			if wait := next - m.now(); wait > 0 {
				t.Reset(wait)
			} else {
				continue
			}
		}
		select {
		case <-t.C:
		case <-m.wake:
		case <-m.done:
			t.Stop()
			return
		}
		t.Stop()
	}
}

func (m *Manager) fire(d *deadline, now time.Duration) {
	switch d.kind {
	case dlRetry:
		d.job.onRetry(now)
	case dlWindow:
		d.job.onWindow(now)
	case dlTick:
		d.job.onTick(now)
	case dlRedeliver:
		d.job.onRedeliver(now)
	case dlPace:
		m.onPace()
	case dlMaxTime:
		d.job.onMaxTime(now)
	}
}

// CreateJob creates a job in SUSPENDED with the given display name (at most
// 256 characters, ErrStringTooLong), NORMAL priority, the default timeouts
// and flags, and no file. With Config.StateDir the job is on disk when
// CreateJob returns.
func (m *Manager) CreateJob(displayName string) (*Job, error) {
	if utf8.RuneCountInString(displayName) > maxDisplayName {
		return nil, errorf(ErrStringTooLong, "display name longer than %d characters", maxDisplayName)
	}
	if m.closed.Load() {
		return nil, errorf(ErrNoService, "the manager is closed")
	}
	if err := m.writeProtected(); err != nil {
		return nil, err
	}
	now := time.Now()
	j := m.newJob(newJobID(), now)
	j.name = displayName
	m.mu.Lock()
	m.seq++
	j.seq = m.seq
	m.jobs[j.id] = j
	m.mu.Unlock()
	if err := m.persist(j); err != nil {
		m.mu.Lock()
		delete(m.jobs, j.id)
		m.mu.Unlock()
		return nil, err
	}
	return j, nil
}

// newJob builds a SUSPENDED job with every default in place, before any
// other goroutine can see it.
func (m *Manager) newJob(id JobID, created time.Time) *Job {
	j := &Job{
		m:          m,
		id:         id,
		created:    created,
		state:      StateSuspended,
		changed:    make(chan struct{}),
		prio:       PriorityNormal,
		retryDelay: DefaultMinimumRetryDelay,
		flags:      DefaultNotifyFlags,
		modified:   created,
		version:    1, // unsaved: the first persist writes it
		qidx:       -1,
		qprio:      PriorityNormal,
	}
	j.retryDL = deadline{job: j, kind: dlRetry}
	j.windowDL = deadline{job: j, kind: dlWindow}
	j.tickDL = deadline{job: j, kind: dlTick}
	j.redeliverDL = deadline{job: j, kind: dlRedeliver}
	j.maxTimeDL = deadline{job: j, kind: dlMaxTime}
	return j
}

// Job returns the job with the given ID, or an error matching ErrJobNotFound
// if there is none or it reached a final state.
func (m *Manager) Job(id JobID) (*Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if j, ok := m.jobs[id]; ok {
		return j, nil
	}
	return nil, errorf(ErrJobNotFound, "no job %s", id)
}

// Jobs returns the jobs not in a final state, oldest first.
func (m *Manager) Jobs() []*Job {
	m.mu.Lock()
	out := make([]*Job, 0, len(m.jobs))
	for _, j := range m.jobs {
		out = append(out, j)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b *Job) int { return cmpUint64(a.seq, b.seq) })
	return out
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// forget drops a job that reached a final state from the index. The job's
// mu is held (lock order: job, then m.mu).
func (m *Manager) forget(j *Job) {
	m.mu.Lock()
	delete(m.jobs, j.id)
	m.mu.Unlock()
}

// Close stops the Manager: it stops every transfer, lets a callback that is
// running return (queued notifications are not delivered, and no callback
// starts once Close has begun), waits for every goroutine the Manager
// started and for any Resume, Suspend, Cancel or Complete already under
// way, writes the final state of every job and releases the state
// directory. Persisted jobs stay on disk, to be resumed by the next
// Manager; the jobs of an in-memory Manager end, and their temporary files
// are deleted. After Close, state-changing methods and setters return
// ErrNoService and getters keep working.
//
// Close may be called from a callback (a JobError that shuts the program
// down, say). Called on the goroutine that runs a callback — of this
// Manager or another; in the callback itself or in a function it calls,
// not in a goroutine it starts — Close does all of the above but does not
// wait for the callbacks of this Manager that are running at that moment:
// not for the one that calls it, which cannot return before Close does,
// nor for those of other jobs, which may be waiting for it. It returns
// once every other goroutine of the Manager has ended. The goroutine of
// each running callback ends as soon as its callback returns and touches
// nothing after that: no callback, no write to the state directory, no
// log record.
//
// Close is idempotent and safe for concurrent use; every call returns the
// same error. A call that is not made from a callback returns only once
// every goroutine of the Manager has ended, including those of callbacks
// that a Close from a callback left running.
//
// Close waits for as long as a callback takes to return. If it is still
// waiting after 5 s, it logs a warning through Config.Logger naming what it
// waits for (the callbacks or transfers of which jobs), and again every 30 s.
func (m *Manager) Close() error {
	fromCallback := inCallback()
	m.beginOnce.Do(m.beginClose)
	m.awaitGoroutines(fromCallback)
	m.closeOnce.Do(func() { m.closeErr = m.finishClose() })
	return m.closeErr
}

// beginClose is the first half of Close: no goroutine, delivery or change
// from now on, the loop and Wait end, transfers stop, the writer flushes.
func (m *Manager) beginClose() {
	m.goMu.Lock()
	m.closed.Store(true)
	m.goMu.Unlock()
	close(m.done)

	m.mu.Lock()
	m.closing = make([]*Job, 0, len(m.jobs))
	for _, j := range m.jobs {
		m.closing = append(m.closing, j)
	}
	m.mu.Unlock()
	for _, j := range m.closing {
		j.mu.Lock()
		if x := j.xfer; x != nil {
			x.cancel(errClosing)
		}
		j.mu.Unlock()
	}
	if m.store != nil {
		m.store.shutdown() // the writer flushes and exits
	}
}

// finishClose is the second half of Close, once the goroutines it waits
// for have ended: the final writes and the release of the state directory,
// or, in memory, the deletion of the temporary files; then the logs left.
// It takes each job's opMu, so that a state-changing call already under
// way (in a callback that is still running, or on a goroutine of the
// caller's) has finished before the job's last record is written.
func (m *Manager) finishClose() error {
	jobs := m.closing
	if m.ownTr != nil {
		m.ownTr.CloseIdleConnections()
	}
	m.nets.closeIdle()
	var errs []error
	if m.store != nil {
		for _, j := range jobs {
			j.opMu.Lock()
			err := m.persist(j)
			j.opMu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, m.store.close())
		m.flushLogs()
	} else {
		for _, j := range jobs {
			var temps []string
			j.opMu.Lock()
			j.mu.Lock()
			for _, f := range j.files {
				if !f.Completed && !f.Stream {
					temps = append(temps, f.Temp)
				}
			}
			j.mu.Unlock()
			j.opMu.Unlock()
			errs = append(errs, m.removeTemps(j, temps))
		}
		m.flushLogs()
	}
	return errors.Join(errs...)
}

// When Close reports what it still waits for (see Close).
const (
	closeReportAfter = 5 * time.Second
	closeReportEvery = 30 * time.Second
)

// awaitGoroutines waits for every goroutine spawn started — except, with
// exceptCallbacks, the drains that are running a user callback — logging
// what it still waits for after closeReportAfter and then every
// closeReportEvery: a callback that never returns would otherwise hang
// Close silently.
func (m *Manager) awaitGoroutines(exceptCallbacks bool) {
	idle := make(chan struct{})
	go func() { // returns once the condition holds; awaited below
		m.goMu.Lock()
		for len(m.tasks) > 0 && !(exceptCallbacks && len(m.tasks) == m.inCall) {
			m.goCond.Wait()
		}
		m.goMu.Unlock()
		close(idle)
	}()
	start := time.Now()
	t := time.NewTimer(closeReportAfter)
	defer t.Stop()
	for {
		select {
		case <-idle:
			return
		case <-t.C:
			m.log.Warn("dojob: Close is still waiting for goroutines to return; is a callback blocked?",
				"waited", time.Since(start), "waiting_for", m.runningTasks(exceptCallbacks))
			t.Reset(closeReportEvery)
		}
	}
}

// runningTasks describes the goroutines spawn started that have not
// returned, sorted; with exceptCallbacks, not those running a callback.
func (m *Manager) runningTasks(exceptCallbacks bool) []string {
	m.goMu.Lock()
	out := make([]string, 0, len(m.tasks))
	for t := range m.tasks {
		if exceptCallbacks && t.calling {
			continue
		}
		out = append(out, t.String())
	}
	m.goMu.Unlock()
	slices.Sort(out)
	return out
}
