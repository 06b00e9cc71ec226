package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dojob/dojob"
)

// maxDisplayName is dojob's limit on a display name, in characters.
const maxDisplayName = 256

// priorityFlag is a flag.Value for --priority.
type priorityFlag struct {
	p   dojob.Priority
	set bool
}

// String returns the priority's name in lower case.
func (f *priorityFlag) String() string { return strings.ToLower(f.p.String()) }

// Set parses foreground, high, normal or low, in any case.
func (f *priorityFlag) Set(s string) error {
	for _, p := range []dojob.Priority{dojob.PriorityForeground, dojob.PriorityHigh, dojob.PriorityNormal, dojob.PriorityLow} {
		if strings.EqualFold(s, p.String()) {
			f.p, f.set = p, true
			return nil
		}
	}
	return fmt.Errorf("priority %q is not foreground, high, normal or low", s)
}

// jobFlags are the settings get and resume apply to a job.
type jobFlags struct {
	priority          priorityFlag
	noProgressTimeout time.Duration
	retryDelay        time.Duration
	parallel          int             // files transferred at once
	connections       int             // connections per file
	speedLimit        int64           // --speed-limit: bytes per second; 0: off
	speedTime         time.Duration   // --speed-time
	limitRate         int64           // --limit-rate: bytes per second; 0: no limit
	maxTime           time.Duration   // --max-time: the job's maximum download time; 0: none
	set               map[string]bool // the flags given on the command line
}

// register adds the job flags to fs.
func (jf *jobFlags) register(fs *flag.FlagSet) {
	fs.Var(&jf.priority, "priority", "")
	fs.DurationVar(&jf.noProgressTimeout, "no-progress-timeout", 0, "")
	fs.DurationVar(&jf.retryDelay, "retry-delay", 0, "")
	fs.IntVar(&jf.parallel, "parallel", defaultParallel, "")
	fs.IntVar(&jf.connections, "connections", defaultConnections, "")
	fs.Int64Var(&jf.speedLimit, "speed-limit", 0, "")
	fs.Func("speed-time", "", func(s string) error {
		d, err := parseSeconds(s)
		jf.speedTime = d
		return err
	})
	fs.Func("max-time", "", func(s string) error {
		d, err := parseSeconds(s)
		jf.maxTime = d
		return err
	})
	fs.Func("limit-rate", "", func(s string) error {
		n, err := parseRate(s)
		jf.limitRate = n
		return err
	})
}

