package dojob_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Stream files (FileSpec.Writer): the bytes go to the caller's writer, in
// order, resumed at their offset when the writer can take them there and
// started over (after Reset) when it cannot.

const streamSize = 1 << 20

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// plainWriter is a writer that can do nothing but Write: no Reset, no
// WriterAt, no Seek.
type plainWriter struct{ b bytes.Buffer }

func (w *plainWriter) Write(p []byte) (int, error) { return w.b.Write(p) }

// memAt is an in-memory io.WriterAt (and, with read, io.ReaderAt): safe for
// parallel calls, as those interfaces allow them.
type memAt struct {
	mu     sync.Mutex
	b      []byte
	writes int // WriteAt calls
}

func (m *memAt) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	copy(m.b[off:], p)
	m.writes++
	return len(p), nil
}

func (m *memAt) bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.b...)
}

// Write makes memAt an io.Writer (dojob uses WriteAt).
func (m *memAt) Write(p []byte) (int, error) { panic("dojob must use WriteAt") }

// memAtReader is a memAt that is also an io.ReaderAt.
type memAtReader struct{ memAt }

func (m *memAtReader) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// seekBuf is an in-memory io.WriteSeeker (not an io.WriterAt).
type seekBuf struct {
	b     []byte
	pos   int64
	seeks []int64 // the SeekStart offsets asked for
}

func (s *seekBuf) Write(p []byte) (int, error) {
	if end := s.pos + int64(len(p)); end > int64(len(s.b)) {
		s.b = append(s.b, make([]byte, end-int64(len(s.b)))...)
	}
	copy(s.b[s.pos:], p)
	s.pos += int64(len(p))
	return len(p), nil
}

func (s *seekBuf) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		s.seeks = append(s.seeks, off)
		s.pos = off
	case io.SeekEnd:
		s.pos = int64(len(s.b)) + off
	default:
		return 0, errors.New("unsupported")
	}
	return s.pos, nil
}

// streamJob makes a job of one stream file of r's path "/f" into w.
func streamJob(t *testing.T, r *rig, w io.Writer, spec dojob.FileSpec) *dojob.Job {
	t.Helper()
	j, err := r.m.CreateJob("stream")
	require.NoError(t, err)
	spec.RemoteURL = r.tr.FileURL("/f")
	spec.Writer = w
	require.NoError(t, j.AddFileSet([]dojob.FileSpec{spec}))
	return j
}

// TestStreamBuffer: a *bytes.Buffer gets exactly the file; the file is a
// stream (no LocalPath, no TemporaryName); Complete counts it completed and
// puts nothing on disk.
func TestStreamBuffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(streamSize))
		var buf bytes.Buffer
		j := streamJob(t, r, &buf, dojob.FileSpec{})
		fi := j.Files()[0]
		assert.True(t, fi.Stream)
		assert.Empty(t, fi.LocalPath)
		assert.Empty(t, fi.TemporaryName)
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		assert.Equal(t, r.tr.SHA256("/f"), sha(buf.Bytes()))
		fi = j.Files()[0]
		assert.True(t, fi.Transferred)
		assert.Equal(t, int64(streamSize), fi.BytesTransferred)
		assert.Zero(t, fi.Restarts)
		require.NoError(t, j.Complete())
		assert.Equal(t, dojob.StateAcknowledged, j.State())
		assert.True(t, j.Files()[0].Completed)
		assert.Empty(t, dirEntries(t, r.dir))
	})
}

// TestStreamOverLoopback: the same over a real connection to 127.0.0.1.
func TestStreamOverLoopback(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(streamSize))
	j, err := r.m.CreateJob("stream")
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, j.AddFileSet([]dojob.FileSpec{{RemoteURL: r.s.FileURL("/f"), Writer: &buf}}))
	require.Equal(t, dojob.StateTransferred, r.run(j))
	assert.Equal(t, r.s.SHA256("/f"), sha(buf.Bytes()))
	require.NoError(t, j.Complete())
}

