package dojob_test

import (
	"errors"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stateLog records every state a job moves into, with its error in the
// error states, through a StateCallback.
type stateLog struct {
	mu     sync.Mutex
	states []dojob.State
	errs   []*dojob.JobError // of TRANSIENT_ERROR and ERROR, in order
	at     []time.Time       // time of each entry of states
	ch     chan dojob.State  // every state, for await
}

func (l *stateLog) watch(t *testing.T, j *dojob.Job) {
	t.Helper()
	l.ch = make(chan dojob.State, 1024)
	require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
	require.NoError(t, j.SetNotifyInterface(dojob.CallbackFuncs{StateChanged: func(j *dojob.Job, from, to dojob.State) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.states = append(l.states, to)
		l.at = append(l.at, time.Now())
		if to == dojob.StateTransientError || to == dojob.StateError {
			e, _ := j.Error()
			l.errs = append(l.errs, e)
		}
		select {
		case l.ch <- to:
		default:
		}
		return nil
	}}))
}

func (l *stateLog) count(s dojob.State) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, st := range l.states {
		if st == s {
			n++
		}
	}
	return n
}

// mirrorJob creates a job in m with one file: primary, then mirrors, to a
// fresh directory; it returns the job and the local path.
func mirrorJob(t *testing.T, m *dojob.Manager, spec dojob.FileSpec) (*dojob.Job, string) {
	t.Helper()
	j, err := m.CreateJob("mirrors")
	require.NoError(t, err)
	if spec.LocalPath == "" {
		spec.LocalPath = filepath.Join(t.TempDir(), "f")
	}
	require.NoError(t, j.AddFileSet([]dojob.FileSpec{spec}))
	return j, spec.LocalPath
}

func newMirrorManager(t *testing.T, cfg dojob.Config) *dojob.Manager {
	t.Helper()
	m, err := dojob.NewManager(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, m.Close())
		require.Zero(t, dojob.StateDefects(m), "state changes the table refused")
	})
	return m
}

// refusedURL is the URL of a server that was closed: its port refuses
// connections.
func refusedURL(t *testing.T) string {
	s := dojobtest.NewServer(t)
	u := s.FileURL("/f")
	s.Close()
	return u
}

// TestMirrorPrimaryRefused: the primary refuses connections; the file moves
// to the mirror at once, the job never enters TRANSIENT_ERROR, the bytes are
// the mirror's, and FileInfo names the mirror as the source in use.
func TestMirrorPrimaryRefused(t *testing.T) {
	const size = 64 << 10
	mirror := dojobtest.NewServer(t, dojobtest.WithSize(size))
	m := newMirrorManager(t, dojob.Config{})
	primary := refusedURL(t)
	j, local := mirrorJob(t, m, dojob.FileSpec{RemoteURL: primary, Mirrors: []string{mirror.FileURL("/f")}})
	fi := j.Files()[0]
	assert.Equal(t, 0, fi.Source)
	assert.Equal(t, primary, fi.SourceURL)
	var log stateLog
	log.watch(t, j)

	require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
	assert.Zero(t, log.count(dojob.StateTransientError), "no TRANSIENT_ERROR: %v", log.states)
	assert.Zero(t, j.ErrorCount())
	fi = j.Files()[0]
	assert.Equal(t, 1, fi.Source)
	assert.Equal(t, mirror.FileURL("/f"), fi.SourceURL)
	assert.Equal(t, primary, fi.RemoteURL, "the primary is unchanged")
	assert.Len(t, mirror.RequestsFor("/f"), 1)
	require.NoError(t, j.Complete())
	assert.Equal(t, mirror.SHA256("/f"), fileSHA256(t, local))
}

