package dojob

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Per-job network settings: the proxy (SetProxySettings) and TLS
// (SetSecurityFlags, SetCertificateAuthorities, SetClientCertificate).
//
// A job with settings other than the defaults has a *jobNet, an immutable
// snapshot replaced on every change, which travels with each request in its
// reqOpts. optsTransport sends such a request through a transport derived
// from the Manager's (a clone of its *http.Transport with the job's proxy
// and TLS configuration), taken from the Manager's netCache: one transport
// per distinct combination of settings, so jobs with the same settings
// share connections. Close closes the idle connections of every one.

// ProxyUsage says which proxy a job uses (BG_JOB_PROXY_USAGE).
type ProxyUsage int

// The proxy usages, numbered as BG_JOB_PROXY_USAGE.
const (
	// ProxyPreconfig uses the proxy the Manager's client chooses: for
	// dojob's own client, the environment (HTTP_PROXY, HTTPS_PROXY,
	// NO_PROXY, as http.ProxyFromEnvironment reads them); for a
	// Config.HTTPClient, whatever its Transport does. The default.
	ProxyPreconfig ProxyUsage = 0
	// ProxyNoProxy connects to every server directly, whatever the
	// environment or the client's Transport says.
	ProxyNoProxy ProxyUsage = 1
	// ProxyOverride uses the job's own proxy list and bypass list.
	ProxyOverride ProxyUsage = 2
	// ProxyAutodetect is BITS's automatic discovery (WPAD). dojob does not
	// implement it: SetProxySettings returns ErrNotImplemented.
	ProxyAutodetect ProxyUsage = 3
)

// String returns the usage's name, e.g. "OVERRIDE".
func (u ProxyUsage) String() string {
	switch u {
	case ProxyPreconfig:
		return "PRECONFIG"
	case ProxyNoProxy:
		return "NO_PROXY"
	case ProxyOverride:
		return "OVERRIDE"
	case ProxyAutodetect:
		return "AUTODETECT"
	}
	return fmt.Sprintf("ProxyUsage(%d)", int(u))
}

// maxProxyList is the most characters a proxy list or a bypass list may
// have: the 4,000 of SetProxySettings' parameter description (its return
// values speak of 32 KB; the smaller limit is the one BITS documents for
// the argument).
const maxProxyList = 4000

// SecurityFlags relax the checks of a server's TLS certificate, with the
// values of WinHTTP's SECURITY_FLAG_* as Delivery Optimization takes them
// (DODownloadProperty_SecurityFlags). Each is a loud opt-in: a job that
// uses one logs a warning (at slog.LevelWarn) the first time it does, and
// every other check is still made. BITS's own
// IBackgroundCopyJobHttpOptions flags (BG_SSL_*, 0x1 to 0x10) have other
// values and are not accepted.
type SecurityFlags uint32

// The security flags dojob honours.
const (
	// SecurityFlagIgnoreUnknownCA (SECURITY_FLAG_IGNORE_UNKNOWN_CA)
	// accepts a certificate whose chain does not end at a trusted root.
	// The host name, validity dates and key usage of the server's own
	// certificate are still checked (unless also ignored).
	SecurityFlagIgnoreUnknownCA SecurityFlags = 0x100
	// SecurityFlagIgnoreCertWrongUsage
	// (SECURITY_FLAG_IGNORE_CERT_WRONG_USAGE) accepts a certificate whose
	// extended key usage does not include server authentication.
	SecurityFlagIgnoreCertWrongUsage SecurityFlags = 0x200
	// SecurityFlagIgnoreCertCNInvalid (SECURITY_FLAG_IGNORE_CERT_CN_INVALID)
	// accepts a certificate issued for another host name. The chain and
	// the dates are still checked.
	SecurityFlagIgnoreCertCNInvalid SecurityFlags = 0x1000
	// SecurityFlagIgnoreCertDateInvalid
	// (SECURITY_FLAG_IGNORE_CERT_DATE_INVALID) accepts an expired or not
	// yet valid certificate: the chain is verified as of an instant inside
	// the validity of the certificates the server sent, and the host name
	// is still checked.
	SecurityFlagIgnoreCertDateInvalid SecurityFlags = 0x2000
	// SecurityFlagEnableRevocation (WINHTTP_ENABLE_SSL_REVOCATION) asks for
	// revocation checks, which Go's TLS stack does not make:
	// SetSecurityFlags returns ErrNotImplemented for it.
	SecurityFlagEnableRevocation SecurityFlags = 0x1
)

