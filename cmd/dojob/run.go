package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/dojob/dojob"
	"github.com/vbauerster/mpb/v8"
)

// Exit statuses.
const (
	exitOK    = 0 // the command did what it was asked
	exitFail  = 1 // a job failed, was interrupted, or an operation returned an error
	exitUsage = 2 // unknown command, bad flags or bad arguments
)

// defaultCheckpointInterval is how often get and resume make the bytes of a
// running transfer durable unless --checkpoint-interval says otherwise.
// dojob's own default (1 s) suits a service; a command that is often
// interrupted with Ctrl-C re-downloads less with a shorter one.
const defaultCheckpointInterval = 250 * time.Millisecond

// usageText is printed by "dojob help", and on stderr after a usage error.
// %s is the default state directory.
const usageText = `usage: dojob [global flags] COMMAND [flags] [ARGS]

dojob downloads files with jobs that work like Windows BITS / Delivery
Optimization jobs: transient errors are retried with back-off, transfers
resume where they stopped (also after Ctrl-C or a crash), and files appear at
their destinations only when the job is complete. Jobs are kept in a state
directory. There is no background service: jobs move only while a dojob
command runs, and get and resume wait for theirs.

Commands:
  get [flags] URL...   download URLs in one job, wait, and complete it. If a
                       job for the same URLs and destinations is already in
                       the state directory, get continues it instead.
  resume [flags] ID    resume a job, wait, and complete it
  list                 list the jobs: ID, state, bytes, files, name
  info ID              show everything about a job
  suspend ID           suspend a job (its partial files are kept)
  cancel ID            cancel a job and delete its partial files
  complete ID          complete a job now: its finished files appear at
                       their destinations, unfinished ones are discarded
  help                 show this text

Global flags (before or after the command):
  --state-dir DIR      where jobs are kept (default %s)
  --json               machine output: list and info print JSON; get, resume,
                       suspend, cancel and complete print the job as one JSON
                       object at the end (no progress output)
  --quiet              no progress or summary output; errors only

Flags of get:
  -o PATH              destination file (only with a single URL)
  -d DIR               destination directory (default: the current one); each
                       file is named after the last segment of its URL's path
  --keep               if the job ends in ERROR, keep it (and its partial
                       files) for info and resume instead of cancelling it
  -H 'Name: value'     a header sent with every request (repeatable); the
                       job keeps it. Authorization and Cookie go only to the
                       URL's own origin, never to another after a redirect
  --user NAME          Basic credentials for the server; the password comes
                       from $DOJOB_PASSWORD or is asked for on the terminal

Flags of get and resume (resume changes only what is given):
  --priority P         foreground, high, normal or low (get: foreground)
  --no-progress-timeout D  give up (ERROR) after D without progress (default:
                       1h for foreground jobs, 24h for the others)
  --retry-delay D      minimum wait before a retry after a transient error
                       (default 2s; doubles while retries move no byte)
  --stall-timeout D    a connection without headers or body bytes for D is
                       a transient error (default 60s)
  --checkpoint-interval D  how often the bytes received are made durable, so
                       that Ctrl-C or a crash loses little (default 250ms)

Flags may also follow the arguments ("dojob get URL -o file"); "--" ends them.
Durations are Go durations: 90s, 1m30s, 500ms.

While get or resume waits, a terminal shows a progress bar per file and a
line with the job's state, transient errors and the retry count; other output
gets one line per state change and a summary line. Ctrl-C stops waiting, leaves
the job SUSPENDED in the state directory and prints the command that continues
it. A job that ends in ERROR is cancelled by get (unless --keep) and kept by
resume; its error, with the HRESULT name, goes to stderr.

Exit status: 0 success; 1 the job failed or was interrupted, or the operation
failed; 2 usage error.
`

// options are what run takes from its surroundings. run fills them from the
// process; tests replace them to draw progress bars into a buffer.
type options struct {
	tty     bool              // stdout is a terminal: draw progress bars
	console mpb.ConsoleWriter // with tty: the writer bars are drawn with; nil = mpb's own on stdout
	// shareWait bounds the wait for a state directory held by a process
	// that serves no control endpoint; 0 = defaultShareWait.
	shareWait time.Duration
}

// run executes the command line args (without the program name), writing
// to stdout and stderr, and returns the exit status. Cancelling ctx
// interrupts a get or resume that is waiting. Everything run starts has
// ended when it returns, and the state directory is released.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdout, stderr, options{tty: isTerminal(stdout)})
}

