package dojob

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// recordVersion is the version of the record format this release writes.
// A record of another version is set aside, never guessed at; a later
// release that changes the format reads version 1 and migrates it.
const recordVersion = 1

// record is the on-disk form of a job (version 1). Durations are in
// nanoseconds; times in RFC 3339.
type record struct {
	Version           int            `json:"version"`
	ID                JobID          `json:"id"`
	Seq               uint64         `json:"seq"`
	DisplayName       string         `json:"display_name"`
	Description       string         `json:"description,omitempty"`
	Priority          Priority       `json:"priority"`
	NoProgressTimeout *time.Duration `json:"no_progress_timeout_ns,omitempty"` // nil: the priority's default
	MinimumRetryDelay time.Duration  `json:"minimum_retry_delay_ns"`
	NotifyFlags       NotifyFlags    `json:"notify_flags"`
	State             State          `json:"state"`
	Completing        bool           `json:"completing,omitempty"`
	Created           time.Time      `json:"created"`
	Modified          time.Time      `json:"modified"`
	TransferCompleted time.Time      `json:"transfer_completed,omitzero"`
	ErrorCount        int            `json:"error_count"`
	Error             *recordError   `json:"error,omitempty"`
	LastTransient     *recordError   `json:"last_transient,omitempty"`
	WindowAge         *time.Duration `json:"window_age_ns,omitempty"` // age of the open no-progress window
	RetryIn           time.Duration  `json:"retry_in_ns,omitempty"`   // TRANSIENT_ERROR: time left before the retry
	Streak            int            `json:"streak,omitempty"`
	MaxParallelFiles  int            `json:"max_parallel_files,omitempty"` // added within version 1; absent: 1
	MaxConnections    int            `json:"max_connections,omitempty"`    // added within version 1; absent: 1
	Files             []recordFile   `json:"files"`

	// Added within version 1 (HTTP options): secrets, kept as the rest of
	// the record is (0600 in a 0700 directory), never logged.
	CustomHeaders          http.Header   `json:"custom_headers,omitempty"`
	CustomHeadersWriteOnly bool          `json:"custom_headers_write_only,omitempty"`
	Credentials            []Credentials `json:"credentials,omitempty"`

	// Added within version 1 (SetMinimumSpeed): absent, no limit.
	MinimumSpeed       int64         `json:"minimum_speed,omitempty"`           // bytes per second
	MinimumSpeedWindow time.Duration `json:"minimum_speed_window_ns,omitempty"` // its window

	// Added within version 1 (pace.go, cost.go): absent, no limit and the
	// priority's cost policy.
	MaximumBandwidth int64       `json:"maximum_bandwidth,omitempty"` // bytes per second
	CostPolicy       *CostPolicy `json:"cost_policy,omitempty"`

	// Added within version 1 (dltime.go, maxsize.go, notifyinterval.go):
	// absent, no limit, no time used and the default interval.
	MaxDownloadTime         time.Duration `json:"max_download_time_ns,omitempty"`
	DownloadTimeUsed        time.Duration `json:"download_time_used_ns,omitempty"` // CONNECTING/TRANSFERRING time counted so far
	MaxDownloadSize         int64         `json:"max_download_size,omitempty"`
	MinNotificationInterval time.Duration `json:"min_notification_interval_ns,omitempty"`
	recordNet                             // added within version 1: proxy and TLS settings (netopts.go)
}

