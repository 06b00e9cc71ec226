package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
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

// countingProxy is a forward proxy for plain-HTTP requests on 127.0.0.1
// that sends them to 127.0.0.1 whatever their host, and counts them.
type countingProxy struct {
	mu    sync.Mutex
	hosts []string
	auth  []string
	tr    *http.Transport
}

func newCountingProxy(t *testing.T) (*countingProxy, string) {
	t.Helper()
	p := &countingProxy{tr: &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		var d net.Dialer
		return d.DialContext(ctx, "tcp4", "127.0.0.1:"+port)
	}}}
	srv := httptest.NewServer(p)
	t.Cleanup(func() { srv.Close(); p.tr.CloseIdleConnections() })
	return p, srv.URL
}

func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.hosts = append(p.hosts, r.Host)
	p.auth = append(p.auth, r.Header.Get("Proxy-Authorization"))
	p.mu.Unlock()
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Authorization")
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func (p *countingProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.hosts...)
}

// TestGetProxy: --proxy sends the download through the proxy (a host only
// it can reach), with the credentials of its URL; --noproxy sends the
// hosts it names direct; info shows the settings, the password hidden.
func TestGetProxy(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	p, purl := newCountingProxy(t)
	state, dir := t.TempDir(), t.TempDir()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	remote := "http://files.invalid:" + port + "/file.bin"
	proxy := strings.Replace(purl, "://", "://alice:pr0xy-pw@", 1)

	r := runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "--proxy", proxy, "-o", filepath.Join(dir, "a"), remote)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/file.bin"), fileSHA256(t, filepath.Join(dir, "a")))
	require.Len(t, p.seen(), 1)
	assert.Equal(t, "files.invalid:"+port, p.seen()[0])
	assert.NotEmpty(t, p.auth[0])
	assert.NotContains(t, r.stdout+r.stderr, "pr0xy-pw")

	// --noproxy: 127.0.0.1 goes direct.
	r = runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "--proxy", purl, "--noproxy", "localhost,127.0.0.1",
		"-o", filepath.Join(dir, "b"), s.FileURL("/file.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Len(t, p.seen(), 1)

	// A kept job shows its proxy in info, without the password.
	s404 := dojobtest.NewServer(t, dojobtest.Always(dojobtest.Status(404)))
	_, port404, _ := net.SplitHostPort(strings.TrimPrefix(s404.URL, "http://"))
	r = runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "--keep", "--proxy", proxy, "--noproxy", ".corp.example",
		"-k", "-o", filepath.Join(dir, "c"), "http://files.invalid:"+port404+"/missing")
	require.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "BG_E_HTTP_ERROR_404")
	id := jobID(t, r.stdout)
	r = runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "info", id)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `(?m)^Proxy: +OVERRIDE http://REDACTED@127\.0\.0\.1:\d+$`, r.stdout)
	assert.Regexp(t, `(?m)^Proxy bypass: +corp\.example \*\.corp\.example$`, r.stdout)
	assert.Regexp(t, `(?m)^Security flags: +IGNORE_UNKNOWN_CA\|IGNORE_CERT_WRONG_USAGE\|IGNORE_CERT_CN_INVALID\|IGNORE_CERT_DATE_INVALID`, r.stdout)
	assert.NotContains(t, r.stdout+r.stderr, "pr0xy-pw")
	assert.NotContains(t, r.stdout, "Client certificate")
}

// TestGetNetFlagsUsage: --noproxy without --proxy (other than "*"), --key
// without --cert, an empty --proxy and missing files are usage errors.
func TestGetNetFlagsUsage(t *testing.T) {
	state, dir := t.TempDir(), t.TempDir()
	for _, args := range [][]string{
		{"--noproxy", "a.example"}, {"--key", "k.pem"}, {"--proxy", ""},
		{"--cacert", filepath.Join(dir, "none.pem")}, {"--cert", filepath.Join(dir, "none.pem")},
	} {
		a := append([]string{"--state-dir", state, "get", "-d", dir}, args...)
		r := runCmd(t, testCtx(t, 10*time.Second), append(a, "http://127.0.0.1:1/f")...)
		assert.Equal(t, exitUsage, r.code, "%q: %s", args, r.stderr)
	}
	assert.Equal(t, "a.example *.a.example b.example *.b.example", bypassList("a.example, .b.example"))
	assert.Equal(t, "*", bypassList("x,*"))
}