const securityFlagsKnown = SecurityFlagIgnoreUnknownCA | SecurityFlagIgnoreCertWrongUsage |
	SecurityFlagIgnoreCertCNInvalid | SecurityFlagIgnoreCertDateInvalid

// String lists the flags set, e.g. "IGNORE_UNKNOWN_CA|IGNORE_CERT_CN_INVALID",
// or "0".
func (f SecurityFlags) String() string {
	if f == 0 {
		return "0"
	}
	var parts []string
	for _, x := range []struct {
		f    SecurityFlags
		name string
	}{
		{SecurityFlagEnableRevocation, "ENABLE_SSL_REVOCATION"},
		{SecurityFlagIgnoreUnknownCA, "IGNORE_UNKNOWN_CA"},
		{SecurityFlagIgnoreCertWrongUsage, "IGNORE_CERT_WRONG_USAGE"},
		{SecurityFlagIgnoreCertCNInvalid, "IGNORE_CERT_CN_INVALID"},
		{SecurityFlagIgnoreCertDateInvalid, "IGNORE_CERT_DATE_INVALID"},
	} {
		if f&x.f != 0 {
			parts = append(parts, x.name)
			f &^= x.f
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(f)))
	}
	return strings.Join(parts, "|")
}

// maxCAPEM bounds the PEM text SetCertificateAuthorities takes: it is kept
// in the job's record.
const maxCAPEM = 1 << 20

// jobNet is a job's network settings other than the defaults. It is never
// modified once made: a change replaces it (jobNetLocked, setNetLocked).
type jobNet struct {
	usage     ProxyUsage
	proxyList string
	bypass    string
	flags     SecurityFlags
	caPEM     []byte         // the job's trusted roots, PEM; nil: the Manager's
	roots     *x509.CertPool // caPEM parsed
	cert      *tls.Certificate
	certID    string // the client certificate's identity in key (its chain's digest)
	// certLost: the record says a client certificate was set, and none
	// was set again since the job was reloaded (it is not persisted).
	certLost bool
	warned   *atomic.Bool // the security flags' warning was logged
	// tkey is key() of the settings installed in a job (setNetLocked),
	// which never change afterwards: a request finds its transport without
	// hashing the CA PEM (up to 1 MiB) again.
	tkey string
}

// isDefault reports whether n changes nothing.
func (n *jobNet) isDefault() bool {
	return n.usage == ProxyPreconfig && n.flags == 0 && n.caPEM == nil && n.cert == nil && !n.certLost
}

// key identifies the transport n needs: equal keys share one.
func (n *jobNet) key() string {
	ca := ""
	if n.caPEM != nil {
		s := sha256.Sum256(n.caPEM)
		ca = hex.EncodeToString(s[:])
	}
	return strconv.Itoa(int(n.usage)) + "\x00" + n.proxyList + "\x00" + n.bypass + "\x00" +
		strconv.FormatUint(uint64(n.flags), 16) + "\x00" + ca + "\x00" + n.certID
}

// jobNetLocked returns a copy of the job's settings to change.
func (j *Job) jobNetLocked() jobNet {
	if j.net == nil {
		return jobNet{}
	}
	return *j.net
}

// setNetLocked installs n (nil when it is the defaults); it reports whether
// anything changed.
func (j *Job) setNetLocked(n jobNet) bool {
	old := j.jobNetLocked()
	if old.key() == n.key() && old.certLost == n.certLost {
		return false
	}
	if n.isDefault() {
		j.net = nil
		return true
	}
	n.warned = new(atomic.Bool)
	n.tkey = n.key()
	j.net = &n
	return true
}

// canDerive reports whether per-job settings can be applied: the Manager's
// transport is an *http.Transport dojob can clone.
func (j *Job) canDerive() error {
	if j.m.nets.base == nil {
		return errorf(ErrNotImplemented, "per-job proxy and TLS settings need Config.HTTPClient's Transport to be an *http.Transport")
	}
	return nil
}