// TestMirrorContinuesAtOffset: the primary drops the connection after n
// bytes; the mirror is asked for the rest with a Range request and the
// primary's ETag in If-Range, with or without a Checksum. A mirror with the
// same strong ETag continues the file; one whose content (ETag) differs
// serves the whole file, which starts over on it — a Checksum does not
// make a splice acceptable.
func TestMirrorContinuesAtOffset(t *testing.T) {
	const size, n = 256 << 10, 100_000
	for _, tc := range []struct {
		name      string
		checksum  bool
		change    bool // the mirror serves another version (new ETag)
		wantRange bool
	}{
		{name: "checksum", checksum: true, wantRange: true},
		{name: "same-etag", wantRange: true},
		{name: "other-etag", change: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := dojobtest.NewServer(t, dojobtest.WithSize(size), dojobtest.Script(dojobtest.DropAfter(n)))
			var mopts []dojobtest.Option
			if tc.change {
				mopts = append(mopts, dojobtest.Script(dojobtest.ChangeContent()))
			}
			mirror := dojobtest.NewServer(t, append(mopts, dojobtest.WithSize(size))...)
			m := newMirrorManager(t, dojob.Config{})
			spec := dojob.FileSpec{RemoteURL: primary.FileURL("/f"), Mirrors: []string{mirror.FileURL("/f")}}
			if tc.checksum {
				spec.Checksum = "sha256:" + primary.SHA256("/f")
			}
			j, local := mirrorJob(t, m, spec)
			var log stateLog
			log.watch(t, j)
			require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
			assert.Zero(t, log.count(dojob.StateTransientError), "no TRANSIENT_ERROR: %v", log.states)

			require.Len(t, primary.RequestsFor("/f"), 1)
			mreqs := mirror.RequestsFor("/f")
			require.Len(t, mreqs, 1)
			fi := j.Files()[0]
			assert.Equal(t, 1, fi.Source)
			assert.Equal(t, "bytes=100000-", mreqs[0].Range)
			assert.NotEmpty(t, mreqs[0].IfRange, "the primary's ETag")
			assert.Equal(t, fi.ResponseHeaders.Get("ETag") != mreqs[0].IfRange, tc.change)
			require.NoError(t, j.Complete())
			if tc.wantRange {
				assert.Equal(t, http.StatusPartialContent, mreqs[0].Status)
				assert.Equal(t, int64(size-n), mirror.BodyBytes("/f"), "no byte fetched twice")
				assert.Zero(t, fi.Restarts)
				assert.Equal(t, primary.SHA256("/f"), fileSHA256(t, local))
			} else {
				assert.Equal(t, http.StatusOK, mreqs[0].Status)
				assert.Equal(t, int64(size), mirror.BodyBytes("/f"), "the whole file from the mirror")
				assert.Equal(t, 1, fi.Restarts)
				assert.Equal(t, "content changed (ETag)", fi.RestartReason)
				assert.NotEqual(t, primary.SHA256("/f"), mirror.SHA256("/f"))
				assert.Equal(t, mirror.SHA256("/f"), fileSHA256(t, local), "the mirror's file, not a splice")
			}
		})
	}
}

// TestMirrorFatalErrors: a fatal status on one source moves the file to the
// next source at once; only when every source failed fatally does the job
// go to ERROR, with the first error of the round (the primary's) and no
// TRANSIENT_ERROR. A fatal and a transient failure make a TRANSIENT_ERROR
// with the transient one.
func TestMirrorFatalErrors(t *testing.T) {
	t.Run("404-then-ok", func(t *testing.T) {
		primary := dojobtest.NewServer(t, dojobtest.WithSize(4096), dojobtest.Always(dojobtest.Status(404)))
		mirror := dojobtest.NewServer(t, dojobtest.WithSize(4096))
		m := newMirrorManager(t, dojob.Config{})
		j, local := mirrorJob(t, m, dojob.FileSpec{RemoteURL: primary.FileURL("/f"), Mirrors: []string{mirror.FileURL("/f")}})
		var log stateLog
		log.watch(t, j)
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		assert.Zero(t, j.ErrorCount())
		assert.Equal(t, []dojob.State{dojob.StateQueued, dojob.StateConnecting, dojob.StateTransferring, dojob.StateTransferred}, log.states,
			"404 and the mirror in one CONNECTING")
		require.NoError(t, j.Complete())
		assert.Equal(t, mirror.SHA256("/f"), fileSHA256(t, local))
	})
	t.Run("fatal-everywhere", func(t *testing.T) {
		primary := dojobtest.NewServer(t, dojobtest.Always(dojobtest.Status(404)))
		m1 := dojobtest.NewServer(t, dojobtest.Always(dojobtest.Status(403)))
		m2 := dojobtest.NewServer(t, dojobtest.Always(dojobtest.Status(410)))
		m := newMirrorManager(t, dojob.Config{})
		j, _ := mirrorJob(t, m, dojob.FileSpec{RemoteURL: primary.FileURL("/f"), Mirrors: []string{m1.FileURL("/f"), m2.FileURL("/f")}})
		var log stateLog
		log.watch(t, j)
		require.Equal(t, dojob.StateError, resumeWait(t, j))
		assert.Zero(t, log.count(dojob.StateTransientError))
		assert.Equal(t, 1, j.ErrorCount())
		jerr := mustJobError(t, j)
		assert.Equal(t, dojob.HTTPStatus(404), jerr.Code, "the first error of the round")
		require.NotNil(t, jerr.File)
		assert.Equal(t, 0, jerr.File.Source)
		assert.Contains(t, jerr.Error(), primary.FileURL("/f"))
		for _, s := range []*dojobtest.Server{primary, m1, m2} {
			assert.Len(t, s.RequestsFor("/f"), 1, "each source tried once")
		}
		assert.Equal(t, 0, j.Files()[0].Source, "back at the source the round started from")
	})
	t.Run("fatal-and-transient", func(t *testing.T) {
		primary := dojobtest.NewServer(t, dojobtest.Always(dojobtest.Status(404)))
		mirror := dojobtest.NewServer(t, dojobtest.Always(dojobtest.Status(503)))
		m := newMirrorManager(t, dojob.Config{})
		j, _ := mirrorJob(t, m, dojob.FileSpec{RemoteURL: primary.FileURL("/f"), Mirrors: []string{mirror.FileURL("/f")}})
		require.NoError(t, j.SetMinimumRetryDelay(time.Hour))
		var log stateLog
		log.watch(t, j)
		require.NoError(t, j.Resume())
		log.await(t, dojob.StateTransientError)
		jerr := mustJobError(t, j)
		assert.Equal(t, dojob.HTTPStatus(503), jerr.Code)
		assert.Equal(t, 1, jerr.File.Source)
		assert.Equal(t, 1, j.ErrorCount())
		require.NoError(t, j.Cancel())
	})
}

