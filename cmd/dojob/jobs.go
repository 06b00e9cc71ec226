package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dojob/dojob"
)

// list implements "dojob list".
func (c *cli) list(args []string) int {
	fs := c.flagSet("list")
	pos, err := parseArgs(fs, args)
	if err == nil && len(pos) > 0 {
		err = errors.New("list takes no arguments")
	}
	if err != nil {
		return c.usageError(err)
	}
	return c.withManager(managerFlags{}, func(m *dojob.Manager) int {
		return c.printList(views(m.Jobs()))
	}, func(cl *ctlClient) (int, error) {
		resp, err := cl.do(ctlRequest{Op: "list"})
		if err != nil {
			return c.remoteFail(err)
		}
		var jobs []jobView
		for _, j := range resp.Jobs {
			jobs = append(jobs, j)
		}
		return c.printList(jobs), nil
	})
}

// printList prints the jobs of list.
func (c *cli) printList(jobs []jobView) int {
	if c.json {
		out := make([]jobJSON, 0, len(jobs))
		for _, j := range jobs {
			out = append(out, jobOf(j))
		}
		c.printJSON(out)
		return exitOK
	}
	if c.quiet {
		return exitOK
	}
	if len(jobs) == 0 {
		fmt.Fprintln(c.stdout, "no jobs")
		return exitOK
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tBYTES\tFILES\tNAME")
	for _, j := range jobs {
		p := j.Progress()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\n", j.ID(), j.State(), formatProgress(p.BytesTransferred, p.BytesTotal),
			p.FilesTransferred, p.FilesTotal, j.DisplayName())
	}
	tw.Flush()
	return exitOK
}

// info implements "dojob info ID".
func (c *cli) info(args []string) int {
	return c.withJob("info", args, func(j jobView) int {
		if c.json {
			c.printJSON(jobOf(j))
			return exitOK
		}
		if !c.quiet {
			c.printInfo(j)
		}
		return exitOK
	})
}

// withJob runs a command whose only argument is a job ID (or a prefix of
// one): info, suspend, cancel or complete. It parses the arguments, finds
// the job and runs the command on it with jobOp — here, with the state
// directory opened paused (these commands never start transfers), or in
// the dojob process that holds the directory — and shows the job with fn.
func (c *cli) withJob(cmd string, args []string, fn func(j jobView) int) int {
	fs := c.flagSet(cmd)
	pos, err := parseArgs(fs, args)
	var ref string
	if err == nil {
		ref, err = oneID(pos)
	}
	if err != nil {
		return c.usageError(err)
	}
	return c.withManager(managerFlags{}, func(m *dojob.Manager) int {
		id, code := c.localJobID(m, ref)
		if code != exitOK {
			return code
		}
		j, err := jobOp(m, cmd, id)
		if err != nil {
			return c.fail(err)
		}
		return fn(j)
	}, func(cl *ctlClient) (int, error) {
		id, code, err := c.remoteJobID(cl, ref)
		if err != nil || code != exitOK {
			return code, err
		}
		resp, err := cl.do(ctlRequest{Op: cmd, ID: id})
		if err != nil {
			return c.remoteFail(err)
		}
		return fn(*resp.Job), nil
	})
}

// oneID returns the single job ID, or prefix of one, of a command's
// arguments.
func oneID(pos []string) (string, error) {
	if len(pos) != 1 {
		return "", errors.New("expected one job ID")
	}
	if _, ok := idPrefix(pos[0]); !ok {
		return "", fmt.Errorf("%q is not a job ID or the start of one", pos[0])
	}
	return pos[0], nil
}

// idPrefix normalizes a job ID or a prefix of one, with or without its
// braces, to the upper-case form without braces ("3f2a" → "3F2A"). It
// reports false for anything that cannot start an ID.
func idPrefix(s string) (string, bool) {
	t := strings.ToUpper(strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}"))
	if t == "" || len(t) > 36 || (strings.HasSuffix(s, "}") && !strings.HasPrefix(s, "{")) {
		return "", false
	}
	for _, r := range t {
		if !strings.ContainsRune("0123456789ABCDEF-", r) {
			return "", false
		}
	}
	return t, true
}

