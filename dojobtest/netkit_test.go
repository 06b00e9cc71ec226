package dojobtest_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dojob/dojob/dojobtest"
)

// getBody fetches u with c and returns the body, requiring a 200.
func getBody(t *testing.T, c *http.Client, u string) []byte {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

// TestProxy: an absolute-URI GET for a host that does not resolve reaches
// the server at 127.0.0.1 through the Proxy, which records it with the
// credentials it got; an https GET goes through a CONNECT tunnel, recorded
// with its authority; Close ends the tunnel the client keeps open (TestMain
// checks that no goroutine is left).
func TestProxy(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(10<<10))
	ts := dojobtest.NewTLSServer(t, dojobtest.WithSize(10<<10))
	p := dojobtest.NewProxy(t)
	require.True(t, strings.HasPrefix(p.URL(), "http://127.0.0.1:"), p.URL())
	pu, err := url.Parse(p.URL())
	require.NoError(t, err)
	pu.User = url.UserPassword("alice", "pw")

	tr := &http.Transport{Proxy: http.ProxyURL(pu)}
	defer tr.CloseIdleConnections()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	require.NoError(t, err)
	remote := "http://files.invalid:" + port + "/f"
	assert.Equal(t, s.Content("/f"), getBody(t, &http.Client{Transport: tr}, remote))

	tlsTr := ts.Client().Transport.(*http.Transport).Clone()
	tlsTr.Proxy = http.ProxyURL(pu)
	defer tlsTr.CloseIdleConnections()
	assert.Equal(t, ts.Content("/f"), getBody(t, &http.Client{Transport: tlsTr}, ts.FileURL("/f")))

	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw"))
	authority := strings.TrimPrefix(ts.URL, "https://")
	assert.Equal(t, []dojobtest.ProxyRequest{
		{Method: http.MethodGet, Host: "files.invalid:" + port, URL: remote, ProxyAuthorization: auth},
		{Method: http.MethodConnect, Host: authority, URL: authority, ProxyAuthorization: auth},
	}, p.Requests())
	require.Len(t, s.RequestsFor("/f"), 1)
	require.Len(t, ts.RequestsFor("/f"), 1)

	p.Close() // the https client's connection is still open: Close ends it
	p.Close()
	_, err = (&http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}).Get(remote)
	require.Error(t, err)
}

// TestProxyRange: a request's Range header is recorded and forwarded.
func TestProxyRange(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(10<<10))
	p := dojobtest.NewProxy(t)
	pu, err := url.Parse(p.URL())
	require.NoError(t, err)
	tr := &http.Transport{Proxy: http.ProxyURL(pu)}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, s.FileURL("/f"), nil)
	require.NoError(t, err)
	req.Header.Set("Range", "bytes=100-")
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, s.Content("/f")[100:], b)
	reqs := p.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "bytes=100-", reqs[0].Range)
	assert.Empty(t, reqs[0].ProxyAuthorization)
}

// TestCA: a leaf the CA issues verifies against Pool for its names and
// usage, and not against another CA's pool, past its validity or for
// another usage; its PEM forms load; a TLS server with it serves a client
// that trusts the CA, and requires the CA's client certificate.
func TestCA(t *testing.T) {
	ca, other := dojobtest.NewCA(t, "test CA"), dojobtest.NewCA(t, "other CA")
	block, _ := pem.Decode(ca.PEM())
	require.NotNil(t, block)
	caCert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	assert.Equal(t, "test CA", caCert.Subject.CommonName)
	assert.True(t, caCert.IsCA)

	leaf := ca.Issue(t, dojobtest.CertOptions{DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	verify := func(c *x509.Certificate, pool *x509.CertPool, name string, usage x509.ExtKeyUsage, at time.Time) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: at})
		return err
	}
	now := time.Now()
	require.NoError(t, verify(leaf.TLS.Leaf, ca.Pool(), "localhost", x509.ExtKeyUsageServerAuth, now))
	require.NoError(t, verify(leaf.TLS.Leaf, ca.Pool(), "127.0.0.1", x509.ExtKeyUsageServerAuth, now))
	assert.Error(t, verify(leaf.TLS.Leaf, other.Pool(), "localhost", x509.ExtKeyUsageServerAuth, now))
	assert.Error(t, verify(leaf.TLS.Leaf, ca.Pool(), "other.test", x509.ExtKeyUsageServerAuth, now))
	assert.Error(t, verify(leaf.TLS.Leaf, ca.Pool(), "localhost", x509.ExtKeyUsageClientAuth, now))
	assert.Error(t, verify(leaf.TLS.Leaf, ca.Pool(), "localhost", x509.ExtKeyUsageServerAuth, now.Add(25*time.Hour)))
	expired := ca.Issue(t, dojobtest.CertOptions{DNSNames: []string{"localhost"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	assert.Error(t, verify(expired.TLS.Leaf, ca.Pool(), "localhost", x509.ExtKeyUsageServerAuth, now))
	signing := ca.Issue(t, dojobtest.CertOptions{DNSNames: []string{"localhost"}, Usage: x509.ExtKeyUsageCodeSigning})
	assert.Error(t, verify(signing.TLS.Leaf, ca.Pool(), "localhost", x509.ExtKeyUsageServerAuth, now))

	client := ca.Issue(t, dojobtest.CertOptions{Client: true})
	require.NoError(t, verify(client.TLS.Leaf, ca.Pool(), "", x509.ExtKeyUsageClientAuth, now))
	kp, err := tls.X509KeyPair(client.CertPEM, client.KeyPEM)
	require.NoError(t, err)
	assert.Equal(t, client.TLS.Certificate, kp.Certificate)

	s := dojobtest.NewTLSServerConfig(t, &tls.Config{Certificates: []tls.Certificate{leaf.TLS},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}, dojobtest.WithSize(1000))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{kp}}}
	defer tr.CloseIdleConnections()
	assert.Equal(t, s.Content("/f"), getBody(t, &http.Client{Transport: tr}, s.FileURL("/f")))
	noCert := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
	defer noCert.CloseIdleConnections()
	_, err = (&http.Client{Transport: noCert}).Get(strings.Replace(s.FileURL("/f"), "127.0.0.1", "localhost", 1))
	assert.ErrorContains(t, err, "certificate required")
}