// TestStreamDrop: a connection dropped mid-file. A writer that can take
// bytes at an offset (io.WriterAt, *os.File, io.Seeker) continues there
// with a Range; any other starts over from byte 0 — a *bytes.Buffer is
// Reset first and holds exactly the file, a writer without Reset gets the
// file again after the prefix it had.
func TestStreamDrop(t *testing.T) {
	const cut = 300 << 10
	for _, tc := range []struct {
		name   string
		writer func(t *testing.T) (io.Writer, func() []byte)
		resume bool   // continued at its offset
		prefix bool   // got the dropped prefix, then the whole file
		reason string // the restart's reason, when it restarts
	}{
		{name: "plain", writer: func(*testing.T) (io.Writer, func() []byte) {
			w := &plainWriter{}
			return w, func() []byte { return w.b.Bytes() }
		}, prefix: true, reason: "the writer cannot resume (not an io.WriterAt or io.Seeker)"},
		{name: "buffer-reset", writer: func(*testing.T) (io.Writer, func() []byte) {
			w := &bytes.Buffer{}
			return w, w.Bytes
		}, reason: "the writer cannot resume (not an io.WriterAt or io.Seeker)"},
		{name: "writer-at", writer: func(*testing.T) (io.Writer, func() []byte) {
			w := &memAt{}
			return w, w.bytes
		}, resume: true},
		{name: "os-file", writer: func(t *testing.T) (io.Writer, func() []byte) {
			p := filepath.Join(t.TempDir(), "sink")
			f, err := os.Create(p)
			require.NoError(t, err)
			t.Cleanup(func() { f.Close() })
			return f, func() []byte {
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				return b
			}
		}, resume: true},
		{name: "seeker", writer: func(*testing.T) (io.Writer, func() []byte) {
			w := &seekBuf{}
			return w, func() []byte { return w.b }
		}, resume: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{}, dojobtest.WithSize(streamSize), dojobtest.Script(dojobtest.DropAfter(cut), dojobtest.OK()))
				w, got := tc.writer(t)
				j := streamJob(t, r, w, dojob.FileSpec{})
				require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
				content := r.tr.Content("/f")
				reqs := r.tr.RequestsFor("/f")
				require.Len(t, reqs, 2)
				fi := j.Files()[0]
				assert.Equal(t, 1, j.ErrorCount())
				b := got()
				switch {
				case tc.resume:
					assert.Equal(t, "bytes="+strconv.FormatInt(reqs[0].BodyBytes, 10)+"-", reqs[1].Range, "resumed at the offset")
					assert.Equal(t, int64(streamSize), reqs[0].BodyBytes+reqs[1].BodyBytes, "no byte twice")
					assert.Equal(t, sha(content), sha(b))
					assert.Zero(t, fi.Restarts)
				case tc.prefix:
					assert.Equal(t, "", reqs[1].Range, "from byte 0")
					k := len(b) - len(content)
					require.Positive(t, k, "the prefix of the dropped attempt")
					assert.LessOrEqual(t, k, cut)
					assert.Equal(t, sha(content[:k]), sha(b[:k]), "the prefix")
					assert.Equal(t, sha(content), sha(b[k:]), "then the whole file")
					assert.Equal(t, 1, fi.Restarts)
					assert.Equal(t, tc.reason, fi.RestartReason)
				default:
					assert.Equal(t, "", reqs[1].Range, "from byte 0")
					assert.Equal(t, sha(content), sha(b), "Reset: exactly the file")
					assert.Equal(t, 1, fi.Restarts)
					assert.Equal(t, tc.reason, fi.RestartReason)
				}
				if sb, ok := w.(*seekBuf); ok {
					assert.Contains(t, sb.seeks, reqs[0].BodyBytes, "sought to the resume offset")
				}
			})
		})
	}
}