// SetProxySettings sets the proxy the job uses
// (IBackgroundCopyJob::SetProxySettings). usage is one of ProxyPreconfig
// (the default: the Manager's client decides, for dojob's own client the
// environment), ProxyNoProxy (direct connections, whatever the environment
// says) and ProxyOverride (proxyList and bypassList). ProxyAutodetect and
// values outside BG_JOB_PROXY_USAGE return ErrNotImplemented.
//
// Both lists must be empty unless usage is ProxyOverride, which requires a
// proxy list (ErrInvalidArg). Each may have at most 4,000 characters
// (ErrProxyListTooLarge, ErrProxyBypassListTooLarge) and no control
// character (ErrInvalidArg). Entries are separated by white space,
// semicolons or commas.
//
// A proxy is "[protocol=][scheme://][user:password@]host[:port]": protocol
// (http or https) makes the entry apply only to URLs of that scheme; scheme
// is the proxy's own, http (the default), https or socks5 (socks5h too);
// the port defaults to the scheme's (80, 443, 1080). A user and password
// need the scheme:// form, and are sent to the proxy as Basic credentials
// (or SOCKS5 user/password); SetCredentials with AuthTargetProxy replaces
// them on plain-HTTP requests. A request uses the first entry for its
// URL's scheme, else the first entry without a protocol, else no proxy; the
// others are not tried when it fails.
//
// A bypass entry is a host name or IP address (optionally with ":port"),
// "*" alone (every host), a name with a leading "*" wildcard ("*.example"
// matches every name ending in ".example"), or "<local>": host names
// without a period, and loopback addresses. Names match case-insensitively.
// Without "<local>", nothing is bypassed implicitly, not even loopback.
//
// As in BITS, the entries themselves are checked when the job uses them:
// one that does not parse moves the job to ERROR with the fatal
// ErrInvalidProxyInfo, in context GENERAL_TRANSPORT. A change applies from
// the next request. The settings are persisted with the job; messages and
// logs never show a proxy's password.
//
// ProxyNoProxy and ProxyOverride need the Manager's transport to be an
// *http.Transport (dojob's own, or Config.HTTPClient's), which the job's
// clones: another Transport returns ErrNotImplemented.
func (j *Job) SetProxySettings(usage ProxyUsage, proxyList, bypassList string) error {
	switch usage {
	case ProxyPreconfig, ProxyNoProxy, ProxyOverride:
	case ProxyAutodetect:
		return errorf(ErrNotImplemented, "proxy usage AUTODETECT is not supported")
	default:
		return errorf(ErrNotImplemented, "unknown proxy usage %d", int(usage))
	}
	switch {
	case utf8.RuneCountInString(proxyList) > maxProxyList:
		return errorf(ErrProxyListTooLarge, "proxy list longer than %d characters", maxProxyList)
	case utf8.RuneCountInString(bypassList) > maxProxyList:
		return errorf(ErrProxyBypassListTooLarge, "proxy bypass list longer than %d characters", maxProxyList)
	case !validFieldValue(proxyList) || !validFieldValue(bypassList):
		return errorf(ErrInvalidArg, "proxy list or bypass list holds a control character")
	case usage != ProxyOverride && (strings.TrimSpace(proxyList) != "" || strings.TrimSpace(bypassList) != ""):
		return errorf(ErrInvalidArg, "proxy lists must be empty unless the usage is OVERRIDE")
	case usage == ProxyOverride && len(splitList(proxyList)) == 0:
		return errorf(ErrInvalidArg, "proxy usage OVERRIDE needs a proxy list")
	}
	if usage != ProxyPreconfig {
		if err := j.canDerive(); err != nil {
			return err
		}
	}
	if usage != ProxyOverride {
		proxyList, bypassList = "", ""
	}
	return j.update(func() (bool, error) {
		n := j.jobNetLocked()
		n.usage, n.proxyList, n.bypass = usage, proxyList, bypassList
		return j.setNetLocked(n), nil
	})
}

// ProxySettings returns the job's proxy usage, proxy list and bypass list
// (IBackgroundCopyJob::GetProxySettings), as set (the lists may hold a
// proxy's password, as given).
func (j *Job) ProxySettings() (ProxyUsage, string, string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := j.jobNetLocked()
	return n.usage, n.proxyList, n.bypass
}

// SetSecurityFlags relaxes the checks of the servers' TLS certificates for
// this job (DO's DODownloadProperty_SecurityFlags; see SecurityFlags for
// each flag); 0, the default, checks everything. Each flag relaxes one
// check only: the others are still made, and a job that uses a flag logs a
// warning the first time it does. SecurityFlagEnableRevocation returns
// ErrNotImplemented (Go makes no revocation checks); a bit outside the
// flags, BITS's BG_SSL_* values included, returns ErrInvalidArg.
//
// With a flag set dojob verifies the certificate itself, and learns the
// host name from the TLS connection: for a URL whose host is an IP
// address there is none, and the name check fails unless
// SecurityFlagIgnoreCertCNInvalid is set too.
//
// Flags other than 0 need the Manager's transport to be an
// *http.Transport (ErrNotImplemented otherwise). The flags are persisted
// with the job and apply from the next connection.
func (j *Job) SetSecurityFlags(flags SecurityFlags) error {
	if flags&SecurityFlagEnableRevocation != 0 {
		return errorf(ErrNotImplemented, "certificate revocation checks are not supported")
	}
	if flags&^securityFlagsKnown != 0 {
		return errorf(ErrInvalidArg, "unknown security flags %#x (the values are WinHTTP's SECURITY_FLAG_IGNORE_*)", uint32(flags&^securityFlagsKnown))
	}
	if flags != 0 {
		if err := j.canDerive(); err != nil {
			return err
		}
	}
	return j.update(func() (bool, error) {
		n := j.jobNetLocked()
		n.flags = flags
		return j.setNetLocked(n), nil
	})
}

