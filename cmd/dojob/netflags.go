package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/dojob/dojob"
)

// netFlags are get's proxy and TLS flags, after curl's: --proxy,
// --noproxy, --cacert, --cert, --key and -k/--insecure.
type netFlags struct {
	proxy    string
	noproxy  string
	cacert   string
	cert     string
	key      string
	insecure bool

	// What the files hold, read by load before the state directory is
	// opened.
	caPEM      []byte
	clientCert *tls.Certificate
	set        map[string]bool
}

// insecureFlags are the security flags of -k/--insecure: every check
// dojob can relax.
const insecureFlags = dojob.SecurityFlagIgnoreUnknownCA | dojob.SecurityFlagIgnoreCertCNInvalid |
	dojob.SecurityFlagIgnoreCertDateInvalid | dojob.SecurityFlagIgnoreCertWrongUsage

func (nf *netFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&nf.proxy, "proxy", "", "")
	fs.StringVar(&nf.noproxy, "noproxy", "", "")
	fs.StringVar(&nf.cacert, "cacert", "", "")
	fs.StringVar(&nf.cert, "cert", "", "")
	fs.StringVar(&nf.key, "key", "", "")
	fs.BoolVar(&nf.insecure, "k", false, "")
	fs.BoolVar(&nf.insecure, "insecure", false, "")
}

// given reports whether any of the flags was given.
func (nf *netFlags) given() bool { return len(nf.set) > 0 }

// load checks the flags and reads the files they name; fs has been parsed.
func (nf *netFlags) load(fs *flag.FlagSet) error {
	nf.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "proxy", "noproxy", "cacert", "cert", "key", "k", "insecure":
			nf.set[f.Name] = true
		}
	})
	if nf.set["proxy"] && strings.TrimSpace(nf.proxy) == "" {
		return errors.New("--proxy: empty proxy")
	}
	if nf.set["noproxy"] && !nf.set["proxy"] && strings.TrimSpace(nf.noproxy) != "*" {
		return errors.New(`--noproxy needs --proxy (or "*", no proxy at all); the environment's proxy takes NO_PROXY`)
	}
	if nf.set["key"] && !nf.set["cert"] {
		return errors.New("--key needs --cert")
	}
	if nf.cacert != "" {
		b, err := os.ReadFile(nf.cacert)
		if err != nil {
			return fmt.Errorf("--cacert: %w", err)
		}
		nf.caPEM = b
	}
	if nf.cert != "" {
		key := nf.key
		if key == "" {
			key = nf.cert // one PEM file with both, as curl takes it
		}
		c, err := tls.LoadX509KeyPair(nf.cert, key)
		if err != nil {
			return fmt.Errorf("--cert/--key: %w", err)
		}
		nf.clientCert = &c
	}
	return nil
}

// bypassList turns curl's --noproxy list (comma-separated names, each
// matching itself and its subdomains, a leading dot allowed) into a bypass
// list.
func bypassList(noproxy string) string {
	var out []string
	for _, h := range strings.Split(noproxy, ",") {
		h = strings.TrimPrefix(strings.TrimSpace(h), ".")
		if h == "" {
			continue
		}
		if h == "*" {
			return "*"
		}
		out = append(out, h, "*."+h)
	}
	return strings.Join(out, " ")
}

// apply sets the settings on j.
func (nf *netFlags) apply(j *dojob.Job) error {
	switch {
	case nf.set["proxy"]:
		if err := j.SetProxySettings(dojob.ProxyOverride, nf.proxy, bypassList(nf.noproxy)); err != nil {
			return err
		}
	case nf.set["noproxy"]: // "*"
		if err := j.SetProxySettings(dojob.ProxyNoProxy, "", ""); err != nil {
			return err
		}
	}
	if nf.caPEM != nil {
		if err := j.SetCertificateAuthorities(nf.caPEM); err != nil {
			return fmt.Errorf("--cacert: %w", err)
		}
	}
	if nf.clientCert != nil {
		if err := j.SetClientCertificate(*nf.clientCert); err != nil {
			return fmt.Errorf("--cert: %w", err)
		}
	}
	if nf.insecure {
		if err := j.SetSecurityFlags(insecureFlags); err != nil {
			return err
		}
	}
	return nil
}