// TestStreamChecks: a stream's Checksum and Size are checked as a file's
// are; a failure is ERROR with ErrValidationFailed and the writer is asked
// to discard what it got (a *bytes.Buffer is Reset).
func TestStreamChecks(t *testing.T) {
	wrong := "sha256:" + sha([]byte("something else"))
	for _, tc := range []struct {
		name  string
		spec  func(r *rig) dojob.FileSpec
		opts  []dojobtest.Option
		fails bool
	}{
		{name: "checksum-match", spec: func(r *rig) dojob.FileSpec { return dojob.FileSpec{Checksum: "sha256:" + r.tr.SHA256("/f")} }},
		{name: "checksum-mismatch", spec: func(*rig) dojob.FileSpec { return dojob.FileSpec{Checksum: wrong} }, fails: true},
		{name: "size-announced", spec: func(*rig) dojob.FileSpec { return dojob.FileSpec{Size: streamSize + 1} }, fails: true},
		{name: "size-unannounced", spec: func(*rig) dojob.FileSpec { return dojob.FileSpec{Size: streamSize - 1} },
			opts: []dojobtest.Option{dojobtest.WithoutContentLength()}, fails: true},
		{name: "size-match", spec: func(*rig) dojob.FileSpec { return dojob.FileSpec{Size: streamSize} },
			opts: []dojobtest.Option{dojobtest.WithoutContentLength()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{}, append(tc.opts, dojobtest.WithSize(streamSize))...)
				var buf bytes.Buffer
				spec := tc.spec(r)
				j := streamJob(t, r, &buf, spec)
				st := resumeWait(t, j)
				fi := j.Files()[0]
				if !tc.fails {
					require.Equal(t, dojob.StateTransferred, st)
					assert.Equal(t, r.tr.SHA256("/f"), sha(buf.Bytes()))
					assert.Equal(t, spec.Checksum != "", fi.Verified)
					return
				}
				require.Equal(t, dojob.StateError, st)
				jerr := mustJobError(t, j)
				assert.Equal(t, dojob.ErrValidationFailed, jerr.Code)
				assert.Equal(t, dojob.ErrorContextRemoteFile, jerr.Context)
				require.NotNil(t, jerr.File)
				assert.True(t, jerr.File.Stream)
				assert.Zero(t, buf.Len(), "the writer was asked to discard the bytes")
				assert.Zero(t, fi.BytesTransferred)
				assert.False(t, fi.Transferred)
			})
		})
	}
}

// TestStreamSegments: a stream into an io.WriterAt that is an io.ReaderAt
// too, with a Checksum, is fetched over 4 connections; a *bytes.Buffer, or
// a WriterAt without ReaderAt when there is a Checksum, is not split.
func TestStreamSegments(t *testing.T) {
	const size = 2 << 20
	for _, tc := range []struct {
		name     string
		writer   func() (io.Writer, func() []byte)
		checksum bool
		split    bool
	}{
		{name: "writer-at-reader-at", writer: func() (io.Writer, func() []byte) { w := &memAtReader{}; return w, w.bytes }, checksum: true, split: true},
		{name: "writer-at", writer: func() (io.Writer, func() []byte) { w := &memAt{}; return w, w.bytes }, split: true},
		{name: "writer-at-checksum", writer: func() (io.Writer, func() []byte) { w := &memAt{}; return w, w.bytes }, checksum: true},
		{name: "buffer", writer: func() (io.Writer, func() []byte) { w := &bytes.Buffer{}; return w, w.Bytes }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{MinSegmentSize: 64 << 10}, dojobtest.WithSize(size), dojobtest.WithRate(1<<20))
				w, got := tc.writer()
				spec := dojob.FileSpec{}
				if tc.checksum {
					spec.Checksum = "sha256:" + r.tr.SHA256("/f")
				}
				j := streamJob(t, r, w, spec)
				require.NoError(t, j.SetMaxConnections(4))
				require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
				assert.Equal(t, r.tr.SHA256("/f"), sha(got()))
				reqs := r.tr.RequestsFor("/f")
				if tc.split {
					assert.GreaterOrEqual(t, len(reqs), 4, "split over the connections")
					assert.LessOrEqual(t, segmentBytes(t, reqs), int64(size)+int64(len(reqs))*(64<<10))
				} else {
					assert.Len(t, reqs, 1, "not split")
				}
				fi := j.Files()[0]
				assert.Equal(t, tc.checksum, fi.Verified)
				assert.Zero(t, fi.Restarts)
			})
		})
	}
}

