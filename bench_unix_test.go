//go:build unix

package dojob_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dojob/dojob"
)

// BenchmarkDownload measures one download over loopback, from a file on
// tmpfs (/dev/shm when there is one) to the same tmpfs, five ways in the
// same run:
//
//	copybuffer  http.Get + io.CopyBuffer with a buffer of dojob's size (the baseline)
//	copy        http.Get + io.Copy (32 KiB buffer; a second reference)
//	job         a dojob Job in a Manager without a state directory
//	persisted   a dojob Job in a Manager that persists to a state directory
//	checksum    a dojob Job (no state directory) whose file has a sha256 Checksum
//
// The file server runs in another process (this test binary started again
// as a server child), so the CPU time measured with getrusage(RUSAGE_SELF)
// is the client's only. ns/op and MB/s are those of one Job download; the
// other ways' throughputs and these ratios are extra metrics:
//
//	throughput-ratio       Job MB/s ÷ copybuffer MB/s      (target ≥ 0.95)
//	cpu-ratio              Job CPU ÷ copybuffer CPU        (target ≤ 1.10)
//	copy-throughput-ratio  Job MB/s ÷ io.Copy MB/s
//	persist-ratio          persisted Job MB/s ÷ Job MB/s   (target ≥ 0.97)
//	persist-cpu-ratio      persisted Job CPU ÷ Job CPU
//	checksum-ratio         Job with a Checksum MB/s ÷ Job MB/s (target ≥ 0.8)
//	checksum-cpu-ratio     Job with a Checksum CPU ÷ Job CPU
//	job-alloc-MB           bytes allocated per Job download (must not grow with size)
//
// The ratios are medians of per-iteration ratios (each iteration runs the
// five ways back to back, in rotating order, so drift of the machine
// cancels out); the MB/s figures are over the whole run. The Job fsyncs its
// file before Complete renames it and the baselines do not; on tmpfs an
// fsync costs next to nothing, on a disk it would not (bench/compare.sh
// measures that case).
//
// Run: go test -run '^$' -bench Download -benchtime 5x .
// The sizes are 64 MiB and 1 GiB; -short runs only 64 MiB.
func BenchmarkDownload(b *testing.B) {
	for _, size := range []int64{64 << 20, 1 << 30} {
		if testing.Short() && size > 64<<20 {
			continue
		}
		b.Run(fmt.Sprintf("size=%dMiB", size>>20), func(b *testing.B) { benchDownload(b, size) })
	}
}

// benchWay is one way of downloading in BenchmarkDownload, with the totals
// and per-iteration figures of its downloads.
type benchWay struct {
	name     string
	download func(url, dst string)
	wall     time.Duration // total over the iterations
	cpu      time.Duration
	lastWall time.Duration // of the current iteration
	lastCPU  time.Duration
}