// ambiguousError is a job ID prefix that names several jobs: a usage error.
type ambiguousError struct {
	ref  string
	jobs []jobView
}

func (e *ambiguousError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "job ID %q is ambiguous; it starts:", e.ref)
	for _, j := range e.jobs {
		fmt.Fprintf(&b, "\n  %s  %s  %s", j.ID(), j.State(), j.DisplayName())
	}
	return b.String()
}

// lookupID returns the ID of the job that ref names: a whole ID (as
// ParseJobID takes it; whether the job exists is for the caller to find
// out) or the start of exactly one unfinished job's ID, with or without the
// opening brace, in any case — as git and docker take abbreviated IDs.
// list returns the unfinished jobs (those of this process's Manager, or
// those the holder of the state directory lists). A prefix that names no
// job is ErrJobNotFound; one that names several is an *ambiguousError
// listing them; an error of list is returned as it is.
func lookupID(ref string, list func() ([]jobView, error)) (dojob.JobID, error) {
	if id, err := dojob.ParseJobID(ref); err == nil {
		return id, nil
	}
	prefix, ok := idPrefix(ref)
	if !ok {
		return dojob.JobID{}, fmt.Errorf("%q is not a job ID or the start of one", ref)
	}
	jobs, err := list()
	if err != nil {
		return dojob.JobID{}, err
	}
	var found []jobView
	for _, j := range jobs {
		if strings.HasPrefix(strings.Trim(j.ID().String(), "{}"), prefix) {
			found = append(found, j)
		}
	}
	switch len(found) {
	case 0:
		return dojob.JobID{}, fmt.Errorf("no job ID starts with %q: %w", ref, dojob.ErrJobNotFound)
	case 1:
		return found[0].ID(), nil
	}
	return dojob.JobID{}, &ambiguousError{ref: ref, jobs: found}
}

// idFailed reports an error of lookupID (an ambiguous prefix as a usage
// error) and returns the exit status.
func (c *cli) idFailed(err error) int {
	var amb *ambiguousError
	if errors.As(err, &amb) {
		return c.usageError(err)
	}
	return c.fail(err)
}

// localJobID is lookupID among the jobs of m; on failure it reports the
// error and returns the exit status (exitOK: found).
func (c *cli) localJobID(m *dojob.Manager, ref string) (dojob.JobID, int) {
	id, err := lookupID(ref, func() ([]jobView, error) { return views(m.Jobs()), nil })
	if err != nil {
		return id, c.idFailed(err)
	}
	return id, exitOK
}

// remoteJobID is lookupID among the jobs the holder of the state
// directory lists. On failure it reports the error and returns the exit
// status (exitOK: found) — or, if the holder went away, an error matching
// errHolderGone, unreported, for withManager to start over.
func (c *cli) remoteJobID(cl *ctlClient, ref string) (dojob.JobID, int, error) {
	id, err := lookupID(ref, func() ([]jobView, error) {
		resp, err := cl.do(ctlRequest{Op: "list"})
		if err != nil {
			return nil, err
		}
		var jobs []jobView
		for _, j := range resp.Jobs {
			jobs = append(jobs, j)
		}
		return jobs, nil
	})
	switch {
	case errors.Is(err, errHolderGone):
		return id, exitFail, err
	case err != nil:
		return id, c.idFailed(err), nil
	}
	return id, exitOK, nil
}

// findJobByID finds the job of m that ref names (see lookupID); on failure
// it reports the error and returns nil and the exit status.
func (c *cli) findJobByID(m *dojob.Manager, ref string) (*dojob.Job, int) {
	id, code := c.localJobID(m, ref)
	if code != exitOK {
		return nil, code
	}
	j, err := m.Job(id)
	if err != nil {
		return nil, c.fail(err) // the library's message names the job
	}
	return j, exitOK
}

// views returns jobs as jobViews.
func views(jobs []*dojob.Job) []jobView {
	out := make([]jobView, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, j)
	}
	return out
}