// TestStreamInvalidArgs: a Writer excludes a LocalPath and Ranges; a file
// without a Writer still needs a LocalPath; SetFileWriter takes a stream's
// index and a writer.
func TestStreamInvalidArgs(t *testing.T) {
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	j, err := m.CreateJob("args")
	require.NoError(t, err)
	u := "http://127.0.0.1:1/f"
	local := filepath.Join(t.TempDir(), "f")
	var buf bytes.Buffer
	for name, spec := range map[string]dojob.FileSpec{
		"local-and-writer":  {RemoteURL: u, LocalPath: local, Writer: &buf},
		"ranges-and-writer": {RemoteURL: u, Writer: &buf, Ranges: []dojob.FileRange{{Offset: 0, Length: 10}}},
		"neither":           {RemoteURL: u},
	} {
		assert.ErrorIs(t, j.AddFileSet([]dojob.FileSpec{spec}), dojob.ErrInvalidArg, name)
	}
	assert.Empty(t, j.Files())
	require.NoError(t, j.AddFileSet([]dojob.FileSpec{{RemoteURL: u, Writer: &buf}, {RemoteURL: u, Writer: &buf}, {RemoteURL: u, LocalPath: local}}))
	assert.ErrorIs(t, j.SetFileWriter(3, &buf), dojob.ErrInvalidArg, "out of range")
	assert.ErrorIs(t, j.SetFileWriter(-1, &buf), dojob.ErrInvalidArg, "out of range")
	assert.ErrorIs(t, j.SetFileWriter(2, &buf), dojob.ErrInvalidArg, "not a stream")
	assert.ErrorIs(t, j.SetFileWriter(0, nil), dojob.ErrInvalidArg, "no writer")
	require.NoError(t, j.SetFileWriter(1, &bytes.Buffer{}))
	require.NoError(t, j.Cancel())
	assert.ErrorIs(t, j.SetFileWriter(0, &buf), dojob.ErrInvalidState, "final state")
}

// TestStreamPersisted: a stream survives a restart of the Manager as a
// stream without a writer. Resumed without SetFileWriter the job fails with
// ErrInvalidState in LOCAL_FILE; with a *bytes.Buffer it starts over (Reset)
// and completes; with the same io.WriterAt it continues at its offset.
func TestStreamPersisted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		at     bool // the writer is an io.WriterAt given again
		resume bool
	}{
		{name: "buffer"},
		{name: "writer-at", at: true, resume: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := dojobtest.NewTransport(dojobtest.WithSize(streamSize), dojobtest.WithRate(256<<10))
				defer tr.Close()
				state := t.TempDir()
				cfg := dojob.Config{StateDir: state, HTTPClient: tr.Client(), CheckpointInterval: 100 * time.Millisecond}
				m, err := dojob.NewManager(cfg)
				require.NoError(t, err)
				j, err := m.CreateJob("persisted")
				require.NoError(t, err)
				var first io.Writer = &bytes.Buffer{}
				at := &memAt{}
				if tc.at {
					first = at
				}
				require.NoError(t, j.AddFileSet([]dojob.FileSpec{{RemoteURL: tr.FileURL("/f"), Writer: first}}))
				require.NoError(t, j.Resume())
				advance(time.Second) // fake time: 256 KiB/s
				require.NoError(t, j.Suspend())
				kept := j.Files()[0].BytesTransferred
				require.Positive(t, kept)
				require.Less(t, kept, int64(streamSize))
				require.NoError(t, m.Close())
				rec, err := os.ReadFile(filepath.Join(state, "jobs", hex.EncodeToString(idBytes(j.ID()))+".json"))
				require.NoError(t, err)
				assert.Contains(t, string(rec), `"stream":true`)
				assert.Contains(t, string(rec), `"local":""`)

				m, err = dojob.NewManager(cfg)
				require.NoError(t, err)
				defer func() { require.NoError(t, m.Close()) }()
				j, err = m.Job(j.ID())
				require.NoError(t, err)
				fi := j.Files()[0]
				assert.True(t, fi.Stream)
				assert.Empty(t, fi.LocalPath)
				assert.Equal(t, kept, fi.BytesTransferred)
				assert.Equal(t, dojob.StateSuspended, j.State())

				require.Equal(t, dojob.StateError, resumeWait(t, j))
				jerr := mustJobError(t, j)
				assert.Equal(t, dojob.ErrInvalidState, jerr.Code)
				assert.Equal(t, dojob.ErrorContextLocalFile, jerr.Context)
				assert.Contains(t, jerr.Error(), "SetFileWriter")
				require.NotNil(t, jerr.File)
				assert.True(t, jerr.File.Stream)
				before := len(tr.RequestsFor("/f"))

				var got func() []byte
				if tc.at {
					require.NoError(t, j.SetFileWriter(0, at))
					got = at.bytes
				} else {
					buf := bytes.NewBufferString("stale bytes a Reset discards")
					require.NoError(t, j.SetFileWriter(0, buf))
					got = buf.Bytes
				}
				require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
				assert.Equal(t, tr.SHA256("/f"), sha(got()))
				later := tr.RequestsFor("/f")[before:]
				require.Len(t, later, 1)
				fi = j.Files()[0]
				if tc.resume {
					assert.Equal(t, "bytes="+strconv.FormatInt(kept, 10)+"-", later[0].Range)
					assert.Zero(t, fi.Restarts)
				} else {
					assert.Equal(t, "", later[0].Range)
					assert.Equal(t, 1, fi.Restarts)
					assert.Equal(t, "the writer cannot resume (not an io.WriterAt or io.Seeker)", fi.RestartReason)
				}
				require.NoError(t, j.Complete())
			})
		})
	}
}

