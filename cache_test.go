package dojob_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cacheHost is the cache host of the in-memory tests: a name of the
// .invalid domain, answered by cacheNet.
const cacheHost = "cache.invalid:8080"

// cacheNet is an in-memory network of a cache host in front of origins:
// requests to cacheHost get what mode says (a refused connection, a status,
// or the origin's answer, proxied); every other request goes to the origin
// Transport, whatever its host. Requests the cache proxies carry
// "Via: cache" at the origin.
type cacheNet struct {
	origin *dojobtest.Transport

	mu    sync.Mutex
	mode  string          // "proxy", "refuse", "corrupt" or a status code such as "403"
	asked []cacheRequest  // the requests that reached the cache host
	at    []time.Duration // when, from start
	start time.Time
}

type cacheRequest struct {
	url    string // path and query
	header http.Header
}

func newCacheNet(t *testing.T, mode string, opts ...dojobtest.Option) *cacheNet {
	n := &cacheNet{origin: dojobtest.NewTransport(opts...), mode: mode, start: time.Now()}
	t.Cleanup(n.origin.Close)
	return n
}

func (n *cacheNet) setMode(mode string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mode = mode
}

func (n *cacheNet) cacheRequests() []cacheRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]cacheRequest(nil), n.asked...)
}

func (n *cacheNet) cacheTimes() []time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]time.Duration(nil), n.at...)
}

// direct are the requests the origin got straight from dojob, not through
// the cache.
func (n *cacheNet) direct() []dojobtest.Request {
	var out []dojobtest.Request
	for _, r := range n.origin.Requests() {
		if r.Header.Get("Via") == "" {
			out = append(out, r)
		}
	}
	return out
}