// SecurityFlags returns the flags set by SetSecurityFlags.
func (j *Job) SecurityFlags() SecurityFlags {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.jobNetLocked().flags
}

// SetCertificateAuthorities sets the certificates the job trusts as roots,
// as PEM ("CERTIFICATE" blocks; other blocks are ignored), in place of the
// Manager's roots (Config.RootCAs, else the system's) — as curl's --cacert
// does. nil or empty removes them. PEM with no certificate, a certificate
// that does not parse, or more than 1 MiB returns ErrInvalidArg. The PEM is
// persisted with the job; it needs the Manager's transport to be an
// *http.Transport (ErrNotImplemented otherwise). It applies from the next
// connection.
func (j *Job) SetCertificateAuthorities(pemCerts []byte) error {
	var roots *x509.CertPool
	if len(pemCerts) > 0 {
		var err error
		if roots, err = parseCAPEM(pemCerts); err != nil {
			return err
		}
		if err := j.canDerive(); err != nil {
			return err
		}
		pemCerts = append([]byte(nil), pemCerts...)
	} else {
		pemCerts = nil
	}
	return j.update(func() (bool, error) {
		n := j.jobNetLocked()
		n.caPEM, n.roots = pemCerts, roots
		return j.setNetLocked(n), nil
	})
}

// CertificateAuthorities returns a copy of the PEM set by
// SetCertificateAuthorities, nil if none.
func (j *Job) CertificateAuthorities() []byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := j.jobNetLocked()
	if n.caPEM == nil {
		return nil
	}
	return append([]byte(nil), n.caPEM...)
}

// parseCAPEM parses trusted roots as SetCertificateAuthorities takes them.
func parseCAPEM(data []byte) (*x509.CertPool, error) {
	if len(data) > maxCAPEM {
		return nil, errorf(ErrInvalidArg, "certificate authorities over %d bytes of PEM", maxCAPEM)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errorf(ErrInvalidArg, "certificate authority %d does not parse: %v", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errorf(ErrInvalidArg, "no PEM CERTIFICATE block among the certificate authorities")
	}
	return pool, nil
}

// SetClientCertificate sets the certificate (with its private key) the job
// presents to servers that ask for one
// (IBackgroundCopyJobHttpOptions::SetClientCertificateByID's role, DO's
// SecurityContext). A certificate without a chain or a private key, or
// whose first certificate does not parse, returns ErrInvalidArg. It needs
// the Manager's transport to be an *http.Transport (ErrNotImplemented
// otherwise) and applies from the next connection.
//
// The private key is never written to the state directory: the record
// notes only that the job had a client certificate. A job reloaded from it
// must be given the certificate again; until then each of its transfers
// fails at once (ERROR, fatal ErrClientCertNeeded, context
// GENERAL_TRANSPORT, saying so) instead of connecting without it — Resume
// after SetClientCertificate continues. RemoveClientCertificate clears
// both.
func (j *Job) SetClientCertificate(cert tls.Certificate) error {
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return errorf(ErrInvalidArg, "a client certificate needs its certificate chain and private key")
	}
	if _, err := x509.ParseCertificate(cert.Certificate[0]); err != nil {
		return errorf(ErrInvalidArg, "the client certificate does not parse: %v", err)
	}
	if err := j.canDerive(); err != nil {
		return err
	}
	h := sha256.New()
	for _, c := range cert.Certificate {
		h.Write(c)
	}
	id := hex.EncodeToString(h.Sum(nil))
	c := cert
	return j.update(func() (bool, error) {
		n := j.jobNetLocked()
		n.cert, n.certID, n.certLost = &c, id, false
		return j.setNetLocked(n), nil
	})
}

