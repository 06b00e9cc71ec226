package dojob_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// Segmented downloads (SetMaxConnections): the file is right, whatever a
// segment's answer; bytes are fetched once, but for what was in flight.

const (
	segSize = 4 << 20   // the file of most segment tests
	segMin  = 256 << 10 // Config.MinSegmentSize in them
)

// segJob makes a job of one file of r's path "/f" with n connections.
func segJob(t *testing.T, r *rig, n int, spec dojob.FileSpec) *dojob.Job {
	t.Helper()
	j, err := r.m.CreateJob("segments")
	require.NoError(t, err)
	if spec.RemoteURL == "" {
		spec.RemoteURL = r.tr.FileURL("/f")
	}
	if spec.LocalPath == "" {
		spec.LocalPath = r.local("/f")
	}
	require.NoError(t, j.AddFileSet([]dojob.FileSpec{spec}))
	require.NoError(t, j.SetMaxConnections(n))
	return j
}

// segmentBytes sums the body bytes the server sent for path's requests and
// checks that every request after the first asked for one exact range with
// If-Range.
func segmentBytes(t *testing.T, reqs []dojobtest.Request) (total int64) {
	t.Helper()
	for i, r := range reqs {
		total += r.BodyBytes
		if i > 0 && r.Status == http.StatusPartialContent {
			assert.Regexp(t, `^bytes=\d+-\d+$`, r.Range, "request %d", i)
			assert.NotEmpty(t, r.IfRange, "request %d", i)
		}
	}
	return total
}

// TestSegmentsFetchOnce: a 4 MiB file over 8 connections from a server
// that caps each at 1 MiB/s: the first request asks for the whole file as
// a range, seven more split it; every byte is fetched once but for at most
// one server chunk per split, and it takes a fraction of one connection's
// time. With a Checksum, the digest (from the temporary file) matches.
func TestSegmentsFetchOnce(t *testing.T) {
	for _, checksum := range []bool{false, true} {
		t.Run(fmt.Sprintf("checksum=%v", checksum), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{MinSegmentSize: segMin}, dojobtest.WithSize(segSize), dojobtest.WithRate(1<<20))
				j := segJob(t, r, 8, checksumSpec(r, checksum))
				start := time.Now()
				require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
				took := time.Since(start)
				reqs := r.tr.RequestsFor("/f")
				require.GreaterOrEqual(t, len(reqs), 8, "the file was split")
				assert.Equal(t, "bytes=0-", reqs[0].Range)
				assert.Equal(t, http.StatusPartialContent, reqs[0].Status)
				got := segmentBytes(t, reqs)
				assert.GreaterOrEqual(t, got, int64(segSize))
				assert.LessOrEqual(t, got, int64(segSize)+int64(len(reqs))*(64<<10), "a chunk in flight per split at most")
				assert.Less(t, took, 2*time.Second, "one connection takes 4 s")
				fi := j.Files()[0]
				assert.Equal(t, int64(segSize), fi.BytesTransferred)
				assert.Zero(t, fi.Restarts)
				assert.Equal(t, checksum, fi.Verified)
				if checksum {
					// The connection at the front of the prefix feeds the
					// digest as it writes; only the other bytes are read
					// back, once.
					back := dojob.ReadBack(r.m)
					t.Logf("read back %d of %d bytes", back, segSize)
					assert.Positive(t, back)
					assert.Less(t, back, int64(segSize))
				}
				require.NoError(t, j.Complete())
				r.requireFile("/f")
			})
		})
	}
}