func (n *cacheNet) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != cacheHost {
		return n.origin.RoundTrip(req)
	}
	n.mu.Lock()
	mode := n.mode
	n.asked = append(n.asked, cacheRequest{url: req.URL.RequestURI(), header: req.Header.Clone()})
	n.at = append(n.at, time.Since(n.start))
	n.mu.Unlock()
	if req.Body != nil {
		req.Body.Close()
	}
	switch mode {
	case "refuse":
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case "proxy", "corrupt":
		q := req.URL.Query()
		origin := q.Get("cacheHostOrigin")
		q.Del("cacheHostOrigin")
		out := req.Clone(req.Context())
		out.URL = &url.URL{Scheme: "http", Host: origin, Path: req.URL.Path, RawQuery: q.Encode()}
		out.Host = origin
		out.Header.Set("Via", "cache")
		resp, err := n.origin.RoundTrip(out)
		if err != nil || mode == "proxy" {
			return resp, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		for i := range body {
			body[i] ^= 0xff // same length, other bytes
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	code, _ := strconv.Atoi(mode)
	return &http.Response{StatusCode: code, Status: strconv.Itoa(code) + " " + http.StatusText(code),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{"Content-Length": {"0"}},
		Body: http.NoBody, ContentLength: 0, Request: req}, nil
}

// cacheManager is a Manager whose transfers go through n, with cacheHost
// as its cache host.
func cacheManager(t *testing.T, n *cacheNet, cfg dojob.Config) *dojob.Manager {
	t.Helper()
	cfg.HTTPClient = &http.Client{Transport: n}
	cfg.CacheHosts = []string{cacheHost}
	return newMirrorManager(t, cfg)
}

// cacheJob downloads url in m to a fresh directory and returns the job, its
// final state and the file's info.
func cacheJob(t *testing.T, m *dojob.Manager, url string) (*dojob.Job, dojob.State, dojob.FileInfo) {
	t.Helper()
	j, err := m.CreateJob("cache")
	require.NoError(t, err)
	require.NoError(t, j.AddFile(url, filepath.Join(t.TempDir(), "f")))
	st := resumeWait(t, j)
	return j, st, j.Files()[0]
}

// TestCacheHostServesFile: a file of an http origin is asked of the cache
// host — the origin's URL with the cache's host and cacheHostOrigin — and
// FileInfo.CacheHost names the cache; the origin is not asked directly.
// The cache gets the job's custom headers but neither its credentials nor
// a Cookie; the origin, asked directly after the cache refused, gets both.
func TestCacheHostServesFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newCacheNet(t, "proxy")
		m := cacheManager(t, n, dojob.Config{})
		j, err := m.CreateJob("cache")
		require.NoError(t, err)
		local := filepath.Join(t.TempDir(), "f")
		require.NoError(t, j.AddFile(n.origin.FileURL("/f?v=1"), local))
		require.NoError(t, j.SetCustomHeaders(http.Header{"X-Update": {"7"}, "Cookie": {"c=1"}}))
		require.NoError(t, j.SetCredentials(dojob.Credentials{Target: dojob.AuthTargetServer, Scheme: dojob.AuthSchemeBasic, UserName: "u", Password: "p"}))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		require.NoError(t, j.Complete())
		assert.Equal(t, n.origin.SHA256("/f"), fileSHA256(t, local))
		fi := j.Files()[0]
		assert.Equal(t, cacheHost, fi.CacheHost)
		assert.Equal(t, 0, fi.Source)
		reqs := n.cacheRequests()
		require.Len(t, reqs, 1)
		assert.Equal(t, "/f?v=1&cacheHostOrigin="+dojobtest.Host, reqs[0].url)
		assert.Equal(t, "7", reqs[0].header.Get("X-Update"))
		assert.Empty(t, reqs[0].header.Get("Authorization"))
		assert.Empty(t, reqs[0].header.Get("Cookie"))
		assert.Empty(t, n.direct(), "the origin was asked directly")

		// The cache refuses: the origin, asked directly, gets the
		// credentials and the Cookie.
		n.setMode("refuse")
		j2, err := m.CreateJob("cache")
		require.NoError(t, err)
		require.NoError(t, j2.AddFile(n.origin.FileURL("/g"), filepath.Join(t.TempDir(), "g")))
		require.NoError(t, j2.SetCustomHeaders(http.Header{"X-Update": {"7"}, "Cookie": {"c=1"}}))
		require.NoError(t, j2.SetCredentials(dojob.Credentials{Target: dojob.AuthTargetServer, Scheme: dojob.AuthSchemeBasic, UserName: "u", Password: "p"}))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j2))
		d := n.direct()
		require.Len(t, d, 1)
		assert.Equal(t, "Basic dTpw", d[0].Header.Get("Authorization"))
		assert.Equal(t, "c=1", d[0].Header.Get("Cookie"))
		assert.Empty(t, j2.Files()[0].CacheHost)
	})
}

// TestCacheHostRefusedBansForAll: a cache host that refuses the connection
// is left for the origin at once (no TRANSIENT_ERROR) and is not asked for
// any origin for exactly 15 minutes.
func TestCacheHostRefusedBansForAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newCacheNet(t, "refuse")
		m := cacheManager(t, n, dojob.Config{})
		var states stateLog
		j, err := m.CreateJob("cache")
		require.NoError(t, err)
		states.watch(t, j)
		require.NoError(t, j.AddFile(n.origin.FileURL("/a"), filepath.Join(t.TempDir(), "a")))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		synctest.Wait()
		assert.Zero(t, states.count(dojob.StateTransientError))
		assert.Empty(t, j.Files()[0].CacheHost)
		require.Len(t, n.cacheRequests(), 1)
		require.Len(t, n.direct(), 1)

		// Another origin, just before the ban ends: not asked.
		advance(dojob.CacheHostBan - time.Nanosecond)
		_, st, _ := cacheJob(t, m, "http://other.invalid/b")
		require.Equal(t, dojob.StateTransferred, st)
		assert.Len(t, n.cacheRequests(), 1, "a banned cache host was asked")

		// At 15 minutes exactly the ban is over.
		advance(time.Nanosecond)
		n.setMode("proxy")
		_, st, fi := cacheJob(t, m, "http://other.invalid/c")
		require.Equal(t, dojob.StateTransferred, st)
		assert.Len(t, n.cacheRequests(), 2)
		assert.Equal(t, cacheHost, fi.CacheHost)
	})
}

