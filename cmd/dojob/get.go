package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
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
	set               map[string]bool // the flags given on the command line
}

// register adds the job flags to fs.
func (jf *jobFlags) register(fs *flag.FlagSet) {
	fs.Var(&jf.priority, "priority", "")
	fs.DurationVar(&jf.noProgressTimeout, "no-progress-timeout", 0, "")
	fs.DurationVar(&jf.retryDelay, "retry-delay", 0, "")
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
	return nil
}

// apply sets the given flags on j; the priority also when always is set
// (get makes its jobs FOREGROUND unless told otherwise).
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
	return nil
}

// fileSpec is one file of a get: where from, where to.
type fileSpec struct {
	url  string // as given
	path string // absolute and clean
}

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
	urls, err := parseArgs(fs, args)
	if err == nil {
		err = jf.parsed(fs)
	}
	if err == nil {
		err = mf.check()
	}
	if err != nil {
		return c.usageError(err)
	}
	specs, err := destinations(urls, *out, *dir)
	if err != nil {
		return c.usageError(err)
	}
	// The destinations are checked before the state directory is opened,
	// so nothing is requested for a download that could not be put in
	// place.
	if err := checkDestinations(specs, *force, *createDirs); err != nil {
		return c.fail(err)
	}
	c.hintFlags = givenFlags(fs, "stall-timeout", "checkpoint-interval")
	return c.withManager(mf, func(m *dojob.Manager) int {
		j := findJob(m, specs)
		if j != nil {
			p := j.Progress()
			c.printf("continuing job %s (%s): %s already transferred\n", j.ID(), j.DisplayName(), formatBytes(p.BytesTransferred))
		} else {
			if j, err = createJob(m, specs); err != nil {
				return c.fail(err)
			}
		}
		if err := jf.apply(j, true); err != nil {
			return c.fail(err)
		}
		return c.transfer(m, mf, j, !*keep)
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
	c.hintFlags = givenFlags(fs, "stall-timeout", "checkpoint-interval")
	return c.withManager(mf, func(m *dojob.Manager) int {
		j, code := c.findJobByID(m, ref)
		if j == nil {
			return code
		}
		if err := jf.apply(j, false); err != nil {
			return c.fail(err)
		}
		return c.transfer(m, mf, j, false)
	})
}

// checkDestinations checks, before anything is requested, that each file
// of a get can be put in place: its directory exists (or is created, with
// createDirs, as Delivery Optimization creates a LocalPath's directories;
// BITS, and dojob's library, require it to exist) and nothing is at the
// destination already (unless force: Complete then replaces it). The
// errors name the path and the flag that changes the answer.
func checkDestinations(specs []fileSpec, force, createDirs bool) error {
	for _, s := range specs {
		dir := filepath.Dir(s.path)
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
		if _, err := os.Lstat(s.path); err == nil && !force {
			return fmt.Errorf("get: %s already exists (use --force to replace it)", s.path)
		}
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
		if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("get: %s is a directory", abs)
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
// in order, or nil.
func findJob(m *dojob.Manager, specs []fileSpec) *dojob.Job {
	for _, j := range m.Jobs() {
		files := j.Files()
		if len(files) != len(specs) {
			continue
		}
		same := true
		for i, f := range files {
			if f.RemoteURL != specs[i].url || f.LocalPath != specs[i].path || f.Ranges != nil {
				same = false
				break
			}
		}
		if same {
			return j
		}
	}
	return nil
}

// createJob creates a job for specs, named after its first file. A job that
// cannot be built completely is cancelled, so no half job stays behind.
func createJob(m *dojob.Manager, specs []fileSpec) (*dojob.Job, error) {
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
	for _, s := range specs {
		if err := j.AddFile(s.url, s.path); err != nil {
			_ = j.Cancel()
			return nil, fmt.Errorf("adding %s: %w", redact(s.url), err)
		}
	}
	return j, nil
}

// transfer resumes j, shows its progress until it is TRANSFERRED or in
// ERROR, completes it on success, and reports the outcome. On ERROR it
// cancels the job if cancelOnError is set. If c.ctx ends first (Ctrl-C),
// it suspends the job, closes m so that everything is on disk, and prints
// the command that continues.
func (c *cli) transfer(m *dojob.Manager, mf managerFlags, j *dojob.Job, cancelOnError bool) int {
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
	if err := j.SetNotifyInterface(dojob.CallbackFuncs{StateChanged: d.stateChanged}); err != nil {
		return c.fail(err)
	}
	initial := j.State()
	if err := j.Resume(); err != nil {
		return c.fail(err)
	}
	st, err := j.Wait(c.ctx)
	if err != nil {
		if c.ctx.Err() == nil {
			return c.fail(err)
		}
		// Suspend first, so the display ends on SUSPENDED (what the job
		// is), not on the state the interruption found.
		suspendErr := j.Suspend()
		if suspendErr == nil {
			d.await(context.Background(), dojob.StateSuspended)
		}
		d.finish(false)
		detach()
		_ = m.Close() // withManager reports its error
		if c.json {
			c.printJSON(resultOf(j, nil, true))
		}
		if suspendErr != nil {
			c.fail(suspendErr)
		}
		fmt.Fprintf(c.stderr, "interrupted; continue with: %s\n", c.hint("resume", j.ID()))
		return exitFail
	}
	// Let the display print the change into st before it stops: the
	// callback runs a moment after Wait sees the state. A job that was
	// TRANSFERRED already makes no change.
	if initial != st || st != dojob.StateTransferred {
		d.await(c.ctx, st)
	}

	switch st {
	case dojob.StateTransferred:
		if err := j.Complete(); err != nil {
			d.finish(false)
			c.fail(fmt.Errorf("completing job %s: %w", j.ID(), err))
			fmt.Fprintf(c.stderr, "the job is kept; retry with: %s\n", c.hint("complete", j.ID()))
			return exitFail
		}
		d.await(c.ctx, dojob.StateAcknowledged)
		d.finish(true)
		if c.json {
			c.printJSON(resultOf(j, nil, false))
			return exitOK
		}
		c.printf("%s\n", summary(j, d.bytesBefore(), time.Since(start)))
		return exitOK

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
		if cancelOnError {
			if err := j.Cancel(); err != nil {
				c.fail(err)
			}
		} else {
			detach()
			fmt.Fprintf(c.stderr, "the job is kept; see: %s\n", c.hint("info", j.ID()))
		}
		if c.json {
			c.printJSON(resultOf(j, jerr, false))
		}
		return exitFail

	default: // ACKNOWLEDGED or CANCELLED: another party ended it
		d.finish(false)
		if c.json {
			c.printJSON(resultOf(j, nil, false))
		}
		return c.fail(fmt.Errorf("job %s ended in %s", j.ID(), st))
	}
}

// summary is the last line of a successful get or resume: the files and
// bytes of the job, and — when some were already on disk from an earlier
// run — how many of them this run transferred, at which speed.
func summary(j *dojob.Job, before int64, elapsed time.Duration) string {
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
