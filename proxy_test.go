package dojob_test

import (
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostURL is u with its host name replaced (the port kept).
func hostURL(t *testing.T, u, host string) string {
	t.Helper()
	p, err := url.Parse(u)
	require.NoError(t, err)
	p.Host = net.JoinHostPort(host, p.Port())
	return p.String()
}

// getVia creates a job with one file at remote, applies set, runs it to its
// end (ERROR after 5 s of transient errors) and returns it with its final
// state.
func getVia(t *testing.T, m *dojob.Manager, remote, local string, set func(*dojob.Job)) (*dojob.Job, dojob.State) {
	t.Helper()
	j, err := m.CreateJob("proxy")
	require.NoError(t, err)
	require.NoError(t, j.AddFile(remote, local))
	require.NoError(t, j.SetMinimumRetryDelay(10*time.Millisecond))
	// A request that cannot reach its server (a proxy not used) ends the
	// test in ERROR rather than retrying for a day.
	require.NoError(t, j.SetNoProgressTimeout(5*time.Second))
	set(j)
	return j, resumeWait(t, j)
}

// TestProxyOverride: OVERRIDE sends each request through the job's proxy
// (an absolute-URI GET naming the file's host, which only the proxy can
// reach), with the proxy's credentials from the URL as Basic; the file
// arrives whole. dojob's own client.
func TestProxyOverride(t *testing.T) {
	srv := dojobtest.NewServer(t, dojobtest.WithSize(300<<10))
	proxy := dojobtest.NewProxy(t)
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	dir := t.TempDir()
	pu, _ := url.Parse(proxy.URL())
	list := "http://alice:s3cret@" + pu.Host
	j, st := getVia(t, m, hostURL(t, srv.FileURL("/f"), "files.invalid"), filepath.Join(dir, "f"), func(j *dojob.Job) {
		require.NoError(t, j.SetProxySettings(dojob.ProxyOverride, list, ""))
	})
	require.Equal(t, dojob.StateTransferred, st)
	require.NoError(t, j.Complete())
	require.Equal(t, srv.SHA256("/f"), fileSHA256(t, filepath.Join(dir, "f")))
	reqs := proxy.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, http.MethodGet, reqs[0].Method)
	assert.True(t, strings.HasPrefix(reqs[0].Host, "files.invalid:"), reqs[0].Host)
	assert.Equal(t, basic("alice", "s3cret"), reqs[0].ProxyAuthorization)
	usage, pl, bl := j.ProxySettings()
	assert.Equal(t, dojob.ProxyOverride, usage)
	assert.Equal(t, list, pl)
	assert.Equal(t, "", bl)
}

// TestProxyBypass: the bypass list sends matching hosts direct — <local>
// (a name without a period), a "*.suffix" wildcard, an exact host — and
// the others through the proxy. The Manager's client is the caller's
// *http.Transport (which resolves every name to 127.0.0.1): the job's
// transport is derived from it.
func TestProxyBypass(t *testing.T) {
	srv := dojobtest.NewServer(t, dojobtest.WithSize(20<<10))
	proxy := dojobtest.NewProxy(t)
	tr := &http.Transport{DialContext: dojobtest.DialLoopback}
	defer tr.CloseIdleConnections()
	m, err := dojob.NewManager(dojob.Config{HTTPClient: &http.Client{Transport: tr}})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	dir := t.TempDir()
	for i, c := range []struct {
		host, bypass string
		proxied      bool
	}{
		{"fileserver", "<local>", false},
		{"files.example", "<local>", true},
		{"files.example", "*.example", false},
		{"files.example", "other.test *.example", false},
		{"files.example", "*.test", true},
		{"files.example", "FILES.example", false},
		{"files.example.net", "files.example", true},
		{"127.0.0.1", "127.0.0.1", false},
		{"127.0.0.1", "*", false},
	} {
		before := len(proxy.Requests())
		local := filepath.Join(dir, "f"+string(rune('a'+i)))
		j, st := getVia(t, m, hostURL(t, srv.FileURL("/f"), c.host), local, func(j *dojob.Job) {
			require.NoError(t, j.SetProxySettings(dojob.ProxyOverride, proxy.URL(), c.bypass))
		})
		require.Equal(t, dojob.StateTransferred, st, "%s bypass %q", c.host, c.bypass)
		require.NoError(t, j.Complete())
		assert.Equal(t, srv.SHA256("/f"), fileSHA256(t, local))
		n := 0
		if c.proxied {
			n = 1
		}
		assert.Len(t, proxy.Requests()[before:], n, "%s bypass %q", c.host, c.bypass)
	}
	assert.Len(t, srv.RequestsFor("/f"), 9)
}

