package dojob

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// LengthToEOF as a FileRange.Length means "to the end of the remote file"
// (BG_LENGTH_TO_EOF).
const LengthToEOF int64 = -1

// maxURLLength is the longest remote URL a job accepts, in characters (BITS).
const maxURLLength = 2200

// FileRange is a byte range of a remote file (BG_FILE_RANGE): Length bytes
// from the zero-based Offset, or everything from Offset when Length is
// LengthToEOF.
type FileRange struct {
	Offset int64 // zero-based offset of the first byte
	Length int64 // bytes from Offset, or LengthToEOF
}

// FileInfo is a snapshot of one file of a job (BG_FILE_INFO with
// BG_FILE_PROGRESS and the ranges of IBackgroundCopyFile2).
type FileInfo struct {
	RemoteURL        string      // as given to AddFile; print it with String, which hides credentials
	LocalPath        string      // the destination, where the file appears at Complete; "" for a stream
	Ranges           []FileRange // nil for a whole file
	BytesTotal       int64       // bytes the file will have locally; SizeUnknown until known
	BytesTransferred int64       // bytes in its temporary file
	Transferred      bool        // every byte is in the temporary file, fsynced
	Completed        bool        // Complete renamed it to LocalPath

	// Restarts counts the times the file started over from byte 0 because
	// what it had could not be resumed; RestartReason says why, for the
	// last of them, in a few lower-case words ("server ignored the range",
	// "content changed (ETag)", "no validator to resume safely", ...). Bytes
	// fetched again after a restart are not progress for the no-progress
	// timeout until they take the file past the most it ever held.
	Restarts      int
	RestartReason string // "" until the first restart

	// ResponseHeaders are headers of the last HTTP response to a request
	// for the file, whatever its status
	// (BITS_FILE_PROPERTY_ID_HTTP_RESPONSE_HEADERS): a copy, nil before the
	// first response, persisted with the job. A server chooses how many
	// headers it sends, so dojob keeps only these, in this order: ETag,
	// Last-Modified, Content-Length, Content-Range, Content-Type,
	// Content-Encoding, Content-Disposition, Content-Language,
	// Content-Location, Digest, Repr-Digest, Content-Digest, Accept-Ranges,
	// Retry-After, Date, Age, Expires, Cache-Control, Vary, Server,
	// WWW-Authenticate, Proxy-Authenticate and Location (its URL redacted,
	// as RedactURL does). Every other header is dropped — Set-Cookie, vendor
	// X- headers and the rest. Of each name at most the first 4 values are
	// kept; a value longer than 1 KiB is dropped, never cut; and once the
	// names and values kept reach 8 KiB, the value that would pass that and
	// everything after it in the order above are dropped. A caller that
	// needs another header can read it in the RoundTripper of its own
	// Config.HTTPClient.
	ResponseHeaders http.Header

	// Verification (FileSpec). ExpectedSize and Checksum are as given to
	// AddFileSet (0 and "" when not given; Checksum in lower case).
	// Verified reports that the file passed its check: its Checksum matched
	// the bytes of its temporary file, or the caller confirmed it with
	// SetValidationState(i, true). A file with a Checksum is never
	// Transferred without being Verified.
	ExpectedSize int64
	Checksum     string
	Verified     bool
	// Mirrors are the alternative URLs given in FileSpec.Mirrors, in the
	// order they are tried after RemoteURL.
	Mirrors []string
	// Source is the source the file's requests go to now: 0 for
	// RemoteURL, i for Mirrors[i-1]. SourceURL is that URL (print it with
	// RedactURL). A file moves to its next source when the one in use fails
	// (FileSpec.Mirrors); the source is persisted with the job.
	Source    int
	SourceURL string
	// CacheHost is the cache host (Config.CacheHosts, as host:port) that
	// served bytes the file holds; "" when none did. Persisted with the job.
	// (Source and SourceURL name the file's own source, also while its
	// requests go through a cache host.)
	CacheHost string
	// TemporaryName is the hidden file that holds the data until Complete
	// renames it to LocalPath (IBackgroundCopyFile3::GetTemporaryName): a
	// FileTransferred callback may read it to check a signature before
	// calling SetValidationState. "" once the file is Completed, and for a
	// stream.
	TemporaryName string
	// Stream reports a file added with FileSpec.Writer: its bytes go to
	// the caller's writer, it has no LocalPath and no TemporaryName, and
	// after a restart of the Manager it needs Job.SetFileWriter.
	Stream bool
}

