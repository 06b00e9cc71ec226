package dojob

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gatedFile is a tempFile whose Sync blocks until the test releases it (and
// then returns syncErr); writes go to memory.
type gatedFile struct {
	buf     bytes.Buffer
	release chan struct{}
	syncErr error
	syncs   atomic.Int32
}

func (g *gatedFile) Write(p []byte) (int, error)        { return g.buf.Write(p) }
func (g *gatedFile) WriteAt([]byte, int64) (int, error) { return 0, errors.ErrUnsupported }
func (g *gatedFile) ReadAt([]byte, int64) (int, error)  { return 0, errors.ErrUnsupported }
func (g *gatedFile) Seek(int64, int) (int64, error)     { return 0, nil }
func (g *gatedFile) Truncate(int64) error               { return nil }
func (g *gatedFile) Close() error                       { return nil }
func (g *gatedFile) Sync() error {
	g.syncs.Add(1)
	<-g.release
	return g.syncErr
}

// persistedJob is a job of a Manager with a state directory, with one file.
func persistedJob(t *testing.T) (*Manager, *Job, *file) {
	t.Helper()
	dir := t.TempDir()
	m, err := NewManager(Config{StateDir: filepath.Join(dir, "state"), HTTPClient: always503()})
	require.NoError(t, err)
	j, err := m.CreateJob("durable")
	require.NoError(t, err)
	require.NoError(t, j.AddFile("http://127.0.0.1/f", filepath.Join(dir, "f")))
	return m, j, j.files[0]
}

// TestCheckpointDoesNotStopTheCopy: a checkpoint's fsync runs off the copy
// goroutine. While it is blocked, the copy loop goes on writing; the length
// recorded is the one noted when the checkpoint was asked for (not what was
// written during the fsync), and only once the fsync has returned.
func TestCheckpointDoesNotStopTheCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, j, f := persistedJob(t)
		defer func() { require.NoError(t, m.Close()) }()
		g := &gatedFile{release: make(chan struct{})}
		x := &worker{j: j, progressed: true}
		const first, second = 3 << 20, 5 << 20

		_, err := x.copy(g, io.LimitReader(zeroReader{}, first), f, first)
		require.NoError(t, err)
		x.ckptDue.Store(true)
		// The first write of this body takes the slow path and starts the
		// checkpoint; the rest must not wait for its fsync (the old code
		// blocked here until the fsync returned: a deadlock in this bubble).
		_, err = x.copy(g, io.LimitReader(zeroReader{}, second), f, second)
		require.NoError(t, err)
		require.EqualValues(t, first+second, g.buf.Len(), "every byte written while the fsync was blocked")
		require.EqualValues(t, 1, g.syncs.Load())
		j.mu.Lock()
		require.Zero(t, f.Durable, "nothing recorded before the fsync returns")
		j.mu.Unlock()

		close(g.release)
		require.NoError(t, x.bg.wait())
		j.mu.Lock()
		// Noted after the first write of the second body (bufSize bytes).
		require.EqualValues(t, first+bufSize, f.Durable, "the length noted when the checkpoint was taken")
		j.mu.Unlock()
		m.bufs.Put(x.buf)
	})
}

// TestCheckpointSyncErrorReported: a checkpoint fsync that fails is
// reported by the next checkpoint as a local error, and records nothing.
func TestCheckpointSyncErrorReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, j, f := persistedJob(t)
		defer func() { require.NoError(t, m.Close()) }()
		boom := errors.New("disk on fire")
		g := &gatedFile{release: make(chan struct{}), syncErr: boom}
		close(g.release)
		x := &worker{j: j, progressed: true}
		f.done.Store(1000)
		require.NoError(t, x.checkpoint(g, f))
		synctest.Wait()
		err := x.checkpoint(g, f)
		require.ErrorIs(t, err, boom)
		j.mu.Lock()
		require.Zero(t, f.Durable)
		j.mu.Unlock()
		require.NoError(t, x.bg.wait(), "reported once")
	})
}

// zeroReader reads zeros forever.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestWriterCoalesces: a job whose record is large and changes all the time
// (a thousand files finishing one after another) does not keep the record
// writer busy: it rests after each batch for 16 times as long as the batch
// took (at most a checkpoint interval), so changes arriving meanwhile are
// written together. In a synctest bubble each batch is made to take 10 ms of
// fake time; changes arrive every millisecond for a second. Without the rest
// the writer would write ~100 batches back to back; with it, one batch per
// 10 ms + 160 ms: 6 batches, writing 60 ms of the second.
func TestWriterCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		m, err := NewManager(Config{StateDir: filepath.Join(dir, "state"), HTTPClient: always503()})
		require.NoError(t, err)
		defer func() { require.NoError(t, m.Close()) }()
		s := m.store
		s.mu.Lock()
		s.flushHook = func() { <-time.After(10 * time.Millisecond) } // fake time: the batch takes 10 ms
		s.mu.Unlock()
		j, err := m.CreateJob("many")
		require.NoError(t, err)
		specs := make([]FileSpec, 1000)
		for i := range specs {
			specs[i] = FileSpec{RemoteURL: "http://127.0.0.1/f" + strconv.Itoa(i), LocalPath: filepath.Join(dir, "f"+strconv.Itoa(i))}
		}
		require.NoError(t, j.AddFileSet(specs))
		synctest.Wait()
		s.mu.Lock()
		s.writing, s.batches = 0, 0
		s.mu.Unlock()

		start := time.Now()
		for time.Since(start) < time.Second {
			j.mu.Lock()
			j.changedLocked()
			j.mu.Unlock()
			<-time.After(time.Millisecond) // fake time: paces the changes
		}
		synctest.Wait()
		s.mu.Lock()
		writing, batches := s.writing, s.batches
		s.mu.Unlock()
		assert.Equal(t, 6, batches, "one batch per 10 ms written + 160 ms of rest")
		assert.Equal(t, 60*time.Millisecond, writing)
	})
}
