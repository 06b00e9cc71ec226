package dojobtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// CA is a certificate authority made for a test: a self-signed root with
// an ECDSA P-256 key, valid from a year ago to a year from now, that issues
// leaf certificates (see Issue). Its methods are safe for concurrent use.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// NewCA makes a CA whose subject's common name is name. It calls tb.Fatal
// if a key or the certificate cannot be made.
func NewCA(tb testing.TB, name string) *CA {
	tb.Helper()
	key := newKey(tb)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(tb), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-365 * 24 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("dojobtest: making CA %q: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("dojobtest: making CA %q: %v", name, err)
	}
	return &CA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Pool returns a new pool that holds the CA's certificate: trust it as a
// client's RootCAs or a server's ClientCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// PEM returns the CA's certificate in PEM form (a copy).
func (ca *CA) PEM() []byte { return append([]byte(nil), ca.pem...) }

// CertOptions describe a leaf certificate for CA.Issue. The zero value is
// a server certificate with no names, valid from an hour ago to a day from
// now.
type CertOptions struct {
	// DNSNames and IPAddresses are the names the certificate is valid for.
	DNSNames    []string
	IPAddresses []net.IP
	// NotBefore and NotAfter bound its validity; zero means an hour ago
	// and a day from now. An expired certificate has both in the past.
	NotBefore, NotAfter time.Time
	// Client makes it a client certificate: its extended key usage is
	// client authentication instead of server authentication.
	Client bool
	// Usage, if not zero, is its only extended key usage, instead of the
	// one Client chooses (x509.ExtKeyUsageCodeSigning makes a certificate
	// of the wrong usage for TLS).
	Usage x509.ExtKeyUsage
}

// Cert is a leaf certificate a CA issued, with its key.
type Cert struct {
	// TLS is the certificate for a tls.Config (or a job's client
	// certificate): its chain holds the leaf alone, and Leaf is set.
	TLS tls.Certificate
	// CertPEM is the leaf certificate in PEM form.
	CertPEM []byte
	// KeyPEM is its private key, PKCS #8 in PEM form.
	KeyPEM []byte
}

// Issue makes a new key and a leaf certificate for it signed by the CA, as
// o says; its key usage is digital signature. It calls tb.Fatal if it
// cannot.
func (ca *CA) Issue(tb testing.TB, o CertOptions) *Cert {
	tb.Helper()
	key := newKey(tb)
	usage := o.Usage
	if usage == 0 {
		usage = x509.ExtKeyUsageServerAuth
		if o.Client {
			usage = x509.ExtKeyUsageClientAuth
		}
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(tb), Subject: pkix.Name{CommonName: "dojobtest leaf"},
		DNSNames: o.DNSNames, IPAddresses: o.IPAddresses,
		NotBefore: o.NotBefore, NotAfter: o.NotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(24 * time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatalf("dojobtest: issuing a certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("dojobtest: issuing a certificate: %v", err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatalf("dojobtest: issuing a certificate: %v", err)
	}
	return &Cert{
		TLS:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}),
	}
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("dojobtest: making a key: %v", err)
	}
	return k
}

// newSerial returns a random 128-bit serial number.
func newSerial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		tb.Fatalf("dojobtest: making a serial number: %v", err)
	}
	return n
}