// FileSpec describes one file of AddFileSet (BG_FILE_INFO, with what DO
// knows of a file in advance).
type FileSpec struct {
	RemoteURL string      // as AddFile: http or https, at most 2,200 characters
	LocalPath string      // as AddFile: absolute, clean, not a directory; "" with a Writer
	Ranges    []FileRange // optional, as AddFileWithRanges; nil for the whole file; not with a Writer

	// Writer makes the file a stream (DO's IDODownload StreamInterface):
	// its bytes go to Writer in order — byte k of the file at offset k —
	// and nowhere else: no temporary file, nothing installed at Complete,
	// no LocalPath (which must then be "", and Ranges nil: ErrInvalidArg
	// otherwise). FileInfo.Stream reports such a file. Size and Checksum
	// apply as to any file: a mismatch sends the job to ERROR with
	// ErrValidationFailed (or, with bytes of a mirror, fetches the file
	// again from RemoteURL), and the writer, which has received the bytes
	// that failed, is asked to discard them as when the file starts over
	// (below). The job reaches TRANSFERRED once the last byte was written
	// (and Sync, if the writer has it, returned); Complete counts the file
	// as completed, Cancel has nothing to delete.
	//
	// What happens after an interruption (a dropped connection, Suspend, a
	// pre-emption, a restart of the Manager) depends on what the writer
	// can do, found by type assertions:
	//   - An io.WriterAt gets every byte at its offset with WriteAt, so the
	//     file resumes at its offset, and it may be fetched over several
	//     connections (Job.SetMaxConnections; with a Checksum only if the
	//     writer is also an io.ReaderAt, as the digest is computed from the
	//     bytes it holds; WriteAt and ReadAt calls may then run at once on
	//     ranges that do not overlap, as those interfaces allow).
	//   - An io.Seeker is moved to the resume offset before the writes go
	//     on; its end (Seek(0, io.SeekEnd)) must be at or past the bytes
	//     recorded, else the file starts over.
	//   - Any other writer cannot go back: the file starts over from byte
	//     0 (FileInfo.Restarts and RestartReason tell), after the writer's
	//     Reset method, if it has one (as *bytes.Buffer and hash.Hash do),
	//     was called so it can discard what it got. Without Reset the
	//     writer simply receives the file again from byte 0.
	// A resumable writer resumes only as a temporary file does: with a
	// validator and a 206 that proves the content is the same; otherwise
	// the file starts over in the same way. Whenever a file starts over
	// after bytes of it were delivered, a writer with Truncate(int64) error
	// (as *os.File) is cut to 0, a Reset method is called and an io.Seeker
	// is moved to 0; Truncate(n) is also called to cut off bytes past the
	// n dojob trusts when it resumes. A writer with Sync() error has it
	// called where dojob fsyncs a temporary file — at checkpoints (on
	// another goroutine, never during a write) and at the file's end —
	// and an error of Sync or of a write fails the job in LOCAL_FILE.
	// dojob never closes the writer.
	//
	// The writer is not persisted. The record keeps the file as a stream
	// with its byte count; after a restart the file has no writer until
	// Job.SetFileWriter sets one, and a job that comes to it without one
	// fails with ErrInvalidState in context LOCAL_FILE. A file of another
	// writer starts over on the new one, as above (the bytes the old one
	// got before the restart cannot be trusted); an io.WriterAt given after
	// a restart is taken to hold the bytes recorded (the same storage,
	// reopened), and an io.Seeker is checked by its end.
	Writer io.Writer

	// Size is the expected size of the remote file in bytes (DO's
	// TotalSizeBytes); 0 means not given. A response that announces
	// another total fails at its headers with ErrValidationFailed, before
	// a byte of its body is written. Size also bounds every body: one of
	// unannounced length is read up to Size bytes, and a byte more fails
	// the file with ErrValidationFailed (its data is discarded).
	Size int64
	// Checksum is "sha256:<hex>" or "sha512:<hex>" of the local file (for
	// a file with Ranges, of the bytes the ranges give); "" means none.
	// The digest is computed as the bytes arrive; a file whose digest
	// differs when its last byte arrives sends the job to ERROR with
	// ErrValidationFailed, its data is discarded, and Resume downloads it
	// again.
	Checksum string
	// Mirrors are alternative URLs of the same file (http or https, at
	// most 2,200 characters each), tried in order after RemoteURL. An error
	// attributable to the source in use (a connection failure, a stall, an
	// HTTP status, a size other than Size) moves the file to the next
	// source at once; the job goes to TRANSIENT_ERROR only when every
	// source has failed since the file last made progress, to ERROR when
	// every one of them failed fatally (404, 403, a TLS failure), and the
	// no-progress timeout counts from the first failure of any source. On
	// another source the file continues at its offset only when that
	// source's answer carries the same strong ETag (else Last-Modified) and
	// size; otherwise it starts over there. A file that fails its Checksum
	// or Size (or SetValidationState(i, false)) holding bytes of a mirror is
	// emptied and fetched again from RemoteURL, without an error; those
	// mirrors are skipped for it until the caller's next Resume. Custom headers go
	// to every source; Authorization, Cookie and credentials only to
	// RemoteURL's origin. FileInfo.Source tells which source is in use.
	Mirrors []string
}