// recordFile is the persisted state of a file: its record, and the state
// every *file embeds, so that a field added here is saved and restored with
// the job without another edit (check validates it).
type recordFile struct {
	Remote       string      `json:"remote"`
	Local        string      `json:"local"`
	Temp         string      `json:"temp"`
	Ranges       []FileRange `json:"ranges,omitempty"`
	Size         int64       `json:"size"`
	RemoteSize   int64       `json:"remote_size"`
	Durable      int64       `json:"durable"` // bytes fsynced in Temp
	ETag         string      `json:"etag,omitempty"`
	LastModified string      `json:"last_modified,omitempty"`
	Transferred  bool        `json:"transferred,omitempty"`
	Completed    bool        `json:"completed,omitempty"`

	// Added within version 1: a record without them (from an older
	// release) loads with the high-water mark at Durable and no restarts.
	HighWater     int64  `json:"high_water,omitempty"` // the most bytes the file ever held
	Restarts      int    `json:"restarts,omitempty"`
	RestartReason string `json:"restart_reason,omitempty"`

	// What dojob keeps of the last response's headers
	// (FileInfo.ResponseHeaders; keptHeaders). An older release kept them
	// all: such a record loads, trimmed.
	ResponseHeaders http.Header `json:"response_headers,omitempty"`

	// Added within version 1 (verification): absent means none given.
	ExpectedSize int64    `json:"expected_size,omitempty"`
	Checksum     string   `json:"checksum,omitempty"`
	Mirrors      []string `json:"mirrors,omitempty"`
	Verified     bool     `json:"verified,omitempty"`
	HashState    []byte   `json:"hash_state,omitempty"` // the digest of the first HashLen bytes of Temp
	HashLen      int64    `json:"hash_len,omitempty"`

	// Added within version 1 (mirrors): the source in use and the source
	// that gave ETag and LastModified (0 = Remote, i = Mirrors[i-1]).
	// Sources lists every source that gave bytes of Temp; a record without
	// it (from an older release) loads with ValidatorSource alone.
	Source          int   `json:"source,omitempty"`
	ValidatorSource int   `json:"validator_source,omitempty"`
	Sources         []int `json:"sources,omitempty"`
	// Added within version 1 (cache hosts): the cache host that gave
	// bytes of Temp, "" for none.
	CacheHost string `json:"cache_host,omitempty"`

	// Added within version 1 (SetMaxConnections): the durable bytes of a
	// file fetched in segments, [start, end) pairs; Durable is their sum.
	// Absent: Durable bytes from byte 0.
	Spans [][2]int64 `json:"spans,omitempty"`

	// Added within version 1 (FileSpec.Writer): the file is a stream, with
	// no Local or Temp; Durable counts the bytes its writer was given (and
	// synced, if it could be). The writer itself is not persisted.
	Stream bool `json:"stream,omitempty"`
}

type recordError struct {
	Context   ErrorContext `json:"context"`
	Code      HRESULT      `json:"code"`
	Message   string       `json:"message,omitempty"`
	File      int          `json:"file"` // index in Files, -1 when none
	Transient bool         `json:"transient,omitempty"`
	Cause     *recordError `json:"cause,omitempty"`
}

// recordLocked snapshots the job for its record.
func (j *Job) recordLocked(now time.Duration) *record {
	r := &record{
		Version:           recordVersion,
		ID:                j.id,
		Seq:               j.seq,
		DisplayName:       j.name,
		Description:       j.desc,
		Priority:          j.prio,
		MinimumRetryDelay: j.retryDelay,
		NotifyFlags:       j.flags,
		State:             j.state,
		Completing:        j.completing,
		Created:           j.created,
		Modified:          j.modified,
		TransferCompleted: j.completedAt,
		ErrorCount:        j.errCount,
		Error:             j.recordErrorLocked(j.jerr),
		LastTransient:     j.recordErrorLocked(j.lastTransient),
		Streak:            j.streak,
		MaxParallelFiles:  j.parallel,
		MaxConnections:    j.conns,
		Files:             make([]recordFile, len(j.files)),

		CustomHeaders:          j.headers,
		CustomHeadersWriteOnly: j.headersWriteOnly,
		Credentials:            j.creds,

		MinimumSpeed:       j.minSpeed,
		MinimumSpeedWindow: j.speedWindow,
		MaximumBandwidth:   j.maxBandwidth,

		MaxDownloadTime:         j.maxTime,
		DownloadTimeUsed:        j.usedLocked(now),
		MaxDownloadSize:         j.maxSize,
		MinNotificationInterval: j.notifyIv,
		recordNet:               j.recordNetLocked(),
	}
	if j.costSet {
		p := j.cost
		r.CostPolicy = &p
	}
	if j.timeoutSet {
		d := j.timeout
		r.NoProgressTimeout = &d
	}
	if j.windowOpen {
		age := now - j.windowStart
		r.WindowAge = &age
	}
	if j.state == StateTransientError {
		r.RetryIn = max(j.retryAt-now, 0)
	}
	for i, f := range j.files {
		rf := f.recordFile // the file's persisted state as it is
		rf.HighWater = f.markLocked()
		rf.ValidatorSource = lastOr(f.Sources, 0) // for an older release
		r.Files[i] = rf
	}
	return r
}

func (j *Job) recordErrorLocked(e *JobError) *recordError {
	if e == nil {
		return nil
	}
	r := &recordError{Context: e.Context, Code: e.Code, File: -1, Transient: e.transient}
	if e.File != nil {
		for i, f := range j.files {
			// A stream has no LocalPath to be found by: the error names it.
			if e.of != nil && f == e.of || e.of == nil && !f.Stream && f.Local == e.File.LocalPath {
				r.File = i
			}
		}
	}
	var inner *JobError
	if errors.As(e.Err, &inner) && inner != e {
		r.Cause = j.recordErrorLocked(inner)
	} else if e.Err != nil {
		r.Message = e.Err.Error()
	}
	return r
}

