package dojob

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
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
	m.pace.evaluate(time.Now(), m.now())
	x := &worker{j: j}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		pb, paced := x.pace()
		if !paced {
			b.Fatal("not paced")
		}
		n := pb.readLen(32 << 10)
		if err := x.pay(ctx, pb, n); err != nil {
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
		if _, paced := x.pace(); paced {
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

// TestPaceOverlappingRepaceKeepsDeadline: SetBandwidthLimits calls that overlap
// (or one beside the hourly onPace) each evaluate the limits and then arm
// or stop the deadline of their next change; the call that evaluates last
// must be the one whose deadline stays, or the Manager ends with limits
// that change later and no deadline to apply the change. The overlap is
// narrow: the test races two calls many times and, under -race, has
// failed in about one round in two thousand without repace's mutex.
func TestPaceOverlappingRepaceKeepsDeadline(t *testing.T) {
	m, err := NewManager(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h := (time.Now().UTC().Hour() + 2) % 24
	windowed := BandwidthLimits{Background: BandwidthBlocked, Windows: []BandwidthWindow{{Start: h, End: h + 1}}, Location: time.UTC}
	const rounds = 40000
	bad := 0
	for range rounds {
		var wg sync.WaitGroup
		wg.Go(func() { _ = m.SetBandwidthLimits(BandwidthLimits{}) })
		wg.Go(func() { _ = m.SetBandwidthLimits(windowed) })
		wg.Wait()
		m.pace.mu.Lock()
		changes := len(m.pace.limits.Windows) > 0
		m.pace.mu.Unlock()
		m.clock.mu.Lock()
		armed := m.pace.dl.pos != 0
		m.clock.mu.Unlock()
		if changes && !armed {
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d rounds ended with windowed limits and no deadline for their next change", bad, rounds)
	}
}

// TestPaceLooksAtTheWallClock: while windows change the limits, the pace
// deadline is never more than paceRecheck ahead, however far the next
// change is, and it is armed again when it fires: a wall clock that moved
// without the Manager's monotonic one (a computer asleep over 22:00, a
// clock set) is noticed within paceRecheck. Without windows nothing is
// armed.
func TestPaceLooksAtTheWallClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := NewManager(Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		ahead := func() (time.Duration, bool) {
			m.clock.mu.Lock()
			defer m.clock.mu.Unlock()
			return m.pace.dl.at - m.now(), m.pace.dl.pos != 0
		}
		if _, armed := ahead(); armed {
			t.Fatal("a deadline without windows")
		}
		// Blocked but from 22:00 to midnight, UTC; the bubble starts at
		// midnight, 22 hours before the window.
		limits := BandwidthLimits{Background: BandwidthBlocked, Location: time.UTC,
			Windows: []BandwidthWindow{{Start: 22, End: 24}}}
		if err := m.SetBandwidthLimits(limits); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			d, armed := ahead()
			if !armed || d <= 0 || d > paceRecheck {
				t.Fatalf("pace deadline %v ahead (armed %v), want at most %v", d, armed, paceRecheck)
			}
			<-time.After(d) // fake time: the deadline fires
			synctest.Wait()
		}
	})
}
