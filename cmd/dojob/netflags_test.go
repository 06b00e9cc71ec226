package main

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGetProxy: --proxy sends the download through the proxy (a host only
// it can reach), with the credentials of its URL; --noproxy sends the
// hosts it names direct; info shows the settings, the password hidden.
func TestGetProxy(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	p := dojobtest.NewProxy(t)
	purl := p.URL()
	state, dir := t.TempDir(), t.TempDir()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	remote := "http://files.invalid:" + port + "/file.bin"
	proxy := strings.Replace(purl, "://", "://alice:pr0xy-pw@", 1)

	r := runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "--proxy", proxy, "-o", filepath.Join(dir, "a"), remote)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/file.bin"), fileSHA256(t, filepath.Join(dir, "a")))
	reqs := p.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "files.invalid:"+port, reqs[0].Host)
	assert.NotEmpty(t, reqs[0].ProxyAuthorization)
	assert.NotContains(t, r.stdout+r.stderr, "pr0xy-pw")

	// --noproxy: 127.0.0.1 goes direct.
	r = runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "--proxy", purl, "--noproxy", "localhost,127.0.0.1",
		"-o", filepath.Join(dir, "b"), s.FileURL("/file.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Len(t, p.Requests(), 1)

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

// TestGetCacertCertInsecure: --cacert trusts a private CA, --cert/--key
// present a client certificate a server requires (without it the get fails
// with ERROR_WINHTTP_CLIENT_AUTH_CERT_NEEDED), -k accepts a server the
// job cannot verify.
func TestGetCacertCertInsecure(t *testing.T) {
	ca := dojobtest.NewCA(t, "dojob test CA")
	caPEM := ca.PEM()
	serverCert := ca.Issue(t, dojobtest.CertOptions{DNSNames: []string{"localhost"}})
	client := ca.Issue(t, dojobtest.CertOptions{Client: true})
	clientPEM, clientKey := client.CertPEM, client.KeyPEM
	body := []byte(strings.Repeat("tls ", 4096))
	srv := dojobtest.NewTLSServerConfig(t, &tls.Config{Certificates: []tls.Certificate{serverCert.TLS},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}, dojobtest.WithFile("/f", body))
	remote := strings.Replace(srv.FileURL("/f"), "127.0.0.1", "localhost", 1)

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