// TestProxyNoProxyIgnoresEnvironment: a client whose proxy comes from the
// environment (read at each request: net/http's ProxyFromEnvironment reads
// it once per process) proxies a PRECONFIG job, while a NO_PROXY job of the
// same Manager goes direct.
func TestProxyNoProxyIgnoresEnvironment(t *testing.T) {
	srv := dojobtest.NewServer(t, dojobtest.WithSize(20<<10))
	proxy := dojobtest.NewProxy(t)
	t.Setenv("HTTP_PROXY", proxy.URL())
	tr := &http.Transport{Proxy: func(*http.Request) (*url.URL, error) {
		if v := os.Getenv("HTTP_PROXY"); v != "" {
			return url.Parse(v)
		}
		return nil, nil
	}}
	defer tr.CloseIdleConnections()
	m, err := dojob.NewManager(dojob.Config{HTTPClient: &http.Client{Transport: tr}})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	dir := t.TempDir()

	_, st := getVia(t, m, srv.FileURL("/f"), filepath.Join(dir, "pre"), func(j *dojob.Job) {})
	require.Equal(t, dojob.StateTransferred, st)
	require.Len(t, proxy.Requests(), 1, "PRECONFIG follows the client (the environment)")

	j, st := getVia(t, m, srv.FileURL("/f"), filepath.Join(dir, "none"), func(j *dojob.Job) {
		require.NoError(t, j.SetProxySettings(dojob.ProxyNoProxy, "", ""))
	})
	require.Equal(t, dojob.StateTransferred, st)
	require.NoError(t, j.Complete())
	assert.Equal(t, srv.SHA256("/f"), fileSHA256(t, filepath.Join(dir, "none")))
	assert.Len(t, proxy.Requests(), 1, "NO_PROXY went through the proxy")
	assert.Len(t, srv.RequestsFor("/f"), 2)
}

// TestProxyResume: a transfer cut off through the proxy resumes through it
// with a Range request; the file is whole.
func TestProxyResume(t *testing.T) {
	srv := dojobtest.NewServer(t, dojobtest.WithSize(256<<10), dojobtest.Script(dojobtest.DropAfter(100<<10), dojobtest.OK()))
	proxy := dojobtest.NewProxy(t)
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	dir := t.TempDir()
	j, st := getVia(t, m, hostURL(t, srv.FileURL("/f"), "files.invalid"), filepath.Join(dir, "f"), func(j *dojob.Job) {
		require.NoError(t, j.SetProxySettings(dojob.ProxyOverride, "http="+strings.TrimPrefix(proxy.URL(), "http://"), ""))
	})
	require.Equal(t, dojob.StateTransferred, st)
	require.NoError(t, j.Complete())
	require.Equal(t, srv.SHA256("/f"), fileSHA256(t, filepath.Join(dir, "f")))
	reqs := proxy.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "", reqs[0].Range)
	assert.Equal(t, "bytes=102400-", reqs[1].Range)
	assert.Equal(t, 1, j.ErrorCount())
}

