package dojob_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestCustomHeadersAndCredentialsOnEveryRequest: the custom headers and the
// Basic credentials go with the first request, the resume after a drop and
// the retry after a 503; the file arrives whole.
func TestCustomHeadersAndCredentialsOnEveryRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(64<<10),
			dojobtest.Script(dojobtest.DropAfter(10<<10), dojobtest.Status(503), dojobtest.OK()))
		j := r.job("h", "/f")
		require.NoError(t, j.SetCustomHeaders(http.Header{
			"x-api-client": {"dojob-test"}, "Cookie": {"session=c00kie"},
			"Authorization": {"Bearer replaced-by-credentials"},
		}))
		require.NoError(t, j.SetCredentials(dojob.Credentials{Target: dojob.AuthTargetServer, Scheme: dojob.AuthSchemeBasic,
			UserName: "alice", Password: "pa55word"}))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		reqs := r.tr.RequestsFor("/f")
		require.Len(t, reqs, 3)
		for i, q := range reqs {
			assert.Equal(t, []string{"dojob-test"}, q.Header["X-Api-Client"], "request %d", i)
			assert.Equal(t, []string{"session=c00kie"}, q.Header["Cookie"], "request %d", i)
			assert.Equal(t, []string{basic("alice", "pa55word")}, q.Header["Authorization"], "request %d", i)
			assert.Equal(t, "identity", q.Header.Get("Accept-Encoding"), "request %d", i)
		}
		assert.Equal(t, "", reqs[0].Range)
		assert.Equal(t, 503, reqs[1].Status)
		assert.Equal(t, "bytes=10240-", reqs[1].Range)
		assert.Equal(t, "bytes=10240-", reqs[2].Range)
		assert.Equal(t, 206, reqs[2].Status)
		require.NoError(t, j.Complete())
		r.requireFile("/f")

		// FileInfo.ResponseHeaders: the last response's (the 206).
		fi := j.Files()[0]
		assert.Equal(t, "bytes 10240-65535/65536", fi.ResponseHeaders.Get("Content-Range"))
	})
}

// TestCustomHeadersRejected: owned headers, invalid names and values, and
// headers over 16 KiB are refused with their codes; nothing is changed.
func TestCustomHeadersRejected(t *testing.T) {
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer m.Close()
	j, err := m.CreateJob("bad")
	require.NoError(t, err)
	require.NoError(t, j.SetCustomHeaders(http.Header{"X-Keep": {"1"}}))
	for _, h := range []http.Header{
		{"Range": {"bytes=0-"}}, {"if-range": {"x"}}, {"Accept-Encoding": {"gzip"}}, {"Host": {"evil"}},
		{"Content-Length": {"1"}}, {"Transfer-Encoding": {"chunked"}}, {"Connection": {"close"}},
		{"TE": {"trailers"}}, {"Upgrade": {"h2c"}}, {"Trailer": {"x"}}, {"Expect": {"100-continue"}},
		{"If-None-Match": {"x"}}, {"Bad Name": {"1"}}, {"": {"1"}}, {"X-A": {"1\r\nX-Injected: 1"}},
		{"X-A": {"nul\x00"}}, {"X-A:": {"1"}},
	} {
		err := j.SetCustomHeaders(h)
		require.ErrorIs(t, err, dojob.ErrInvalidArg, "%v", h)
	}
	// 16,383 characters serialized fit; one more does not (BG_E_STRING_TOO_LONG).
	fit := http.Header{"X-Big": {strings.Repeat("a", 16383-len("X-Big: \r\n"))}}
	require.NoError(t, j.SetCustomHeaders(fit))
	over := http.Header{"X-Big": {strings.Repeat("a", 16384-len("X-Big: \r\n"))}}
	require.ErrorIs(t, j.SetCustomHeaders(over), dojob.ErrStringTooLong)
	got, err := j.CustomHeaders()
	require.NoError(t, err)
	assert.Equal(t, fit, got)
	require.NoError(t, j.SetCustomHeaders(nil))
	got, err = j.CustomHeaders()
	require.NoError(t, err)
	assert.Nil(t, got)
}