// TestSegmentsChecksumInOrder: a file with a Checksum is fetched in pieces
// of 4 minimum segments taken in the file's order, each asked for exactly
// (one range a request), so its digest can follow the download instead of
// reading most of the file back at the end; once no piece is left, free
// connections split the largest segment as without a Checksum. Without a
// Checksum the second request already asks for the second half of the
// file.
func TestSegmentsChecksumInOrder(t *testing.T) {
	const piece = 4 * segMin
	const size = 8 * piece
	for _, checksum := range []bool{true, false} {
		t.Run(fmt.Sprintf("checksum=%v", checksum), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{MinSegmentSize: segMin}, dojobtest.WithSize(size), dojobtest.WithRate(1<<20))
				j := segJob(t, r, 4, checksumSpec(r, checksum))
				require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
				reqs := r.tr.RequestsFor("/f")
				require.NotEmpty(t, reqs)
				assert.Equal(t, "bytes=0-", reqs[0].Range)
				var pieces []string // the requests for whole pieces, in order
				for _, q := range reqs[1:] {
					var a, b int64
					_, err := fmt.Sscanf(q.Range, "bytes=%d-%d", &a, &b)
					require.NoError(t, err, q.Range)
					if a%piece == 0 && b == a+piece-1 {
						pieces = append(pieces, q.Range)
					}
				}
				half := fmt.Sprintf("bytes=%d-%d", size/2, size-1)
				if checksum {
					// The connections take the pieces in order; their
					// requests reach the server in any order.
					var want []string
					for k := int64(1); k < size/piece; k++ {
						want = append(want, fmt.Sprintf("bytes=%d-%d", k*piece, (k+1)*piece-1))
					}
					slices.Sort(pieces)
					assert.Equal(t, want, pieces, "every piece after the first, once each")
					assert.NotContains(t, rangesOf(reqs), half)
				} else {
					assert.Contains(t, rangesOf(reqs), half, "the largest segment halved")
				}
				fi := j.Files()[0]
				assert.Equal(t, checksum, fi.Verified)
				assert.Zero(t, fi.Restarts)
				require.NoError(t, j.Complete())
				r.requireFile("/f")
			})
		})
	}
}

// TestSegmentsChecksumAlone: a file with a Checksum whose extra
// connections the host's budget refuses is fetched by its one connection
// in one request, not in pieces.
func TestSegmentsChecksumAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{MinSegmentSize: segMin, MaxConnectionsPerHost: 1},
			dojobtest.WithSize(4*segSize), dojobtest.WithRate(4<<20))
		j := segJob(t, r, 4, dojob.FileSpec{Checksum: "sha256:" + r.tr.SHA256("/f")})
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		assert.Equal(t, []string{"bytes=0-"}, rangesOf(r.tr.RequestsFor("/f")))
		assert.True(t, j.Files()[0].Verified)
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// checksumSpec is the FileSpec of r's "/f" for segJob: with its sha256
// Checksum if checksum is set, else plain.
func checksumSpec(r *rig, checksum bool) dojob.FileSpec {
	if !checksum {
		return dojob.FileSpec{}
	}
	return dojob.FileSpec{Checksum: "sha256:" + r.tr.SHA256("/f")}
}

// rangesOf returns the Range header of each request.
func rangesOf(reqs []dojobtest.Request) []string {
	var out []string
	for _, q := range reqs {
		out = append(out, q.Range)
	}
	return out
}

// TestSegmentsNotSplit: one connection (the default) asks no range; a
// server that answers the first range request with a 200 is not split; a
// file under two minimum segments is not split.
func TestSegmentsNotSplit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		conns int
		size  int64
		opts  []dojobtest.Option
		rng   string
	}{
		{name: "one-connection", conns: 1, size: segSize},
		{name: "ignores-range", conns: 8, size: segSize, opts: []dojobtest.Option{dojobtest.Always(dojobtest.IgnoreRange())}, rng: "bytes=0-"},
		{name: "small", conns: 8, size: 2*segMin - 1, rng: "bytes=0-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{MinSegmentSize: segMin}, append(tc.opts, dojobtest.WithSize(tc.size))...)
				j := segJob(t, r, tc.conns, dojob.FileSpec{})
				require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
				reqs := r.tr.RequestsFor("/f")
				require.Len(t, reqs, 1)
				assert.Equal(t, tc.rng, reqs[0].Range)
				require.NoError(t, j.Complete())
				r.requireFile("/f")
			})
		})
	}
}