// TestProxyHTTPSConnect: an https file goes through the proxy's CONNECT
// tunnel; dojob's own client trusts the server through Config.RootCAs.
func TestProxyHTTPSConnect(t *testing.T) {
	srv := dojobtest.NewTLSServer(t, dojobtest.WithSize(64<<10))
	proxy := dojobtest.NewProxy(t)
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	m, err := dojob.NewManager(dojob.Config{RootCAs: roots})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	dir := t.TempDir()
	j, st := getVia(t, m, srv.FileURL("/f"), filepath.Join(dir, "f"), func(j *dojob.Job) {
		// An entry for http only, then one for every scheme: https takes
		// the second.
		require.NoError(t, j.SetProxySettings(dojob.ProxyOverride, "http=127.0.0.1:1;"+proxy.URL(), ""))
	})
	require.Equal(t, dojob.StateTransferred, st)
	require.NoError(t, j.Complete())
	require.Equal(t, srv.SHA256("/f"), fileSHA256(t, filepath.Join(dir, "f")))
	reqs := proxy.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, http.MethodConnect, reqs[0].Method)
	assert.Equal(t, strings.TrimPrefix(srv.URL, "https://"), reqs[0].Host)
}

// TestProxyInvalidAtRunTime: a proxy list that does not parse is found when
// the job uses it: ERROR with the fatal BG_E_INVALID_PROXY_INFO in
// GENERAL_TRANSPORT, its message without the proxy's password, and no
// request sent.
func TestProxyInvalidAtRunTime(t *testing.T) {
	srv := dojobtest.NewServer(t, dojobtest.WithSize(1<<10))
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	dir := t.TempDir()
	for _, c := range [][2]string{
		{"ftp://bob:hunter2@proxy.test:21", ""}, {"http://proxy.test:99999", ""}, {"gopher=proxy.test", ""},
		{"bob:hunter2@proxy.test", ""}, {"http://proxy.test/path", ""}, {"127.0.0.1:1", "a/b"}, {"127.0.0.1:1", "a*b"},
	} {
		j, st := getVia(t, m, srv.FileURL("/f"), filepath.Join(dir, "f"), func(j *dojob.Job) {
			require.NoError(t, j.SetProxySettings(dojob.ProxyOverride, c[0], c[1]))
		})
		require.Equal(t, dojob.StateError, st, c)
		jerr := mustJobError(t, j)
		assert.Equal(t, dojob.ErrInvalidProxyInfo, jerr.Code, c)
		assert.Equal(t, dojob.ErrorContextGeneralTransport, jerr.Context)
		assert.False(t, jerr.Transient())
		assert.NotContains(t, jerr.Error(), "hunter2")
		require.NoError(t, j.Cancel())
	}
	assert.Empty(t, srv.RequestsFor("/f"))
}

// TestProxyPasswordNotInErrors: a proxy that cannot be reached is a
// transient connection error whose text does not show the password.
func TestProxyPasswordNotInErrors(t *testing.T) {
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	j, err := m.CreateJob("p")
	require.NoError(t, err)
	require.NoError(t, j.AddFile("http://files.invalid/f", filepath.Join(t.TempDir(), "f")))
	require.NoError(t, j.SetNoProgressTimeout(0))
	require.NoError(t, j.SetProxySettings(dojob.ProxyOverride, "http://bob:hunter2@127.0.0.1:1", ""))
	require.Equal(t, dojob.StateError, resumeWait(t, j))
	jerr := mustJobError(t, j)
	assert.Equal(t, dojob.ErrCannotConnect, jerr.Code)
	assert.NotContains(t, jerr.Error(), "hunter2")
	for e := error(jerr); e != nil; e = errors.Unwrap(e) {
		assert.NotContains(t, e.Error(), "hunter2")
	}
}

