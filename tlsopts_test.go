package dojob_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"log/slog"
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

// content is what the TLS test servers serve.
var content = dojobtest.Content("tls", 64<<10)

// tlsServer starts an HTTPS server on 127.0.0.1 with cert, requiring a
// client certificate from clientCAs if not nil; it returns the URL of its
// file at https://localhost:port.
func tlsServer(t *testing.T, cert *dojobtest.Cert, clientCAs *x509.CertPool) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	if clientCAs != nil {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, clientCAs
	}
	srv := dojobtest.NewTLSServerConfig(t, cfg, dojobtest.WithFile("/f", content))
	return strings.Replace(srv.FileURL("/f"), "127.0.0.1", "localhost", 1)
}

// fetchTLS runs a job for remote with set applied, and returns it in its
// final state.
func fetchTLS(t *testing.T, m *dojob.Manager, remote string, set func(*dojob.Job)) (*dojob.Job, dojob.State) {
	t.Helper()
	j, err := m.CreateJob("tls")
	require.NoError(t, err)
	require.NoError(t, j.AddFile(remote, filepath.Join(t.TempDir(), "f")))
	require.NoError(t, j.SetNoProgressTimeout(5*time.Second))
	require.NoError(t, j.SetMinimumRetryDelay(10*time.Millisecond))
	set(j)
	return j, resumeWait(t, j)
}

// warnings counts the Warn records of a Logger.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.Level == slog.LevelWarn {
		w.msgs = append(w.msgs, r.Message)
	}
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }
func (w *warnings) relaxed() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, m := range w.msgs {
		if strings.Contains(m, "relaxed") {
			n++
		}
	}
	return n
}

// TestSecurityFlags: each flag relaxes its own check and no other; a
// failed check is a fatal DO_E_HTTP_CERT_VALIDATION in GENERAL_TRANSPORT
// whose cause names the check and matches its Windows code; the job's CA
// PEM replaces the system's roots; a job that uses a flag warns once.
func TestSecurityFlags(t *testing.T) {
	ca, other := dojobtest.NewCA(t, "dojob test CA"), dojobtest.NewCA(t, "unknown CA")
	good := tlsServer(t, ca.Issue(t, dojobtest.CertOptions{DNSNames: []string{"localhost"}}), nil)
	unknown := tlsServer(t, other.Issue(t, dojobtest.CertOptions{DNSNames: []string{"localhost"}}), nil)
	wrongName := tlsServer(t, ca.Issue(t, dojobtest.CertOptions{DNSNames: []string{"wrong.test"}}), nil)
	wrongNameUnknown := tlsServer(t, other.Issue(t, dojobtest.CertOptions{DNSNames: []string{"wrong.test"}}), nil)
	expired := tlsServer(t, ca.Issue(t, dojobtest.CertOptions{DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}), nil)
	wrongUsage := tlsServer(t, ca.Issue(t, dojobtest.CertOptions{DNSNames: []string{"localhost"}, Usage: x509.ExtKeyUsageCodeSigning}), nil)

	w := &warnings{}
	m, err := dojob.NewManager(dojob.Config{Logger: slog.New(w)})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()

	const (
		ca_   = dojob.SecurityFlagIgnoreUnknownCA
		cn    = dojob.SecurityFlagIgnoreCertCNInvalid
		date  = dojob.SecurityFlagIgnoreCertDateInvalid
		usage = dojob.SecurityFlagIgnoreCertWrongUsage
	)
	relaxed := 0
	for _, c := range []struct {
		name   string
		url    string
		trust  bool // the job trusts ca
		flags  dojob.SecurityFlags
		failed dojob.HRESULT // 0: transferred
		says   string
	}{
		{"valid", good, true, 0, 0, ""},
		{"system roots only", good, false, 0, dojob.ErrCertUntrustedRoot, "unknown authority"},
		{"unknown CA", unknown, true, 0, dojob.ErrCertUntrustedRoot, "unknown authority"},
		{"unknown CA ignored", unknown, true, ca_, 0, ""},
		{"unknown CA, name ignored", unknown, true, cn, dojob.ErrCertUntrustedRoot, "unknown authority"},
		{"wrong name", wrongName, true, 0, dojob.ErrCertCNNoMatch, "another host name"},
		{"wrong name ignored", wrongName, true, cn, 0, ""},
		{"wrong name, CA ignored", wrongName, true, ca_, dojob.ErrCertCNNoMatch, "another host name"},
		{"wrong name, date ignored", wrongName, true, date, dojob.ErrCertCNNoMatch, "another host name"},
		{"wrong name and CA, name ignored", wrongNameUnknown, true, cn, dojob.ErrCertUntrustedRoot, "unknown authority"},
		{"wrong name and CA, both ignored", wrongNameUnknown, true, cn | ca_, 0, ""},
		{"expired", expired, true, 0, dojob.ErrCertExpired, "expired"},
		{"expired ignored", expired, true, date, 0, ""},
		{"expired, name ignored", expired, true, cn, dojob.ErrCertExpired, "expired"},
		{"expired, CA ignored", expired, true, ca_, dojob.ErrCertExpired, "expired"},
		{"expired ignored, CA ignored", expired, false, date | ca_, 0, ""},
		{"wrong usage", wrongUsage, true, 0, dojob.ErrCertWrongUsage, "not for server authentication"},
		{"wrong usage ignored", wrongUsage, true, usage, 0, ""},
		{"wrong usage, CA ignored", wrongUsage, true, ca_, dojob.ErrCertWrongUsage, "not for server authentication"},
	} {
		if c.flags != 0 {
			relaxed++
		}
		t.Run(c.name, func(t *testing.T) {
			j, st := fetchTLS(t, m, c.url, func(j *dojob.Job) {
				if c.trust {
					require.NoError(t, j.SetCertificateAuthorities(ca.PEM()))
				}
				require.NoError(t, j.SetSecurityFlags(c.flags))
			})
			if c.failed == 0 {
				require.Equal(t, dojob.StateTransferred, st)
				require.NoError(t, j.Complete())
				data, err := os.ReadFile(j.Files()[0].LocalPath)
				require.NoError(t, err)
				require.True(t, bytes.Equal(content, data))
			} else {
				require.Equal(t, dojob.StateError, st)
				jerr := mustJobError(t, j)
				assert.Equal(t, dojob.ErrCertValidation, jerr.Code)
				assert.Equal(t, dojob.ErrorContextGeneralTransport, jerr.Context)
				assert.False(t, jerr.Transient())
				assert.ErrorIs(t, jerr, c.failed)
				assert.Contains(t, jerr.Error(), c.says)
				assert.Contains(t, jerr.Error(), c.failed.Name())
				require.NoError(t, j.Cancel())
			}
		})
	}
	require.NoError(t, m.Close()) // the log queue is flushed
	assert.Equal(t, relaxed, w.relaxed(), "one warning per job with flags")
}