// TestSegmentAnswers: a segment request answered with a 200, a changed
// ETag, a body that ends early or a stall. A 200 stops the splitting and
// the file ends over the connections it has; a changed ETag starts the file
// over (then fetched from the new content, whole and right); a short body
// or a stall gives the segment back to the others. Never a mix: the file is
// the server's content of the end, byte for byte. Each case runs without a
// Checksum (segments halved) and with one (pieces taken in order); with a
// Checksum, the changed content is refused (BG_E_VALIDATION_FAILED).
func TestSegmentAnswers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    dojobtest.Fault
		at       int // the request it answers: 0 is the first connection's, 2 a segment's
		restarts int
	}{
		{name: "200", fault: dojobtest.IgnoreRange(), at: 2},
		{name: "changed-etag", fault: dojobtest.ChangeContent(), at: 2, restarts: 1},
		{name: "short-body", fault: dojobtest.DropAfter(100 << 10), at: 2},
		{name: "stall", fault: dojobtest.StallAfter(100 << 10), at: 2},
		{name: "first-stalls", fault: dojobtest.StallAfter(100 << 10), at: 0},
	} {
		for _, checksum := range []bool{false, true} { // halves, or pieces in order
			t.Run(fmt.Sprintf("%s/checksum=%v", tc.name, checksum), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					script := []dojobtest.Fault{dojobtest.OK(), dojobtest.OK(), dojobtest.OK()}
					script[tc.at] = tc.fault
					r := newRig(t, dojob.Config{MinSegmentSize: segMin, StallTimeout: 10 * time.Second},
						dojobtest.WithSize(segSize), dojobtest.WithRate(1<<20),
						dojobtest.Script(script...))
					j := segJob(t, r, 4, checksumSpec(r, checksum))
					if checksum && tc.restarts > 0 {
						// The content the Checksum describes is gone: the
						// new one is fetched whole and refused.
						require.Equal(t, dojob.StateError, resumeWait(t, j))
						jerr, err := j.Error()
						require.NoError(t, err)
						assert.Equal(t, dojob.ErrValidationFailed, jerr.Code)
						assert.Equal(t, 1, j.Files()[0].Restarts)
						return
					}
					require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
					assert.Zero(t, j.ErrorCount(), "no TRANSIENT_ERROR: the other connections carried on")
					fi := j.Files()[0]
					assert.Equal(t, tc.restarts, fi.Restarts)
					assert.Equal(t, checksum, fi.Verified)
					if tc.restarts > 0 {
						assert.Equal(t, "content changed (ETag)", fi.RestartReason)
					}
					reqs := r.tr.RequestsFor("/f")
					if tc.at > 0 {
						assert.Regexp(t, `^bytes=\d+-\d+$`, reqs[tc.at].Range, "the faulty request was a segment's")
					}
					require.NoError(t, j.Complete())
					r.requireFile("/f")
				})
			})
		}
	}
}

// TestSegmentWrongContentRange: a server whose segment answers carry a
// Content-Range other than the one asked (with the right ETag): not a byte
// of them is written; the file is finished right.
func TestSegmentWrongContentRange(t *testing.T) {
	data := dojobtest.Content("wrong-range", 2<<20)
	var mu sync.Mutex
	var ranges []string
	segAsked := make(chan struct{})
	var once sync.Once
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		ranges = append(ranges, req.Header.Get("Range"))
		mu.Unlock()
		w.Header().Set("ETag", `"v1"`)
		rg, _ := strings.CutPrefix(req.Header.Get("Range"), "bytes=")
		a, b, _ := strings.Cut(rg, "-")
		from, _ := strconv.Atoi(a)
		if b == "" { // the first request: honest; the rest of it once a segment was asked for
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, len(data)-1, len(data)))
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write(data[from : from+64<<10])
			w.(http.Flusher).Flush()
			select {
			case <-segAsked:
			case <-req.Context().Done():
				return
			}
			_, _ = w.Write(data[from+64<<10:])
			return
		}
		once.Do(func() { close(segAsked) })
		to, _ := strconv.Atoi(b)
		// A lie: the range one byte further on, with its bytes.
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from+1, to+1, len(data)))
		w.WriteHeader(http.StatusPartialContent)
		_, _ = w.Write(data[from+1 : min(to+2, len(data))])
	}))
	defer func() {
		// Closed from this side first: a client that hung up on a body
		// does not always make the handler's write fail (Wine).
		s.CloseClientConnections()
		s.Close()
	}()
	m := newMirrorManager(t, dojob.Config{MinSegmentSize: 128 << 10})
	j, local := mirrorJob(t, m, dojob.FileSpec{RemoteURL: s.URL + "/f"})
	require.NoError(t, j.SetMaxConnections(4))
	require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
	mu.Lock()
	assert.Greater(t, len(ranges), 1, "segments were asked for: %v", ranges)
	mu.Unlock()
	// The segment's lie stopped the splitting; the gap it left was asked
	// for on its own and lied about again: the file started over with a
	// plain GET, which this server answers honestly.
	fi := j.Files()[0]
	assert.Equal(t, 1, fi.Restarts)
	assert.Contains(t, []string{"server sent another range", "server sent no usable content-range"}, fi.RestartReason)
	require.NoError(t, j.Complete())
	assert.Equal(t, sha256Hex(data), fileSHA256(t, local))
}