// isTerminal reports whether w is an *os.File that is a character device
// (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// cli is one execution of the command: its outputs and global flags.
type cli struct {
	ctx            context.Context
	stdout, stderr io.Writer
	opts           options

	stateDir    string // --state-dir; "" = defaultStateDir
	stateDirSet bool   // --state-dir was given (repeated in hints)
	json, quiet bool

	// release, set by withManager while this process holds the state
	// directory, stops the control endpoint and closes the Manager, in
	// that order (the endpoint must be gone before the lock is).
	// Idempotent.
	release func() error
}

// runWith is run with explicit options.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, opts options) int {
	c := &cli{ctx: ctx, stdout: stdout, stderr: stderr, opts: opts}
	fs := c.flagSet("dojob")
	if err := fs.Parse(args); err != nil {
		return c.usageError(err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return c.usageError(errors.New("no command"))
	}
	cmd, args := rest[0], rest[1:]
	switch cmd {
	case "get":
		return c.get(args)
	case "resume":
		return c.resume(args)
	case "list":
		return c.list(args)
	case "info":
		return c.info(args)
	case "suspend", "cancel", "complete":
		return c.simple(cmd, args)
	case "help":
		c.usage(c.stdout)
		return exitOK
	}
	return c.usageError(fmt.Errorf("unknown command %q", cmd))
}

// flagSet returns a flag set with the global flags. Each command's set has
// them too, so they may come before or after the command.
func (c *cli) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // usageError prints the error and the usage
	fs.Usage = func() {}
	fs.Func("state-dir", "", func(s string) error {
		if s == "" {
			return errors.New("empty directory")
		}
		c.stateDir, c.stateDirSet = s, true
		return nil
	})
	fs.BoolVar(&c.json, "json", c.json, "")
	fs.BoolVar(&c.quiet, "quiet", c.quiet, "")
	return fs
}

// parseArgs parses a command's flags, which may be mixed with its
// arguments, and returns the arguments. "--" ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usage prints the usage text to w.
func (c *cli) usage(w io.Writer) {
	def, err := defaultStateDir(runtime.GOOS, os.Getenv, os.UserHomeDir, os.UserConfigDir)
	if err != nil {
		def = "unknown: " + err.Error()
	}
	fmt.Fprintf(w, usageText, def)
}

// usageError reports a usage error on stderr, with the usage text, and
// returns exitUsage. -h and --help print the usage on stdout instead and
// return exitOK.
func (c *cli) usageError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		c.usage(c.stdout)
		return exitOK
	}
	fmt.Fprintf(c.stderr, "dojob: %v\n\n", err)
	c.usage(c.stderr)
	return exitUsage
}

// fail reports err on stderr with a "dojob: " prefix (dojob's own errors
// already carry it) and returns exitFail.
func (c *cli) fail(err error) int {
	msg := err.Error()
	if !strings.HasPrefix(msg, "dojob: ") {
		msg = "dojob: " + msg
	}
	fmt.Fprintln(c.stderr, msg)
	return exitFail
}

// printf writes to stdout unless --quiet or --json is set.
func (c *cli) printf(format string, args ...any) {
	if c.quiet || c.json {
		return
	}
	fmt.Fprintf(c.stdout, format, args...)
}

// managerFlags are the flags that configure the Manager of get and resume.
type managerFlags struct {
	stallTimeout       time.Duration
	checkpointInterval time.Duration
	// transfers lets the Manager start transfers (get, resume). The other
	// commands open the state directory paused, so looking at jobs never
	// starts the ones a killed command left queued.
	transfers bool
}

// register adds the Manager flags to fs.
func (mf *managerFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&mf.stallTimeout, "stall-timeout", 0, "")
	fs.DurationVar(&mf.checkpointInterval, "checkpoint-interval", defaultCheckpointInterval, "")
}

// config is the Manager configuration for the state directory dir.
func (mf managerFlags) config(dir string) dojob.Config {
	return dojob.Config{
		StateDir:           dir,
		StallTimeout:       mf.stallTimeout,
		CheckpointInterval: mf.checkpointInterval,
		Paused:             !mf.transfers,
	}
}

// check validates the Manager flags.
func (mf *managerFlags) check() error {
	if mf.stallTimeout < 0 || mf.checkpointInterval < 0 {
		return errors.New("--stall-timeout and --checkpoint-interval must not be negative")
	}
	return nil
}

// hint returns the dojob command line that runs cmd on the job with id,
// repeating --state-dir if it was given.
func (c *cli) hint(cmd string, id dojob.JobID) string {
	s := "dojob " + cmd + " " + id.String()
	if c.stateDirSet {
		s += " --state-dir " + quoteArg(c.stateDir)
	}
	return s
}

// quoteArg quotes s for a POSIX shell if it needs it.
func quoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