// TestCacheHost4xxBansForOrigin: a 4xx from the cache host bans it for that
// origin only, for exactly 15 minutes; the file falls back to its origin at
// once.
func TestCacheHost4xxBansForOrigin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newCacheNet(t, "403")
		m := cacheManager(t, n, dojob.Config{})
		j, st, fi := cacheJob(t, m, "http://a.invalid/x")
		require.Equal(t, dojob.StateTransferred, st)
		assert.Empty(t, fi.CacheHost)
		assert.Zero(t, j.ErrorCount())
		require.Len(t, n.cacheRequests(), 1)

		// The same origin is not asked; another one is.
		_, st, _ = cacheJob(t, m, "http://a.invalid/y")
		require.Equal(t, dojob.StateTransferred, st)
		assert.Len(t, n.cacheRequests(), 1)
		n.setMode("proxy")
		_, st, fi = cacheJob(t, m, "http://b.invalid/y")
		require.Equal(t, dojob.StateTransferred, st)
		assert.Equal(t, cacheHost, fi.CacheHost)
		require.Len(t, n.cacheRequests(), 2)

		advance(dojob.CacheHostBan - time.Nanosecond)
		_, _, fi = cacheJob(t, m, "http://a.invalid/z")
		assert.Empty(t, fi.CacheHost)
		assert.Len(t, n.cacheRequests(), 2)
		advance(time.Nanosecond)
		_, _, fi = cacheJob(t, m, "http://a.invalid/z")
		assert.Equal(t, cacheHost, fi.CacheHost)
		assert.Len(t, n.cacheRequests(), 3)
	})
}

// TestCacheHost5xxFallsBackWithoutBan: a 503 from the cache host sends the
// file to its origin at once, and bans nothing: the next file asks the
// cache again.
func TestCacheHost5xxFallsBackWithoutBan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newCacheNet(t, "503")
		m := cacheManager(t, n, dojob.Config{})
		j, st, fi := cacheJob(t, m, n.origin.FileURL("/a"))
		require.Equal(t, dojob.StateTransferred, st)
		assert.Zero(t, j.ErrorCount())
		assert.Empty(t, fi.CacheHost)
		_, st, _ = cacheJob(t, m, n.origin.FileURL("/b"))
		require.Equal(t, dojob.StateTransferred, st)
		assert.Len(t, n.cacheRequests(), 2)
		assert.Len(t, n.direct(), 2)
	})
}

// TestCacheHostFallbackDelay: with CacheHostFallback 10 min a cache host
// that answers 503 is retried alone at the usual retry delays (2 s,
// doubling, at most 60 s) until 10 minutes after it was first asked; the
// first attempt from then on goes to the origin.
func TestCacheHostFallbackDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newCacheNet(t, "503")
		m := cacheManager(t, n, dojob.Config{CacheHostFallback: 10 * time.Minute})
		start := time.Now()
		j, st, fi := cacheJob(t, m, n.origin.FileURL("/a"))
		require.Equal(t, dojob.StateTransferred, st)
		assert.Empty(t, fi.CacheHost)
		var want []time.Duration
		for _, at := range attemptTimes(2*time.Second, time.Hour) {
			if at < 10*time.Minute {
				want = append(want, at)
			}
		}
		assert.Equal(t, want, n.cacheTimes())
		d := n.direct()
		require.Len(t, d, 1)
		assert.Equal(t, 602*time.Second, d[0].Time.Sub(start), "the origin is asked at the first retry after 10 min")
		assert.Equal(t, uint32(len(want)), uint32(j.ErrorCount()))
	})
}