// TestSegmentsSurviveRestart: a Manager closed in the middle of a
// segmented download records every segment's durable bytes; the next one
// resumes each gap with an exact Range and fetches no byte twice but for
// what was in flight. With a Checksum (pieces, and the digest's state saved
// with the spans it covers) the file is also verified.
func TestSegmentsSurviveRestart(t *testing.T) {
	for _, checksum := range []bool{false, true} { // halves, or pieces in order
		t.Run(fmt.Sprintf("checksum=%v", checksum), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr, cfg, j, local := segmentedThenClosed(t, checksum)
				before := j.Progress().BytesTransferred
				first := len(tr.RequestsFor("/f"))

				m, err := dojob.NewManager(cfg)
				require.NoError(t, err)
				defer func() { require.NoError(t, m.Close()) }()
				j, err = m.Job(j.ID())
				require.NoError(t, err)
				kept := j.Files()[0].BytesTransferred
				assert.Equal(t, before, kept, "every written byte was recorded at Close")
				st, err := j.Wait(t.Context())
				require.NoError(t, err)
				require.Equal(t, dojob.StateTransferred, st)
				later := tr.RequestsFor("/f")[first:]
				require.NotEmpty(t, later)
				var fetched int64
				for _, r := range later {
					assert.Regexp(t, `^bytes=\d+-\d+$`, r.Range, "a gap, asked exactly")
					fetched += r.BodyBytes
				}
				assert.LessOrEqual(t, fetched, int64(segSize)-kept+int64(len(later))*(64<<10), "no byte kept was fetched again")
				assert.Equal(t, checksum, j.Files()[0].Verified)
				require.NoError(t, j.Complete())
				assert.Equal(t, tr.SHA256("/f"), fileSHA256(t, local))
			})
		})
	}
}

// segmentedThenClosed starts a persisted job of one 4 MiB file over 4
// connections of 256 KiB/s each (inside a synctest bubble) and closes its
// Manager 1.5 s (fake) into the download, with part of it done.
func segmentedThenClosed(t *testing.T, checksum bool) (*dojobtest.Transport, dojob.Config, *dojob.Job, string) {
	t.Helper()
	tr := dojobtest.NewTransport(dojobtest.WithSize(segSize), dojobtest.WithRate(256<<10))
	t.Cleanup(tr.Close)
	cfg := dojob.Config{StateDir: t.TempDir(), HTTPClient: tr.Client(), MinSegmentSize: segMin, CheckpointInterval: 100 * time.Millisecond}
	m, err := dojob.NewManager(cfg)
	require.NoError(t, err)
	j, err := m.CreateJob("segmented")
	require.NoError(t, err)
	local := filepath.Join(t.TempDir(), "f")
	spec := dojob.FileSpec{RemoteURL: tr.FileURL("/f"), LocalPath: local}
	if checksum {
		spec.Checksum = "sha256:" + tr.SHA256("/f")
	}
	require.NoError(t, j.AddFileSet([]dojob.FileSpec{spec}))
	require.NoError(t, j.SetMaxConnections(4))
	require.NoError(t, j.Resume())
	advance(1500 * time.Millisecond) // fake time: 4 × 256 KiB/s for 1.5 s
	before := j.Progress().BytesTransferred
	require.Greater(t, before, int64(segMin))
	require.Less(t, before, int64(segSize))
	require.NoError(t, m.Close())
	return tr, cfg, j, local
}