// TestCustomHeadersWriteOnly: after MakeCustomHeadersWriteOnly the values
// are never returned (E_ACCESSDENIED), also by a Manager that reloads the
// job; they are still sent, and still in the 0600 record.
func TestCustomHeadersWriteOnly(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(4096))
	dir := t.TempDir()
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := dojob.NewManager(dojob.Config{StateDir: dir, HTTPClient: s.Client(), Logger: logger})
	require.NoError(t, err)
	j, err := m.CreateJob("wo")
	require.NoError(t, err)
	local := filepath.Join(t.TempDir(), "f")
	require.NoError(t, j.AddFile(s.FileURL("/f"), local))
	require.NoError(t, j.SetCustomHeaders(http.Header{"X-Secret": {"hunter2-header"}}))
	require.NoError(t, j.SetCredentials(dojob.Credentials{Target: dojob.AuthTargetServer, Scheme: dojob.AuthSchemeBasic,
		UserName: "bob", Password: "hunter2-password"}))
	require.NoError(t, j.MakeCustomHeadersWriteOnly())
	h, err := j.CustomHeaders()
	require.ErrorIs(t, err, dojob.ErrAccessDenied)
	assert.Nil(t, h)
	assert.NotContains(t, err.Error(), "hunter2")
	id := j.ID()
	require.NoError(t, m.Close())

	rec, err := os.ReadFile(filepath.Join(dir, "jobs", strings.Trim(strings.ToLower(strings.ReplaceAll(id.String(), "-", "")), "{}")+".json"))
	require.NoError(t, err)
	assert.Contains(t, string(rec), "hunter2-header", "persisted like the rest of the job")

	m2, err := dojob.NewManager(dojob.Config{StateDir: dir, HTTPClient: s.Client(), Logger: logger})
	require.NoError(t, err)
	defer m2.Close()
	j2, err := m2.Job(id)
	require.NoError(t, err)
	_, err = j2.CustomHeaders()
	require.ErrorIs(t, err, dojob.ErrAccessDenied, "write-only survives a restart")
	require.ErrorIs(t, j2.SetCustomHeaders(http.Header{"Host": {"x"}}), dojob.ErrInvalidArg)
	require.NoError(t, j2.Resume())
	st, err := j2.Wait(t.Context())
	require.NoError(t, err)
	require.Equal(t, dojob.StateTransferred, st)
	reqs := s.RequestsFor("/f")
	require.Len(t, reqs, 1)
	assert.Equal(t, "hunter2-header", reqs[0].Header.Get("X-Secret"))
	assert.Equal(t, basic("bob", "hunter2-password"), reqs[0].Header.Get("Authorization"))
	require.NoError(t, j2.Complete())
	require.Equal(t, s.SHA256("/f"), fileSHA256(t, local))

	for _, fi := range j2.Files() {
		assert.NotContains(t, fi.String(), "hunter2")
	}
	c := dojob.Credentials{Target: dojob.AuthTargetServer, Scheme: dojob.AuthSchemeBasic, UserName: "bob", Password: "hunter2-password"}
	logger.Info("creds", "c", c)
	for _, s := range []string{c.String(), c.GoString()} {
		assert.NotContains(t, s, "hunter2")
	}
	logMu.Lock()
	assert.NotContains(t, logs.String(), "hunter2")
	logMu.Unlock()
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// recordingServer is an httptest server that records the headers of each
// request and serves content, or redirects when redirect is set.
type recordingServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newRecordingServer(t *testing.T, content []byte, redirect func() string) *recordingServer {
	s := &recordingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, req.Header.Clone())
		s.mu.Unlock()
		if req.URL.Path == "/start" && redirect != nil {
			http.Redirect(w, req, redirect(), http.StatusFound)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(content))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *recordingServer) headers() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.seen...)
}