// RemoveClientCertificate removes the job's client certificate
// (IBackgroundCopyJobHttpOptions::RemoveClientCertificate), or the note
// that a reloaded job had one. Removing none does nothing.
func (j *Job) RemoveClientCertificate() error {
	return j.update(func() (bool, error) {
		n := j.jobNetLocked()
		n.cert, n.certID, n.certLost = nil, "", false
		return j.setNetLocked(n), nil
	})
}

// HasClientCertificate reports whether the job has a client certificate,
// and whether it must be set again (a reloaded job: the certificate is not
// persisted).
func (j *Job) HasClientCertificate() (set, lost bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := j.jobNetLocked()
	return n.cert != nil, n.certLost
}

// recordNet is the part of the record that holds the network settings
// (added within version 1; absent: the defaults).
type recordNet struct {
	ProxyUsage  ProxyUsage    `json:"proxy_usage,omitempty"`
	ProxyList   string        `json:"proxy_list,omitempty"`
	ProxyBypass string        `json:"proxy_bypass,omitempty"`
	Security    SecurityFlags `json:"security_flags,omitempty"`
	CACerts     string        `json:"ca_certificates,omitempty"` // PEM
	// ClientCert says a client certificate was set: the certificate and
	// its key are not persisted.
	ClientCert bool `json:"client_certificate,omitempty"`
}

// recordNetLocked is the record's form of the job's settings.
func (j *Job) recordNetLocked() recordNet {
	n := j.jobNetLocked()
	return recordNet{ProxyUsage: n.usage, ProxyList: n.proxyList, ProxyBypass: n.bypass, Security: n.flags,
		CACerts: string(n.caPEM), ClientCert: n.cert != nil || n.certLost}
}

// check validates the settings as the setters leave them.
func (r recordNet) check() error {
	switch {
	case r.ProxyUsage != ProxyPreconfig && r.ProxyUsage != ProxyNoProxy && r.ProxyUsage != ProxyOverride,
		r.ProxyUsage != ProxyOverride && (r.ProxyList != "" || r.ProxyBypass != ""),
		r.ProxyUsage == ProxyOverride && len(splitList(r.ProxyList)) == 0,
		utf8.RuneCountInString(r.ProxyList) > maxProxyList, utf8.RuneCountInString(r.ProxyBypass) > maxProxyList,
		!validFieldValue(r.ProxyList), !validFieldValue(r.ProxyBypass),
		r.Security&^securityFlagsKnown != 0:
		return errors.New("record holds invalid network settings")
	}
	if r.CACerts != "" {
		if _, err := parseCAPEM([]byte(r.CACerts)); err != nil {
			return errors.New("record holds invalid certificate authorities")
		}
	}
	return nil
}

// restoreNet sets the job's settings from its (checked) record.
func (j *Job) restoreNet(r recordNet) {
	n := jobNet{usage: r.ProxyUsage, proxyList: r.ProxyList, bypass: r.ProxyBypass, flags: r.Security, certLost: r.ClientCert}
	if r.CACerts != "" {
		n.caPEM = []byte(r.CACerts)
		n.roots, _ = parseCAPEM(n.caPEM) // checked by readRecord
	}
	j.setNetLocked(n)
}

// splitList splits a proxy or bypass list into its entries.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == ';' || r == ',' })
}

// netCache holds the transports derived for jobs' settings.
type netCache struct {
	m    *Manager
	base *http.Transport // the transport to clone; nil when the client's is not an *http.Transport
	mu   sync.Mutex
	trs  map[string]*http.Transport
}