// parseRate parses --limit-rate as curl does: bytes per second, with an
// optional suffix K, M, G or T (either case) for 1024, 1024², 1024³ or
// 1024⁴, and a decimal fraction allowed ("2.5M"). 0 means no limit. Beyond
// curl, a suffix may be followed by B or iB, as dojob prints rates: 20MB
// and 20MiB are 20M (1024-based, as curl's M).
func parseRate(s string) (int64, error) {
	mult := 1.0
	num := s
	for _, unit := range []string{"iB", "ib", "B", "b"} {
		if t, ok := strings.CutSuffix(s, unit); ok && len(t) > 1 && strings.ContainsRune("kKmMgGtT", rune(t[len(t)-1])) {
			num = t
			break
		}
	}
	if n := len(num); n > 0 {
		switch num[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		case 't', 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			num = num[:n-1]
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(num, "eExXpP_") {
		return 0, fmt.Errorf("%q is not a rate: bytes per second, optionally with a K, M, G or T suffix", s)
	}
	v := f * mult
	if v < 0 || v >= math.MaxInt64 {
		return 0, fmt.Errorf("rate %q is negative or too large", s)
	}
	return int64(v), nil
}

// parseSeconds parses --speed-time and --max-time: seconds, as curl takes
// them ("30", "2.5"), or a duration with its unit ("30s", "1m").
func parseSeconds(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || f < 0 || f > dojob.MaxTimeout.Seconds() {
			return 0, fmt.Errorf("%q is not a number of seconds from 1 to %d", s, int64(dojob.MaxTimeout.Seconds()))
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a number of seconds nor a duration", s)
	}
	return d, nil
}

// minimumSpeed is what --speed-limit and --speed-time ask of a job, as curl
// reads them: --speed-limit alone is over 30 s (window 0: the library's
// default, DefaultMinimumSpeedWindow), --speed-time alone is a limit of
// 1 byte per second. ok is false when neither was given.
func (jf *jobFlags) minimumSpeed() (bytesPerSecond int64, window time.Duration, ok bool) {
	if !jf.set["speed-limit"] && !jf.set["speed-time"] {
		return 0, 0, false
	}
	bytesPerSecond = 1
	if jf.set["speed-limit"] {
		bytesPerSecond = jf.speedLimit
	}
	if jf.set["speed-time"] {
		window = jf.speedTime
	}
	return bytesPerSecond, window, true
}

// parsed records which flags of fs were given and validates them.
func (jf *jobFlags) parsed(fs *flag.FlagSet) error {
	jf.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { jf.set[f.Name] = true })
	if jf.noProgressTimeout < 0 {
		return errors.New("--no-progress-timeout must not be negative")
	}
	if jf.set["retry-delay"] && jf.retryDelay <= 0 {
		return errors.New("--retry-delay must be positive")
	}
	if jf.parallel < 1 || jf.parallel > dojob.MaxParallelFilesLimit {
		return fmt.Errorf("--parallel must be between 1 and %d", dojob.MaxParallelFilesLimit)
	}
	if jf.connections < 1 || jf.connections > dojob.MaxConnectionsLimit {
		return fmt.Errorf("--connections must be between 1 and %d", dojob.MaxConnectionsLimit)
	}
	if jf.speedLimit < 0 {
		return errors.New("--speed-limit must not be negative")
	}
	if jf.set["speed-time"] && (jf.speedTime < time.Second || jf.speedTime > dojob.MaxTimeout) {
		return errors.New("--speed-time must be at least 1 second")
	}
	if jf.maxTime < 0 || jf.maxTime > dojob.MaxTimeout {
		return fmt.Errorf("--max-time must be from 0 to %d seconds", int64(dojob.MaxTimeout.Seconds()))
	}
	return nil
}

// apply sets the given flags on j; the priority and the parallel files also
// when always is set (get makes its jobs FOREGROUND, 8 files at a time,
// unless told otherwise).
func (jf *jobFlags) apply(j *dojob.Job, always bool) error {
	if jf.priority.set || always {
		if err := j.SetPriority(jf.priority.p); err != nil {
			return err
		}
	}
	if jf.set["no-progress-timeout"] {
		if err := j.SetNoProgressTimeout(jf.noProgressTimeout); err != nil {
			return err
		}
	}
	if jf.set["retry-delay"] {
		if err := j.SetMinimumRetryDelay(jf.retryDelay); err != nil {
			return err
		}
	}
	if jf.set["parallel"] || always {
		if err := j.SetMaxParallelFiles(jf.parallel); err != nil {
			return err
		}
	}
	if jf.set["connections"] || always {
		if err := j.SetMaxConnections(jf.connections); err != nil {
			return err
		}
	}
	if bps, window, ok := jf.minimumSpeed(); ok {
		if err := j.SetMinimumSpeed(bps, window); err != nil {
			return err
		}
	}
	if jf.set["limit-rate"] {
		if err := j.SetMaximumBandwidth(jf.limitRate); err != nil {
			return err
		}
	}
	if jf.set["max-time"] {
		if err := j.SetMaximumDownloadTime(jf.maxTime); err != nil {
			return err
		}
	}
	return nil
}

// defaultParallel is how many files of a get transfer at once unless
// --parallel says otherwise: many small files go at the speed of a few
// connections, as with curl --parallel.
const defaultParallel = 8

// defaultConnections is how many connections each file of a get may use
// unless --connections says otherwise. Four, where the library's default is
// one: a command-line download is the case segments are for (a server or
// CDN that caps each connection), four is under aria2's default split of
// five and what download accelerators have long used, and it costs nothing
// elsewhere — a file is split only when it is at least two minimum segments
// (2 MiB) and its server answered a validated 206, and the Manager's
// per-host budget (8) keeps --parallel × --connections from flooding a
// server.
const defaultConnections = 4

// fileSpec is one file of a get: where from, where to, and how it is
// checked (FileSpec.Size and Checksum).
type fileSpec struct {
	url      string   // as given
	path     string   // absolute and clean
	mirrors  []string // --mirror: other URLs of the same file, tried in order
	size     int64    // the expected size in bytes; 0: not given
	checksum string   // "sha256:<hex>" or "sha512:<hex>" in lower case; "": none
}

// mirrorFlag is the repeatable --mirror URL flag.
type mirrorFlag []string

// String returns the mirrors with their secrets hidden.
func (f *mirrorFlag) String() string {
	var out []string
	for _, u := range *f {
		out = append(out, redact(u))
	}
	return strings.Join(out, ",")
}

// Set adds one mirror.
func (f *mirrorFlag) Set(s string) error { *f = append(*f, s); return nil }

// get implements "dojob get [flags] URL...".
func (c *cli) get(args []string) int {
	fs := c.flagSet("get")
	out := fs.String("o", "", "")
	dir := fs.String("d", "", "")
	keep := fs.Bool("keep", false, "")
	force := fs.Bool("force", false, "")
	createDirs := fs.Bool("create-dirs", false, "")
	var jf jobFlags
	jf.priority.p = dojob.PriorityForeground
	jf.register(fs)
	mf := managerFlags{transfers: true}
	mf.register(fs)
	var hf httpFlags
	hf.register(fs)
	var nf netFlags
	nf.register(fs)
	var mirrors mirrorFlag
	fs.Var(&mirrors, "mirror", "")
	var vf verifyFlags
	vf.register(fs)
	urls, err := parseArgs(fs, args)
	if err == nil {
		err = jf.parsed(fs)
	}
	if err == nil {
		err = mf.check()
	}
	if err == nil {
		err = nf.load(fs)
	}
	if err != nil {
		return c.usageError(err)
	}
	specs, err := destinations(urls, *out, *dir)
	if err == nil && len(mirrors) > 0 {
		if len(specs) != 1 {
			err = errors.New("get: --mirror takes a single URL (the mirrors are other URLs of that file)")
		} else {
			specs[0].mirrors = mirrors
		}
	}
	if err == nil {
		err = vf.apply(specs)
	}
	if err != nil {
		return c.usageError(err)
	}
	// The destinations are checked before the state directory is opened,
	// so nothing is requested for a download that could not be put in
	// place.
	if err := checkDestinations(specs, *force, *createDirs); err != nil {
		if ue := (usageErr{}); errors.As(err, &ue) {
			return c.usageError(ue.error)
		}
		return c.fail(err)
	}
	c.hintFlags = givenFlags(fs, "stall-timeout", "checkpoint-interval", "cache-host", "cache-fallback")
	var creds *dojob.Credentials
	if hf.user != "" {
		cr, err := hf.credentials(c.stderr)
		if err != nil {
			return c.usageError(err)
		}
		creds = &cr
	}
	return c.withManager(mf, func(m *dojob.Manager) int {
		j, err := findJob(m, specs)
		if ce := (*conflictError)(nil); errors.As(err, &ce) {
			return c.conflict(err, ce.id)
		} else if err != nil {
			return c.fail(err)
		}
		continued := j != nil
		configure := func(j *dojob.Job) error { return jf.apply(j, true) }
		if j != nil {
			p := j.Progress()
			c.printf("continuing job %s (%s): %s already transferred\n", j.ID(), j.DisplayName(), formatBytes(p.BytesTransferred))
			if err := configure(j); err != nil {
				return c.fail(err)
			}
		} else if j, err = createJob(m, specs, configure); err != nil {
			return c.fail(err)
		}
		err = hf.apply(j, creds)
		if err == nil {
			err = nf.apply(j)
		}
		if err != nil {
			if !continued {
				_ = j.Cancel() // no half-configured job stays behind
			}
			return c.fail(err)
		}
		return c.transfer(mf, j, !*keep)
	}, func(cl *ctlClient) (int, error) {
		if hf.given() || nf.given() {
			// The control protocol carries no secrets.
			return c.usageError(errors.New("-H, --user and the proxy and TLS flags need the state directory: another dojob command holds it; run this get when it is done, or with another --state-dir")), nil
		}
		return c.getRemote(cl, specs, &jf, !*keep)
	})
}

// resume implements "dojob resume [flags] ID".
func (c *cli) resume(args []string) int {
	fs := c.flagSet("resume")
	var jf jobFlags
	jf.register(fs)
	mf := managerFlags{transfers: true}
	mf.register(fs)
	pos, err := parseArgs(fs, args)
	if err == nil {
		err = jf.parsed(fs)
	}
	if err == nil {
		err = mf.check()
	}
	var ref string
	if err == nil {
		ref, err = oneID(pos)
	}
	if err != nil {
		return c.usageError(err)
	}
	c.hintFlags = givenFlags(fs, "stall-timeout", "checkpoint-interval", "cache-host", "cache-fallback")
	return c.withManager(mf, func(m *dojob.Manager) int {
		j, code := c.findJobByID(m, ref)
		if j == nil {
			return code
		}
		if err := jf.apply(j, false); err != nil {
			return c.fail(err)
		}
		return c.transfer(mf, j, false)
	}, func(cl *ctlClient) (int, error) {
		id, code, err := c.remoteJobID(cl, ref)
		if err != nil || code != exitOK {
			return code, err
		}
		return c.resumeRemote(cl, id, &jf)
	})
}

// checkDestinations checks, before anything is requested, that each file
// of a get can be put in place: its directory exists (or is created, with
// createDirs, as Delivery Optimization creates a LocalPath's directories;
// BITS, and dojob's library, require it to exist), no directory is at the
// destination (a usageErr: the command line names a directory where a
// file goes) and nothing else is there already (unless force: Complete
// then replaces it). The errors name the path and the flag that changes
// the answer. One Lstat a file (a Stat more only for a symbolic link): a
// get of a thousand files looks at each destination once.
func checkDestinations(specs []fileSpec, force, createDirs bool) error {
	checked := map[string]bool{} // directories found or created
	for _, s := range specs {
		if dir := filepath.Dir(s.path); !checked[dir] {
			if err := checkDestinationDir(dir, createDirs); err != nil {
				return err
			}
			checked[dir] = true
		}
		fi, err := os.Lstat(s.path)
		if err != nil {
			continue
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err := os.Stat(s.path); err == nil {
				fi = target
			}
		}
		switch {
		case fi.IsDir():
			return usageErr{fmt.Errorf("get: %s is a directory", s.path)}
		case !force:
			return fmt.Errorf("get: %s already exists (use --force to replace it)", s.path)
		}
	}
	return nil
}

// usageErr is an error of checkDestinations that is the command line's
// fault: get reports it as a usage error.
type usageErr struct{ error }

// checkDestinationDir checks that dir is a directory, creating it if it is
// missing and createDirs is set.
func checkDestinationDir(dir string, createDirs bool) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return fmt.Errorf("get: destination directory %s is not a directory", dir)
	case errors.Is(err, fs.ErrNotExist) && createDirs:
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("get: creating destination directory: %w", err)
		}
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("get: destination directory %s does not exist (use --create-dirs to create it)", dir)
	case err != nil:
		return fmt.Errorf("get: destination directory: %w", err)
	}
	return nil
}