// TestProxySettingsPersisted: the settings survive a restart, and the
// reloaded job downloads through its proxy.
func TestProxySettingsPersisted(t *testing.T) {
	srv := dojobtest.NewServer(t, dojobtest.WithSize(20<<10))
	proxy := dojobtest.NewProxy(t)
	state, dir := t.TempDir(), t.TempDir()
	m, err := dojob.NewManager(dojob.Config{StateDir: state})
	require.NoError(t, err)
	j, err := m.CreateJob("p")
	require.NoError(t, err)
	id := j.ID()
	require.NoError(t, j.AddFile(hostURL(t, srv.FileURL("/f"), "files.invalid"), filepath.Join(dir, "f")))
	require.NoError(t, j.SetProxySettings(dojob.ProxyOverride, proxy.URL()+" https=127.0.0.1:1", "<local> *.corp"))
	require.NoError(t, j.SetSecurityFlags(dojob.SecurityFlagIgnoreCertCNInvalid))
	require.NoError(t, m.Close())

	m, err = dojob.NewManager(dojob.Config{StateDir: state})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	j, err = m.Job(id)
	require.NoError(t, err)
	usage, pl, bl := j.ProxySettings()
	assert.Equal(t, dojob.ProxyOverride, usage)
	assert.Equal(t, proxy.URL()+" https=127.0.0.1:1", pl)
	assert.Equal(t, "<local> *.corp", bl)
	assert.Equal(t, dojob.SecurityFlagIgnoreCertCNInvalid, j.SecurityFlags())
	require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
	require.NoError(t, j.Complete())
	assert.Equal(t, srv.SHA256("/f"), fileSHA256(t, filepath.Join(dir, "f")))
	assert.Len(t, proxy.Requests(), 1)
}

// TestSetProxySettingsRejected: the argument rules and their codes; a
// refused call changes nothing.
func TestSetProxySettingsRejected(t *testing.T) {
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	j, err := m.CreateJob("p")
	require.NoError(t, err)
	require.NoError(t, j.SetProxySettings(dojob.ProxyOverride, "proxy.test:8080", "<local>"))
	long := strings.Repeat("a", 4001)
	for _, c := range []struct {
		usage        dojob.ProxyUsage
		list, bypass string
		code         dojob.HRESULT
	}{
		{dojob.ProxyAutodetect, "", "", dojob.ErrNotImplemented},
		{dojob.ProxyUsage(4), "", "", dojob.ErrNotImplemented},
		{dojob.ProxyUsage(-1), "", "", dojob.ErrNotImplemented},
		{dojob.ProxyPreconfig, "proxy.test", "", dojob.ErrInvalidArg},
		{dojob.ProxyNoProxy, "", "<local>", dojob.ErrInvalidArg},
		{dojob.ProxyOverride, "", "", dojob.ErrInvalidArg},
		{dojob.ProxyOverride, " ; ", "", dojob.ErrInvalidArg},
		{dojob.ProxyOverride, "proxy.test\r\nX: 1", "", dojob.ErrInvalidArg},
		{dojob.ProxyOverride, long, "", dojob.ErrProxyListTooLarge},
		{dojob.ProxyOverride, "proxy.test", long, dojob.ErrProxyBypassListTooLarge},
	} {
		err := j.SetProxySettings(c.usage, c.list, c.bypass)
		require.ErrorIs(t, err, c.code, "%v %q %q", c.usage, c.list, c.bypass)
	}
	usage, pl, bl := j.ProxySettings()
	assert.Equal(t, dojob.ProxyOverride, usage)
	assert.Equal(t, "proxy.test:8080", pl)
	assert.Equal(t, "<local>", bl)
	// 4,000 characters are accepted.
	require.NoError(t, j.SetProxySettings(dojob.ProxyOverride, strings.Repeat("a", 4000), ""))
	require.NoError(t, j.SetProxySettings(dojob.ProxyPreconfig, "", ""))
	usage, pl, bl = j.ProxySettings()
	assert.Equal(t, dojob.ProxyPreconfig, usage)
	assert.Equal(t, "", pl+bl)

	require.NoError(t, j.Cancel())
	require.ErrorIs(t, j.SetProxySettings(dojob.ProxyNoProxy, "", ""), dojob.ErrInvalidState)
}