// TestCacheHostNoFallback: with NoCacheFallback the origin is never asked:
// a cache answering 503 keeps the job retrying it until the no-progress
// timeout; a 403 is fatal at once and bans nothing.
func TestCacheHostNoFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newCacheNet(t, "503")
		m := cacheManager(t, n, dojob.Config{CacheHostFallback: dojob.NoCacheFallback})
		j, err := m.CreateJob("cache")
		require.NoError(t, err)
		require.NoError(t, j.AddFile(n.origin.FileURL("/a"), filepath.Join(t.TempDir(), "a")))
		require.NoError(t, j.SetNoProgressTimeout(5*time.Minute))
		require.Equal(t, dojob.StateError, resumeWait(t, j))
		e := mustJobError(t, j)
		assert.ErrorIs(t, e, dojob.ErrNoProgress)
		assert.ErrorIs(t, e, dojob.HTTPStatus(503))
		assert.Empty(t, n.direct())

		n.setMode("403")
		for range 2 {
			j, st, _ := cacheJob(t, m, n.origin.FileURL("/b"))
			require.Equal(t, dojob.StateError, st)
			assert.Equal(t, dojob.HTTPStatus(403), mustJobError(t, j).Code)
		}
		assert.Empty(t, n.direct())
		assert.Len(t, n.cacheRequests(), len(attemptTimes(2*time.Second, 5*time.Minute))+2, "a 403 banned the cache")
	})
}

// TestCacheHostChecksumRefetch: bytes from the cache host that fail the
// file's Checksum are discarded and the file is fetched again from its
// origin, without an error, as bytes of a mirror are.
func TestCacheHostChecksumRefetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newCacheNet(t, "corrupt")
		m := cacheManager(t, n, dojob.Config{})
		j, err := m.CreateJob("cache")
		require.NoError(t, err)
		local := filepath.Join(t.TempDir(), "a")
		require.NoError(t, j.AddFileSet([]dojob.FileSpec{{RemoteURL: n.origin.FileURL("/a"), LocalPath: local,
			Checksum: "sha256:" + n.origin.SHA256("/a")}}))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		require.NoError(t, j.Complete())
		assert.Equal(t, n.origin.SHA256("/a"), fileSHA256(t, local))
		fi := j.Files()[0]
		assert.Empty(t, fi.CacheHost)
		assert.Equal(t, 1, fi.Restarts)
		assert.Zero(t, j.ErrorCount())
		assert.Len(t, n.cacheRequests(), 1)
		assert.Len(t, n.direct(), 1)
	})
}

// TestCacheHostResumeAtOrigin: the cache's connection drops mid-body; the
// file continues at its offset from the origin, whose 206 carries the same
// ETag (the one resume rule), and ends with the right bytes.
func TestCacheHostResumeAtOrigin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newCacheNet(t, "proxy", dojobtest.Script(dojobtest.DropAfter(300<<10)))
		m := cacheManager(t, n, dojob.Config{})
		j, err := m.CreateJob("cache")
		require.NoError(t, err)
		local := filepath.Join(t.TempDir(), "a")
		require.NoError(t, j.AddFile(n.origin.FileURL("/a"), local))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		require.NoError(t, j.Complete())
		assert.Equal(t, n.origin.SHA256("/a"), fileSHA256(t, local))
		d := n.direct()
		require.Len(t, d, 1)
		assert.Equal(t, "bytes="+strconv.Itoa(300<<10)+"-", d[0].Range)
		assert.NotEmpty(t, d[0].IfRange)
		fi := j.Files()[0]
		assert.Equal(t, cacheHost, fi.CacheHost)
		assert.Zero(t, fi.Restarts)
	})
}