// destinations maps the URLs of a get to their local paths: out for a
// single URL, or dir (default: the working directory) joined with the last
// segment of each URL's path. The paths are absolute and clean, as dojob
// requires. Every error is a usage error.
func destinations(urls []string, out, dir string) ([]fileSpec, error) {
	if len(urls) == 0 {
		return nil, errors.New("get: no URL")
	}
	if out != "" && dir != "" {
		return nil, errors.New("get: -o and -d exclude each other")
	}
	if out != "" && len(urls) > 1 {
		return nil, errors.New("get: -o takes a single URL; use -d for several")
	}
	if out == "" && dir == "" {
		dir = "."
	}
	if dir != "" {
		// Once: filepath.Abs asks for the working directory each time.
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("get: %s: %w", dir, err)
		}
		dir = abs
	}
	specs := make([]fileSpec, 0, len(urls))
	seen := map[string]string{}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("get: %q is not an http or https URL", redact(raw))
		}
		dest := out
		if dest == "" {
			name := path.Base(u.Path)
			if u.Path == "" || strings.HasSuffix(u.Path, "/") || name == "." || name == ".." || name == "/" || strings.ContainsAny(name, `/\`) {
				return nil, fmt.Errorf("get: %s has no file name in its path; use -o", redact(raw))
			}
			dest = filepath.Join(dir, name)
		}
		abs, err := filepath.Abs(dest)
		if err != nil {
			return nil, fmt.Errorf("get: %s: %w", dest, err)
		}
		if prev, ok := seen[abs]; ok {
			return nil, fmt.Errorf("get: %s and %s would both be saved as %s", redact(prev), redact(raw), abs)
		}
		seen[abs] = raw
		specs = append(specs, fileSpec{url: raw, path: abs})
	}
	return specs, nil
}

// findJob returns the unfinished job of m whose files are exactly specs,
// in order — the same URLs, destinations, expected sizes and checksums —
// or nil. A job with the same URLs and destinations but another expected
// size or checksum for one of them is an error naming it: continuing it
// would check the files against what this get did not ask for, and a new
// job beside it would download to the same destinations. The user cancels
// or resumes that job.
func findJob(m *dojob.Manager, specs []fileSpec) (*dojob.Job, error) {
	for _, j := range m.Jobs() {
		files := j.Files()
		if len(files) != len(specs) {
			continue
		}
		same, checked := true, true
		for i, f := range files {
			if f.RemoteURL != specs[i].url || f.LocalPath != specs[i].path || f.Ranges != nil || !slices.Equal(f.Mirrors, specs[i].mirrors) {
				same = false
				break
			}
			checked = checked && sameVerification(f, specs[i])
		}
		switch {
		case same && checked:
			return j, nil
		case same:
			return nil, &conflictError{id: j.ID(), name: j.DisplayName()}
		}
	}
	return nil, nil
}

// conflictError is findJob's error: job id has the files of a get with
// another expected size or checksum.
type conflictError struct {
	id   dojob.JobID
	name string
}

// Error names the job.
func (e *conflictError) Error() string {
	return fmt.Sprintf("get: job %s (%s) downloads these URLs to these destinations with another checksum or size", e.id, e.name)
}

// conflict reports a *conflictError for job id with the commands that
// end it or continue it, and returns exitFail.
func (c *cli) conflict(err error, id dojob.JobID) int {
	c.fail(err)
	fmt.Fprintf(c.stderr, "cancel it: %s\nor continue it as it is: %s\n", c.hint("cancel", id), c.hint("resume", id))
	return exitFail
}

// createJob creates a job for specs, named after its first file. A job that
// cannot be built completely is cancelled, so no half job stays behind.
func createJob(m *dojob.Manager, specs []fileSpec, configure func(*dojob.Job) error) (*dojob.Job, error) {
	name := filepath.Base(specs[0].path)
	if len(specs) > 1 {
		name = fmt.Sprintf("%s (+%d more)", name, len(specs)-1)
	}
	if utf8.RuneCountInString(name) > maxDisplayName {
		name = string([]rune(name)[:maxDisplayName-1]) + "…"
	}
	j, err := m.CreateJob(name)
	if err != nil {
		return nil, err
	}
	// The settings go first, while the record is short: each setter that
	// changes something rewrites the whole record, which after AddFileSet
	// holds every file.
	if configure != nil {
		if err := configure(j); err != nil {
			_ = j.Cancel()
			return nil, err
		}
	}
	// One AddFileSet: all files or none, in one durable write (a thousand
	// AddFile calls would rewrite a growing record a thousand times).
	set := make([]dojob.FileSpec, len(specs))
	for i, s := range specs {
		set[i] = dojob.FileSpec{RemoteURL: s.url, LocalPath: s.path, Mirrors: s.mirrors, Size: s.size, Checksum: s.checksum}
	}
	if err := j.AddFileSet(set); err != nil {
		_ = j.Cancel()
		if len(specs) == 1 {
			return nil, fmt.Errorf("adding %s: %w", redact(specs[0].url), err)
		}
		return nil, fmt.Errorf("adding the files: %w", err) // the error names the file
	}
	return j, nil
}

// transfer resumes j, shows its progress until it is TRANSFERRED or in
// ERROR, completes it on success, and reports the outcome. On ERROR it
// cancels the job if cancelOnError is set. If c.ctx ends first (Ctrl-C),
// it suspends the job, releases the state directory so that everything is
// on disk, and prints the command that continues. mf are the flags the
// job's Manager was opened with.
func (c *cli) transfer(mf managerFlags, j *dojob.Job, cancelOnError bool) int {
	start := time.Now()
	d := c.newDisplay(j, mf.stallTimeout)
	defer d.finish(false) // on every path; a no-op after the first call

	// State changes come from the job's callback, on a goroutine of the
	// Manager; the display ignores them once finished. detach puts the
	// job's flags back as they were (on a job that is not final), so the
	// job keeps nothing of this command.
	flags := j.NotifyFlags()
	detach := func() {
		_ = j.SetNotifyInterface(nil)
		_ = j.SetNotifyFlags(flags)
	}
	if err := j.SetNotifyFlags(flags | dojob.NotifyJobModification); err != nil {
		return c.fail(err)
	}
	defer detach() // a no-op error once the job is final or m is closed
	// Another dojob command may suspend the job through the control
	// endpoint: Wait returns SUSPENDED (or the state callback ends the wait
	// first), and the command stops as on Ctrl-C.
	waitCtx, stopWait := context.WithCancelCause(c.ctx)
	defer stopWait(nil)
	cb := dojob.CallbackFuncs{StateChanged: func(j *dojob.Job, from, to dojob.State) error {
		if to == dojob.StateSuspended {
			stopWait(errSuspended)
		}
		return d.stateChanged(j, from, to)
	}}
	if err := j.SetNotifyInterface(cb); err != nil {
		return c.fail(err)
	}
	ops := outcomeOps{
		complete: j.Complete,
		cancel:   j.Cancel,
		suspend:  j.Suspend,
		await: func(ctx context.Context, s dojob.State) error {
			d.await(ctx, s)
			return nil
		},
		keep: detach,
		stop: func() {
			detach()
			_ = c.release() // withManager reports its error
		},
	}
	initial := j.State()
	if err := j.Resume(); err != nil {
		return c.fail(err)
	}
	st, err := j.Wait(waitCtx)
	switch {
	case err == nil:
	case c.ctx.Err() != nil:
		return c.interrupted(d, j, ops)
	case context.Cause(waitCtx) == errSuspended:
		st = dojob.StateSuspended
	default:
		return c.fail(err)
	}
	code, _ := c.outcome(d, j, ops, initial, st, start, cancelOnError)
	return code
}

// outcomeOps are what transfer and follow do differently to the job whose
// outcome they report: a job here, or one the holder runs for this command.
type outcomeOps struct {
	complete, cancel, suspend func() error
	// await lets the display show the change into s, which the job has
	// made, before it stops (display.await, or polling the holder). An
	// error matching errHolderGone means the holder went away.
	await func(ctx context.Context, s dojob.State) error
	keep  func() // the job stays as it is: this command lets go of it
	stop  func() // after an interruption: let go of the job and the directory
}

// interrupted ends a get or resume whose wait c.ctx ended (Ctrl-C): it
// suspends the job first, so that the display ends on SUSPENDED (what the
// job is), not on the state the interruption found, and prints the command
// that continues.
func (c *cli) interrupted(d *display, j jobView, ops outcomeOps) int {
	suspendErr := ops.suspend()
	if suspendErr == nil {
		_ = ops.await(context.Background(), dojob.StateSuspended)
	}
	d.finish(false)
	ops.stop()
	if c.json {
		c.printJSON(resultOf(j, nil, true))
	}
	if suspendErr != nil {
		c.fail(suspendErr)
	}
	fmt.Fprintf(c.stderr, "interrupted; continue with: %s\n", c.hint("resume", j.ID()))
	return exitFail
}

// outcome reports how the wait of a get or resume for j ended, in state st
// (initial: its state before the command resumed it), and does what
// follows: Complete on TRANSFERRED, Cancel on ERROR if cancelOnError. It
// returns the exit status, or an error matching errHolderGone if the
// holder of a job another process runs went away before the outcome was
// decided (then nothing was reported: the command starts over).
func (c *cli) outcome(d *display, j jobView, ops outcomeOps, initial, st dojob.State, start time.Time, cancelOnError bool) (int, error) {
	// Let the display print the change into st before it stops: the
	// callback runs a moment after the wait sees the state. A job that was
	// TRANSFERRED already makes no change.
	if initial != st || st != dojob.StateTransferred {
		if err := ops.await(c.ctx, st); err != nil {
			d.finish(false)
			return exitFail, err
		}
	}

	switch st {
	case dojob.StateTransferred:
		if err := ops.complete(); err != nil {
			// Not started over even if the holder went away: whether the
			// files are in place is for info to tell.
			d.finish(false)
			c.fail(fmt.Errorf("completing job %s: %w", j.ID(), err))
			fmt.Fprintf(c.stderr, "the job is kept; retry with: %s\n", c.hint("complete", j.ID()))
			return exitFail, nil
		}
		_ = ops.await(c.ctx, dojob.StateAcknowledged) // the files are in place whatever it says
		d.finish(true)
		if c.json {
			c.printJSON(resultOf(j, nil, false))
			return exitOK, nil
		}
		c.printf("%s\n", summary(j, d.bytesBefore(), time.Since(start)))
		return exitOK, nil

	case dojob.StateError:
		jerr, _ := j.Error()
		d.finish(false)
		// The error is printed here, once; the progress output only said
		// ERROR.
		if jerr != nil {
			fmt.Fprintln(c.stderr, "dojob: "+describeError(jerr))
		} else {
			fmt.Fprintf(c.stderr, "dojob: job %s ended in ERROR\n", j.ID())
		}
		invalid := jerr != nil && jerr.Code == dojob.ErrValidationFailed
		if invalid {
			fmt.Fprintln(c.stderr, validationText(jerr))
		}
		switch {
		case cancelOnError:
			if err := ops.cancel(); err != nil {
				c.fail(err)
			} else if invalid {
				fmt.Fprintln(c.stderr, "the job was cancelled; check the checksum or size given, and the URL (--keep keeps a failed job)")
			}
		case invalid:
			ops.keep()
			fmt.Fprintf(c.stderr, "the job is kept; resume downloads the file again: %s\n", c.hint("resume", j.ID()))
		default:
			ops.keep()
			fmt.Fprintf(c.stderr, "the job is kept; see: %s\n", c.hint("info", j.ID()))
		}
		if c.json {
			c.printJSON(resultOf(j, jerr, false))
		}
		return exitFail, nil

	case dojob.StateSuspended: // another dojob command suspended it
		d.finish(false)
		ops.keep()
		return c.suspendedElsewhere(j), nil

	default: // ACKNOWLEDGED or CANCELLED: another party ended it
		d.finish(false)
		if c.json {
			c.printJSON(resultOf(j, nil, false))
		}
		return c.fail(fmt.Errorf("job %s ended in %s", j.ID(), st)), nil
	}
}

// validationText explains an ErrValidationFailed error of a job: which file
// failed which check (what was expected; the error's own message, printed
// before, tells what arrived when it is known), and that its data was
// discarded, so nothing is at its destination.
func validationText(e *dojob.JobError) string {
	if e.File == nil {
		return "a file failed its check: its downloaded data was discarded"
	}
	f := e.File
	var want []string
	if f.Checksum != "" {
		want = append(want, f.Checksum)
	}
	if f.ExpectedSize > 0 {
		want = append(want, plural64(f.ExpectedSize, "byte"))
	}
	exp := ""
	if len(want) > 0 {
		exp = " (expected " + strings.Join(want, ", ") + ")"
	}
	return fmt.Sprintf("the download for %s failed its check%s: its data was discarded and nothing was saved there", f.LocalPath, exp)
}

// plural64 is plural for an int64.
func plural64(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// summary is the last line of a successful get or resume: the files and
// bytes of the job, and — when some were already on disk from an earlier
// run — how many of them this run transferred, at which speed.
func summary(j jobView, before int64, elapsed time.Duration) string {
	p := j.Progress()
	thisRun := max(p.BytesTotal-before, 0)
	speed := formatBytes(int64(float64(thisRun)/max(elapsed.Seconds(), 1e-3))) + "/s"
	s := fmt.Sprintf("done: %s, %s in %s", plural(p.FilesTotal, "file"), formatBytes(p.BytesTotal), elapsed.Round(time.Millisecond))
	if before > 0 {
		s += fmt.Sprintf(": %s this run (%s), %s already on disk", formatBytes(thisRun), speed, formatBytes(before))
	} else {
		s += " (" + speed + ")"
	}
	return s + ", job " + j.ID().String()
}

// plural formats n with the noun, adding an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