// await waits (without polling) until the job moves into state s.
func (l *stateLog) await(t *testing.T, s dojob.State) {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case st := <-l.ch:
			if st == s {
				return
			}
		case <-timeout.C:
			t.Fatalf("the job never moved into %s", s)
		}
	}
}

// hostMux sends each request to the in-memory transport of its host, so
// that each source of a file is a server of its own inside a synctest
// bubble.
type hostMux map[string]*dojobtest.Transport

func (h hostMux) RoundTrip(r *http.Request) (*http.Response, error) {
	tr, ok := h[r.URL.Host]
	if !ok {
		return nil, errors.New("no transport for host " + r.URL.Host)
	}
	return tr.RoundTrip(r)
}

// TestMirrorAllTransient: every source answers 503 (the mirror after 10 s).
// Each round — the primary, then the mirror at once — ends in one
// TRANSIENT_ERROR; rounds are retried with the doubling back-off; the job
// goes to ERROR with ErrNoProgress exactly one timeout after the first
// failure of any source (the primary's, at 0), not after the first round's
// end.
func TestMirrorAllTransient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout, slow = 10 * time.Minute, 10 * time.Second
		p := dojobtest.NewTestTransport(t, dojobtest.Always(dojobtest.Status(503)))
		mi := dojobtest.NewTestTransport(t, dojobtest.Always(dojobtest.Status(503).And(dojobtest.Delay(slow))))
		m := newMirrorManager(t, dojob.Config{HTTPClient: &http.Client{Transport: hostMux{"primary.invalid": p, "mirror.invalid": mi}}})
		j, _ := mirrorJob(t, m, dojob.FileSpec{RemoteURL: "http://primary.invalid/f", Mirrors: []string{"http://mirror.invalid/f"}})
		require.NoError(t, j.SetNoProgressTimeout(timeout))
		var log stateLog
		log.watch(t, j)
		start := time.Now()
		require.Equal(t, dojob.StateError, resumeWait(t, j))
		synctest.Wait()
		assert.Equal(t, timeout, time.Since(start), "ERROR exactly one timeout after the primary's first failure")

		// The model: a round starts at r, the primary fails at r, the
		// mirror at r+10 s (TRANSIENT_ERROR), the next round starts after
		// the back-off (2 s, doubling, capped at 60 s).
		var rounds []time.Duration
		transients := 0
		d := 2 * time.Second
		for r := time.Duration(0); r < timeout; r += slow + d {
			rounds = append(rounds, r)
			if r+slow >= timeout {
				break
			}
			transients++
			if len(rounds) > 1 {
				d = min(2*d, 60*time.Second)
			}
		}
		require.Greater(t, transients, 4)
		assert.Equal(t, rounds, requestOffsets(p.RequestsFor("/f"), start), "primary: one request per round")
		assert.Equal(t, rounds, requestOffsets(mi.RequestsFor("/f"), start), "mirror: at once after the primary")
		assert.Equal(t, transients, log.count(dojob.StateTransientError), "one TRANSIENT_ERROR per round")
		assert.Equal(t, transients+1, j.ErrorCount())
		jerr := mustJobError(t, j)
		assert.Equal(t, dojob.ErrNoProgress, jerr.Code)
		assert.True(t, errors.Is(jerr, dojob.HTTPStatus(503)), "wraps the last transient error: %v", jerr)
		assert.Equal(t, start.Add(timeout), log.at[len(log.at)-1])
	})
}

