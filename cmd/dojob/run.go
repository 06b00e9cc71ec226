package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/dojob/dojob"
	"golang.org/x/term"
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

// usageText is printed by "dojob help" and "dojob -h". %[1]s is the
// program's name, %[2]s the default state directory.
const usageText = `usage: %[1]s [global flags] COMMAND [flags] [ARGS]

dojob downloads files with jobs that work like Windows BITS / Delivery
Optimization jobs: transient errors are retried with back-off, transfers
resume where they stopped (also after Ctrl-C or a crash), and files appear at
their destinations only when the job is complete. Jobs are kept in a state
directory. There is no background service: jobs move only while a dojob
command runs, and get and resume wait for theirs. Several commands may use
one state directory at once: the get or resume running there runs the jobs
of the others too (a second get, suspend, list ...), through control.sock.

Commands:
  get [flags] URL...   download URLs in one job, wait, and complete it
  resume [flags] ID    resume a job, wait, and complete it
  list                 list the jobs: ID, state, bytes, files, name
  info ID              show everything about a job
  suspend ID           suspend a job (its partial files are kept)
  cancel ID            cancel a job and delete its partial files
  complete ID          complete a job now
  version              print the version of dojob
  help [COMMAND]       show this text, or a command's flags

Global flags (before or after the command):
  --state-dir DIR      where jobs are kept (default %[2]s)
  --json               machine output: list and info print JSON; get, resume,
                       suspend, cancel and complete print the job as one JSON
                       object at the end (no progress output)
  --quiet              no progress or summary output; errors only

An ID may be shortened to any prefix that names one job, with or without
its braces ("dojob info 3F2A"). Flags may also follow the arguments
("dojob get URL -o file"); "--" ends them. Durations are Go durations: 90s,
1m30s, 500ms.

Exit status: 0 success; 1 the job failed or was interrupted, or the operation
failed; 2 usage error.

Run "%[1]s help COMMAND" for the flags of a command.
`

// commandHelp is the text of "dojob help COMMAND" and "dojob COMMAND -h",
// by command. %[1]s is the program's name.
var commandHelp = map[string]string{
	"get": `usage: %[1]s get [flags] URL...

Download the URLs in one job, wait until they are transferred, and complete
the job: the files appear at their destinations only then, all at once. If a
job for the same URLs and destinations is already in the state directory
(after Ctrl-C or a crash), get continues it instead of starting over; one
with the same URLs and destinations but another checksum or size is refused
(cancel it, or resume it as it is).

A destination that already exists is refused unless --force is given (the
existing file is kept until the download is complete, then replaced). A
destination directory that does not exist is refused before anything is
requested, unless --create-dirs is given.

A file given a checksum or size (--checksum, --checksums, --size) is checked
as it arrives and never put at its destination if it fails: the job ends in
ERROR with BG_E_VALIDATION_FAILED and the file's data is discarded; with
--keep the job stays, and "resume" downloads the file again.

Flags:
  -o PATH              destination file (only with a single URL)
  -d DIR               destination directory (default: the current one); each
                       file is named after the last segment of its URL's path
  --force              replace destination files that already exist
  --create-dirs        create missing destination directories (as Delivery
                       Optimization does; BITS requires them to exist)
  --keep               if the job ends in ERROR, keep it (and its partial
                       files) for info and resume instead of cancelling it
  -H 'Name: value'     a header sent with every request (repeatable); the
                       job keeps it. Authorization and Cookie go only to the
                       URL's own origin, never to another after a redirect
  --user NAME          Basic credentials for the server; the password comes
                       from $DOJOB_PASSWORD or is asked for on the terminal
  --proxy URL          use this proxy ([scheme://][user:password@]host[:port],
                       scheme http, https or socks5) instead of the
                       environment's (HTTP_PROXY, HTTPS_PROXY)
  --noproxy LIST       hosts reached without the --proxy (comma-separated;
                       each matches its subdomains too; "*" alone: no proxy
                       at all, whatever the environment says)
  --cacert FILE        trust the CA certificates of this PEM file instead of
                       the system's (kept with the job)
  --cert FILE          present this PEM client certificate to servers that
                       ask for one; its key comes from --key FILE, or from
                       the same file. Not kept: a job continued later needs
                       --cert again
  -k, --insecure       do not fail on an untrusted, expired, wrongly named or
                       wrongly used server certificate (logged; avoid)
  --mirror URL         another URL of the same file (repeatable; only with a
                       single URL): a failing source moves the download to
                       the next one at once
  --checksum ALG:HEX   the file's sha256 or sha512 digest (only with a single
                       URL), checked as the bytes arrive
  --checksums FILE     digests in sha256sum/sha512sum output ("HEX  NAME" or
                       "HEX *NAME" lines; 64 hex digits are sha256, 128
                       sha512), matched by each destination's file name; a
                       URL whose file name has no line is a usage error
  --size N             the file's size in bytes (only with a single URL): a
                       server that announces another fails before a byte
` + transferFlagsHelp,

	"resume": `usage: %[1]s resume [flags] ID

Resume a job, wait until it is transferred, and complete it. A job that ends
in ERROR is kept (see "info"). Only the flags given change the job.

Flags:
` + transferFlagsHelp,

	"list": `usage: %[1]s list

List the jobs of the state directory that are not finished: ID, state,
bytes, files and name. With --json, one JSON array.
`,
	"info": `usage: %[1]s info ID

Show everything about a job: settings, times, progress, its error, and its
files (with each file's expected size and checksum, whether it passed its
check, and its temporary file until the job is completed). With --json, one
JSON object.
`,
	"suspend": `usage: %[1]s suspend ID

Suspend a job. Its partial files are kept; "resume" continues it.
`,
	"cancel": `usage: %[1]s cancel ID

Cancel a job and delete its partial files.
`,
	"complete": `usage: %[1]s complete ID

Complete a job now: its finished files appear at their destinations,
unfinished ones are discarded.
`,
	"version": `usage: %[1]s version

Print the version of dojob (the module version it was built from, or
"(devel)" for a build from a checkout) and of Go.
`,
	"help": `usage: %[1]s help [COMMAND]

Show the overview, or the help of COMMAND ("%[1]s COMMAND -h" does the same).
`,
}