// TestCacheHostHTTPSOriginNotCached: a file of an https URL never goes
// through the cache host.
func TestCacheHostHTTPSOriginNotCached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newCacheNet(t, "proxy")
		m := cacheManager(t, n, dojob.Config{})
		_, st, fi := cacheJob(t, m, "https://"+dojobtest.Host+"/a")
		require.Equal(t, dojob.StateTransferred, st)
		assert.Empty(t, fi.CacheHost)
		assert.Empty(t, n.cacheRequests())
	})
}

// TestCacheHostsConfig: NewManager refuses cache hosts that are not a host
// or host:port, and a negative fallback other than NoCacheFallback.
func TestCacheHostsConfig(t *testing.T) {
	for _, bad := range []string{"", "http://c", "c/x", "c x", "c:0", "c:65536", "c:http", "c:", "[::1", "a..b", "-a", "c:8080:1", "user@c"} {
		_, err := dojob.NewManager(dojob.Config{CacheHosts: []string{bad}})
		assert.ErrorIs(t, err, dojob.ErrInvalidArg, "%q", bad)
	}
	_, err := dojob.NewManager(dojob.Config{CacheHostFallback: -2})
	assert.ErrorIs(t, err, dojob.ErrInvalidArg)
	for _, good := range []string{"c", "C.example:8080", "10.0.0.1", "[::1]:81", "::1", "mcc_1.local"} {
		m, err := dojob.NewManager(dojob.Config{CacheHosts: []string{good}, CacheHostFallback: dojob.NoCacheFallback})
		if assert.NoError(t, err, "%q", good) {
			require.NoError(t, m.Close())
		}
	}
}

// TestCacheHostPersisted: FileInfo.CacheHost is kept with the job: a
// Manager that reloads it (without cache hosts of its own) shows it.
func TestCacheHostPersisted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newCacheNet(t, "proxy")
		state := t.TempDir()
		m, err := dojob.NewManager(dojob.Config{StateDir: state, HTTPClient: &http.Client{Transport: n}, CacheHosts: []string{cacheHost}})
		require.NoError(t, err)
		j, err := m.CreateJob("cache")
		require.NoError(t, err)
		require.NoError(t, j.AddFile(n.origin.FileURL("/a"), filepath.Join(t.TempDir(), "a")))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		id := j.ID()
		require.NoError(t, m.Close())

		m2, err := dojob.NewManager(dojob.Config{StateDir: state, Paused: true})
		require.NoError(t, err)
		defer func() { require.NoError(t, m2.Close()) }()
		j2, err := m2.Job(id)
		require.NoError(t, err)
		assert.Equal(t, cacheHost, j2.Files()[0].CacheHost)
	})
}

// TestCacheHostResumeFromOrigin: bytes from the origin are continued
// through the cache on the next attempt — the cache host is asked first
// again, with the origin's validator in If-Range, and its 206 carries the
// same ETag, so the file goes on at its offset.
func TestCacheHostResumeFromOrigin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newCacheNet(t, "503", dojobtest.Script(dojobtest.DropAfter(300<<10)))
		m := cacheManager(t, n, dojob.Config{})
		j, err := m.CreateJob("cache")
		require.NoError(t, err)
		local := filepath.Join(t.TempDir(), "a")
		require.NoError(t, j.AddFile(n.origin.FileURL("/a"), local))
		require.NoError(t, j.Resume())
		synctest.Wait()
		require.Equal(t, dojob.StateTransientError, j.State(), "the cache's 503, then the origin's drop")
		n.setMode("proxy")
		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
		require.NoError(t, j.Complete())
		assert.Equal(t, n.origin.SHA256("/a"), fileSHA256(t, local))
		// The cache's 503, the origin's drop (progress: a new round), the
		// cache's 503 again (the round is over), then the retry's request
		// through the cache, which the origin answers.
		reqs := n.cacheRequests()
		require.Len(t, reqs, 3)
		last := reqs[2]
		assert.Equal(t, "bytes="+strconv.Itoa(300<<10)+"-", last.header.Get("Range"))
		assert.NotEmpty(t, last.header.Get("If-Range"))
		o := n.origin.Requests()
		require.Len(t, o, 2)
		assert.Equal(t, "cache", o[1].Header.Get("Via"))
		assert.Equal(t, http.StatusPartialContent, o[1].Status)
		fi := j.Files()[0]
		assert.Equal(t, cacheHost, fi.CacheHost)
		assert.Zero(t, fi.Restarts)
	})
}