// TestSegmentsStopCleanly: Cancel, Suspend and Close with 8 connections in
// flight end every goroutine; Cancel leaves no temporary file, Suspend
// keeps the bytes and Resume finishes the file right.
func TestSegmentsStopCleanly(t *testing.T) {
	for _, op := range []string{"cancel", "suspend", "close"} {
		t.Run(op, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			s := dojobtest.NewServer(t, dojobtest.WithSize(8<<20), dojobtest.WithRate(2<<20))
			m, err := dojob.NewManager(dojob.Config{MinSegmentSize: segMin})
			require.NoError(t, err)
			closed := false
			defer func() {
				if !closed {
					require.NoError(t, m.Close())
				}
				s.Close()
				goleak.VerifyNone(t, ignore)
			}()
			j, local := mirrorJob(t, m, dojob.FileSpec{RemoteURL: s.FileURL("/f")})
			require.NoError(t, j.SetMaxConnections(8))
			require.NoError(t, j.Resume())
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err = s.AwaitRequests(ctx, func(reqs []dojobtest.Request) bool {
				n := 0
				for _, r := range reqs {
					if r.End.IsZero() && r.BodyBytes > 0 {
						n++
					}
				}
				return n >= 8
			})
			require.NoError(t, err, "8 connections in flight")
			switch op {
			case "cancel":
				require.NoError(t, j.Cancel())
				assert.Empty(t, tempFiles(t, filepath.Dir(local)))
			case "suspend":
				require.NoError(t, j.Suspend())
				have := j.Progress().BytesTransferred
				assert.Positive(t, have)
				require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
				require.NoError(t, j.Complete())
				assert.Equal(t, s.SHA256("/f"), fileSHA256(t, local))
			case "close":
				require.NoError(t, m.Close())
				closed = true
			}
		})
	}
}

// TestSegmentsHostBudget: 4 jobs of 8 connections each against one host
// never have more than Config.MaxConnectionsPerHost requests open there at
// once — counted where dojob opens them (a request's RoundTrip to its
// body's Close; the server sees a closed body a moment later) — and every
// file is right.
func TestSegmentsHostBudget(t *testing.T) {
	const budget = 8
	data := dojobtest.Content("budget", 4<<20)
	s := dojobtest.NewServer(t, dojobtest.WithFile("/f", data), dojobtest.WithRate(4<<20))
	ct := &openCounter{rt: http.DefaultTransport.(*http.Transport).Clone()}
	defer ct.rt.CloseIdleConnections()
	m := newMirrorManager(t, dojob.Config{HTTPClient: &http.Client{Transport: ct}, MinSegmentSize: segMin,
		MaxConnectionsPerHost: budget, MaxForegroundJobs: 4})
	var jobs []*dojob.Job
	var locals []string
	for i := range 4 {
		j, err := m.CreateJob(fmt.Sprint("budget ", i))
		require.NoError(t, err)
		require.NoError(t, j.SetPriority(dojob.PriorityForeground))
		local := filepath.Join(t.TempDir(), "f")
		require.NoError(t, j.AddFile(s.FileURL("/f"), local))
		require.NoError(t, j.SetMaxConnections(8))
		jobs, locals = append(jobs, j), append(locals, local)
	}
	for _, j := range jobs {
		require.NoError(t, j.Resume())
	}
	for i, j := range jobs {
		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
		require.NoError(t, j.Complete())
		assert.Equal(t, sha256Hex(data), fileSHA256(t, locals[i]))
	}
	assert.LessOrEqual(t, ct.peak.Load(), int32(budget), "requests open at once")
	assert.Greater(t, ct.peak.Load(), int32(4), "the jobs did split their files")
}

// openCounter counts the requests open at once through it: from RoundTrip
// to the Close of the response's body.
type openCounter struct {
	rt         *http.Transport
	open, peak atomic.Int32
}

func (c *openCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.open.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	resp, err := c.rt.RoundTrip(r)
	if err != nil {
		c.open.Add(-1)
		return nil, err
	}
	resp.Body = &closeOnce{ReadCloser: resp.Body, done: func() { c.open.Add(-1) }}
	return resp, nil
}

// closeOnce calls done on its first Close.
type closeOnce struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *closeOnce) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