// testCert issues a certificate; ca nil makes a self-signed CA.
func testCert(t *testing.T, ca *tls.Certificate, isCA bool, names []string, usage x509.ExtKeyUsage) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "test"}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	}
	parent, signer := tmpl, any(key)
	if ca != nil {
		parent, signer = ca.Leaf, ca.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

// TestGetCacertCertInsecure: --cacert trusts a private CA, --cert/--key
// present a client certificate a server requires (without it the get fails
// with ERROR_WINHTTP_CLIENT_AUTH_CERT_NEEDED), -k accepts a server the
// job cannot verify.
func TestGetCacertCertInsecure(t *testing.T) {
	ca, caPEM, _ := testCert(t, nil, true, nil, 0)
	serverCert, _, _ := testCert(t, &ca, false, []string{"localhost"}, x509.ExtKeyUsageServerAuth)
	_, clientPEM, clientKey := testCert(t, &ca, false, nil, x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Leaf)
	body := []byte(strings.Repeat("tls ", 4096))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	srv.Listener.Close()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	srv.Listener = ln
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	remote := "https://localhost:" + port + "/f"

	dir, state := t.TempDir(), t.TempDir()
	files := map[string][]byte{"ca.pem": caPEM, "client.pem": clientPEM, "client.key": clientKey, "both.pem": append(clientPEM, clientKey...)}
	for n, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), b, 0o600))
	}
	get := func(args ...string) result {
		a := append([]string{"--state-dir", state, "get", "--force", "-o", filepath.Join(dir, "out")}, args...)
		return runCmd(t, testCtx(t, 10*time.Second), append(a, remote)...)
	}
	r := get("--cacert", filepath.Join(dir, "ca.pem"))
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "ERROR_WINHTTP_CLIENT_AUTH_CERT_NEEDED")

	r = get("--cacert", filepath.Join(dir, "ca.pem"), "--cert", filepath.Join(dir, "client.pem"), "--key", filepath.Join(dir, "client.key"))
	require.Equal(t, exitOK, r.code, r.stderr)
	got, err := os.ReadFile(filepath.Join(dir, "out"))
	require.NoError(t, err)
	assert.Equal(t, body, got)

	// No --cacert: the system's roots do not know the CA; -k accepts it.
	r = get("--cert", filepath.Join(dir, "both.pem"))
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "CERT_E_UNTRUSTEDROOT")
	r = get("-k", "--cert", filepath.Join(dir, "both.pem"))
	require.Equal(t, exitOK, r.code, r.stderr)

	// A job's client certificate is not kept: info says to give it again,
	// resume fails saying so, and a get with --cert continues the job.
	m, err := dojob.NewManager(dojob.Config{StateDir: state})
	require.NoError(t, err)
	j, err := m.CreateJob("kept")
	require.NoError(t, err)
	kept := filepath.Join(dir, "kept")
	require.NoError(t, j.AddFile(remote, kept))
	require.NoError(t, j.SetCertificateAuthorities(caPEM))
	cc, err := tls.X509KeyPair(clientPEM, clientKey)
	require.NoError(t, err)
	require.NoError(t, j.SetClientCertificate(cc))
	id := j.ID().String()
	require.NoError(t, m.Close())
	r = runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "info", id)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `(?m)^Trusted roots: +the job's own`, r.stdout)
	assert.Regexp(t, `(?m)^Client certificate: +not kept: give --cert`, r.stdout)
	r = runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "resume", id)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "ERROR_WINHTTP_CLIENT_AUTH_CERT_NEEDED")
	assert.Contains(t, r.stderr, "not persisted")
	r = runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "-o", kept, "--cert", filepath.Join(dir, "both.pem"), remote)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "continuing job "+id)
	got, err = os.ReadFile(kept)
	require.NoError(t, err)
	assert.Equal(t, body, got)
}