// String describes the file with the secrets of its URL hidden (RedactURL).
func (f FileInfo) String() string {
	if f.Stream {
		return redactURL(f.RemoteURL) + " -> (stream)"
	}
	return redactURL(f.RemoteURL) + " -> " + f.LocalPath
}

// file is a job's file. local, ranges and temp never change after AddFile;
// done is the hot-path counter, written by the transfer goroutine alone; the
// other fields are guarded by the job's mu.
type file struct {
	// recordFile is the file's persisted state, field for field what its
	// record holds (record.go): a field added there is saved and restored
	// with no other edit. Its fields are guarded by the job's mu (Local,
	// Ranges, Temp, ExpectedSize, Checksum, Mirrors and Stream never change
	// after AddFileSet); HighWater is folded in (raised to done) only when
	// done is about to drop, so between restarts the mark is
	// max(HighWater, done) — markLocked — and the hot path never writes it.
	recordFile

	real string // Local with its directory's symbolic links resolved at AddFile; "" for a restored file

	// A stream (FileSpec.Writer) has no Local, Temp or real path: its
	// bytes go to w (guarded by the job's mu; nil after a restart until
	// SetFileWriter). sinkDirty: w, or a writer before it, may hold bytes
	// of the file, so starting over must ask it to discard them.
	w         io.Writer
	sinkDirty atomic.Bool

	done atomic.Int64 // bytes in the temporary file (of every span, in segments)

	// skip: the mirrors skipped for this file until the caller resumes the
	// job, for bytes that failed its check (mirrors.go); not persisted.
	skip []int
	cs   cacheState // its use of cache hosts (cache.go)
	sum  []byte     // the expected digest of Checksum; nil when none

	// The running digest of the bytes in Temp. digest is handed from one
	// transfer run to the next (the run owns it while it transfers f) and
	// covers exactly digestLen bytes; HashState is its serialised form at
	// the last checkpoint, covering HashLen bytes, for the next Manager.
	digest    hash.Hash
	digestLen int64
}

// markLocked is f's high-water mark: the most bytes it has ever held.
func (f *file) markLocked() int64 { return max(f.HighWater, f.done.Load()) }