// transport returns the transport for n, deriving it the first time.
func (c *netCache) transport(n *jobNet) (*http.Transport, error) {
	if n.certLost {
		return nil, &JobError{Context: ErrorContextGeneralTransport, Code: ErrClientCertNeeded,
			Err: errors.New("the job's client certificate is not persisted: set it again (SetClientCertificate) and resume the job")}
	}
	if c.base == nil {
		return nil, &JobError{Context: ErrorContextGeneralTransport, Code: ErrNotImplemented,
			Err: errors.New("per-job proxy and TLS settings need Config.HTTPClient's Transport to be an *http.Transport")}
	}
	key := n.tkey
	if key == "" {
		key = n.key()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if tr := c.trs[key]; tr != nil {
		return tr, nil
	}
	tr := c.base.Clone()
	switch n.usage {
	case ProxyNoProxy:
		tr.Proxy = nil
	case ProxyOverride:
		p, err := parseProxies(n.proxyList, n.bypass)
		if err != nil {
			return nil, &JobError{Context: ErrorContextGeneralTransport, Code: ErrInvalidProxyInfo, Err: err}
		}
		tr.Proxy = p.proxy
	}
	if tr.GetProxyConnectHeader == nil {
		tr.GetProxyConnectHeader = proxyConnectHeader
	}
	if n.flags != 0 || n.roots != nil || n.cert != nil {
		cfg := tr.TLSClientConfig
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if n.roots != nil {
			cfg.RootCAs = n.roots
		}
		if n.cert != nil {
			cert := n.cert
			cfg.Certificates = nil
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		if n.flags != 0 {
			roots, flags, prev := cfg.RootCAs, n.flags, cfg.VerifyConnection
			cfg.InsecureSkipVerify = true
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				if err := verifyRelaxed(cs, roots, flags, time.Now()); err != nil {
					return err
				}
				if prev != nil {
					return prev(cs)
				}
				return nil
			}
		}
		tr.TLSClientConfig = cfg
	}
	if c.trs == nil {
		c.trs = make(map[string]*http.Transport)
	}
	c.trs[key] = tr
	return tr, nil
}

// closeIdle closes the idle connections of every derived transport (Close).
func (c *netCache) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tr := range c.trs {
		tr.CloseIdleConnections()
	}
}

// warn logs, once per settings of a job, that its TLS checks are relaxed.
func (c *netCache) warn(n *jobNet, host string) {
	if n.flags == 0 || !n.warned.CompareAndSwap(false, true) {
		return
	}
	c.m.logAsync(slog.LevelWarn, "dojob: TLS certificate checks relaxed for a job (SetSecurityFlags)",
		"flags", n.flags.String(), "host", host)
}

// proxies is a parsed proxy list and bypass list (ProxyOverride).
type proxies struct {
	list   []proxyEntry
	bypass []bypassEntry
}

type proxyEntry struct {
	proto string // "http", "https", or "" for every scheme
	u     *url.URL
}

type bypassEntry struct {
	local  bool   // <local>
	all    bool   // *
	suffix string // *suffix: the suffix, lower case
	host   string // an exact host, lower case
	port   string // "" for any
}

// RedactProxyList returns a proxy list (SetProxySettings' proxyList, as
// ProxySettings returns it) with the user and password of every entry
// replaced by REDACTED, its entries separated by spaces: a list fit for a
// log or a display.
func RedactProxyList(list string) string {
	entries := splitList(list)
	for i, e := range entries {
		entries[i] = redactEntry(e)
	}
	return strings.Join(entries, " ")
}

// redactEntry hides a password in a proxy entry for a message.
func redactEntry(e string) string {
	if i := strings.LastIndex(e, "@"); i >= 0 {
		if j := strings.Index(e, "://"); j >= 0 && j < i {
			return e[:j+3] + "REDACTED@" + e[i+1:]
		}
		return "REDACTED@" + e[i+1:]
	}
	return e
}

// parseProxies parses the lists of ProxyOverride. Its errors never show a
// password.
func parseProxies(list, bypass string) (*proxies, error) {
	p := &proxies{}
	for _, e := range splitList(list) {
		pe, err := parseProxyEntry(e)
		if err != nil {
			return nil, fmt.Errorf("invalid proxy %q: %v", redactEntry(e), err)
		}
		p.list = append(p.list, pe)
	}
	if len(p.list) == 0 {
		return nil, errors.New("empty proxy list")
	}
	for _, e := range splitList(bypass) {
		be, err := parseBypassEntry(e)
		if err != nil {
			return nil, fmt.Errorf("invalid proxy bypass entry %q: %v", e, err)
		}
		p.bypass = append(p.bypass, be)
	}
	return p, nil
}

func parseProxyEntry(e string) (proxyEntry, error) {
	var pe proxyEntry
	if i := strings.Index(e, "="); i >= 0 && !strings.Contains(e[:i], "/") && !strings.Contains(e[:i], "@") {
		pe.proto = strings.ToLower(e[:i])
		if pe.proto != "http" && pe.proto != "https" {
			return pe, fmt.Errorf("protocol %q is neither http nor https", e[:i])
		}
		e = e[i+1:]
	}
	raw := e
	if !strings.Contains(e, "://") {
		if strings.Contains(e, "@") {
			return pe, errors.New("a user and password need the scheme:// form")
		}
		raw = "http://" + e
	}
	u, err := url.Parse(raw)
	if err != nil {
		return pe, errors.New("does not parse as [scheme://]host[:port]")
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https", "socks5", "socks5h":
	default:
		return pe, fmt.Errorf("scheme %q is not http, https or socks5", u.Scheme)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return pe, errors.New("not of the form [scheme://]host[:port]")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return pe, fmt.Errorf("port %q out of range", port)
		}
	}
	u.Path = ""
	pe.u = u
	return pe, nil
}