// TestMirrorStall: the primary stalls after 1000 bytes; the watchdog stops
// that attempt and the mirror continues at the offset (the file has a
// Checksum) at once — no TRANSIENT_ERROR, no wait for a retry.
func TestMirrorStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size, stall = 64 << 10, 30 * time.Second
		p := dojobtest.NewTestTransport(t, dojobtest.WithSize(size), dojobtest.Script(dojobtest.StallAfter(1000)))
		mi := dojobtest.NewTestTransport(t, dojobtest.WithSize(size))
		m := newMirrorManager(t, dojob.Config{StallTimeout: stall,
			HTTPClient: &http.Client{Transport: hostMux{"primary.invalid": p, "mirror.invalid": mi}}})
		j, local := mirrorJob(t, m, dojob.FileSpec{RemoteURL: "http://primary.invalid/f", Mirrors: []string{"http://mirror.invalid/f"},
			Checksum: "sha256:" + p.SHA256("/f")})
		var log stateLog
		log.watch(t, j)
		start := time.Now()
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		assert.Zero(t, log.count(dojob.StateTransientError))
		mreqs := mi.RequestsFor("/f")
		require.Len(t, mreqs, 1)
		assert.Equal(t, "bytes=1000-", mreqs[0].Range)
		at := mreqs[0].Time.Sub(start)
		assert.GreaterOrEqual(t, at, stall, "not before the stall timeout")
		assert.LessOrEqual(t, at, stall+stall/8, "at most one watchdog tick later, with no retry delay")
		assert.Equal(t, int64(size-1000), mi.BodyBytes("/f"))
		require.NoError(t, j.Complete())
		assert.Equal(t, p.SHA256("/f"), fileSHA256(t, local))
	})
}

// TestMirrorHeaders: custom headers go to every source; Authorization and
// credentials only to the primary's origin — to a mirror on that origin,
// not to a mirror on another.
func TestMirrorHeaders(t *testing.T) {
	primary := dojobtest.NewServer(t, dojobtest.WithSize(4096), dojobtest.AlwaysFor("/f", dojobtest.Status(503)),
		dojobtest.AlwaysFor("/same", dojobtest.Status(503)))
	other := dojobtest.NewServer(t, dojobtest.WithSize(4096))
	m := newMirrorManager(t, dojob.Config{})
	j, local := mirrorJob(t, m, dojob.FileSpec{RemoteURL: primary.FileURL("/f"),
		Mirrors: []string{primary.FileURL("/same"), other.FileURL("/g")}})
	require.NoError(t, j.SetCustomHeaders(http.Header{"X-Trace": {"t1"}, "Cookie": {"c=1"}}))
	require.NoError(t, j.SetCredentials(dojob.Credentials{Target: dojob.AuthTargetServer, Scheme: dojob.AuthSchemeBasic,
		UserName: "bob", Password: "pw"}))
	require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
	require.NoError(t, j.Complete())
	assert.Equal(t, other.SHA256("/g"), fileSHA256(t, local))

	for _, c := range []struct {
		s         *dojobtest.Server
		path      string
		sensitive bool
	}{{primary, "/f", true}, {primary, "/same", true}, {other, "/g", false}} {
		reqs := c.s.RequestsFor(c.path)
		require.Len(t, reqs, 1, c.path)
		h := reqs[0].Header
		assert.Equal(t, "t1", h.Get("X-Trace"), c.path)
		assert.Equal(t, c.sensitive, h.Get("Authorization") != "", "Authorization to %s", c.path)
		assert.Equal(t, c.sensitive, h.Get("Cookie") != "", "Cookie to %s", c.path)
	}
}