func (f *file) infoLocked() FileInfo {
	fi := FileInfo{
		RemoteURL:        f.Remote,
		LocalPath:        f.Local,
		BytesTotal:       f.Size,
		BytesTransferred: f.done.Load(),
		Transferred:      f.Transferred,
		Completed:        f.Completed,
		Restarts:         f.Restarts,
		RestartReason:    f.RestartReason,
		ExpectedSize:     f.ExpectedSize,
		Checksum:         f.Checksum,
		Verified:         f.Verified,
		Source:           f.Source,
		SourceURL:        f.sourceURLLocked(),
		CacheHost:        f.CacheHost,
	}
	if !f.Completed {
		fi.TemporaryName = f.Temp // "" for a stream
	}
	fi.Stream = f.Stream
	if f.Ranges != nil {
		fi.Ranges = append([]FileRange(nil), f.Ranges...)
	}
	if f.ResponseHeaders != nil {
		fi.ResponseHeaders = f.ResponseHeaders.Clone()
	}
	if f.Mirrors != nil {
		fi.Mirrors = append([]string(nil), f.Mirrors...)
	}
	return fi
}

// resetDigestLocked forgets every digest of f's bytes: its temporary file
// is emptied (a restart, a failed check) and hashing starts again from
// byte 0.
func (f *file) resetDigestLocked() {
	f.digest, f.digestLen = nil, 0
	f.HashState, f.HashLen = nil, 0
}

// AddFile adds a file to the end of the job: remoteURL (http or https, at
// most 2,200 characters) is downloaded to localPath (absolute and clean, not
// a directory, not already in the job), which appears only at Complete.
// Until then the data lives in a hidden temporary file in localPath's
// directory. Files transfer one after another in the order added (or
// several at once: Job.SetMaxParallelFiles). Adding to
// a running job is allowed; the file is transferred after the others.
// Invalid arguments return ErrInvalidArg; a job in a final state returns
// ErrInvalidState. It is AddFileSet with one FileSpec.
func (j *Job) AddFile(remoteURL, localPath string) error {
	return j.AddFileSet([]FileSpec{{RemoteURL: remoteURL, LocalPath: localPath}})
}

// AddFileWithRanges adds a file of which only the given byte ranges are
// downloaded, written one after another to localPath in the order given
// (BITS): ranges 100–199, 900–999 and 400–499 give a 300-byte file. Ranges
// must be non-empty, must not overlap or repeat (ErrOverlappingRanges), and
// each must have a non-negative offset and a positive length or LengthToEOF
// (ErrInvalidRange); an empty list is ErrInvalidArg. The server must support
// ranges: if it does not, the job goes to ERROR with
// ErrInsufficientRangeSupport; a range beyond the end of the remote file
// ends in ERROR with ErrInvalidRange.
func (j *Job) AddFileWithRanges(remoteURL, localPath string, ranges []FileRange) error {
	if len(ranges) == 0 {
		return errorf(ErrInvalidArg, "no range given")
	}
	return j.AddFileSet([]FileSpec{{RemoteURL: remoteURL, LocalPath: localPath, Ranges: ranges}})
}

