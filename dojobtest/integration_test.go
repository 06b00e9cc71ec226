package dojobtest_test

import (
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
)

// These tests drive real dojob jobs through the kit, in synctest bubbles:
// the Transport, the Recorder and fake time working together.

// newJob makes a job that downloads path from tr into a temporary
// directory, reporting to rec.
func newJob(t *testing.T, tr *dojobtest.Transport, rec *dojobtest.Recorder, cfg dojob.Config, path string) (*dojob.Manager, *dojob.Job, string) {
	t.Helper()
	cfg.HTTPClient = tr.Client()
	m, err := dojob.NewManager(cfg)
	require.NoError(t, err)
	j, err := m.CreateJob("dojobtest")
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), filepath.Base(path))
	require.NoError(t, j.AddFile(tr.FileURL(path), dst))
	require.NoError(t, j.SetNotifyFlags(dojob.NotifyJobTransferred|dojob.NotifyJobError|dojob.NotifyJobModification))
	require.NoError(t, j.SetNotifyInterface(rec))
	return m, j, dst
}

func TestJobResumesAfterDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := dojobtest.NewTransport(dojobtest.Script(dojobtest.DropAfter(300_000), dojobtest.StatusRetryAfter(503, "30")))
		defer tr.Close()
		rec := dojobtest.NewRecorder(dojobtest.CompleteOnTransferred())
		m, j, dst := newJob(t, tr, rec, dojob.Config{}, "/update.bin")
		defer m.Close()

		start := time.Now()
		require.NoError(t, j.Resume())
		ev, err := rec.AwaitCount(t.Context(), dojobtest.EventTransferred, 1)
		require.NoError(t, err)
		tev := find(ev, dojobtest.EventTransferred)
		require.NoError(t, tev.Returned, "Complete from JobTransferred")
		assert.Equal(t, dojob.StateTransferred, tev.State)
		assert.Equal(t, dojob.Progress{BytesTotal: dojobtest.DefaultSize, BytesTransferred: dojobtest.DefaultSize, FilesTotal: 1, FilesTransferred: 1}, tev.Progress)

		got, err := os.ReadFile(dst)
		require.NoError(t, err)
		assert.Equal(t, tr.SHA256("/update.bin"), sha(got))
		assert.Equal(t, int64(len(got)), tr.BodyBytes("/update.bin"), "resumed: no byte downloaded twice")

		reqs := tr.RequestsFor("/update.bin")
		require.Len(t, reqs, 3)
		assert.Equal(t, "bytes=300000-", reqs[1].Range)
		assert.Equal(t, 503, reqs[1].Status)
		assert.Equal(t, "bytes=300000-", reqs[2].Range)
		assert.NotEmpty(t, reqs[2].IfRange)
		assert.Equal(t, 206, reqs[2].Status)
		assert.GreaterOrEqual(t, reqs[2].Time.Sub(reqs[1].Time), 30*time.Second, "Retry-After is honoured")
		assert.Less(t, time.Since(start), 5*time.Minute)
		t.Logf("transferred in %v of fake time; modification states %v", time.Since(start), rec.States())
	})
}

func TestJobStallEndsInErrorAfterNoProgressTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := dojobtest.NewTransport(dojobtest.Always(dojobtest.StallHeaders()))
		defer tr.Close()
		rec := dojobtest.NewRecorder()
		m, j, _ := newJob(t, tr, rec, dojob.Config{StallTimeout: time.Minute}, "/hang.bin")
		defer m.Close()
		require.NoError(t, j.SetNoProgressTimeout(time.Hour))

		start := time.Now()
		require.NoError(t, j.Resume())
		ev, err := rec.AwaitCount(t.Context(), dojobtest.EventError, 1)
		require.NoError(t, err)
		eev := find(ev, dojobtest.EventError)
		require.NotNil(t, eev.Err)
		assert.ErrorIs(t, eev.Err, dojob.ErrNoProgress)
		assert.Equal(t, dojob.StateError, eev.State)
		elapsed := time.Since(start)
		assert.GreaterOrEqual(t, elapsed, time.Hour)
		assert.Less(t, elapsed, 2*time.Hour)
		assert.Greater(t, len(tr.Requests()), 1, "it retried")
		t.Logf("ERROR after %v of fake time and %d requests", elapsed, len(tr.Requests()))
		require.NoError(t, j.Cancel())
	})
}

// find returns the first event of kind k.
func find(ev []dojobtest.Event, k dojobtest.EventKind) dojobtest.Event {
	for _, e := range ev {
		if e.Kind == k {
			return e
		}
	}
	return dojobtest.Event{}
}
