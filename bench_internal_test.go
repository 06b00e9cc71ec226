package dojob

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// rtFunc is an http.RoundTripper made of a function, for the internal tests
// (which cannot import dojobtest: it imports this package).
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// always503 answers every request with 503 Service Unavailable.
func always503() *http.Client {
	return &http.Client{Transport: rtFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})}
}

// waitState blocks until j is in state s, sleeping on the job's change
// channel (no polling).
func waitState(j *Job, s State) {
	for {
		j.mu.Lock()
		cur, ch := j.state, j.changed
		j.mu.Unlock()
		if cur == s {
			return
		}
		<-ch
	}
}

// nopFile is a tempFile that discards writes.
type nopFile struct{}

func (nopFile) Write(p []byte) (int, error)            { return len(p), nil }
func (nopFile) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }
func (nopFile) ReadAt([]byte, int64) (int, error)      { return 0, io.EOF }
func (nopFile) Seek(int64, int) (int64, error)         { return 0, nil }
func (nopFile) Truncate(int64) error                   { return nil }
func (nopFile) Sync() error                            { return nil }
func (nopFile) Close() error                           { return nil }
func (nopFile) ReadFrom(r io.Reader) (int64, error)    { return io.Copy(io.Discard, r) }

// BenchmarkWriteAccounting measures the bookkeeping of one write on the hot
// path (the target, docs/design.md, Performance targets: ≤ 25 ns, 0
// allocations, no timer touched).
func BenchmarkWriteAccounting(b *testing.B) {
	x := &worker{progressed: true}
	f := &file{}
	b.ReportAllocs()
	for b.Loop() {
		if x.account(f, 32<<10) {
			b.Fatal("slow path taken")
		}
	}
	if f.done.Load() == 0 {
		b.Fatal("nothing counted")
	}
}

// BenchmarkCopyLoop runs the whole copy loop over an in-memory body into a
// discarding file, next to io.CopyBuffer with the same buffer as the
// baseline, and reports the loop's overhead per write.
func BenchmarkCopyLoop(b *testing.B) {
	const size = 64 << 20
	body := bytes.Repeat([]byte{7}, size)
	m := &Manager{}
	m.bufs.New = func() any { buf := make([]byte, bufSize); return &buf }
	j := &Job{m: m}
	b.Run("baseline=io.CopyBuffer", func(b *testing.B) {
		buf := make([]byte, bufSize)
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := io.CopyBuffer(struct{ io.Writer }{nopFile{}}, struct{ io.Reader }{bytes.NewReader(body)}, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dojob", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			x := &worker{j: j, progressed: true}
			f := &file{}
			n, err := x.copy(nopFile{}, struct{ io.Reader }{bytes.NewReader(body)}, f, size)
			if err != nil || n != size || f.done.Load() != size {
				b.Fatal(n, err)
			}
			m.bufs.Put(x.buf)
		}
	})
}

// BenchmarkManyJobs measures what 100,000 idle jobs cost (the target,
// docs/design.md, Performance targets: ≤ 4 KiB of heap each, no goroutine
// each): half SUSPENDED, half in
// TRANSIENT_ERROR with an open no-progress window and a retry scheduled.
func BenchmarkManyJobs(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		goroutines := runtime.NumGoroutine()

		m, err := NewManager(Config{HTTPClient: always503(), MaxBackgroundJobs: 64})
		if err != nil {
			b.Fatal(err)
		}
		jobs := make([]*Job, n)
		for i := range jobs {
			j, err := m.CreateJob("job " + strconv.Itoa(i))
			if err != nil {
				b.Fatal(err)
			}
			if err := j.AddFile("http://127.0.0.1:1/file/"+strconv.Itoa(i), filepath.Join(dir, "f"+strconv.Itoa(i))); err != nil {
				b.Fatal(err)
			}
			if i%2 == 1 {
				if err := j.SetMinimumRetryDelay(time.Hour); err != nil {
					b.Fatal(err)
				}
				if err := j.Resume(); err != nil {
					b.Fatal(err)
				}
			}
			jobs[i] = j
		}
		for i := 1; i < n; i += 2 {
			waitState(jobs[i], StateTransientError)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		extra := runtime.NumGoroutine() - goroutines

		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/job")
		b.ReportMetric(float64(extra)/n, "goroutines/job")
		b.ReportMetric(float64(extra), "goroutines")
		for i := 1; i < n; i += 2 {
			jobs[i].mu.Lock()
			open := jobs[i].windowOpen
			jobs[i].mu.Unlock()
			if !open {
				b.Fatal("window not open")
			}
		}
		runtime.KeepAlive(jobs)
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSimultaneousExpiry puts 10,000 jobs in TRANSIENT_ERROR, makes all
// their no-progress windows end at the same instant, and measures the time
// from that instant until every job is in ERROR and every JobError has been
// delivered (the target, docs/design.md, Performance targets: within 2 s).
func BenchmarkSimultaneousExpiry(b *testing.B) {
	const n = 10_000
	dir := b.TempDir()
	for b.Loop() {
		m, err := NewManager(Config{HTTPClient: always503(), MaxBackgroundJobs: 64})
		if err != nil {
			b.Fatal(err)
		}
		var delivered sync.WaitGroup
		delivered.Add(n)
		cb := CallbackFuncs{Error: func(j *Job, e *JobError) error {
			if e.Code != ErrNoProgress {
				b.Errorf("code %v", e.Code)
			}
			delivered.Done()
			return nil
		}}
		jobs := make([]*Job, n)
		for i := range jobs {
			j, _ := m.CreateJob("")
			if err := j.AddFile("http://127.0.0.1:1/f", filepath.Join(dir, "f"+strconv.Itoa(i))); err != nil {
				b.Fatal(err)
			}
			_ = j.SetMinimumRetryDelay(time.Hour)
			_ = j.SetNotifyInterface(cb)
			_ = j.Resume()
			jobs[i] = j
		}
		for _, j := range jobs {
			waitState(j, StateTransientError)
		}
		// Every window ends at the same instant, 100 ms from now.
		end := m.now() + 100*time.Millisecond
		for _, j := range jobs {
			j.mu.Lock()
			j.windowStart = end - j.timeoutLocked()
			m.clock.set(&j.windowDL, end)
			j.mu.Unlock()
		}
		endWall := time.Now().Add(end - m.now())
		delivered.Wait()
		elapsed := time.Since(endWall)
		for _, j := range jobs {
			if s := j.State(); s != StateError {
				b.Fatalf("state %v", s)
			}
		}
		b.ReportMetric(float64(elapsed.Milliseconds()), "ms-to-all-JobError")
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// CopyBufferSize is the size of a transfer's copy buffer, for the baseline
// of BenchmarkDownload (an io.CopyBuffer with a buffer of the same size).
const CopyBufferSize = bufSize