// netView is what info shows of a job's network settings: a local
// *dojob.Job and a holder's jobSnapshot have it.
type netView interface {
	ProxySettings() (dojob.ProxyUsage, string, string)
	SecurityFlags() dojob.SecurityFlags
	CertificateAuthorities() []byte
	HasClientCertificate() (set, lost bool)
}

// netSnapshot is a job's network settings in a jobSnapshot, the proxy
// list's passwords hidden.
type netSnapshot struct {
	Usage  dojob.ProxyUsage    `json:"proxy_usage,omitempty"`
	List   string              `json:"proxy_list,omitempty"`
	Bypass string              `json:"proxy_bypass,omitempty"`
	Flags  dojob.SecurityFlags `json:"security_flags,omitempty"`
	CAs    bool                `json:"ca_certificates,omitempty"`         // the job has its own roots
	Cert   bool                `json:"client_certificate,omitempty"`      // a client certificate is set
	Lost   bool                `json:"client_certificate_lost,omitempty"` // one must be set again
}

func netSnapshotOf(j netView) *netSnapshot {
	u, l, b := j.ProxySettings()
	set, lost := j.HasClientCertificate()
	s := &netSnapshot{Usage: u, List: dojob.RedactProxyList(l), Bypass: b, Flags: j.SecurityFlags(),
		CAs: j.CertificateAuthorities() != nil, Cert: set, Lost: lost}
	if *s == (netSnapshot{}) {
		return nil
	}
	return s
}

// ProxySettings returns the job's proxy settings, passwords hidden.
func (s jobSnapshot) ProxySettings() (dojob.ProxyUsage, string, string) {
	if s.Net == nil {
		return dojob.ProxyPreconfig, "", ""
	}
	return s.Net.Usage, s.Net.List, s.Net.Bypass
}

// SecurityFlags returns the job's security flags.
func (s jobSnapshot) SecurityFlags() dojob.SecurityFlags {
	if s.Net == nil {
		return 0
	}
	return s.Net.Flags
}

// CertificateAuthorities reports the job's own roots: the holder does not
// send their PEM, a non-nil empty slice stands for them.
func (s jobSnapshot) CertificateAuthorities() []byte {
	if s.Net == nil || !s.Net.CAs {
		return nil
	}
	return []byte{}
}

// HasClientCertificate reports the job's client certificate.
func (s jobSnapshot) HasClientCertificate() (set, lost bool) {
	if s.Net == nil {
		return false, false
	}
	return s.Net.Cert, s.Net.Lost
}

// netRows are info's rows for a job's network settings: only those that
// differ from the defaults.
func netRows(j jobView, row func(k, format string, args ...any)) {
	nv, ok := j.(netView)
	if !ok {
		return
	}
	usage, list, bypass := nv.ProxySettings()
	switch usage {
	case dojob.ProxyPreconfig:
	case dojob.ProxyOverride:
		row("Proxy", "%s %s", usage, dojob.RedactProxyList(list))
		if bypass != "" {
			row("Proxy bypass", "%s", bypass)
		}
	default:
		row("Proxy", "%s", usage)
	}
	if f := nv.SecurityFlags(); f != 0 {
		row("Security flags", "%s (certificate checks relaxed)", f)
	}
	if nv.CertificateAuthorities() != nil {
		row("Trusted roots", "the job's own (--cacert)")
	}
	switch set, lost := nv.HasClientCertificate(); {
	case set:
		row("Client certificate", "set")
	case lost:
		row("Client certificate", "not kept: give --cert (and --key) again")
	}
}