// TestRedirectCrossOriginDropsSecrets: a redirect to another origin (another
// port on 127.0.0.1) gets neither Authorization, Proxy-Authorization,
// Cookie nor the credentials; the other custom headers follow. A redirect
// to the same origin keeps them all.
func TestRedirectCrossOriginDropsSecrets(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789"), 1000)
	target := newRecordingServer(t, content, nil)
	for _, tc := range []struct {
		name  string
		cross bool
	}{{"cross-origin", true}, {"same-origin", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var origin *recordingServer
			origin = newRecordingServer(t, content, func() string {
				if tc.cross {
					return target.URL + "/file"
				}
				return origin.URL + "/file"
			})
			m, err := dojob.NewManager(dojob.Config{})
			require.NoError(t, err)
			defer m.Close()
			j, err := m.CreateJob(tc.name)
			require.NoError(t, err)
			local := filepath.Join(t.TempDir(), "f")
			require.NoError(t, j.AddFile(origin.URL+"/start", local))
			require.NoError(t, j.SetCustomHeaders(http.Header{
				"X-Trace": {"t1"}, "Cookie": {"c=1"}, "Proxy-Authorization": {"Basic cHJveHk6cA=="},
			}))
			require.NoError(t, j.SetCredentials(dojob.Credentials{Target: dojob.AuthTargetServer, Scheme: dojob.AuthSchemeBasic,
				UserName: "u", Password: "p"}))
			require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
			require.NoError(t, j.Complete())
			data, err := os.ReadFile(local)
			require.NoError(t, err)
			require.Equal(t, content, data)

			first := origin.headers()[0]
			assert.Equal(t, basic("u", "p"), first.Get("Authorization"))
			assert.Equal(t, "c=1", first.Get("Cookie"))
			assert.Equal(t, "t1", first.Get("X-Trace"))
			var hop http.Header
			if tc.cross {
				require.Len(t, origin.headers(), 1)
				hs := target.headers()
				hop = hs[len(hs)-1]
				assert.Empty(t, hop.Values("Authorization"))
				assert.Empty(t, hop.Values("Cookie"))
				assert.Empty(t, hop.Values("Proxy-Authorization"))
			} else {
				require.Len(t, origin.headers(), 2)
				hop = origin.headers()[1]
				assert.Equal(t, basic("u", "p"), hop.Get("Authorization"))
				assert.Equal(t, "c=1", hop.Get("Cookie"))
				assert.Equal(t, "Basic cHJveHk6cA==", hop.Get("Proxy-Authorization"))
			}
			assert.Equal(t, "t1", hop.Get("X-Trace"), "other custom headers follow every redirect")
		})
	}
}

// TestWrongCredentials401: a server that refuses the credentials ends the
// job in ERROR with BG_E_HTTP_ERROR_401 at once.
func TestWrongCredentials401(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); !ok || u != "right" || p != "pw" {
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer s.Close()
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer m.Close()
	for _, tc := range []struct {
		user string
		want dojob.State
	}{{"wrong", dojob.StateError}, {"right", dojob.StateTransferred}} {
		j, err := m.CreateJob(tc.user)
		require.NoError(t, err)
		require.NoError(t, j.AddFile(s.URL+"/f", filepath.Join(t.TempDir(), "f")))
		require.NoError(t, j.SetCredentials(dojob.Credentials{Target: dojob.AuthTargetServer, Scheme: dojob.AuthSchemeBasic,
			UserName: tc.user, Password: "pw"}))
		require.Equal(t, tc.want, resumeWait(t, j))
		if tc.want == dojob.StateError {
			e := mustJobError(t, j)
			assert.Equal(t, dojob.HTTPStatus(401), e.Code)
			assert.Equal(t, "BG_E_HTTP_ERROR_401", e.Code.Name())
			assert.Equal(t, dojob.ErrorContextRemoteFile, e.Context)
			assert.Equal(t, 1, j.ErrorCount())
			assert.Equal(t, `Basic realm="x"`, e.File.ResponseHeaders.Get("WWW-Authenticate"))
		}
		require.NoError(t, j.Cancel())
	}
}