// TestMirrorSourcePersisted: the source a file moved to is recorded; a new
// Manager resumes on it (a Range request to the mirror) without asking the
// primary first.
func TestMirrorSourcePersisted(t *testing.T) {
	const size, n = 128 << 10, 50_000
	primary := dojobtest.NewServer(t, dojobtest.WithSize(size), dojobtest.Always(dojobtest.Status(503)))
	mirror := dojobtest.NewServer(t, dojobtest.WithSize(size), dojobtest.Script(dojobtest.DropAfter(n)))
	dir := t.TempDir()
	m1, err := dojob.NewManager(dojob.Config{StateDir: dir})
	require.NoError(t, err)
	j, local := mirrorJob(t, m1, dojob.FileSpec{RemoteURL: primary.FileURL("/f"), Mirrors: []string{mirror.FileURL("/f")}})
	require.NoError(t, j.SetMinimumRetryDelay(time.Hour))
	var log stateLog
	log.watch(t, j)
	require.NoError(t, j.Resume())
	// primary 503 → mirror (n bytes, dropped: progress, a new round) →
	// primary 503 → round over: TRANSIENT_ERROR, back on the mirror.
	log.await(t, dojob.StateTransientError)
	assert.Equal(t, 1, j.Files()[0].Source)
	assert.Equal(t, int64(n), j.Files()[0].BytesTransferred)
	id := j.ID()
	require.NoError(t, m1.Close())
	require.Len(t, primary.RequestsFor("/f"), 2)

	m2 := newMirrorManager(t, dojob.Config{StateDir: dir})
	j2, err := m2.Job(id)
	require.NoError(t, err)
	fi := j2.Files()[0]
	assert.Equal(t, 1, fi.Source)
	assert.Equal(t, mirror.FileURL("/f"), fi.SourceURL)
	require.Equal(t, dojob.StateTransferred, resumeWait(t, j2))
	assert.Len(t, primary.RequestsFor("/f"), 2, "the primary is not asked again")
	mreqs := mirror.RequestsFor("/f")
	require.Len(t, mreqs, 2)
	assert.Equal(t, "bytes=50000-", mreqs[1].Range)
	assert.Equal(t, http.StatusPartialContent, mreqs[1].Status)
	require.NoError(t, j2.Complete())
	assert.Equal(t, mirror.SHA256("/f"), fileSHA256(t, local))
}

// TestMirrorSetRemoteNameBackToPrimary: SetRemoteName changes the primary,
// and a file that had moved to a mirror goes back to it, continuing at its
// offset when the new URL serves the same content.
func TestMirrorSetRemoteNameBackToPrimary(t *testing.T) {
	const size, n = 128 << 10, 50_000
	primary := dojobtest.NewServer(t, dojobtest.WithSize(size), dojobtest.Always(dojobtest.Status(503)))
	mirror := dojobtest.NewServer(t, dojobtest.WithSize(size), dojobtest.Script(dojobtest.DropAfter(n)))
	fresh := dojobtest.NewServer(t, dojobtest.WithSize(size))
	m := newMirrorManager(t, dojob.Config{})
	j, local := mirrorJob(t, m, dojob.FileSpec{RemoteURL: primary.FileURL("/f"), Mirrors: []string{mirror.FileURL("/f")}})
	require.NoError(t, j.SetMinimumRetryDelay(time.Hour))
	var log stateLog
	log.watch(t, j)
	require.NoError(t, j.Resume())
	log.await(t, dojob.StateTransientError)
	require.Equal(t, 1, j.Files()[0].Source, "on the mirror")

	require.NoError(t, j.SetRemoteName(0, fresh.FileURL("/f")))
	fi := j.Files()[0]
	assert.Equal(t, 0, fi.Source)
	assert.Equal(t, fresh.FileURL("/f"), fi.SourceURL)
	assert.Equal(t, []string{mirror.FileURL("/f")}, fi.Mirrors, "the mirrors are kept")
	require.NoError(t, j.Resume())
	st, err := j.Wait(t.Context())
	require.NoError(t, err)
	require.Equal(t, dojob.StateTransferred, st)
	freqs := fresh.RequestsFor("/f")
	require.Len(t, freqs, 1)
	assert.Equal(t, "bytes=50000-", freqs[0].Range)
	assert.Equal(t, http.StatusPartialContent, freqs[0].Status)
	assert.Len(t, mirror.RequestsFor("/f"), 1)
	require.NoError(t, j.Complete())
	assert.Equal(t, fresh.SHA256("/f"), fileSHA256(t, local))
}