// idBytes is a JobID's 16 bytes (the record's file name is their hex).
func idBytes(id dojob.JobID) []byte { return id[:] }

// TestStreamMixedJob: Complete installs the normal file of a job that also
// has a stream, atomically, and leaves no temporary file; Cancel deletes the
// normal file's temporary file and touches no destination.
func TestStreamMixedJob(t *testing.T) {
	for _, op := range []string{"complete", "cancel"} {
		t.Run(op, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{}, dojobtest.WithSize(streamSize))
				j, err := r.m.CreateJob("mixed")
				require.NoError(t, err)
				var buf bytes.Buffer
				require.NoError(t, j.AddFileSet([]dojob.FileSpec{
					{RemoteURL: r.tr.FileURL("/s"), Writer: &buf},
					{RemoteURL: r.tr.FileURL("/f"), LocalPath: r.local("/f")},
				}))
				require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
				assert.Equal(t, r.tr.SHA256("/s"), sha(buf.Bytes()))
				assert.Len(t, tempFiles(t, r.dir), 1, "the normal file's temporary file")
				assert.NoFileExists(t, r.local("/f"), "nothing installed before Complete")
				if op == "cancel" {
					require.NoError(t, j.Cancel())
					assert.Equal(t, dojob.StateCancelled, j.State())
					assert.Empty(t, dirEntries(t, r.dir))
					return
				}
				require.NoError(t, j.Complete())
				assert.Equal(t, dojob.StateAcknowledged, j.State())
				r.requireFile("/f")
				assert.Equal(t, []string{"f"}, dirEntries(t, r.dir))
				for _, fi := range j.Files() {
					assert.True(t, fi.Completed)
				}
			})
		})
	}
}

// TestStreamSetWriterWhileTransferring: SetFileWriter on a stream being
// transferred stops its attempt and returns only once the old writer gets
// nothing more; the job is queued again and the new writer (a
// *bytes.Buffer, which cannot resume) gets the whole file.
func TestStreamSetWriterWhileTransferring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(streamSize), dojobtest.WithRate(256<<10))
		old := &bytes.Buffer{}
		j := streamJob(t, r, old, dojob.FileSpec{})
		require.NoError(t, j.Resume())
		advance(time.Second) // fake time
		require.Equal(t, dojob.StateTransferring, j.State())
		next := &bytes.Buffer{}
		require.NoError(t, j.SetFileWriter(0, next))
		oldLen := old.Len()
		require.Positive(t, oldLen)
		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
		assert.Equal(t, oldLen, old.Len(), "nothing went to the old writer after SetFileWriter returned")
		assert.Equal(t, r.tr.SHA256("/f"), sha(next.Bytes()))
		fi := j.Files()[0]
		assert.Equal(t, 1, fi.Restarts)
		assert.Zero(t, j.ErrorCount(), "a requeue, not an error")
	})
}