// transferFlagsHelp documents the flags get and resume share.
const transferFlagsHelp = `  --priority P         foreground, high, normal or low (get: foreground)
  --no-progress-timeout D  give up (ERROR) after D without progress (default:
                       1h for foreground jobs, 24h for the others)
  --retry-delay D      minimum wait before a retry after a transient error
                       (default 2s; doubles while retries move no byte)
  --parallel N         how many of the job's files transfer at once, each
                       over its own connection, 1 to 32 (get: 8; 1 is one
                       after another, in order)
  --connections N      how many connections each file may use, 1 to 16
                       (get: 4): a file of at least 2 MiB whose server
                       answers ranges with a validated 206 is split into
                       segments fetched at once, which pays off where a
                       server caps each connection (at most 8 connections
                       to one host over every file)
  --speed-limit BYTES  a connection slower than BYTES per second on average
                       for --speed-time is a transient error, as with curl
                       (default: no limit; 0 turns a job's limit off)
  --speed-time SECONDS the window of --speed-limit, at least 1 (default 30;
                       alone it means --speed-limit 1)
  --limit-rate RATE    transfer the job at most at RATE bytes per second
                       over all its files and connections, as curl: K, M, G
                       or T suffixes are 1024-based (20M; 20MB and 20MiB
                       read the same); 0 removes it
  --max-time SECONDS   give up (ERROR, BG_E_MAXDOWNLOAD_TIMEOUT) after
                       SECONDS spent connecting and transferring, as curl's
                       --max-time ("90", "2.5") or a duration ("5m"); time
                       waiting to retry or suspended does not count, and a
                       resumed job that had failed starts again from 0
                       (default: no limit; 0 turns a job's limit off)
  --stall-timeout D    a connection without headers or body bytes for D is
                       a transient error (default 60s)
  --checkpoint-interval D  how often the bytes received are made durable, so
                       that Ctrl-C or a crash loses little (default 250ms)
  --cache-host HOST[:PORT]  an HTTP cache to fetch http URLs through, as a
                       Delivery Optimization cache host (repeatable, or
                       comma-separated): asked for URL?cacheHostOrigin=HOST
                       first; a cache that fails is left for the URL itself
                       (a cache that answers 4xx is not asked for that
                       origin for 15 minutes, one that cannot be reached
                       not at all for 15 minutes)
  --cache-fallback D   try the cache hosts alone for D before falling back
                       to the URL ("never": never fall back; default 0: at
                       once)
                       (beside another get or resume on the same state
                       directory, the job runs there, with its settings of
                       these four)

While the job runs, a terminal shows a progress bar per file (speed, ETA, or
how long it has been stalled) and a state line (transient errors with the
time of the next retry and of giving up); other output gets one line per
state change, stall or restart, and a summary that tells the bytes of this
run from those already on disk. Ctrl-C stops waiting, leaves the job
SUSPENDED in the state directory and prints the command that continues it.
A job that ends in ERROR has its error, with the HRESULT name, on stderr.
`