// printInfo prints every detail of j.
func (c *cli) printInfo(j jobView) {
	p, t := j.Progress(), j.Times()
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 1, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, k+":\t"+format+"\n", args...) }
	row("ID", "%s", j.ID())
	row("Display name", "%s", j.DisplayName())
	if d := j.Description(); d != "" {
		row("Description", "%s", d)
	}
	row("State", "%s", j.State())
	row("Priority", "%s", j.Priority())
	row("No-progress timeout", "%s", j.NoProgressTimeout())
	row("Minimum retry delay", "%s", j.MinimumRetryDelay())
	maxTime := "none"
	if d := j.MaximumDownloadTime(); d > 0 {
		maxTime = d.String()
	}
	row("Max download time", "%s (used: %s)", maxTime, j.DownloadTimeUsed().Round(time.Millisecond))
	if n := j.MaximumDownloadSize(); n > 0 {
		row("Max download size", "%d bytes (%s)", n, formatBytes(n))
	} else {
		row("Max download size", "none")
	}
	if d := j.MinimumNotificationInterval(); d > 0 {
		row("Notify interval", "%s", d)
	}
	row("Error count", "%d", j.ErrorCount())
	row("Notify flags", "%s", j.NotifyFlags())
	row("Created", "%s", formatTime(t.Creation))
	row("Modified", "%s", formatTime(t.Modification))
	row("Transferred", "%s", formatTime(t.TransferCompletion))
	row("Progress", "%s, %d/%d files", formatProgress(p.BytesTransferred, p.BytesTotal), p.FilesTransferred, p.FilesTotal)
	if bw := j.MaximumBandwidth(); bw > 0 {
		row("Maximum bandwidth", "%s/s", formatBytes(bw))
	} else {
		row("Maximum bandwidth", "no limit")
	}
	row("Cost policy", "%s", j.CostPolicy())
	if h, ok := j.Held(); ok {
		row("Held", "%s", describeHold(h, time.Now()))
	}
	netRows(j, row)
	if e, err := j.Error(); err == nil {
		row("Error", "%s", strings.TrimPrefix(e.Code.Error(), "dojob: "))
		row("Error context", "%s", e.Context)
		if e.File != nil {
			row("Error file", "%s", redact(e.File.RemoteURL))
		}
		if e.Err != nil {
			row("Error message", "%s", describeError(e))
		}
	}
	tw.Flush()
	fmt.Fprintln(c.stdout, "Files:")
	for i, f := range j.Files() {
		fmt.Fprintf(c.stdout, "  %d. %s\n     -> %s\n     %s, transferred: %s, completed: %s\n", i+1, redact(f.RemoteURL), destination(f),
			formatProgress(f.BytesTransferred, f.BytesTotal), yesNo(f.Transferred), yesNo(f.Completed))
		for _, r := range f.Ranges {
			if r.Length == dojob.LengthToEOF {
				fmt.Fprintf(c.stdout, "     range: %d- (to the end)\n", r.Offset)
			} else {
				fmt.Fprintf(c.stdout, "     range: %d-%d\n", r.Offset, r.Offset+r.Length-1)
			}
		}
		if src := fileSource(f); src != "" {
			fmt.Fprintf(c.stdout, "     source: %s\n", src)
		}
		if f.ExpectedSize > 0 {
			fmt.Fprintf(c.stdout, "     expected size: %d bytes (%s)\n", f.ExpectedSize, formatBytes(f.ExpectedSize))
		}
		if f.Checksum != "" {
			fmt.Fprintf(c.stdout, "     checksum: %s\n", f.Checksum)
		}
		if f.ExpectedSize > 0 || f.Checksum != "" || f.Verified {
			fmt.Fprintf(c.stdout, "     verified: %s\n", yesNo(f.Verified))
		}
		if f.TemporaryName != "" && !f.Completed {
			fmt.Fprintf(c.stdout, "     temporary file: %s\n", f.TemporaryName)
		}
	}
}