// TestSecurityFlagsWarnOncePerJob: a job of several files with a flag set
// warns once.
func TestSecurityFlagsWarnOncePerJob(t *testing.T) {
	ca := dojobtest.NewCA(t, "dojob test CA")
	u := tlsServer(t, ca.Issue(t, dojobtest.CertOptions{DNSNames: []string{"wrong.test"}}), nil)
	w := &warnings{}
	m, err := dojob.NewManager(dojob.Config{Logger: slog.New(w)})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	j, err := m.CreateJob("warn")
	require.NoError(t, err)
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		require.NoError(t, j.AddFile(u+"?"+n, filepath.Join(dir, n)))
	}
	require.NoError(t, j.SetCertificateAuthorities(ca.PEM()))
	require.NoError(t, j.SetSecurityFlags(dojob.SecurityFlagIgnoreCertCNInvalid))
	require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
	require.NoError(t, j.Complete())
	require.NoError(t, m.Close()) // the log queue is flushed
	assert.Equal(t, 1, w.relaxed())
}

// TestSecurityFlagsRejected: revocation checks are E_NOTIMPL, unknown bits
// (BITS's BG_SSL_* values among them) E_INVALIDARG; nothing changes.
func TestSecurityFlagsRejected(t *testing.T) {
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	j, err := m.CreateJob("flags")
	require.NoError(t, err)
	require.NoError(t, j.SetSecurityFlags(dojob.SecurityFlagIgnoreCertDateInvalid))
	require.ErrorIs(t, j.SetSecurityFlags(dojob.SecurityFlagEnableRevocation), dojob.ErrNotImplemented)
	require.ErrorIs(t, j.SetSecurityFlags(dojob.SecurityFlagEnableRevocation|dojob.SecurityFlagIgnoreUnknownCA), dojob.ErrNotImplemented)
	for _, f := range []dojob.SecurityFlags{0x2, 0x4, 0x8, 0x10, 0x80, 0x4000, 0x80000000} {
		require.ErrorIs(t, j.SetSecurityFlags(f), dojob.ErrInvalidArg, "%#x", uint32(f))
	}
	assert.Equal(t, dojob.SecurityFlagIgnoreCertDateInvalid, j.SecurityFlags())
	assert.Equal(t, "IGNORE_UNKNOWN_CA|IGNORE_CERT_CN_INVALID", (dojob.SecurityFlagIgnoreUnknownCA | dojob.SecurityFlagIgnoreCertCNInvalid).String())

	for _, p := range [][]byte{[]byte("not PEM"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")})} {
		require.ErrorIs(t, j.SetCertificateAuthorities(p), dojob.ErrInvalidArg)
	}
	assert.Nil(t, j.CertificateAuthorities())
	require.ErrorIs(t, j.SetClientCertificate(tls.Certificate{}), dojob.ErrInvalidArg)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	require.ErrorIs(t, j.SetClientCertificate(tls.Certificate{Certificate: [][]byte{[]byte("junk")}, PrivateKey: key}), dojob.ErrInvalidArg)
}

// TestClientCertificate: a server that requires a client certificate
// fails a job without one (fatal ERROR_WINHTTP_CLIENT_AUTH_CERT_NEEDED,
// naming the check) and serves a job with one.
func TestClientCertificate(t *testing.T) {
	ca, clients := dojobtest.NewCA(t, "server CA"), dojobtest.NewCA(t, "client CA")
	u := tlsServer(t, ca.Issue(t, dojobtest.CertOptions{DNSNames: []string{"localhost"}}), clients.Pool())
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()

	j, st := fetchTLS(t, m, u, func(j *dojob.Job) { require.NoError(t, j.SetCertificateAuthorities(ca.PEM())) })
	require.Equal(t, dojob.StateError, st)
	jerr := mustJobError(t, j)
	assert.Equal(t, dojob.ErrClientCertNeeded, jerr.Code)
	assert.Equal(t, dojob.ErrorContextGeneralTransport, jerr.Context)
	assert.False(t, jerr.Transient())
	assert.Contains(t, jerr.Error(), "certificate required")

	// The same job, given the certificate, resumes and succeeds.
	require.NoError(t, j.SetClientCertificate(clients.Issue(t, dojobtest.CertOptions{Client: true}).TLS))
	require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
	require.NoError(t, j.Complete())
	data, err := os.ReadFile(j.Files()[0].LocalPath)
	require.NoError(t, err)
	require.True(t, bytes.Equal(content, data))

	// A certificate of another authority is refused by the server.
	j, st = fetchTLS(t, m, u, func(j *dojob.Job) {
		require.NoError(t, j.SetCertificateAuthorities(ca.PEM()))
		require.NoError(t, j.SetClientCertificate(ca.Issue(t, dojobtest.CertOptions{Client: true}).TLS))
	})
	require.Equal(t, dojob.StateError, st)
	jerr = mustJobError(t, j)
	assert.Contains(t, []dojob.HRESULT{dojob.ErrSecureFailure, dojob.ErrClientCertNeeded}, jerr.Code)
	assert.False(t, jerr.Transient())
	require.NoError(t, j.Cancel())
}

// TestClientCertificateNotPersisted: the CA PEM is persisted, the client
// certificate's key is not; the reloaded job fails at once, saying so,
// until the certificate is set again.
func TestClientCertificateNotPersisted(t *testing.T) {
	ca, clients := dojobtest.NewCA(t, "server CA"), dojobtest.NewCA(t, "client CA")
	u := tlsServer(t, ca.Issue(t, dojobtest.CertOptions{DNSNames: []string{"localhost"}}), clients.Pool())
	cert := clients.Issue(t, dojobtest.CertOptions{Client: true}).TLS
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	require.NoError(t, err)
	state := t.TempDir()

	m, err := dojob.NewManager(dojob.Config{StateDir: state})
	require.NoError(t, err)
	j, err := m.CreateJob("cert")
	require.NoError(t, err)
	id := j.ID()
	require.NoError(t, j.AddFile(u, filepath.Join(t.TempDir(), "f")))
	require.NoError(t, j.SetCertificateAuthorities(ca.PEM()))
	require.NoError(t, j.SetClientCertificate(cert))
	require.NoError(t, m.Close())

	entries, err := os.ReadDir(filepath.Join(state, "jobs"))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	rec, err := os.ReadFile(filepath.Join(state, "jobs", entries[0].Name()))
	require.NoError(t, err)
	assert.NotContains(t, string(rec), base64.StdEncoding.EncodeToString(keyDER))
	assert.NotContains(t, string(rec), base64.StdEncoding.EncodeToString(cert.Certificate[0]))
	assert.Contains(t, string(rec), `"client_certificate":true`)

	m, err = dojob.NewManager(dojob.Config{StateDir: state})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	j, err = m.Job(id)
	require.NoError(t, err)
	assert.Equal(t, ca.PEM(), j.CertificateAuthorities())
	set, lost := j.HasClientCertificate()
	assert.False(t, set)
	assert.True(t, lost)
	require.NoError(t, j.SetNoProgressTimeout(5*time.Second))
	require.Equal(t, dojob.StateError, resumeWait(t, j))
	jerr := mustJobError(t, j)
	assert.Equal(t, dojob.ErrClientCertNeeded, jerr.Code)
	assert.Contains(t, jerr.Error(), "not persisted")

	require.NoError(t, j.SetClientCertificate(cert))
	set, lost = j.HasClientCertificate()
	assert.True(t, set)
	assert.False(t, lost)
	require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
	require.NoError(t, j.Complete())
}
