package dojob

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPacedWrite measures what pacing adds to one write of 32 KiB on
// the limited path — the check, the read length and the payment into the
// job's bucket and a priority's — with a limit so high that it never waits:
// the cost of the bookkeeping itself. (Unlimited, pacing is the two atomic
// loads of paced, beside BenchmarkWriteAccounting.)
func BenchmarkPacedWrite(b *testing.B) {
	m := &Manager{epoch: time.Now()}
	j := &Job{m: m, prio: PriorityNormal}
	setBucket(&j.bucket, 1<<50)
	m.pace.limits.Background = 1 << 50
	m.pace.evaluate(time.Now())
	x := &worker{j: j}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if !x.paced() {
			b.Fatal("not paced")
		}
		n := x.paceLen(32 << 10)
		if err := x.pay(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnpacedCheck is the whole cost of pacing per read when nothing
// is limited.
func BenchmarkUnpacedCheck(b *testing.B) {
	m := &Manager{epoch: time.Now()}
	x := &worker{j: &Job{m: m}}
	b.ReportAllocs()
	for b.Loop() {
		if x.paced() {
			b.Fatal("paced")
		}
	}
}

// TestPaceBurst: the bucket size is 1/100 s of the rate, at least 1 KiB
// (or the rate), at most the copy buffer.
func TestPaceBurst(t *testing.T) {
	for r, want := range map[int64]int{1: 1, 500: 500, 1 << 20: 10485, 20 << 20: 209715, 1 << 30: bufSize, 50 << 10: 1024} {
		if got := paceBurst(r); got != want {
			t.Errorf("paceBurst(%d) = %d, want %d", r, got, want)
		}
	}
}