// AddFileSet adds files to the end of the job, in order (BITS AddFileSet):
// all of them or, if any spec is invalid, none. Each spec is checked as
// AddFile and AddFileWithRanges check theirs, and also: Size must not be
// negative, Checksum must be "" or "sha256:" / "sha512:" followed by the
// digest's hex (64 or 128 digits), and every mirror must be an http or https
// URL of at most 2,200 characters — else ErrInvalidArg (ranges give
// ErrInvalidRange or ErrOverlappingRanges as AddFileWithRanges). A spec
// with a Writer (a stream) has no LocalPath and no Ranges; one without
// needs a LocalPath (ErrInvalidArg). Two specs with the same LocalPath are
// ErrInvalidArg. With a state directory the
// files are recorded in one durable write, however many there are.
//
// A file with a Checksum is verified as it arrives: the job reaches
// TRANSFERRED, and Complete installs the file, only once its digest has
// matched. A mismatch sends the job to ERROR with ErrValidationFailed
// (context REMOTE_FILE), discards the file's data, and Resume downloads it
// again.
func (j *Job) AddFileSet(files []FileSpec) error {
	if len(files) == 0 {
		return errorf(ErrInvalidArg, "no file given")
	}
	add := make([]*file, len(files))
	seen := make(map[string]bool, len(files))
	for i, spec := range files {
		f, err := newFile(spec)
		if err != nil {
			if len(files) > 1 {
				return fmt.Errorf("file %d of the set: %w", i, err)
			}
			return err
		}
		add[i] = f
		if f.Stream {
			continue // no path of its own
		}
		if seen[f.Local] {
			return errorf(ErrInvalidArg, "local path %s is given twice", f.Local)
		}
		seen[f.Local] = true
	}
	// Two files that reach the same real path through symbolic links to
	// folders would overwrite each other. Resolving is I/O, so it happens
	// outside the lock, for the files there now; a file another goroutine
	// adds meanwhile is compared by the real path it resolved itself.
	realOf := make(map[string]string, len(add)) // real path → local path, of the set
	resolve := realPaths{}
	for _, f := range add {
		if f.Stream {
			continue
		}
		f.real = resolve.of(f.Local)
		if other, dup := realOf[f.real]; dup {
			return errorf(ErrInvalidArg, "local path %s is the same file as %s", f.Local, other)
		}
		realOf[f.real] = f.Local
	}
	j.mu.Lock()
	others := append([]*file(nil), j.files...)
	j.mu.Unlock()
	reals := make(map[*file]string, len(others))
	for _, g := range others {
		if !g.Stream {
			reals[g] = resolve.of(g.Local)
		}
	}
	return j.update(func() (bool, error) {
		for _, g := range j.files {
			if g.Stream {
				continue
			}
			if seen[g.Local] {
				return false, errorf(ErrInvalidArg, "local path %s is already in the job", g.Local)
			}
			r, ok := reals[g]
			if !ok {
				r = g.real
			}
			if local, dup := realOf[r]; dup {
				return false, errorf(ErrInvalidArg, "local path %s is the same file as %s, already in the job", local, g.Local)
			}
		}
		prefix := ".dojob-" + j.id.hex32() + "-"
		for _, f := range add {
			if f.Stream {
				j.files = append(j.files, f)
				continue
			}
			f.Temp = filepath.Join(filepath.Dir(f.Local), prefix+strconv.Itoa(len(j.files))+".tmp")
			j.files = append(j.files, f)
		}
		return true, nil
	})
}

// newFile checks a FileSpec and makes the file it describes (without its
// temporary path, which depends on its place in the job).
func newFile(spec FileSpec) (*file, error) {
	if err := checkRemoteURL(spec.RemoteURL); err != nil {
		return nil, err
	}
	switch {
	case spec.Writer != nil && spec.LocalPath != "":
		return nil, errorf(ErrInvalidArg, "a file with a Writer has no local path (%s given)", spec.LocalPath)
	case spec.Writer != nil && spec.Ranges != nil:
		return nil, errorf(ErrInvalidArg, "a file with a Writer cannot have ranges")
	case spec.Writer == nil:
		if err := checkLocalPath(spec.LocalPath); err != nil {
			return nil, err
		}
	}
	var ranges []FileRange
	if spec.Ranges != nil {
		if len(spec.Ranges) == 0 {
			return nil, errorf(ErrInvalidArg, "no range given")
		}
		if err := checkRanges(spec.Ranges); err != nil {
			return nil, err
		}
		ranges = append([]FileRange(nil), spec.Ranges...)
	}
	if spec.Size < 0 {
		return nil, errorf(ErrInvalidArg, "expected size %d is negative", spec.Size)
	}
	checksum, sum, err := parseChecksum(spec.Checksum)
	if err != nil {
		return nil, err
	}
	var mirrors []string
	for _, u := range spec.Mirrors {
		if err := checkRemoteURL(u); err != nil {
			return nil, fmt.Errorf("mirror: %w", err)
		}
		mirrors = append(mirrors, u)
	}
	f := &file{recordFile: recordFile{
		Remote: spec.RemoteURL, Local: spec.LocalPath, Ranges: ranges,
		Size: SizeUnknown, RemoteSize: SizeUnknown,
		ExpectedSize: spec.Size, Checksum: checksum, Mirrors: mirrors,
		Stream: spec.Writer != nil,
	}, sum: sum, w: spec.Writer}
	if ranges != nil {
		f.Size = rangesSize(ranges, SizeUnknown)
	}
	return f, nil
}