// TestCredentialsValidation: the codes of bad credentials, and
// RemoveCredentials.
func TestCredentialsValidation(t *testing.T) {
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer m.Close()
	j, err := m.CreateJob("c")
	require.NoError(t, err)
	ok := dojob.Credentials{Target: dojob.AuthTargetServer, Scheme: dojob.AuthSchemeBasic, UserName: "u", Password: "p"}
	for _, tc := range []struct {
		mod  func(*dojob.Credentials)
		want dojob.HRESULT
	}{
		{func(c *dojob.Credentials) { c.Target = 0 }, dojob.ErrInvalidAuthTarget},
		{func(c *dojob.Credentials) { c.Target = 3 }, dojob.ErrInvalidAuthTarget},
		{func(c *dojob.Credentials) { c.Scheme = 0 }, dojob.ErrInvalidAuthScheme},
		{func(c *dojob.Credentials) { c.Scheme = 6 }, dojob.ErrInvalidAuthScheme},
		{func(c *dojob.Credentials) { c.Scheme = dojob.AuthSchemeNTLM }, dojob.ErrNotImplemented},
		{func(c *dojob.Credentials) { c.Scheme = dojob.AuthSchemeDigest }, dojob.ErrNotImplemented},
		{func(c *dojob.Credentials) { c.UserName = strings.Repeat("u", 301) }, dojob.ErrUserNameTooLarge},
		{func(c *dojob.Credentials) { c.Password = strings.Repeat("p", 65536) }, dojob.ErrPasswordTooLarge},
		{func(c *dojob.Credentials) { c.UserName = "a:b" }, dojob.ErrInvalidCredentials},
		{func(c *dojob.Credentials) { c.Password = "p\r\n" }, dojob.ErrInvalidCredentials},
	} {
		c := ok
		tc.mod(&c)
		err := j.SetCredentials(c)
		var hr dojob.HRESULT
		require.True(t, errors.As(err, &hr), "%v", err)
		assert.Equal(t, tc.want, hr, "%v", err)
	}
	require.NoError(t, j.SetCredentials(ok))
	require.NoError(t, j.RemoveCredentials(dojob.AuthTargetServer, dojob.AuthSchemeBasic))
	require.NoError(t, j.RemoveCredentials(dojob.AuthTargetProxy, dojob.AuthSchemeBasic), "not set: nothing to do")
	require.ErrorIs(t, j.RemoveCredentials(7, dojob.AuthSchemeBasic), dojob.ErrInvalidAuthTarget)
}

// TestProxyCredentials: proxy credentials reach the proxy of a plain-HTTP
// request as Proxy-Authorization; server credentials go as Authorization.
func TestProxyCredentials(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		seen = append(seen, req.Header.Clone())
		mu.Unlock()
		if req.Header.Get("Proxy-Authorization") != basic("px", "ppw") {
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		w.Write([]byte("through the proxy"))
	}))
	defer proxy.Close()
	pu, err := http.NewRequest("GET", proxy.URL, nil)
	require.NoError(t, err)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu.URL)}}
	m, err := dojob.NewManager(dojob.Config{HTTPClient: client})
	require.NoError(t, err)
	defer m.Close()
	for _, withCreds := range []bool{false, true} {
		j, err := m.CreateJob("proxy")
		require.NoError(t, err)
		local := filepath.Join(t.TempDir(), "f")
		require.NoError(t, j.AddFile("http://files.example.invalid/f", local))
		if withCreds {
			require.NoError(t, j.SetCredentials(dojob.Credentials{Target: dojob.AuthTargetProxy, Scheme: dojob.AuthSchemeBasic, UserName: "px", Password: "ppw"}))
			require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
			require.NoError(t, j.Complete())
			data, err := os.ReadFile(local)
			require.NoError(t, err)
			assert.Equal(t, "through the proxy", string(data))
		} else {
			require.Equal(t, dojob.StateError, resumeWait(t, j))
			assert.Equal(t, dojob.HTTPStatus(407), mustJobError(t, j).Code)
			require.NoError(t, j.Cancel())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 2)
	assert.Empty(t, seen[0].Get("Proxy-Authorization"))
	assert.Empty(t, seen[1].Get("Authorization"), "proxy credentials are not server credentials")
}