// options are what run takes from its surroundings. run fills them from the
// process; tests replace them to draw progress bars into a buffer.
type options struct {
	tty     bool    // stdout is a terminal with columns: draw progress bars
	console console // with tty: what bars are drawn on; nil = stdout, which is then a terminal *os.File
	prog    string  // the program's name in hints and help; "" = "dojob"
	// shareWait bounds the wait for a state directory held by a process
	// that serves no control endpoint; 0 = defaultShareWait.
	shareWait time.Duration
}

// run executes the command line args (without the program name), writing
// to stdout and stderr, and returns the exit status. Cancelling ctx
// interrupts a get or resume that is waiting. Everything run starts has
// ended when it returns, and the state directory is released.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	prog := ""
	if len(os.Args) > 0 {
		prog = filepath.Base(os.Args[0])
	}
	return runWith(ctx, args, stdout, stderr, options{tty: barsFor(stdout), prog: prog})
}

// isTerminal reports whether w is an *os.File open on a terminal. A
// character device is not enough: /dev/null (and NUL on Windows) is one.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// barsFor reports whether progress bars can be drawn on w: a terminal that
// reports a width and takes ANSI sequences. A terminal of 0 columns (some
// CI consoles, a serial line without a size) would show nothing until the
// end, and a console without ANSI sequences (Windows before 10) would show
// them as text, so both get lines.
func barsFor(w io.Writer) bool {
	if !isTerminal(w) {
		return false
	}
	f := w.(*os.File)
	width, _, err := term.GetSize(int(f.Fd()))
	return err == nil && width > 0 && enableANSI(f)
}

// cli is one execution of the command: its outputs and global flags.
type cli struct {
	ctx            context.Context
	stdout, stderr io.Writer
	opts           options
	cmd            string // the command being run ("" before it is known)

	stateDir    string // --state-dir; "" = defaultStateDir
	stateDirSet bool   // --state-dir was given (repeated in hints)
	json, quiet bool
	hintFlags   []string // flags of the command repeated in hints (Manager settings, not kept in the job)

	// release, set by withManager while this process holds the state
	// directory, stops the control endpoint and closes the Manager, in
	// that order (the endpoint must be gone before the lock is).
	// Idempotent.
	release func() error
}

// runWith is run with explicit options.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, opts options) int {
	if opts.prog == "" {
		opts.prog = "dojob"
	}
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
	if _, ok := commandHelp[cmd]; ok {
		c.cmd = cmd
	}
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
	case "version":
		return c.version(args)
	case "help":
		return c.help(args)
	}
	return c.usageError(fmt.Errorf("unknown command %q", cmd))
}

// help implements "dojob help [COMMAND]".
func (c *cli) help(args []string) int {
	fs := c.flagSet("help")
	pos, err := parseArgs(fs, args)
	if err == nil && len(pos) > 1 {
		err = errors.New("help takes at most one command")
	}
	if err == nil && len(pos) == 1 {
		if _, ok := commandHelp[pos[0]]; !ok {
			err = fmt.Errorf("unknown command %q", pos[0])
		}
	}
	if err != nil {
		return c.usageError(err)
	}
	if len(pos) == 1 {
		c.cmd = pos[0]
	} else {
		c.cmd = ""
	}
	c.usage(c.stdout)
	return exitOK
}

