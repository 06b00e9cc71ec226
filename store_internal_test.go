package dojob

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
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
	if err := os.Rename(j.files[0].Temp, j.files[0].Local); err != nil {
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
// jobs, each with a file and a partial temporary file (target,
// docs/design.md, Performance targets: ≤ 1 s).
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
		if err := os.WriteFile(f.Temp, []byte("partial"), 0o600); err != nil {
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

// TestDamagedRecordDefects: a record that no version of dojob writes is
// damaged — moved to damaged/ and logged — never a job. One row per defect;
// the first row, without a defect, shows the base record is a good one.
func TestDamagedRecordDefects(t *testing.T) {
	dir := t.TempDir()
	base := func() *record {
		id := newJobID()
		temp := func(i int) string {
			return filepath.Join(dir, ".dojob-"+id.hex32()+"-"+strconv.Itoa(i)+".tmp")
		}
		now := time.Now()
		return &record{
			Version: recordVersion, ID: id, Seq: 1, DisplayName: "base", Priority: PriorityNormal,
			MinimumRetryDelay: DefaultMinimumRetryDelay, NotifyFlags: DefaultNotifyFlags,
			State: StateError, Created: now, Modified: now, ErrorCount: 1,
			Error: &recordError{Context: ErrorContextRemoteFile, Code: HTTPStatus(404), File: 1},
			Files: []recordFile{
				{Remote: "http://127.0.0.1:1/a", Local: filepath.Join(dir, "a"), Temp: temp(0),
					Size: 1000, RemoteSize: 1000, Durable: 1000, ETag: `"v1"`, Transferred: true},
				{Remote: "https://127.0.0.1:1/b", Local: filepath.Join(dir, "b"), Temp: temp(1),
					Ranges: []FileRange{{Offset: 0, Length: 10}, {Offset: 100, Length: LengthToEOF}},
					Size:   SizeUnknown, RemoteSize: SizeUnknown},
			},
		}
	}
	for _, tc := range []struct {
		name   string
		defect func(r *record)
	}{
		{"none", func(*record) {}},
		{"unknown state", func(r *record) { r.State = 42 }},
		{"negative state", func(r *record) { r.State = -1 }},
		{"unknown priority", func(r *record) { r.Priority = 9 }},
		{"unknown notify flags", func(r *record) { r.NotifyFlags = 0x100 }},
		{"retry delay zero", func(r *record) { r.MinimumRetryDelay = 0 }},
		{"negative timeout", func(r *record) { d := -time.Second; r.NoProgressTimeout = &d }},
		{"negative window age", func(r *record) { d := -time.Second; r.WindowAge = &d }},
		{"negative retry", func(r *record) { r.RetryIn = -1 }},
		{"null ID", func(r *record) { r.ID = JobID{} }},
		{"display name too long", func(r *record) { r.DisplayName = strings.Repeat("x", maxDisplayName+1) }},
		{"description too long", func(r *record) { r.Description = strings.Repeat("x", maxDescription+1) }},
		{"negative error count", func(r *record) { r.ErrorCount = -1 }},
		{"negative streak", func(r *record) { r.Streak = -1 }},
		{"negative minimum speed", func(r *record) { r.MinimumSpeed, r.MinimumSpeedWindow = -1, time.Minute }},
		{"negative minimum speed window", func(r *record) { r.MinimumSpeed, r.MinimumSpeedWindow = 1000, -time.Minute }},
		{"minimum speed without a window", func(r *record) { r.MinimumSpeed = 1000 }},
		{"minimum speed window under 1 s", func(r *record) { r.MinimumSpeed, r.MinimumSpeedWindow = 1000, time.Millisecond }},
		{"minimum speed window beyond MaxTimeout", func(r *record) { r.MinimumSpeed, r.MinimumSpeedWindow = 1000, MaxTimeout+1 }},
		{"minimum speed window without a speed", func(r *record) { r.MinimumSpeedWindow = time.Minute }},
		{"negative maximum download time", func(r *record) { r.MaxDownloadTime = -1 }},
		{"maximum download time beyond MaxTimeout", func(r *record) { r.MaxDownloadTime = MaxTimeout + 1 }},
		{"negative download time used", func(r *record) { r.DownloadTimeUsed = -time.Second }},
		{"negative maximum download size", func(r *record) { r.MaxDownloadSize = -1 }},
		{"negative notification interval", func(r *record) { r.MinNotificationInterval = -time.Second }},
		{"notification interval under 1 ms", func(r *record) { r.MinNotificationInterval = time.Microsecond }},
		{"notification interval beyond a DWORD of ms", func(r *record) { r.MinNotificationInterval = MaxNotificationInterval + 1 }},
		{"unknown proxy usage", func(r *record) { r.ProxyUsage = ProxyAutodetect }},
		{"proxy list without OVERRIDE", func(r *record) { r.ProxyUsage, r.ProxyList = ProxyNoProxy, "proxy.test" }},
		{"bypass list without OVERRIDE", func(r *record) { r.ProxyBypass = "<local>" }},
		{"OVERRIDE without a proxy list", func(r *record) { r.ProxyUsage = ProxyOverride }},
		{"proxy list too long", func(r *record) { r.ProxyUsage, r.ProxyList = ProxyOverride, strings.Repeat("p", maxProxyList+1) }},
		{"proxy list with a control character", func(r *record) { r.ProxyUsage, r.ProxyList = ProxyOverride, "proxy.test\n" }},
		{"unknown security flags", func(r *record) { r.Security = 0x2 }},
		{"certificate authorities that do not parse", func(r *record) { r.CACerts = "not PEM" }},
		{"error names no file", func(r *record) { r.Error.File = 2 }},
		{"cause names no file", func(r *record) { r.Error.Cause = &recordError{Code: HTTPStatus(404), File: -2} }},
		{"ftp URL", func(r *record) { r.Files[0].Remote = "ftp://127.0.0.1/a" }},
		{"file URL", func(r *record) { r.Files[0].Remote = "file:///etc/passwd" }},
		{"URL without host", func(r *record) { r.Files[0].Remote = "http:///a" }},
		{"relative local path", func(r *record) { r.Files[0].Local = "a"; r.Files[0].Temp = ".dojob-" + r.ID.hex32() + "-0.tmp" }},
		{"unclean local path", func(r *record) { r.Files[0].Local = filepath.Join(dir, "x") + "/../a" }},
		{"temporary file elsewhere", func(r *record) { r.Files[0].Temp = filepath.Join(t.TempDir(), filepath.Base(r.Files[0].Temp)) }},
		{"temporary file of another job", func(r *record) {
			r.Files[0].Temp = filepath.Join(dir, ".dojob-"+newJobID().hex32()+"-0.tmp")
		}},
		{"temporary file not a .tmp", func(r *record) { r.Files[0].Temp = filepath.Join(dir, ".dojob-"+r.ID.hex32()+"-0") }},
		{"negative size", func(r *record) { r.Files[0].Size = -2 }},
		{"negative remote size", func(r *record) { r.Files[0].RemoteSize = -5 }},
		{"negative durable", func(r *record) { r.Files[1].Durable = -1 }},
		{"durable beyond size", func(r *record) { r.Files[0].Durable = 1001 }},
		{"transferred short", func(r *record) { r.Files[0].Durable = 999 }},
		{"transferred of unknown size", func(r *record) { r.Files[1].Transferred = true }},
		{"completed, not transferred", func(r *record) { r.Files[1].Completed = true }},
		{"negative range offset", func(r *record) { r.Files[1].Ranges[0].Offset = -1 }},
		{"empty range", func(r *record) { r.Files[1].Ranges[0].Length = 0 }},
		{"duplicate local path", func(r *record) { r.Files[1].Local = r.Files[0].Local }},
		{"duplicate temporary path", func(r *record) { r.Files[1].Temp = r.Files[0].Temp }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stateDir := t.TempDir()
			jobs := filepath.Join(stateDir, "jobs")
			if err := os.MkdirAll(jobs, 0o700); err != nil {
				t.Fatal(err)
			}
			rec := base()
			name := rec.ID.hex32() + ".json"
			tc.defect(rec)
			data, err := jsonRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(jobs, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			var mu sync.Mutex
			m, err := NewManager(Config{StateDir: stateDir, HTTPClient: serve(nil),
				Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
			if err != nil {
				t.Fatal(err)
			}
			got := m.Jobs()
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			_, statErr := os.Stat(filepath.Join(stateDir, "damaged", name))
			if tc.name == "none" {
				if len(got) != 1 || got[0].State() != StateError || statErr == nil {
					t.Fatalf("the good record: jobs %v, damaged/ %v, log %s", got, statErr, logs.String())
				}
				return
			}
			if len(got) != 0 {
				t.Errorf("a damaged record became job %s in %s", got[0].ID(), got[0].State())
			}
			if statErr != nil {
				t.Errorf("not set aside: %v", statErr)
			}
			if !strings.Contains(logs.String(), "damaged job record set aside") {
				t.Errorf("not logged: %q", logs.String())
			}
		})
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestOldRecordHeadersTrimmed: a record of an older release, which kept
// every response header (here 10,000 lines), loads; the headers are
// trimmed to what keptHeaders keeps, in FileInfo and in the record the
// next write leaves.
func TestOldRecordHeadersTrimmed(t *testing.T) {
	stateDir, dir := t.TempDir(), t.TempDir()
	m, j := transferredJob(t, stateDir, dir, []byte("data"), "a")
	big := http.Header{"Etag": {`"v1"`}, "Set-Cookie": {"s=1"}}
	for i := range 10000 {
		big.Set("X-Junk-"+strconv.Itoa(i), "abcdefghijklmnopqrstuvwx")
	}
	crashWith(t, m, j, func(r *record) { r.Files[0].ResponseHeaders = big })
	path := filepath.Join(stateDir, "jobs", j.id.hex32()+".json")
	before, err := os.Stat(path)
	if err != nil || before.Size() < 300_000 {
		t.Fatalf("the old record: %v, %d bytes", err, before.Size())
	}

	m2, err := NewManager(Config{StateDir: stateDir, HTTPClient: serve([]byte("data"))})
	if err != nil {
		t.Fatal(err)
	}
	j2, err := m2.Job(j.id)
	if err != nil {
		t.Fatal(err)
	}
	if st := j2.State(); st != StateTransferred {
		t.Fatalf("state %s", st)
	}
	want := http.Header{"Etag": {`"v1"`}}
	if got := j2.Files()[0].ResponseHeaders; !reflect.DeepEqual(got, want) {
		t.Fatalf("ResponseHeaders %v, want %v", got, want)
	}
	if err := m2.Close(); err != nil { // writes the record
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil || after.Size() > 2<<10 {
		t.Fatalf("the rewritten record: %v, %d bytes", err, after.Size())
	}
}
