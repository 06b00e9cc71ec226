package dojob

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// serve answers every request with data (and its validators).
func serve(data []byte) *http.Client {
	return &http.Client{Transport: rtFunc(func(r *http.Request) (*http.Response, error) {
		h := http.Header{"Etag": {`"v1"`}}
		return &http.Response{StatusCode: 200, Header: h, ContentLength: int64(len(data)), Body: io.NopCloser(bytes.NewReader(data)), Request: r}, nil
	})}
}

// crashWith ends m as a crash would at this point of Complete or Cancel:
// the job's record says what was under way, its files are as they are, and
// the directory lock is released without anything else being written.
func crashWith(t *testing.T, m *Manager, j *Job, edit func(*record)) {
	t.Helper()
	j.mu.Lock()
	rec := j.recordLocked(m.now())
	j.mu.Unlock()
	edit(rec)
	data, err := jsonRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	// Write it as the writer goroutine would (under the job's persist lock),
	// and let nothing more of this job reach the disk.
	j.persistMu.Lock()
	j.mu.Lock()
	j.removed = true
	j.mu.Unlock()
	err = m.store.write(j.id, data)
	j.persistMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func transferredJob(t *testing.T, stateDir, dir string, data []byte, names ...string) (*Manager, *Job) {
	t.Helper()
	m, err := NewManager(Config{StateDir: stateDir, HTTPClient: serve(data)})
	if err != nil {
		t.Fatal(err)
	}
	j, _ := m.CreateJob("crash")
	for _, n := range names {
		if err := j.AddFile("http://127.0.0.1:1/"+n, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Resume(); err != nil {
		t.Fatal(err)
	}
	if st, err := j.Wait(context.Background()); err != nil || st != StateTransferred {
		t.Fatal(st, err)
	}
	return m, j
}

// TestCrashDuringComplete: a crash after Complete recorded its intent, with
// one file already renamed and one not, is finished by the next Manager:
// both files are in place, nothing is left in the directory or the state.
func TestCrashDuringComplete(t *testing.T) {
	stateDir, dir := t.TempDir(), t.TempDir()
	data := []byte("the new version")
	m, j := transferredJob(t, stateDir, dir, data, "a", "b")
	// The crash hit between the two renames.
	if err := os.Rename(j.files[0].temp, j.files[0].local); err != nil {
		t.Fatal(err)
	}
	crashWith(t, m, j, func(r *record) { r.Completing = true })

	m2, err := NewManager(Config{StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if n := len(m2.Jobs()); n != 0 {
		t.Fatalf("%d jobs after the restart; the completed one should be gone", n)
	}
	for _, n := range []string{"a", "b"} {
		got, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %q, %v", n, got, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("directory holds %d entries, want the 2 files", len(entries))
	}
	if records, _ := os.ReadDir(filepath.Join(stateDir, "jobs")); len(records) != 0 {
		t.Fatalf("%d records left", len(records))
	}
}

// TestCrashDuringCancel: a crash after Cancel recorded CANCELLED but before
// the temporary files were deleted is finished by the next Manager.
func TestCrashDuringCancel(t *testing.T) {
	stateDir, dir := t.TempDir(), t.TempDir()
	m, j := transferredJob(t, stateDir, dir, []byte("data"), "a")
	crashWith(t, m, j, func(r *record) { r.State = StateCancelled })
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("setup: want the temporary file, have %d entries", len(entries))
	}
	m2, err := NewManager(Config{StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if len(m2.Jobs()) != 0 {
		t.Fatal("the cancelled job came back")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("%d entries left; the temporary file should be deleted", len(entries))
	}
}

// BenchmarkReload measures NewManager on a state directory holding 10,000
// jobs, each with a file and a partial temporary file (DESIGN.md §4:
// ≤ 1 s).
func BenchmarkReload(b *testing.B) {
	const n = 10_000
	stateDir, dir := b.TempDir(), b.TempDir()
	m, err := NewManager(Config{StateDir: stateDir, HTTPClient: always503()})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		j, err := m.CreateJob("job " + strconv.Itoa(i))
		if err != nil {
			b.Fatal(err)
		}
		if err := j.AddFile("http://127.0.0.1:1/f"+strconv.Itoa(i), filepath.Join(dir, "f"+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
		j.mu.Lock()
		f := j.files[0]
		j.mu.Unlock()
		if err := os.WriteFile(f.temp, []byte("partial"), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	if err := m.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var worst time.Duration
	for b.Loop() {
		start := time.Now()
		m, err := NewManager(Config{StateDir: stateDir, Paused: true})
		if err != nil {
			b.Fatal(err)
		}
		worst = max(worst, time.Since(start))
		if got := len(m.Jobs()); got != n {
			b.Fatalf("%d jobs", got)
		}
		b.StopTimer()
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(worst.Milliseconds()), "worst-ms")
	b.ReportMetric(float64(n), "jobs")
}