// TestProxyCredentialsNotThroughSOCKS: a plain-HTTP request through a SOCKS5
// proxy is tunnelled to the server as it is, so the job's proxy credentials
// must not ride in it as Proxy-Authorization: the server would read them.
func TestProxyCredentialsNotThroughSOCKS(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		seen = append(seen, req.Header.Get("Proxy-Authorization"))
		mu.Unlock()
		w.Write([]byte("through the tunnel"))
	}))
	defer srv.Close()
	socks := startSOCKS5(t)
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer m.Close()
	j, err := m.CreateJob("socks")
	require.NoError(t, err)
	local := filepath.Join(t.TempDir(), "f")
	require.NoError(t, j.AddFile(srv.URL+"/f", local))
	require.NoError(t, j.SetProxySettings(dojob.ProxyOverride, "socks5://"+socks.addr, ""))
	require.NoError(t, j.SetCredentials(dojob.Credentials{Target: dojob.AuthTargetProxy, Scheme: dojob.AuthSchemeBasic, UserName: "px", Password: "ppw"}))
	require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
	require.NoError(t, j.Complete())
	data, err := os.ReadFile(local)
	require.NoError(t, err)
	assert.Equal(t, "through the tunnel", string(data))
	assert.Positive(t, socks.tunnels.Load(), "the request went through the SOCKS proxy")
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, seen)
	for _, h := range seen {
		assert.Empty(t, h, "proxy credentials reached the server")
	}
}

// socks5Server is a minimal SOCKS5 proxy for tests: no authentication,
// CONNECT only, and only to 127.0.0.1 whatever address is asked for.
type socks5Server struct {
	addr    string
	tunnels atomic.Int64
}

func startSOCKS5(t *testing.T) *socks5Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &socks5Server{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Go(func() { s.serve(c, track) })
		}
	})
	return s
}

func (s *socks5Server) serve(c net.Conn, track func(net.Conn)) {
	defer c.Close()
	hello := make([]byte, 2)
	if _, err := io.ReadFull(c, hello); err != nil || hello[0] != 5 {
		return
	}
	if _, err := io.ReadFull(c, make([]byte, hello[1])); err != nil {
		return
	}
	c.Write([]byte{5, 0}) // no authentication
	req := make([]byte, 4)
	if _, err := io.ReadFull(c, req); err != nil || req[1] != 1 {
		return
	}
	var skip int
	switch req[3] {
	case 1:
		skip = 4
	case 4:
		skip = 16
	case 3:
		n := make([]byte, 1)
		if _, err := io.ReadFull(c, n); err != nil {
			return
		}
		skip = int(n[0])
	default:
		return
	}
	rest := make([]byte, skip+2)
	if _, err := io.ReadFull(c, rest); err != nil {
		return
	}
	port := int(rest[skip])<<8 | int(rest[skip+1])
	d, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	track(d)
	defer d.Close()
	s.tunnels.Add(1)
	c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(d, c)
		d.Close()
	}()
	io.Copy(c, d)
	c.Close()
	<-done
}