// parseChecksum checks a FileSpec.Checksum and returns it in lower case
// with the digest it names; "" is no checksum.
func parseChecksum(s string) (norm string, sum []byte, err error) {
	if s == "" {
		return "", nil, nil
	}
	alg, hexSum, ok := strings.Cut(s, ":")
	alg = strings.ToLower(alg)
	h := newDigest(alg)
	if !ok || h == nil {
		return "", nil, errorf(ErrInvalidArg, "checksum %q is not sha256:<hex> or sha512:<hex>", s)
	}
	sum, err = hex.DecodeString(hexSum)
	if err != nil || len(sum) != h.Size() {
		return "", nil, errorf(ErrInvalidArg, "checksum %q is not %d hex digits of %s", s, 2*h.Size(), alg)
	}
	return alg + ":" + hex.EncodeToString(sum), sum, nil
}

// newDigest returns a fresh hash for a checksum algorithm, or nil.
func newDigest(alg string) hash.Hash {
	switch alg {
	case "sha256":
		return sha256.New()
	case "sha512":
		return sha512.New()
	}
	return nil
}

// newDigest returns a fresh hash for f's checksum (which never changes).
func (f *file) newDigest() hash.Hash {
	alg, _, _ := strings.Cut(f.Checksum, ":")
	return newDigest(alg)
}

// Files returns a snapshot of the job's files in the order they were added.
func (j *Job) Files() []FileInfo {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]FileInfo, len(j.files))
	for i, f := range j.files {
		out[i] = f.infoLocked()
	}
	return out
}

// nextFileLocked returns the first file not yet transferred, or nil.
func (j *Job) nextFileLocked() *file {
	for _, f := range j.files {
		if !f.Transferred {
			return f
		}
	}
	return nil
}

func checkRemoteURL(s string) error {
	if utf8.RuneCountInString(s) > maxURLLength {
		return errorf(ErrInvalidArg, "remote URL longer than %d characters", maxURLLength)
	}
	u, err := url.Parse(s)
	if err != nil {
		return errorf(ErrInvalidArg, "remote URL does not parse")
	}
	if scheme := strings.ToLower(u.Scheme); scheme != "http" && scheme != "https" {
		return errorf(ErrInvalidArg, "remote URL %s is not http or https", redactURL(s))
	}
	if u.Host == "" {
		return errorf(ErrInvalidArg, "remote URL %s has no host", redactURL(s))
	}
	return nil
}

func checkLocalPath(p string) error {
	switch {
	case p == "" || strings.IndexByte(p, 0) >= 0:
		return errorf(ErrInvalidArg, "local path %q is not a path", p)
	case !filepath.IsAbs(p):
		return errorf(ErrInvalidArg, "local path %s is not absolute", p)
	case filepath.Clean(p) != p:
		return errorf(ErrInvalidArg, "local path %s is not clean (want %s)", p, filepath.Clean(p))
	case filepath.Dir(p) == p:
		return errorf(ErrInvalidArg, "local path %s is a root directory", p)
	}
	// Every name in the path must fit the file system (255 bytes, or 255
	// UTF-16 units on Windows), so a name that cannot be created fails here
	// and not at transfer time. The temporary file's name in the same
	// directory (.dojob-<32 hex digits>-<index>.tmp) is at most 64 bytes and
	// always fits.
	for _, name := range strings.Split(p[len(filepath.VolumeName(p)):], string(filepath.Separator)) {
		if nameTooLong(name) {
			return errorf(ErrInvalidArg, "local path %s has a name longer than the file system allows (255)", p)
		}
	}
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return errorf(ErrInvalidArg, "local path %s is a directory", p)
	}
	return nil
}