// jobError rebuilds a JobError from its record; the cause chain keeps its
// codes (errors.Is still matches them) and its messages.
func (j *Job) jobError(r *recordError) *JobError {
	if r == nil {
		return nil
	}
	e := &JobError{Context: r.Context, Code: r.Code, transient: r.Transient}
	if r.File >= 0 && r.File < len(j.files) {
		e.aboutLocked(j.files[r.File])
	}
	if r.Cause != nil {
		e.Err = j.jobError(r.Cause)
	} else if r.Message != "" {
		e.Err = errors.New(redactText(r.Message)) // an older release's may show a URL in full
	}
	return e
}

// readRecord reads and checks one record.
func readRecord(path string) (*record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("record does not parse: %w", err)
	}
	if rec.Version != recordVersion {
		return nil, fmt.Errorf("record version %d is not %d", rec.Version, recordVersion)
	}
	if err := rec.check(); err != nil {
		return nil, err
	}
	return &rec, nil
}

// check refuses a record no version of dojob writes: a job restored from it
// could act on values no call could have set — transfer to a relative path,
// fetch a non-HTTP URL, believe a file complete that was never requested,
// or delete another job's temporary file. Such a record is damaged and is
// set aside, never guessed at.
func (rec *record) check() error {
	if !rec.State.valid() || !rec.Priority.valid() || rec.MinimumRetryDelay <= 0 || rec.MinimumRetryDelay > MaxTimeout ||
		rec.NotifyFlags&^notifyAll != 0 || rec.ID == (JobID{}) ||
		(rec.NoProgressTimeout != nil && (*rec.NoProgressTimeout < 0 || *rec.NoProgressTimeout > MaxTimeout)) ||
		(rec.WindowAge != nil && (*rec.WindowAge < 0 || *rec.WindowAge > MaxTimeout)) || rec.RetryIn < 0 || rec.RetryIn > MaxTimeout {
		return errors.New("record holds invalid settings")
	}
	if utf8.RuneCountInString(rec.DisplayName) > maxDisplayName || utf8.RuneCountInString(rec.Description) > maxDescription ||
		rec.ErrorCount < 0 || rec.Streak < 0 || rec.MaxParallelFiles < 0 || rec.MaxParallelFiles > MaxParallelFilesLimit ||
		rec.MaxConnections < 0 || rec.MaxConnections > MaxConnectionsLimit ||
		rec.MaximumBandwidth < 0 || (rec.CostPolicy != nil && !rec.CostPolicy.valid()) {
		return errors.New("record holds invalid settings")
	}
	// A minimum speed as SetMinimumSpeed leaves it: none (0, 0), or a
	// positive speed over a window of 1 s to MaxTimeout.
	if rec.MinimumSpeed < 0 || rec.MinimumSpeedWindow < 0 ||
		(rec.MinimumSpeed == 0) != (rec.MinimumSpeedWindow == 0) ||
		(rec.MinimumSpeed > 0 && (rec.MinimumSpeedWindow < minSpeedWindow || rec.MinimumSpeedWindow > MaxTimeout)) {
		return errors.New("record holds an invalid minimum speed")
	}
	if rec.MaxDownloadTime < 0 || rec.MaxDownloadTime > MaxTimeout || rec.DownloadTimeUsed < 0 || rec.MaxDownloadSize < 0 ||
		rec.MinNotificationInterval < 0 || rec.MinNotificationInterval > MaxNotificationInterval ||
		(rec.MinNotificationInterval != 0 && rec.MinNotificationInterval < time.Millisecond) {
		return errors.New("record holds an invalid download limit or notification interval")
	}
	if err := rec.recordNet.check(); err != nil {
		return err
	}
	if h, err := checkHeaders(rec.CustomHeaders); err != nil || len(h) != len(rec.CustomHeaders) {
		return errors.New("record holds invalid custom headers")
	}
	seen := map[[2]int]bool{}
	for _, c := range rec.Credentials {
		k := [2]int{int(c.Target), int(c.Scheme)}
		if c.check() != nil || seen[k] {
			return errors.New("record holds invalid credentials")
		}
		seen[k] = true
	}
	for _, e := range []*recordError{rec.Error, rec.LastTransient} {
		for ; e != nil; e = e.Cause {
			if e.File < -1 || e.File >= len(rec.Files) {
				return fmt.Errorf("record's error names file %d of %d", e.File, len(rec.Files))
			}
		}
	}
	tempPrefix := ".dojob-" + rec.ID.hex32() + "-"
	locals := make(map[string]bool, len(rec.Files))
	temps := make(map[string]bool, len(rec.Files))
	for i, f := range rec.Files {
		if err := f.check(tempPrefix); err != nil {
			return fmt.Errorf("record holds an invalid file %d: %w", i, err)
		}
		if f.Stream {
			continue // no path of its own
		}
		if locals[f.Local] || temps[f.Temp] {
			return fmt.Errorf("record holds an invalid file %d: its local or temporary path is another file's", i)
		}
		locals[f.Local], temps[f.Temp] = true, true
	}
	return nil
}