// TestPresignedSwapWithSetRemoteName: a presigned URL expires mid-download
// (the connection drops after 20 KiB, then the URL answers 403); a fresh
// URL set with SetRemoteName continues the file at its offset with a Range
// request, and the file is whole. The query secrets never appear in the
// error message or the logs.
func TestPresignedSwapWithSetRemoteName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		var logMu sync.Mutex
		logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		r := newRig(t, dojob.Config{Logger: logger}, dojobtest.WithSize(64<<10),
			dojobtest.Script(dojobtest.DropAfter(20<<10), dojobtest.Status(403), dojobtest.OK()))
		j, err := r.m.CreateJob("presigned")
		require.NoError(t, err)
		old := r.tr.FileURL("/f") + "?X-Amz-Credential=AKIDOLD&X-Amz-Expires=60&X-Amz-Signature=0ldS1gnature"
		require.NoError(t, j.AddFile(old, r.local("/f")))
		require.Equal(t, dojob.StateError, resumeWait(t, j))
		e := mustJobError(t, j)
		assert.Equal(t, dojob.HTTPStatus(403), e.Code)
		assert.NotContains(t, e.Error(), "0ldS1gnature")
		assert.NotContains(t, e.Error(), "AKIDOLD")
		assert.Contains(t, e.Error(), "X-Amz-Signature=REDACTED")
		assert.Contains(t, e.Error(), "X-Amz-Expires=60")
		assert.NotContains(t, e.File.String(), "0ldS1gnature")

		fresh := r.tr.FileURL("/f") + "?X-Amz-Signature=n3wS1gnature"
		require.ErrorIs(t, j.SetRemoteName(1, fresh), dojob.ErrInvalidArg)
		require.ErrorIs(t, j.SetRemoteName(-1, fresh), dojob.ErrInvalidArg)
		require.ErrorIs(t, j.SetRemoteName(0, "ftp://x/f"), dojob.ErrInvalidArg)
		require.NoError(t, j.SetRemoteName(0, fresh))
		assert.Equal(t, fresh, j.Files()[0].RemoteURL)
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		reqs := r.tr.RequestsFor("/f")
		require.Len(t, reqs, 3, "drop, 403, then the fresh URL")
		assert.Equal(t, 403, reqs[1].Status)
		assert.Equal(t, "bytes=20480-", reqs[1].Range)
		assert.Contains(t, reqs[2].URL, "n3wS1gnature")
		assert.Equal(t, "bytes=20480-", reqs[2].Range)
		assert.NotEmpty(t, reqs[2].IfRange)
		assert.Equal(t, 206, reqs[2].Status)
		assert.Equal(t, 0, j.Files()[0].Restarts)
		require.NoError(t, j.Complete())
		r.requireFile("/f")
		require.NoError(t, r.m.Close())
		logMu.Lock()
		defer logMu.Unlock()
		assert.Contains(t, logs.String(), "REDACTED", "the transient errors were logged")
		assert.NotContains(t, logs.String(), "0ldS1gnature")
		assert.NotContains(t, logs.String(), "AKIDOLD")
	})
}