func benchDownload(b *testing.B, size int64) {
	base := os.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "dojob-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srcDir := filepath.Join(dir, "src")
	if err := os.Mkdir(srcDir, 0o755); err != nil {
		b.Fatal(err)
	}
	want := writeRandomFile(b, filepath.Join(srcDir, "file"), size)
	url := startFileServer(b, srcDir) + "/file"
	sum := "sha256:" + hex.EncodeToString(want[:])

	m, err := dojob.NewManager(dojob.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	mp, err := dojob.NewManager(dojob.Config{StateDir: filepath.Join(dir, "state")})
	if err != nil {
		b.Fatal(err)
	}
	defer mp.Close()

	// The baselines' own client, so that its idle connection is closed at
	// the end (the package's goroutine leak check would see it).
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer client.CloseIdleConnections()
	buf := make([]byte, dojob.CopyBufferSize)
	ways := []*benchWay{
		{name: "copybuffer", download: func(url, dst string) {
			bareDownload(b, client, url, dst, func(w io.Writer, r io.Reader) (int64, error) {
				// Hide the file's ReadFrom: io.CopyBuffer would use it and
				// ignore buf (os.File.ReadFrom falls back to io.Copy's 32 KiB).
				return io.CopyBuffer(struct{ io.Writer }{w}, r, buf)
			})
		}},
		{name: "copy", download: func(url, dst string) { bareDownload(b, client, url, dst, io.Copy) }},
		{name: "job", download: func(url, dst string) { jobDownload(b, m, url, dst, "") }},
		{name: "persisted", download: func(url, dst string) { jobDownload(b, mp, url, dst, "") }},
		{name: "checksum", download: func(url, dst string) { jobDownload(b, m, url, dst, sum) }},
	}
	copyBuf, plain, job, pers, summed := ways[0], ways[1], ways[2], ways[3], ways[4]

	var jobAlloc uint64
	var tputRatios, copyRatios, cpuRatios, persRatios, persCPURatios, sumRatios, sumCPURatios []float64
	n := 0
	for b.Loop() {
		// Rotate the order every iteration so no way is always first or last.
		for k := range ways {
			w := ways[(n+k)%len(ways)]
			dst := filepath.Join(dir, w.name)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			w.lastWall, w.lastCPU = measure(func() { w.download(url, dst) })
			if w == job {
				runtime.ReadMemStats(&ms1)
				jobAlloc += ms1.TotalAlloc - ms0.TotalAlloc
			}
			w.wall += w.lastWall
			w.cpu += w.lastCPU
			checkDownload(b, dst, size, want, n == 0)
			if err := os.Remove(dst); err != nil {
				b.Fatal(err)
			}
		}
		n++
		tputRatios = append(tputRatios, copyBuf.lastWall.Seconds()/job.lastWall.Seconds())
		copyRatios = append(copyRatios, plain.lastWall.Seconds()/job.lastWall.Seconds())
		cpuRatios = append(cpuRatios, job.lastCPU.Seconds()/copyBuf.lastCPU.Seconds())
		persRatios = append(persRatios, job.lastWall.Seconds()/pers.lastWall.Seconds())
		persCPURatios = append(persCPURatios, pers.lastCPU.Seconds()/job.lastCPU.Seconds())
		sumRatios = append(sumRatios, job.lastWall.Seconds()/summed.lastWall.Seconds())
		sumCPURatios = append(sumCPURatios, summed.lastCPU.Seconds()/job.lastCPU.Seconds())
	}
	// One iteration is five downloads: ns/op and MB/s are overridden to
	// mean one Job download, not the sum of the five.
	mbps := func(w *benchWay) float64 { return float64(size) * float64(n) / w.wall.Seconds() / 1e6 }
	b.ReportMetric(float64(job.wall.Nanoseconds())/float64(n), "ns/op")
	b.ReportMetric(mbps(job), "MB/s")
	b.ReportMetric(mbps(copyBuf), "baseline-MB/s")
	b.ReportMetric(mbps(plain), "copy-MB/s")
	b.ReportMetric(mbps(pers), "persisted-MB/s")
	b.ReportMetric(mbps(summed), "checksum-MB/s")
	b.ReportMetric(median(sumRatios), "checksum-ratio")
	b.ReportMetric(median(sumCPURatios), "checksum-cpu-ratio")
	b.ReportMetric(median(tputRatios), "throughput-ratio")
	b.ReportMetric(median(copyRatios), "copy-throughput-ratio")
	b.ReportMetric(median(cpuRatios), "cpu-ratio")
	b.ReportMetric(median(persRatios), "persist-ratio")
	b.ReportMetric(median(persCPURatios), "persist-cpu-ratio")
	b.ReportMetric(float64(jobAlloc)/float64(n)/1e6, "job-alloc-MB")
}

// checkDownload fails b unless dst has size bytes and, when full is set,
// the SHA-256 want (hashing every download would double a run's time).
func checkDownload(b *testing.B, dst string, size int64, want [sha256.Size]byte, full bool) {
	b.Helper()
	fi, err := os.Stat(dst)
	if err != nil {
		b.Fatal(err)
	}
	if fi.Size() != size {
		b.Fatalf("%s: %d bytes, want %d", dst, fi.Size(), size)
	}
	if !full {
		return
	}
	f, err := os.Open(dst)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		b.Fatal(err)
	}
	if got := [sha256.Size]byte(h.Sum(nil)); got != want {
		b.Fatalf("%s: SHA-256 %x, want %x", dst, got, want)
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// measure returns the wall-clock and process CPU time fn takes.
func measure(fn func()) (wall, cpu time.Duration) {
	c0 := cpuTime()
	t0 := time.Now()
	fn()
	return time.Since(t0), cpuTime() - c0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bareDownload downloads url to dst with client.Get and cp, as an
// application would without dojob.
func bareDownload(b *testing.B, client *http.Client, url, dst string, cp func(io.Writer, io.Reader) (int64, error)) {
	resp, err := client.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cp(f, resp.Body); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSHA256 is this machine's raw SHA-256 speed over 256 KiB blocks
// (the copy buffer's size): the ceiling of a download with a Checksum.
func BenchmarkSHA256(b *testing.B) {
	block := make([]byte, dojob.CopyBufferSize)
	_, _ = rand.Read(block)
	h := sha256.New()
	b.SetBytes(int64(len(block)))
	for b.Loop() {
		h.Write(block)
	}
}

// jobDownload downloads url to dst with a Job, verified against checksum
// unless it is "".
func jobDownload(b *testing.B, m *dojob.Manager, url, dst, checksum string) {
	j, err := m.CreateJob("bench")
	if err != nil {
		b.Fatal(err)
	}
	if err := j.AddFileSet([]dojob.FileSpec{{RemoteURL: url, LocalPath: dst, Checksum: checksum}}); err != nil {
		b.Fatal(err)
	}
	if err := j.SetPriority(dojob.PriorityForeground); err != nil {
		b.Fatal(err)
	}
	if err := j.Resume(); err != nil {
		b.Fatal(err)
	}
	if st, err := j.Wait(context.Background()); err != nil || st != dojob.StateTransferred {
		je, _ := j.Error()
		b.Fatalf("state %v, %v, %v", st, err, je)
	}
	if err := j.Complete(); err != nil {
		b.Fatal(err)
	}
}

// writeRandomFile writes size random bytes to path and returns their SHA-256.
func writeRandomFile(b *testing.B, path string, size int64) [sha256.Size]byte {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	for written := int64(0); written < size; written += int64(len(block)) {
		block[0]++ // not one block repeated: defeats any deduplication
		p := block[:min(int64(len(block)), size-written)]
		h.Write(p)
		if _, err := f.Write(p); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// benchServeEnv, set to a directory, makes the test binary a file server
// for that directory instead of running tests: BenchmarkDownload starts it
// as a child so that the server's CPU time is not counted in the
// benchmark's getrusage(RUSAGE_SELF).
const benchServeEnv = "DOJOB_BENCH_SERVE"

// init turns the process into the file server child when benchServeEnv is
// set. It is an init rather than a case in TestMain so that the benchmark
// stays within its own file; it runs before TestMain and never returns.
func init() {
	if dir := os.Getenv(benchServeEnv); dir != "" {
		os.Exit(serveFiles(dir))
	}
}

// serveFiles serves dir over HTTP on 127.0.0.1 (a port of the kernel's
// choosing), prints the server's URL as its first line on stdout, and
// returns once stdin reaches EOF: the parent closes it, or dies.
func serveFiles(dir string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench server:", err)
		return 1
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("http://%s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = srv.Close()
	if err := <-served; err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "bench server:", err)
		return 1
	}
	return 0
}

// startFileServer starts the test binary again as a file server for dir
// (see serveFiles) and returns its URL. The child stops when b ends.
func startFileServer(b *testing.B, dir string) string {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), benchServeEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		// EOF on its stdin stops the child; Wait reaps it.
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("bench server: %v", err)
		}
	})
	// The first line is the URL; a child that fails exits, and the read
	// ends with EOF instead of blocking.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://127.0.0.1:") {
		b.Fatalf("bench server: %q, %v", line, err)
	}
	return strings.TrimSpace(line)
}