// simple implements "dojob suspend|cancel|complete ID".
func (c *cli) simple(cmd string, args []string) int {
	return c.withJob(cmd, args, func(j jobView) int {
		if c.json {
			c.printJSON(jobOf(j))
			return exitOK
		}
		done := map[string]string{"suspend": "suspended", "cancel": "cancelled", "complete": "completed"}[cmd]
		msg := fmt.Sprintf("%s job %s: %s", done, j.ID(), j.State())
		if cmd == "complete" {
			n := 0
			for _, f := range j.Files() {
				if f.Completed {
					n++
				}
			}
			msg += fmt.Sprintf(", %d of %s in place", n, plural(len(j.Files()), "file"))
		}
		c.printf("%s\n", msg)
		return exitOK
	})
}

// jobJSON is a job in --json output. Sizes are bytes (-1: unknown yet),
// durations seconds.
type jobJSON struct {
	ID                       string  `json:"id"`
	Name                     string  `json:"name"`
	Description              string  `json:"description,omitempty"`
	State                    string  `json:"state"`
	Priority                 string  `json:"priority"`
	BytesTotal               int64   `json:"bytes_total"`
	BytesTransferred         int64   `json:"bytes_transferred"`
	FilesTotal               int     `json:"files_total"`
	FilesTransferred         int     `json:"files_transferred"`
	ErrorCount               int     `json:"error_count"`
	NoProgressTimeoutSeconds float64 `json:"no_progress_timeout_seconds"`
	MinimumRetryDelaySeconds float64 `json:"minimum_retry_delay_seconds"`
	// The job's limits (0: none), the time its maximum download time has
	// counted, and its minimum notification interval.
	MaxDownloadTimeSeconds         float64    `json:"max_download_time_seconds"`
	DownloadTimeUsedSeconds        float64    `json:"download_time_used_seconds"`
	MaxDownloadSize                int64      `json:"max_download_size"`
	MinNotificationIntervalSeconds float64    `json:"min_notification_interval_seconds"`
	Created                        time.Time  `json:"created"`
	Modified                       time.Time  `json:"modified"`
	Transferred                    *time.Time `json:"transferred,omitempty"`
	Error                          *errorJSON `json:"error,omitempty"`
	Files                          []fileJSON `json:"files"`
	MaximumBandwidth               int64      `json:"maximum_bandwidth,omitempty"` // bytes per second; absent: no limit
	CostPolicy                     string     `json:"cost_policy"`
	HeldBy                         string     `json:"held_by,omitempty"`    // the code's name, while held by policy
	HeldUntil                      *time.Time `json:"held_until,omitempty"` // when that hold ends, if known
}

// errorJSON is a job's error in --json output.
type errorJSON struct {
	Code    string `json:"code"` // 0x80190194
	Name    string `json:"name"` // BG_E_HTTP_ERROR_404
	Context string `json:"context"`
	URL     string `json:"url,omitempty"`
	Message string `json:"message"`
}

// fileJSON is a file of a job in --json output.
type fileJSON struct {
	URL              string `json:"url"` // without password
	Path             string `json:"path"`
	Stream           bool   `json:"stream,omitempty"` // a program's stream (FileSpec.Writer): no path
	BytesTotal       int64  `json:"bytes_total"`
	BytesTransferred int64  `json:"bytes_transferred"`
	Transferred      bool   `json:"transferred"`
	Completed        bool   `json:"completed"`
	// Verification: the expected size and checksum given to get (omitted
	// when none), whether the file passed its check, and the temporary
	// file that holds its bytes until the job is completed.
	ExpectedSize  int64  `json:"expected_size,omitempty"`
	Checksum      string `json:"checksum,omitempty"`
	Verified      bool   `json:"verified"`
	TemporaryName string `json:"temporary_name,omitempty"`
	// CacheHost is the cache host that served the file (--cache-host).
	CacheHost string `json:"cache_host,omitempty"`
}

// resultJSON is what get and resume print with --json.
type resultJSON struct {
	jobJSON
	Interrupted bool `json:"interrupted,omitempty"`
}