func parseBypassEntry(e string) (bypassEntry, error) {
	var be bypassEntry
	switch {
	case strings.EqualFold(e, "<local>"):
		be.local = true
		return be, nil
	case e == "*":
		be.all = true
		return be, nil
	}
	host, port := e, ""
	if h, p, err := net.SplitHostPort(e); err == nil {
		host, port = h, p
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return be, fmt.Errorf("port %q out of range", p)
		}
	}
	host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if strings.HasPrefix(host, "*") {
		be.suffix = host[1:]
		host = be.suffix
	}
	if host == "" || strings.ContainsAny(host, "*/?#@<>\\") {
		return be, errors.New("not a host name, an IP address, *suffix or <local>")
	}
	if be.suffix == "" {
		be.host = host
	}
	be.port = port
	return be, nil
}

// proxy is the http.Transport.Proxy of a ProxyOverride job.
func (p *proxies) proxy(req *http.Request) (*url.URL, error) {
	if p.bypassed(req.URL) {
		return nil, nil
	}
	scheme := strings.ToLower(req.URL.Scheme)
	var fallback *url.URL
	for _, e := range p.list {
		if e.proto == scheme {
			return e.u, nil
		}
		if e.proto == "" && fallback == nil {
			fallback = e.u
		}
	}
	return fallback, nil
}

// bypassed reports whether a request to u goes direct.
func (p *proxies) bypassed(u *url.URL) bool {
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	ip := net.ParseIP(host)
	for _, b := range p.bypass {
		if b.port != "" && b.port != port {
			continue
		}
		switch {
		case b.all:
			return true
		case b.local:
			if (ip == nil && !strings.Contains(host, ".")) || (ip != nil && ip.IsLoopback()) {
				return true
			}
		case b.suffix != "":
			if strings.HasSuffix(host, b.suffix) {
				return true
			}
		case b.host == host:
			return true
		}
	}
	return false
}

// verifyRelaxed verifies a server's certificate as crypto/tls would, minus
// the checks flags relax: the chain to roots (nil: the system's) unless
// SecurityFlagIgnoreUnknownCA, the dates unless
// SecurityFlagIgnoreCertDateInvalid (then the chain is verified as of an
// instant within the validity of the certificates the server sent), the
// server-authentication usage unless SecurityFlagIgnoreCertWrongUsage, and
// the host name unless SecurityFlagIgnoreCertCNInvalid. Its errors are
// crypto/x509's, so classify names the failed check.
func verifyRelaxed(cs tls.ConnectionState, roots *x509.CertPool, flags SecurityFlags, now time.Time) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	leaf := certs[0]
	at := now
	if flags&SecurityFlagIgnoreCertDateInvalid != 0 {
		from, to := leaf.NotBefore, leaf.NotAfter
		for _, c := range certs[1:] {
			if c.NotBefore.After(from) {
				from = c.NotBefore
			}
			if c.NotAfter.Before(to) {
				to = c.NotAfter
			}
		}
		if at.Before(from) {
			at = from
		}
		if at.After(to) {
			at = to
		}
	}
	usages := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if flags&SecurityFlagIgnoreCertWrongUsage != 0 {
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	}
	if flags&SecurityFlagIgnoreUnknownCA == 0 {
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: usages}); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
		}
	} else {
		// No chain to verify: the server's own certificate is still
		// checked for its dates and usage.
		if at.Before(leaf.NotBefore) || at.After(leaf.NotAfter) {
			return &tls.CertificateVerificationError{UnverifiedCertificates: certs,
				Err: x509.CertificateInvalidError{Cert: leaf, Reason: x509.Expired,
					Detail: fmt.Sprintf("current time %s is outside %s to %s", at.UTC().Format(time.RFC3339),
						leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))}}
		}
		if flags&SecurityFlagIgnoreCertWrongUsage == 0 && len(leaf.ExtKeyUsage) > 0 && !hasServerAuth(leaf) {
			return &tls.CertificateVerificationError{UnverifiedCertificates: certs,
				Err: x509.CertificateInvalidError{Cert: leaf, Reason: x509.IncompatibleUsage}}
		}
	}
	if flags&SecurityFlagIgnoreCertCNInvalid == 0 {
		if cs.ServerName == "" {
			return &tls.CertificateVerificationError{UnverifiedCertificates: certs,
				Err: x509.HostnameError{Certificate: leaf, Host: "(an IP address: its name cannot be checked with security flags set)"}}
		}
		if err := leaf.VerifyHostname(cs.ServerName); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
		}
	}
	return nil
}