// TestCacheHostNotBannedForAJobsProxy: a job whose own proxy fails on the
// way to a cache host — nothing listens there, or it answers 407 — fails,
// but bans nothing: the next job, without that proxy, is served by the
// cache host.
func TestCacheHostNotBannedForAJobsProxy(t *testing.T) {
	for _, name := range []string{"proxy down", "proxy 407"} {
		t.Run(name, func(t *testing.T) {
			origin := dojobtest.NewServer(t, dojobtest.WithSize(4<<10))
			var cacheHits atomic.Int32
			cache := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				cacheHits.Add(1)
				u := "http://" + r.URL.Query().Get("cacheHostOrigin") + r.URL.Path
				resp, err := origin.Client().Get(u)
				if err != nil {
					w.WriteHeader(http.StatusBadGateway)
					return
				}
				defer resp.Body.Close()
				for _, h := range []string{"ETag", "Last-Modified", "Content-Length"} {
					w.Header().Set(h, resp.Header.Get(h))
				}
				io.Copy(w, resp.Body)
			}))
			defer cache.Close()
			var proxy string
			if name == "proxy down" {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				proxy = ln.Addr().String()
				require.NoError(t, ln.Close())
			} else {
				p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(http.StatusProxyAuthRequired)
				}))
				defer p.Close()
				proxy = p.Listener.Addr().String()
			}
			cu, err := url.Parse(cache.URL)
			require.NoError(t, err)
			m, err := dojob.NewManager(dojob.Config{CacheHosts: []string{cu.Host}})
			require.NoError(t, err)
			defer func() { require.NoError(t, m.Close()) }()

			a, err := m.CreateJob("through a failing proxy")
			require.NoError(t, err)
			require.NoError(t, a.AddFile(origin.FileURL("/a"), filepath.Join(t.TempDir(), "a")))
			require.NoError(t, a.SetProxySettings(dojob.ProxyOverride, "http://"+proxy, ""))
			require.NoError(t, a.SetNoProgressTimeout(0))
			require.Equal(t, dojob.StateError, resumeWait(t, a))
			assert.Zero(t, cacheHits.Load(), "job A never reached the cache")

			b, err := m.CreateJob("direct")
			require.NoError(t, err)
			local := filepath.Join(t.TempDir(), "b")
			require.NoError(t, b.AddFile(origin.FileURL("/b"), local))
			require.Equal(t, dojob.StateTransferred, resumeWait(t, b))
			assert.Equal(t, cu.Host, b.Files()[0].CacheHost, "the cache host is not banned")
			require.NoError(t, b.Complete())
			assert.Equal(t, origin.SHA256("/b"), fileSHA256(t, local))
		})
	}
}

// TestCacheHostErrorIsNotTheJobs: the cache host is asked first, but when
// the cache (403) and the origin (404) both fail for good the job's error
// is the origin's: it says what is wrong with the file.
func TestCacheHostErrorIsNotTheJobs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newCacheNet(t, "403", dojobtest.AlwaysFor("/gone", dojobtest.Status(404)))
		m := cacheManager(t, n, dojob.Config{})
		j, st, _ := cacheJob(t, m, n.origin.FileURL("/gone"))
		require.Equal(t, dojob.StateError, st)
		assert.Equal(t, dojob.HTTPStatus(404), mustJobError(t, j).Code)
		assert.Len(t, n.cacheRequests(), 1)
	})
}