// jobOf describes j for --json output.
func jobOf(j jobView) jobJSON {
	p, t := j.Progress(), j.Times()
	out := jobJSON{
		ID: j.ID().String(), Name: j.DisplayName(), Description: j.Description(),
		State: j.State().String(), Priority: j.Priority().String(),
		BytesTotal: p.BytesTotal, BytesTransferred: p.BytesTransferred,
		FilesTotal: p.FilesTotal, FilesTransferred: p.FilesTransferred,
		ErrorCount:                     j.ErrorCount(),
		NoProgressTimeoutSeconds:       j.NoProgressTimeout().Seconds(),
		MinimumRetryDelaySeconds:       j.MinimumRetryDelay().Seconds(),
		MaxDownloadTimeSeconds:         j.MaximumDownloadTime().Seconds(),
		DownloadTimeUsedSeconds:        j.DownloadTimeUsed().Seconds(),
		MaxDownloadSize:                j.MaximumDownloadSize(),
		MinNotificationIntervalSeconds: j.MinimumNotificationInterval().Seconds(),
		Created:                        t.Creation, Modified: t.Modification,
		Files: []fileJSON{},
	}
	if !t.TransferCompletion.IsZero() {
		tc := t.TransferCompletion
		out.Transferred = &tc
	}
	if e, err := j.Error(); err == nil {
		out.Error = errorOf(e)
	}
	out.MaximumBandwidth, out.CostPolicy = j.MaximumBandwidth(), j.CostPolicy().String()
	if h, ok := j.Held(); ok {
		out.HeldBy = h.Code.Name()
		if !h.Until.IsZero() {
			u := h.Until
			out.HeldUntil = &u
		}
	}
	for _, f := range j.Files() {
		out.Files = append(out.Files, fileJSON{
			URL: redact(f.RemoteURL), Path: f.LocalPath, Stream: f.Stream,
			BytesTotal: f.BytesTotal, BytesTransferred: f.BytesTransferred,
			Transferred: f.Transferred, Completed: f.Completed,
			ExpectedSize: f.ExpectedSize, Checksum: f.Checksum, Verified: f.Verified,
			TemporaryName: tempName(f), CacheHost: f.CacheHost,
		})
	}
	return out
}

// tempName is the temporary file of f while it is not completed, else "".
func tempName(f dojob.FileInfo) string {
	if f.Completed {
		return ""
	}
	return f.TemporaryName
}

// errorOf describes e for --json output.
func errorOf(e *dojob.JobError) *errorJSON {
	out := &errorJSON{
		Code:    fmt.Sprintf("%#08x", uint32(e.Code)),
		Name:    e.Code.Name(),
		Context: e.Context.String(),
		Message: describeError(e),
	}
	if e.File != nil {
		out.URL = redact(e.File.RemoteURL)
	}
	return out
}

// resultOf describes the outcome of get or resume on j; jerr, if not nil,
// is the error the job ended with (gone from the job once it is cancelled).
func resultOf(j jobView, jerr *dojob.JobError, interrupted bool) resultJSON {
	r := resultJSON{jobJSON: jobOf(j), Interrupted: interrupted}
	if jerr != nil {
		r.Error = errorOf(jerr)
	}
	return r
}

// printJSON writes v to stdout as indented JSON.
func (c *cli) printJSON(v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		c.fail(err)
		return
	}
	fmt.Fprintf(c.stdout, "%s\n", b)
}

// redact hides the secrets of a URL (its password, presigned-URL query
// signatures and tokens), as dojob's own messages do.
func redact(raw string) string { return dojob.RedactURL(raw) }

// formatBytes formats n bytes with a binary unit: 512 B, 1.5 KiB, 3.0 MiB.
// A negative n (dojob.SizeUnknown) is "?".
func formatBytes(n int64) string {
	if n < 0 {
		return "?"
	}
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB", "PiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

// formatProgress formats done of total bytes, with a percentage when the
// total is known.
func formatProgress(done, total int64) string {
	if total <= 0 {
		return formatBytes(done) + " / " + formatBytes(total)
	}
	return fmt.Sprintf("%s / %s (%d%%)", formatBytes(done), formatBytes(total), done*100/total)
}

// formatTime formats t in RFC 3339 in local time, or "-" if it is zero.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

// yesNo formats a bool.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// destination is where a file's bytes go: its LocalPath, or "(stream)" for
// a file a program streams to a writer of its own (FileSpec.Writer), which a
// shared state directory may show.
func destination(f dojob.FileInfo) string {
	if f.Stream {
		return "(stream)"
	}
	return f.LocalPath
}
