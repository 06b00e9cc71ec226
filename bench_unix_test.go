//go:build unix

package dojob_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/dojob/dojob"
)

// BenchmarkDownload measures one download over loopback, from a file on
// tmpfs (/dev/shm when there is one) to tmpfs, three ways in the same run:
// a bare http.Get + io.Copy (the baseline), a dojob Job, and a dojob Job in
// a Manager that persists to a state directory. It reports each one's
// throughput and the ratios DESIGN.md §4 sets targets for:
//
//	throughput-ratio   Job MB/s ÷ baseline MB/s        (target ≥ 0.95)
//	cpu-ratio          Job CPU time ÷ baseline CPU time (target ≤ 1.10)
//	persist-ratio      persisted Job MB/s ÷ Job MB/s    (target ≥ 0.97)
//	persist-cpu-ratio  persisted Job CPU ÷ Job CPU
//	checksum-ratio     Job with a sha256 Checksum MB/s ÷ Job MB/s (target ≥ 0.8)
//	checksum-cpu-ratio Job with a Checksum CPU ÷ Job CPU
//
// The ratios are medians over the iterations (each runs the three ways back
// to back, in rotating order); the MB/s figures are over the whole run.
//
//	job-alloc-MB       bytes allocated per Job download (must not grow with size)
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
	src := filepath.Join(dir, "src")
	writeRandomFile(b, src, size)
	sum := fileChecksum(b, src)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	url := srv.URL + "/src"

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

	var baseT, jobT, persT, sumT, baseCPU, jobCPU, persCPU, sumCPU time.Duration
	var tputRatios, cpuRatios, persRatios, persCPURatios, sumRatios, sumCPURatios []float64
	var jobAlloc uint64
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		dst := filepath.Join(dir, fmt.Sprintf("dst-%d", i))
		var bt, jt, pt, st, bc, jc, pc, sc time.Duration
		runs := []func(){
			func() { bt, bc = measure(func() { bareDownload(b, url, dst+"-bare") }) },
			func() {
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				jt, jc = measure(func() { jobDownload(b, m, url, dst+"-job", "") })
				runtime.ReadMemStats(&ms1)
				jobAlloc += ms1.TotalAlloc - ms0.TotalAlloc
			},
			func() { pt, pc = measure(func() { jobDownload(b, mp, url, dst+"-persisted", "") }) },
			func() { st, sc = measure(func() { jobDownload(b, m, url, dst+"-checksum", sum) }) },
		}
		// Rotate the order every iteration so no way is always first or last.
		for k := range runs {
			runs[(i+k)%len(runs)]()
		}
		baseT, jobT, persT = baseT+bt, jobT+jt, persT+pt
		baseCPU, jobCPU, persCPU = baseCPU+bc, jobCPU+jc, persCPU+pc
		tputRatios = append(tputRatios, bt.Seconds()/jt.Seconds())
		cpuRatios = append(cpuRatios, jc.Seconds()/bc.Seconds())
		persRatios = append(persRatios, jt.Seconds()/pt.Seconds())
		persCPURatios = append(persCPURatios, pc.Seconds()/jc.Seconds())
		sumT, sumCPU = sumT+st, sumCPU+sc
		sumRatios = append(sumRatios, jt.Seconds()/st.Seconds())
		sumCPURatios = append(sumCPURatios, sc.Seconds()/jc.Seconds())
		for _, suffix := range []string{"-bare", "-job", "-persisted", "-checksum"} {
			fi, err := os.Stat(dst + suffix)
			if err != nil || fi.Size() != size {
				b.Fatalf("%s: %v", dst+suffix, err)
			}
			os.Remove(dst + suffix)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	mbps := func(d time.Duration) float64 { return float64(size) * n / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(baseT), "baseline-MB/s")
	b.ReportMetric(mbps(jobT), "job-MB/s")
	b.ReportMetric(mbps(persT), "persisted-MB/s")
	// Medians of the per-iteration ratios: each iteration runs the three ways
	// back to back, so drift of the machine (tmpfs, other load) cancels out.
	b.ReportMetric(median(tputRatios), "throughput-ratio")
	b.ReportMetric(median(cpuRatios), "cpu-ratio")
	b.ReportMetric(median(persRatios), "persist-ratio")
	b.ReportMetric(median(persCPURatios), "persist-cpu-ratio")
	b.ReportMetric(mbps(sumT), "checksum-MB/s")
	b.ReportMetric(median(sumRatios), "checksum-ratio")
	b.ReportMetric(median(sumCPURatios), "checksum-cpu-ratio")
	b.ReportMetric(float64(jobAlloc)/n/1e6, "job-alloc-MB")
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

func bareDownload(b *testing.B, url, dst string) {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	f, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// fileChecksum is the sha256 Checksum of the file at path.
func fileChecksum(b *testing.B, path string) string {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		b.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// BenchmarkSHA256 is this machine's raw SHA-256 speed over 256 KiB blocks
// (the copy buffer's size): the ceiling of a download with a Checksum.
func BenchmarkSHA256(b *testing.B) {
	block := make([]byte, 256<<10)
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

func writeRandomFile(b *testing.B, path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	for written := int64(0); written < size; written += int64(len(block)) {
		block[0]++ // not one block repeated: defeats any deduplication
		if _, err := f.Write(block[:min(int64(len(block)), size-written)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}