// roundTripFunc is an http.RoundTripper that is not an *http.Transport.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestNetSettingsNeedHTTPTransport: a Manager whose client's Transport is
// not an *http.Transport cannot derive a job's transport: NO_PROXY,
// OVERRIDE and security flags are ErrNotImplemented; PRECONFIG and no flags
// are accepted. Config.RootCAs
// with a client of the caller's is ErrInvalidArg.
func TestNetSettingsNeedHTTPTransport(t *testing.T) {
	rt := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("unused") })
	m, err := dojob.NewManager(dojob.Config{HTTPClient: &http.Client{Transport: rt}})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	j, err := m.CreateJob("p")
	require.NoError(t, err)
	require.ErrorIs(t, j.SetProxySettings(dojob.ProxyNoProxy, "", ""), dojob.ErrNotImplemented)
	require.ErrorIs(t, j.SetProxySettings(dojob.ProxyOverride, "proxy.test", ""), dojob.ErrNotImplemented)
	require.ErrorIs(t, j.SetSecurityFlags(dojob.SecurityFlagIgnoreUnknownCA), dojob.ErrNotImplemented)
	require.NoError(t, j.SetProxySettings(dojob.ProxyPreconfig, "", ""))
	require.NoError(t, j.SetSecurityFlags(0))

	_, err = dojob.NewManager(dojob.Config{HTTPClient: http.DefaultClient, RootCAs: srvRoots(t)})
	require.ErrorIs(t, err, dojob.ErrInvalidArg)
}

// srvRoots returns a pool holding a TLS test server's certificate.
func srvRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	srv := dojobtest.NewTLSServer(t)
	return srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
}

// TestNetSettingsConcurrent: proxy settings and security flags change
// while the jobs' files are being fetched, from several goroutines (run
// with -race); every file arrives whole, through the proxy or not.
func TestNetSettingsConcurrent(t *testing.T) {
	srv := dojobtest.NewServer(t, dojobtest.WithSize(64<<10))
	proxy := dojobtest.NewProxy(t)
	m, err := dojob.NewManager(dojob.Config{MaxBackgroundJobs: 3})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	dir := t.TempDir()
	var jobs []*dojob.Job
	for i := range 3 {
		j, err := m.CreateJob("c")
		require.NoError(t, err)
		for k := range 6 {
			p := "/j" + string(rune('0'+i)) + "f" + string(rune('0'+k))
			require.NoError(t, j.AddFile(srv.FileURL(p), filepath.Join(dir, strings.ReplaceAll(p, "/", "_"))))
		}
		require.NoError(t, j.SetMaxParallelFiles(3))
		jobs = append(jobs, j)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				j := jobs[(w+n)%len(jobs)]
				switch n % 4 {
				case 0:
					assert.NoError(t, j.SetProxySettings(dojob.ProxyOverride, proxy.URL(), ""))
				case 1:
					assert.NoError(t, j.SetProxySettings(dojob.ProxyNoProxy, "", ""))
				case 2:
					assert.NoError(t, j.SetSecurityFlags(dojob.SecurityFlagIgnoreCertCNInvalid))
				case 3:
					_, _, _ = j.ProxySettings()
					_ = j.SecurityFlags()
					assert.NoError(t, j.SetSecurityFlags(0))
				}
			}
		}()
	}
	for _, j := range jobs {
		require.NoError(t, j.Resume())
	}
	for _, j := range jobs {
		st, err := j.Wait(t.Context())
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
	}
	close(stop)
	wg.Wait()
	for _, j := range jobs {
		require.NoError(t, j.Complete())
		for _, f := range j.Files() {
			u, _ := url.Parse(f.RemoteURL)
			assert.Equal(t, srv.SHA256(u.Path), fileSHA256(t, f.LocalPath))
		}
	}
}