// realPaths resolves local paths as realPath does, resolving each directory
// once: the thousand files of a set in one folder cost one resolution, not
// a thousand walks of the folder's path.
type realPaths map[string]string // directory → realPath(directory/x) without x

func (rp realPaths) of(local string) string {
	dir, name := filepath.Split(local)
	r, ok := rp[dir]
	if !ok {
		r = filepath.Dir(realPath(filepath.Join(dir, "x")))
		rp[dir] = r
	}
	return filepath.Join(r, name)
}

// realPath is local with the symbolic links of its directory resolved: of
// the directory itself if it exists, else of its nearest existing ancestor.
// The final name is kept as it is (Complete replaces it, link or not).
func realPath(local string) string {
	dir, rest := filepath.Dir(local), filepath.Base(local)
	for {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return local
		}
		dir, rest = parent, filepath.Join(filepath.Base(dir), rest)
	}
}

// checkRanges validates ranges as AddFileWithRanges documents.
func checkRanges(ranges []FileRange) error {
	for _, r := range ranges {
		switch {
		case r.Offset < 0:
			return errorf(ErrInvalidRange, "range offset %d is negative", r.Offset)
		case r.Length == 0:
			return errorf(ErrInvalidRange, "range at offset %d is empty", r.Offset)
		case r.Length < LengthToEOF:
			return errorf(ErrInvalidRange, "range length %d is negative", r.Length)
		case r.Length > 0 && r.Offset > math.MaxInt64-r.Length:
			return errorf(ErrInvalidRange, "range %d+%d overflows", r.Offset, r.Length)
		}
	}
	sorted := append([]FileRange(nil), ranges...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].Offset < sorted[b].Offset })
	for i := 1; i < len(sorted); i++ {
		prev := sorted[i-1]
		if prev.Length == LengthToEOF || prev.Offset+prev.Length > sorted[i].Offset {
			return errorf(ErrOverlappingRanges, "ranges at offsets %d and %d overlap", prev.Offset, sorted[i].Offset)
		}
	}
	return nil
}

// rangesSize is the local size of a ranged file: the sum of the range
// lengths, with LengthToEOF ranges measured against remoteSize. It is
// SizeUnknown while a LengthToEOF range meets an unknown remote size.
func rangesSize(ranges []FileRange, remoteSize int64) int64 {
	var n int64
	for _, r := range ranges {
		l := r.Length
		if l == LengthToEOF {
			if remoteSize == SizeUnknown {
				return SizeUnknown
			}
			l = max(remoteSize-r.Offset, 0)
		}
		n = addSat(n, l)
	}
	return n
}

// addSat adds two non-negative sizes, saturating at math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// localPathError is the JobError for a failed operation on local's
// temporary file or on local itself. A missing directory is reported as
// ERROR_PATH_NOT_FOUND naming the destination directory — the directory is
// what the caller must create, not the hidden temporary file the failing
// call was about.
func localPathError(local string, err error) *JobError {
	if errors.Is(err, fs.ErrNotExist) {
		dir := filepath.Dir(local)
		if _, serr := os.Stat(dir); serr != nil && errors.Is(serr, fs.ErrNotExist) {
			return &JobError{Context: ErrorContextLocalFile, Code: ErrPathNotFound,
				Err: fmt.Errorf("destination directory %s does not exist", dir)}
		}
	}
	return localError(err)
}

// removeIfExists deletes a file; a file that is already gone is no error.
func removeIfExists(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// mutableFileLocked is fileAtLocked for a method that changes the file: a
// job in a final state is ErrInvalidState first.
func (j *Job) mutableFileLocked(i int) (*file, error) {
	if err := j.mutableLocked(); err != nil {
		return nil, err
	}
	return j.fileAtLocked(i)
}

// fileAtLocked returns the job's file at index i (the index of Files), or
// ErrInvalidArg for an index out of range.
func (j *Job) fileAtLocked(i int) (*file, error) {
	if i < 0 || i >= len(j.files) {
		return nil, errorf(ErrInvalidArg, "file %d is not in the job (it has %d)", i, len(j.files))
	}
	return j.files[i], nil
}