// TestSegmentsTempFileShorter: a temporary file cut behind dojob's back
// while the job was stopped keeps only the spans it still holds, and the
// file is finished right.
func TestSegmentsTempFileShorter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, cfg, j, local := segmentedThenClosed(t, false)
		temp := j.Files()[0].TemporaryName
		require.NoError(t, os.Truncate(temp, segSize/2))

		m, err := dojob.NewManager(cfg)
		require.NoError(t, err)
		defer func() { require.NoError(t, m.Close()) }()
		j, err = m.Job(j.ID())
		require.NoError(t, err)
		assert.LessOrEqual(t, j.Files()[0].BytesTransferred, int64(segSize/2))
		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
		require.NoError(t, j.Complete())
		assert.Equal(t, tr.SHA256("/f"), fileSHA256(t, local))
	})
}

// TestHostBudgetWaitIsNoStall: 4 files at once of one job to one host whose
// budget is 2: two wait for room (CONNECTING) while the others take 8 s
// each, longer than the stall timeout, and are not taken for stalled; never
// more than 2 requests are open; every file is right.
func TestHostBudgetWaitIsNoStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{MaxConnectionsPerHost: 2, StallTimeout: 5 * time.Second},
			dojobtest.WithSize(512<<10), dojobtest.WithRate(64<<10))
		j := r.job("budget", "/a", "/b", "/c", "/d")
		require.NoError(t, j.SetMaxParallelFiles(4))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		assert.Zero(t, j.ErrorCount(), "no stall: a file waiting for room is not stalled")
		reqs := r.tr.Requests()
		require.Len(t, reqs, 4)
		peak := 0
		for _, a := range reqs {
			open := 0
			for _, b := range reqs {
				if !b.Time.After(a.Time) && b.End.After(a.Time) {
					open++
				}
			}
			peak = max(peak, open)
		}
		assert.Equal(t, 2, peak, "requests open at once")
		require.NoError(t, j.Complete())
		for _, p := range []string{"/a", "/b", "/c", "/d"} {
			r.requireFile(p)
		}
	})
}

// TestSegmentsEndlessChangeFails: a server whose every answer carries a new
// ETag (and ignores If-Range) proves a change at each segment; the file
// starts over once, and the second proven change in the same attempt is
// BG_E_BLOCK_SIZE_MISMATCH-style fatal (ErrBlockSizeMismatch), not a loop of
// downloads without end.
func TestSegmentsEndlessChangeFails(t *testing.T) {
	data := dojobtest.Content("ever changing", 2<<20)
	var n atomic.Int32
	// An answer from byte 0 holds back most of its body until the next
	// request comes: on a fast loopback it could otherwise bring the whole
	// file before a segment is asked for, and nothing would change.
	var mu sync.Mutex
	arrived := map[int32]chan struct{}{} // closed when request k arrives
	arrival := func(k int32) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if arrived[k] == nil {
			arrived[k] = make(chan struct{})
		}
		return arrived[k]
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		k := n.Add(1)
		close(arrival(k))
		w.Header().Set("ETag", fmt.Sprintf(`"v%d"`, k))
		off, end := 0, len(data)-1
		if rg, ok := strings.CutPrefix(req.Header.Get("Range"), "bytes="); ok {
			a, b, _ := strings.Cut(rg, "-")
			off, _ = strconv.Atoi(a)
			if b != "" {
				end, _ = strconv.Atoi(b)
			}
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, end, len(data)))
			w.WriteHeader(http.StatusPartialContent)
		}
		if off == 0 && end+1 > 256<<10 {
			_, _ = w.Write(data[:256<<10])
			w.(http.Flusher).Flush()
			select {
			case <-arrival(k + 1):
			case <-req.Context().Done():
				return
			}
			off += 256 << 10
		}
		_, _ = w.Write(data[off : end+1])
	}))
	defer func() {
		s.CloseClientConnections()
		s.Close()
	}()
	m := newMirrorManager(t, dojob.Config{MinSegmentSize: 128 << 10})
	j, _ := mirrorJob(t, m, dojob.FileSpec{RemoteURL: s.URL + "/f"})
	require.NoError(t, j.SetMaxConnections(4))
	require.Equal(t, dojob.StateError, resumeWait(t, j))
	assert.Equal(t, dojob.ErrBlockSizeMismatch, mustJobError(t, j).Code)
	assert.Equal(t, 1, j.Files()[0].Restarts)
	// Two rounds of a few requests each (a connection may ask for a
	// segment before the first change stops the others), not a loop.
	assert.Less(t, n.Load(), int32(20))
}