// TestSetRemoteNameWhileTransferring: a running transfer switches to the
// new URL: its attempt stops, the bytes it has stay, and the next request
// goes to the new URL with a Range from there. The job was never in ERROR.
func TestSetRemoteNameWhileTransferring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 256 << 10
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.WithRate(64<<10))
		j, err := r.m.CreateJob("switch")
		require.NoError(t, err)
		require.NoError(t, j.AddFile(r.tr.FileURL("/f")+"?sig=first", r.local("/f")))
		require.NoError(t, j.Resume())
		_, err = r.tr.AwaitRequests(t.Context(), func(reqs []dojobtest.Request) bool {
			return len(reqs) == 1 && reqs[0].BodyBytes >= 64<<10
		})
		require.NoError(t, err)
		require.NoError(t, j.SetRemoteName(0, r.tr.FileURL("/f")+"?sig=second"))
		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
		reqs := r.tr.RequestsFor("/f")
		requireSwitchedAtOffset(t, reqs, "/f")
		assert.Equal(t, 206, reqs[1].Status)
		assert.Equal(t, 0, j.ErrorCount())
		assert.Equal(t, 0, j.Files()[0].Restarts)
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestReplaceRemotePrefix: BITS's rules — an exact, case-sensitive prefix;
// every matching file changes, the others do not; no match changes nothing
// and is no error; an empty prefix or a resulting URL AddFile would refuse
// is ErrInvalidArg and changes nothing; files already transferred are not
// fetched again.
func TestReplaceRemotePrefix(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(1000))
		j, err := r.m.CreateJob("prefix")
		require.NoError(t, err)
		base := r.tr.FileURL("")
		require.NoError(t, j.AddFile(base+"/old/a", r.local("/a")))
		require.NoError(t, j.AddFile(base+"/old/b", r.local("/b")))
		require.NoError(t, j.AddFile(base+"/keep/c", r.local("/c")))
		urls := func() []string {
			var out []string
			for _, f := range j.Files() {
				out = append(out, f.RemoteURL)
			}
			return out
		}
		before := urls()
		require.ErrorIs(t, j.ReplaceRemotePrefix("", base+"/new"), dojob.ErrInvalidArg)
		require.ErrorIs(t, j.ReplaceRemotePrefix(base+"/old", ""), dojob.ErrInvalidArg)
		require.ErrorIs(t, j.ReplaceRemotePrefix(base+"/old", "ftp://host/new"), dojob.ErrInvalidArg)
		require.ErrorIs(t, j.ReplaceRemotePrefix(base, "https://"+strings.Repeat("x", 2200)), dojob.ErrInvalidArg)
		require.NoError(t, j.ReplaceRemotePrefix(strings.ToUpper(base+"/old"), base+"/new"), "no match: no error")
		require.Equal(t, before, urls())

		// Transfer everything, then rename: nothing is fetched again.
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		n := len(r.tr.Requests())
		require.NoError(t, j.ReplaceRemotePrefix(base+"/old", base+"/new"))
		assert.Equal(t, []string{base + "/new/a", base + "/new/b", base + "/keep/c"}, urls())
		require.NoError(t, j.Resume())
		assert.Equal(t, dojob.StateTransferred, j.State())
		assert.Len(t, r.tr.Requests(), n, "transferred files are not downloaded again")

		// A job not yet run fetches from the new prefix.
		j2, err := r.m.CreateJob("prefix2")
		require.NoError(t, err)
		require.NoError(t, j2.AddFile(base+"/old/d", r.local("/d")))
		require.NoError(t, j2.ReplaceRemotePrefix(base+"/old/", base+"/new/"))
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j2))
		assert.Len(t, r.tr.RequestsFor("/new/d"), 1)
		assert.Empty(t, r.tr.RequestsFor("/old/d"))
	})
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://example.com/f":          "https://example.com/f",
		"https://u:secret@example.com/f": "https://u:xxxxx@example.com/f",
		"https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F2024&X-Amz-Expires=60&X-Amz-Security-Token=tok&X-Amz-Signature=abc":
		/**/ "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Expires=60&X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED",
		"https://a.blob.core.windows.net/c/f?sv=2022&se=2024-01-01&sp=r&sig=abc%3D": "https://a.blob.core.windows.net/c/f?sv=2022&se=2024-01-01&sp=r&sig=REDACTED",
		"https://storage.googleapis.com/b/o?X-Goog-Credential=x&X-Goog-Signature=y": "https://storage.googleapis.com/b/o?X-Goog-Credential=REDACTED&X-Goog-Signature=REDACTED",
		"https://d.cloudfront.net/f?Policy=p&Signature=s&Key-Pair-Id=k":             "https://d.cloudfront.net/f?Policy=REDACTED&Signature=REDACTED&Key-Pair-Id=REDACTED",
		"https://x/f?TOKEN=t&access_token=a&key=k&page=2#frag":                      "https://x/f?TOKEN=REDACTED&access_token=REDACTED&key=REDACTED&page=2#frag",
		"https://u:p@x/f?sig=s": "https://u:xxxxx@x/f?sig=REDACTED",
		"not a url %zz":         "not a url %zz",
	} {
		assert.Equal(t, want, dojob.RedactURL(in), in)
	}
}