func hasServerAuth(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// tlsCheck names the check a TLS error failed, with its Windows code: an
// untrusted root (CERT_E_UNTRUSTEDROOT), a wrong host name
// (CERT_E_CN_NO_MATCH), an expired or not yet valid certificate
// (CERT_E_EXPIRED), a certificate not for server authentication
// (CERT_E_WRONG_USAGE), a client certificate the server required
// (ERROR_WINHTTP_CLIENT_AUTH_CERT_NEEDED) or refused
// (ERROR_WINHTTP_SECURE_FAILURE). ok is false for other errors.
func tlsCheck(err error) (code HRESULT, what string, ok bool) {
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var remote *net.OpError
	switch {
	case errors.As(err, &unknownAuth):
		return ErrCertUntrustedRoot, "the server's certificate is signed by an unknown authority", true
	case errors.As(err, &hostErr):
		return ErrCertCNNoMatch, "the server's certificate is for another host name", true
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return ErrCertExpired, "the server's certificate is expired or not yet valid", true
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return ErrCertWrongUsage, "the server's certificate is not for server authentication", true
	case errors.As(err, &invalid):
		return ErrCertValidation, "the server's certificate is invalid", true
	case errors.As(err, &remote) && remote.Op == "remote error" && remote.Err != nil:
		// An alert the server sent; crypto/tls exports no type for it, so
		// its text is matched.
		switch a := remote.Err.Error(); a {
		case "tls: certificate required": // TLS 1.3
			return ErrClientCertNeeded, "the server requires a client certificate", true
		case "tls: handshake failure", "tls: bad certificate", "tls: unsupported certificate", "tls: revoked certificate",
			"tls: expired certificate", "tls: unknown certificate", "tls: unknown certificate authority", "tls: access denied":
			return ErrSecureFailure, "the server refused the TLS handshake (" + a + "): it may require a client certificate, or refuse the one given", true
		}
	}
	return 0, "", false
}

// FailedCheck names the check a failed TLS certificate verification (Code
// ErrCertValidation) failed, with its Windows code: ErrCertUntrustedRoot,
// ErrCertCNNoMatch, ErrCertExpired or ErrCertWrongUsage, and a text such as
// "the server's certificate is for another host name (CERT_E_CN_NO_MATCH
// 0x800B010F)". Error includes the text, and errors.Is(e, code) holds. It
// returns 0 and "" for other errors, and for a JobError whose cause was
// not kept (one rebuilt from a record).
func (e *JobError) FailedCheck() (code HRESULT, text string) { return certDetail(e) }

// certDetail names the check a JobError of code ErrCertValidation failed,
// with its Windows code, e.g. "the server's certificate is for another host
// name (CERT_E_CN_NO_MATCH 0x800B010F)"; code is that code, 0 when unknown.
func certDetail(e *JobError) (code HRESULT, text string) {
	if e.Code != ErrCertValidation || e.Err == nil {
		return 0, ""
	}
	c, what, ok := tlsCheck(e.Err)
	if !ok || c == ErrCertValidation {
		return 0, ""
	}
	return c, fmt.Sprintf("%s (%s 0x%08X)", what, c.Name(), uint32(c))
}

// classifyTLS is classify's rule for TLS errors: a failed certificate check
// is a fatal ErrCertValidation (which also matches the check's own code,
// see certDetail); a client certificate the server required or refused is
// a fatal ErrClientCertNeeded or ErrSecureFailure. nil for other errors.
func classifyTLS(err error) *JobError {
	code, _, ok := tlsCheck(err)
	if !ok {
		return nil
	}
	e := &JobError{Context: ErrorContextGeneralTransport, Err: err, Code: ErrCertValidation}
	if code == ErrClientCertNeeded || code == ErrSecureFailure {
		e.Code = code
	}
	return e
}

// baseTransport is the transport jobs' settings derive from: dojob's own
// (with Config.RootCAs), or Config.HTTPClient's when it is an
// *http.Transport (http.DefaultTransport for a nil one); nil otherwise.
func baseTransport(own *http.Transport, cfg Config) *http.Transport {
	if own != nil {
		if cfg.RootCAs != nil {
			own.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs}
		}
		return own
	}
	rt := cfg.HTTPClient.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	tr, _ := rt.(*http.Transport)
	return tr
}