// check validates one file of a record, as AddFile and the transfer would
// have left it.
func (f *recordFile) check(tempPrefix string) error {
	if f.Stream {
		// A stream (FileSpec.Writer) has no path, and no ranges.
		if f.Local != "" || f.Temp != "" || f.Ranges != nil {
			return errors.New("a stream with a local or temporary path, or ranges")
		}
	} else {
		switch {
		case checkLocalPath(f.Local) != nil:
			return errors.New("the local path is not absolute and clean")
		case filepath.Dir(f.Temp) != filepath.Dir(f.Local) || !strings.HasPrefix(filepath.Base(f.Temp), tempPrefix) ||
			!strings.HasSuffix(f.Temp, ".tmp"):
			return errors.New("the temporary path is not the job's, next to the local path")
		}
	}
	switch {
	case checkRemoteURL(f.Remote) != nil:
		return errors.New("the remote URL is not an http or https URL")
	case f.Ranges != nil && checkRanges(f.Ranges) != nil:
		return errors.New("invalid ranges")
	case f.Size < SizeUnknown || f.RemoteSize < SizeUnknown:
		return errors.New("negative size")
	case f.Durable < 0 || (f.Size != SizeUnknown && f.Durable > f.Size):
		return fmt.Errorf("%d bytes recorded of a file of %d", f.Durable, f.Size)
	case f.Transferred && (f.Size == SizeUnknown || f.Durable != f.Size):
		return errors.New("transferred, but not all of its bytes are recorded")
	case f.Completed && !f.Transferred:
		return errors.New("completed, but not transferred")
	case f.ExpectedSize < 0:
		return errors.New("negative expected size")
	case f.HashLen < 0 || f.HashLen > f.Durable:
		return errors.New("a digest of bytes that are not recorded")
	case f.Source < 0 || f.Source > len(f.Mirrors) || f.ValidatorSource < 0 || f.ValidatorSource > len(f.Mirrors) ||
		slices.ContainsFunc(f.Sources, func(s int) bool { return s < 0 || s > len(f.Mirrors) }):
		return errors.New("a source that is neither the remote URL nor a mirror")
	}
	if f.Spans != nil {
		if err := checkSpans(f.Spans, f.Size, f.Durable, f.HashLen); err != nil {
			return err
		}
		if f.Ranges != nil || f.Transferred {
			return errors.New("spans for a file with ranges, or a transferred one")
		}
	}
	if _, _, err := parseChecksum(f.Checksum); err != nil {
		return errors.New("invalid checksum")
	}
	if f.Checksum != "" && f.Transferred && !f.Verified {
		// Only a file whose digest matched is ever recorded transferred.
		return errors.New("transferred, but its checksum was never matched")
	}
	for _, u := range f.Mirrors {
		if checkRemoteURL(u) != nil {
			return errors.New("a mirror is not an http or https URL")
		}
	}
	return nil
}

// lastOr returns the last element of s, or or when s is empty.
func lastOr(s []int, or int) int {
	if len(s) == 0 {
		return or
	}
	return s[len(s)-1]
}

// recordSources is the sources that gave the bytes of a recorded file: its
// Sources, or for a record of an older release that has bytes the one
// source that gave its validators.
func recordSources(rf recordFile) []int {
	switch {
	case rf.Sources != nil:
		s := slices.Clone(rf.Sources)
		slices.Sort(s)
		return slices.Compact(s)
	case rf.Durable > 0:
		return []int{rf.ValidatorSource}
	}
	return nil
}

// checkSpans validates the spans of a file fetched in segments: sorted,
// disjoint, not empty, within a known size, adding up to durable, and
// covering the hashLen bytes a digest state says it hashed.
func checkSpans(spans [][2]int64, size, durable, hashLen int64) error {
	if size == SizeUnknown {
		return errors.New("spans of a file of unknown size")
	}
	var total, end int64
	for _, sp := range spans {
		if sp[0] < end || sp[1] <= sp[0] || sp[1] > size {
			return errors.New("spans out of order, empty, overlapping or past the end")
		}
		total += sp[1] - sp[0]
		end = sp[1]
	}
	if total != durable {
		return fmt.Errorf("spans of %d bytes, %d recorded", total, durable)
	}
	if hashLen > prefix(spans) {
		return errors.New("a digest of bytes that are not recorded")
	}
	return nil
}

// clipSpans cuts spans at n bytes (a temporary file found shorter).
func clipSpans(spans [][2]int64, n int64) (out [][2]int64, total int64) {
	out = [][2]int64{}
	for _, sp := range spans {
		if sp[0] >= n {
			break
		}
		sp[1] = min(sp[1], n)
		out = append(out, sp)
		total += sp[1] - sp[0]
	}
	return out, total
}
