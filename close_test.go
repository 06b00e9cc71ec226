package dojob_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
)

// closeReports is a slog.Handler that passes on the records of Close's
// report on what it waits for.
type closeReports chan slog.Record

func (h closeReports) Enabled(context.Context, slog.Level) bool { return true }
func (h closeReports) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h closeReports) WithGroup(string) slog.Handler            { return h }
func (h closeReports) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "dojob: Close") {
		h <- r.Clone()
	}
	return nil
}

func attrOf(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

// blockingCallback blocks in JobTransferred until release is closed.
type blockingCallback struct {
	entered chan struct{} // receives once JobTransferred has begun
	release chan struct{}
}

func (c *blockingCallback) JobTransferred(*dojob.Job) error {
	c.entered <- struct{}{}
	<-c.release
	return nil
}
func (c *blockingCallback) JobError(*dojob.Job, *dojob.JobError) error { return nil }
func (c *blockingCallback) JobModification(*dojob.Job) error           { return nil }

// TestCloseReportsBlockedCallback: Close waits for a callback that does not
// return, and says so: a Warn naming the job's callbacks after exactly 5 s,
// again 30 s later; once the callback returns, Close returns and nothing is
// left running (synctest and goleak check that).
func TestCloseReportsBlockedCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reports := make(closeReports, 4)
		r := newRig(t, dojob.Config{Logger: slog.New(reports)}, dojobtest.WithSize(1000))
		cb := &blockingCallback{entered: make(chan struct{}, 1), release: make(chan struct{})}
		j := r.job("blocked", "/f")
		require.NoError(t, j.SetNotifyInterface(cb))
		require.NoError(t, j.Resume())
		<-cb.entered

		start := time.Now()
		closed := make(chan error, 1)
		go func() { closed <- r.m.Close() }()

		want := []string{"callbacks of job " + j.ID().String()}
		rec := <-reports
		assert.Equal(t, 5*time.Second, time.Since(start), "first report after 5 s")
		assert.Equal(t, slog.LevelWarn, rec.Level)
		assert.Equal(t, want, attrOf(rec, "waiting_for").Any())
		assert.Equal(t, 5*time.Second, attrOf(rec, "waited").Duration())

		rec = <-reports
		assert.Equal(t, 35*time.Second, time.Since(start), "then every 30 s")
		assert.Equal(t, want, attrOf(rec, "waiting_for").Any())
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) while a callback was running", err)
		default:
		}

		close(cb.release)
		require.NoError(t, <-closed)
		assert.Equal(t, 35*time.Second, time.Since(start), "Close returns as soon as the callback does")
		assert.Equal(t, dojob.StateTransferred, j.State())
		synctest.Wait()
		assert.Empty(t, reports, "no report once Close has returned")
	})
}

// TestCloseReportsNothingWhenQuick: a Close that does not wait reports
// nothing.
func TestCloseReportsNothingWhenQuick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reports := make(closeReports, 4)
		r := newRig(t, dojob.Config{Logger: slog.New(reports)}, dojobtest.Script(dojobtest.StallHeaders()))
		j := r.job("stalled", "/f")
		require.NoError(t, j.Resume())
		synctest.Wait() // the transfer waits for headers
		start := time.Now()
		require.NoError(t, r.m.Close())
		assert.Equal(t, time.Duration(0), time.Since(start), "Close stops the transfer at once")
		assert.Empty(t, reports)
	})
}