// version implements "dojob version".
func (c *cli) version(args []string) int {
	fs := c.flagSet("version")
	pos, err := parseArgs(fs, args)
	if err == nil && len(pos) > 0 {
		err = errors.New("version takes no arguments")
	}
	if err != nil {
		return c.usageError(err)
	}
	fmt.Fprintf(c.stdout, "dojob %s (%s %s/%s)\n", moduleVersion(debug.ReadBuildInfo), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

// moduleVersion is the version of the main module the binary was built
// from: a release (go install github.com/dojob/dojob/cmd/dojob@v1.2.3) or
// a pseudo-version, or "(devel)" for a build from a checkout or when the
// binary has no build information.
func moduleVersion(read func() (*debug.BuildInfo, bool)) string {
	if bi, ok := read(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// flagSet returns a flag set with the global flags. Each command's set has
// them too, so they may come before or after the command.
func (c *cli) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // usageError prints the error and where the help is
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

// usage prints the help of c.cmd, or the overview when there is none, to
// w.
func (c *cli) usage(w io.Writer) {
	if text, ok := commandHelp[c.cmd]; ok {
		fmt.Fprintf(w, text, c.opts.prog)
		return
	}
	def, err := defaultStateDir(runtime.GOOS, os.Getenv, os.UserHomeDir, os.UserConfigDir)
	if err != nil {
		def = "unknown: " + err.Error()
	}
	fmt.Fprintf(w, usageText, c.opts.prog, def)
}

// usageError reports a usage error on stderr — its cause, and where the
// help of the command is — and returns exitUsage. -h and --help print the
// help of the command on stdout instead and return exitOK.
func (c *cli) usageError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		c.usage(c.stdout)
		return exitOK
	}
	fmt.Fprintln(c.stderr, message(err))
	helpCmd := c.opts.prog + " help"
	if c.cmd != "" && c.cmd != "help" {
		helpCmd += " " + c.cmd
	}
	fmt.Fprintf(c.stderr, "Run '%s' for usage.\n", helpCmd)
	return exitUsage
}

// fail reports err on stderr and returns exitFail.
func (c *cli) fail(err error) int {
	fmt.Fprintln(c.stderr, message(err))
	return exitFail
}

// message is the line that reports err: "dojob: " once, at the start. The
// library's own messages start with "dojob: " and are often wrapped by the
// command's context ("suspend: dojob: job … is CANCELLED"); the inner
// prefixes go.
func message(err error) string {
	msg := strings.TrimPrefix(err.Error(), "dojob: ")
	return "dojob: " + strings.ReplaceAll(msg, ": dojob: ", ": ")
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
	cache              cacheFlags // --cache-host, --cache-fallback (cacheflags.go)
	// transfers lets the Manager start transfers (get, resume). The other
	// commands open the state directory paused, so looking at jobs never
	// starts the ones a killed command left queued.
	transfers bool
}

// register adds the Manager flags to fs.
func (mf *managerFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&mf.stallTimeout, "stall-timeout", 0, "")
	fs.DurationVar(&mf.checkpointInterval, "checkpoint-interval", defaultCheckpointInterval, "")
	mf.cache.register(fs)
}

// config is the Manager configuration for the state directory dir.
func (mf managerFlags) config(dir string) dojob.Config {
	cfg := dojob.Config{
		StateDir:           dir,
		StallTimeout:       mf.stallTimeout,
		CheckpointInterval: mf.checkpointInterval,
		Paused:             !mf.transfers,
	}
	mf.cache.apply(&cfg)
	return cfg
}

// givenFlags returns the flags among names that were given on fs's command
// line, as "--name value" arguments for a hint.
func givenFlags(fs *flag.FlagSet, names ...string) []string {
	var out []string
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(names, f.Name) {
			out = append(out, "--"+f.Name, quoteArg(f.Value.String()))
		}
	})
	return out
}

// check validates the Manager flags.
func (mf *managerFlags) check() error {
	if mf.stallTimeout < 0 || mf.checkpointInterval < 0 {
		return errors.New("--stall-timeout and --checkpoint-interval must not be negative")
	}
	return nil
}

// hint returns the command line that runs cmd on the job with id, the way
// the user invoked this one: the program's name, the global flags given
// (--state-dir, --json, --quiet) and the flags recorded in c.hintFlags.
func (c *cli) hint(cmd string, id dojob.JobID) string {
	parts := []string{quoteArg(c.opts.prog)}
	if c.stateDirSet {
		parts = append(parts, "--state-dir", quoteArg(c.stateDir))
	}
	if c.json {
		parts = append(parts, "--json")
	}
	if c.quiet {
		parts = append(parts, "--quiet")
	}
	parts = append(parts, cmd, id.String())
	if cmd == "resume" {
		parts = append(parts, c.hintFlags...)
	}
	return strings.Join(parts, " ")
}

// quoteArg quotes s for a POSIX shell if it needs it.
func quoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
