package dojob

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Per-job HTTP options: custom request headers, credentials, and the
// remote names of files (SetRemoteName, ReplaceRemotePrefix).
//
// Custom headers and credentials are not put on the request the transfer
// builds: net/http copies that request's headers onto every redirect it
// follows. They travel in the request's context instead (reqOpts), and the
// client's Transport is wrapped (optsTransport) so that each hop — the first
// request and every redirect — gets them by one rule: the sensitive ones
// (credentials, Authorization, Proxy-Authorization, Cookie) only when the hop
// goes to the origin (scheme, host and port) of the file's RemoteURL — also
// when the request is for one of its mirrors — the others always.

// maxCustomHeaders is the most characters the serialized custom headers
// ("Name: value\r\n" each) may have: BITS's 16,384 including the NUL.
const maxCustomHeaders = 16384 - 1

// Credential limits (BITS): a user name of at most 300 characters, a
// password of at most 65,535.
const (
	maxUserName = 300
	maxPassword = 65535
)

// AuthTarget says whom credentials are for (BG_AUTH_TARGET).
type AuthTarget int

// The targets, numbered as BG_AUTH_TARGET.
const (
	AuthTargetServer AuthTarget = 1 // the server of the remote files
	AuthTargetProxy  AuthTarget = 2 // the HTTP proxy
)

// String returns the target's name, e.g. "SERVER".
func (t AuthTarget) String() string {
	switch t {
	case AuthTargetServer:
		return "SERVER"
	case AuthTargetProxy:
		return "PROXY"
	}
	return fmt.Sprintf("AuthTarget(%d)", int(t))
}

// AuthScheme is an authentication scheme (BG_AUTH_SCHEME). dojob implements
// Basic; the others are valid BITS schemes that dojob does not support
// (ErrNotImplemented).
type AuthScheme int

// The schemes, numbered as BG_AUTH_SCHEME.
const (
	AuthSchemeBasic     AuthScheme = 1
	AuthSchemeDigest    AuthScheme = 2
	AuthSchemeNTLM      AuthScheme = 3
	AuthSchemeNegotiate AuthScheme = 4
	AuthSchemePassport  AuthScheme = 5
)

// String returns the scheme's name, e.g. "BASIC".
func (s AuthScheme) String() string {
	switch s {
	case AuthSchemeBasic:
		return "BASIC"
	case AuthSchemeDigest:
		return "DIGEST"
	case AuthSchemeNTLM:
		return "NTLM"
	case AuthSchemeNegotiate:
		return "NEGOTIATE"
	case AuthSchemePassport:
		return "PASSPORT"
	}
	return fmt.Sprintf("AuthScheme(%d)", int(s))
}

// Credentials are a user name and password for a server or a proxy
// (BG_AUTH_CREDENTIALS with BG_BASIC_CREDENTIALS). Printing them (String,
// GoString, slog) never shows the password.
type Credentials struct {
	Target   AuthTarget // the server, or the proxy
	Scheme   AuthScheme // AuthSchemeBasic; the others are ErrNotImplemented
	UserName string     // at most 300 characters; no ':' for Basic (RFC 7617)
	Password string     // at most 65,535 characters
}

// String describes the credentials without the password.
func (c Credentials) String() string {
	return fmt.Sprintf("%s %s credentials for %q (password hidden)", c.Target, c.Scheme, c.UserName)
}

// GoString is String, so %#v does not print the password either.
func (c Credentials) GoString() string { return c.String() }

// LogValue is String, so a slog handler does not print the password.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// check validates credentials as SetCredentials documents.
func (c Credentials) check() error {
	if err := checkAuth(c.Target, c.Scheme); err != nil {
		return err
	}
	switch {
	case utf8.RuneCountInString(c.UserName) > maxUserName:
		return errorf(ErrUserNameTooLarge, "user name longer than %d characters", maxUserName)
	case utf8.RuneCountInString(c.Password) > maxPassword:
		return errorf(ErrPasswordTooLarge, "password longer than %d characters", maxPassword)
	case strings.Contains(c.UserName, ":"):
		return errorf(ErrInvalidCredentials, "a Basic user name cannot contain ':'")
	case !validFieldValue(c.UserName) || !validFieldValue(c.Password):
		return errorf(ErrInvalidCredentials, "user name or password holds a control character")
	}
	return nil
}

// checkAuth validates a target and a scheme: out of BITS's range is
// BG_E_INVALID_AUTH_TARGET / _SCHEME; a BITS scheme dojob does not
// implement is E_NOTIMPL.
func checkAuth(t AuthTarget, s AuthScheme) error {
	if t != AuthTargetServer && t != AuthTargetProxy {
		return errorf(ErrInvalidAuthTarget, "unknown authentication target %d", int(t))
	}
	if s < AuthSchemeBasic || s > AuthSchemePassport {
		return errorf(ErrInvalidAuthScheme, "unknown authentication scheme %d", int(s))
	}
	if s != AuthSchemeBasic {
		return errorf(ErrNotImplemented, "authentication scheme %s is not supported (only BASIC)", s)
	}
	return nil
}

// basicAuth is the value of an Authorization header for Basic credentials.
func (c Credentials) basicAuth() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.UserName+":"+c.Password))
}

// ownedHeaders are the request headers dojob sets or that belong to the
// connection: a custom header may not replace them (ErrInvalidArg). The
// conditional headers are dojob's too: the resume rules decide what is
// asked for and what an answer means.
var ownedHeaders = map[string]bool{
	"Range": true, "If-Range": true, "Accept-Encoding": true, "Host": true,
	"Content-Length": true, "Transfer-Encoding": true, "Connection": true, "Te": true,
	"Upgrade": true, "Trailer": true, "Expect": true, "Keep-Alive": true, "Proxy-Connection": true,
	"If-Match": true, "If-None-Match": true, "If-Modified-Since": true, "If-Unmodified-Since": true,
}

// sensitiveHeaders go only to a file's own origin, never to another origin
// a redirect leads to.
var sensitiveHeaders = map[string]bool{"Authorization": true, "Proxy-Authorization": true, "Cookie": true}

// validHeaderName reports whether s is an HTTP token (RFC 9110 §5.1).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validFieldValue reports whether s may be a header field value: no control
// character but horizontal tab (so no CR, LF or NUL), no DEL.
func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// checkHeaders validates custom headers and returns them canonicalized
// (names in canonical form, empty entries dropped), or nil when none remain.
func checkHeaders(h http.Header) (http.Header, error) {
	if len(h) == 0 {
		return nil, nil
	}
	out := make(http.Header, len(h))
	size := 0
	for name, values := range h {
		if !validHeaderName(name) {
			return nil, errorf(ErrInvalidArg, "custom header name %q is not a valid token", name)
		}
		key := http.CanonicalHeaderKey(name)
		if ownedHeaders[key] {
			return nil, errorf(ErrInvalidArg, "header %s is set by dojob and cannot be a custom header", key)
		}
		for _, v := range values {
			if !validFieldValue(v) {
				return nil, errorf(ErrInvalidArg, "value of custom header %s holds a control character", key)
			}
			size += utf8.RuneCountInString(key) + 2 + utf8.RuneCountInString(v) + 2
			out[key] = append(out[key], v)
		}
	}
	if size > maxCustomHeaders {
		return nil, errorf(ErrStringTooLong, "custom headers of %d characters, more than %d", size, maxCustomHeaders)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// SetCustomHeaders sets the headers sent with every request of the job
// (IBackgroundCopyJobHttpOptions::SetCustomHeaders, DO's HttpCustomHeaders),
// replacing those set before; nil or an empty Header removes them. They go
// with first requests, resumes and retries, to each file's own origin and
// to its mirrors; Authorization, Proxy-Authorization and Cookie go only to
// the origin (scheme, host and port) of the file's RemoteURL — not to a
// mirror of another origin, nor after a redirect to one.
//
// Names must be HTTP tokens and values must hold no control character (CR,
// LF, NUL...): ErrInvalidArg. Headers dojob sets itself (Range, If-Range,
// the other conditional headers, Accept-Encoding) or that belong to the
// connection (Host, Content-Length, Transfer-Encoding, Connection, TE,
// Upgrade, Trailer, Expect, Keep-Alive, Proxy-Connection) are ErrInvalidArg.
// Serialized as "Name: value\r\n" lines they may have at most 16,383
// characters (ErrStringTooLong, as BITS). A change applies from the next
// request. The headers are persisted with the job but never logged.
func (j *Job) SetCustomHeaders(h http.Header) error {
	hdr, err := checkHeaders(h)
	if err != nil {
		return err
	}
	return j.update(func() (bool, error) {
		if len(j.headers) == 0 && hdr == nil {
			return false, nil
		}
		j.headers = hdr // replaced, never modified: requests share it
		return true, nil
	})
}

// CustomHeaders returns a copy of the custom headers, nil if none are set.
// After MakeCustomHeadersWriteOnly it returns an error matching
// ErrAccessDenied and never the values (BITS's GetCustomHeaders).
func (j *Job) CustomHeaders() (http.Header, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.headersWriteOnly {
		return nil, errorf(ErrAccessDenied, "the custom headers of job %s are write-only", j.id)
	}
	if j.headers == nil {
		return nil, nil
	}
	return j.headers.Clone(), nil
}

// MakeCustomHeadersWriteOnly makes the custom headers unreadable for good
// (IBackgroundCopyJobHttpOptions3): CustomHeaders returns ErrAccessDenied
// from now on, also after a restart. SetCustomHeaders still replaces them.
func (j *Job) MakeCustomHeadersWriteOnly() error {
	return j.update(func() (bool, error) {
		if j.headersWriteOnly {
			return false, nil
		}
		j.headersWriteOnly = true
		return true, nil
	})
}

// SetCredentials sets the credentials the job uses for c.Target
// (IBackgroundCopyJob2::SetCredentials), replacing any set before for that
// target and scheme. Only Basic is implemented: Digest, NTLM, Negotiate and
// Passport return ErrNotImplemented; an unknown target or scheme returns
// ErrInvalidAuthTarget / ErrInvalidAuthScheme; a user name over 300 or a
// password over 65,535 characters ErrUserNameTooLarge / ErrPasswordTooLarge;
// a user name with ':' or a control character in either
// ErrInvalidCredentials.
//
// Server credentials go with every request to the origin of each file's
// RemoteURL (a mirror there too, not a mirror elsewhere) as
// "Authorization: Basic ..." (they replace a custom Authorization header),
// never to another origin a redirect leads to. A server that still answers
// 401 sends the job to ERROR with BG_E_HTTP_ERROR_401. Proxy credentials
// go as Proxy-Authorization to the proxy the client's transport (an
// *http.Transport) chooses for a request: on plain-HTTP requests through
// it, and on the CONNECT of an HTTPS request when dojob owns the transport
// (Config.HTTPClient nil, or a transport derived for the job's own proxy or
// TLS settings from a caller's that sets no GetProxyConnectHeader). Only an
// http or https proxy gets them: a SOCKS proxy tunnels the request to the
// server as it is, so there they are not sent at all (give a SOCKS proxy's
// user and password in its socks5:// URL). Over plain HTTP, Basic
// credentials are readable on the network. They are persisted with the job (the record is 0600)
// and never printed.
func (j *Job) SetCredentials(c Credentials) error {
	if err := c.check(); err != nil {
		return err
	}
	return j.update(func() (bool, error) {
		for i, old := range j.creds {
			if old.Target == c.Target && old.Scheme == c.Scheme {
				if old == c {
					return false, nil
				}
				creds := append([]Credentials(nil), j.creds...) // requests share the old slice
				creds[i] = c
				j.creds = creds
				return true, nil
			}
		}
		j.creds = append(append([]Credentials(nil), j.creds...), c)
		return true, nil
	})
}

// RemoveCredentials removes the credentials set for a target and scheme
// (IBackgroundCopyJob2::RemoveCredentials). Removing credentials that are
// not set does nothing (BITS's S_FALSE); an unknown target or scheme is
// ErrInvalidAuthTarget / ErrInvalidAuthScheme.
func (j *Job) RemoveCredentials(target AuthTarget, scheme AuthScheme) error {
	if err := checkAuth(target, scheme); err != nil && !isCode(err, ErrNotImplemented) {
		return err
	}
	return j.update(func() (bool, error) {
		for i, c := range j.creds {
			if c.Target == target && c.Scheme == scheme {
				creds := append([]Credentials(nil), j.creds[:i]...)
				j.creds = append(creds, j.creds[i+1:]...)
				if len(j.creds) == 0 {
					j.creds = nil
				}
				return true, nil
			}
		}
		return false, nil
	})
}

// isCode reports whether err carries the code.
func isCode(err error, code HRESULT) bool {
	ce, ok := err.(*codeError)
	return ok && ce.code == code
}

// SetRemoteName changes the URL of file (its index in Files)
// (IBackgroundCopyFile2::SetRemoteName), in any non-final state. The URL
// is checked as AddFile checks it (ErrInvalidArg); an index out of range is
// ErrInvalidArg. The change is persisted at once. A file whose transfer is
// running stops its attempt and the job is queued again, keeping its bytes
// and its place in line; the next request goes to the new URL and resumes
// with If-Range and the validator the old URL gave, so the file continues at
// its offset only if the new URL's answer proves it serves the same content
// (a 206 that itself carries the same strong ETag, else Last-Modified, and
// total), and starts over otherwise. A file already transferred is
// never downloaded again. The URL is the primary source (FileInfo.RemoteURL):
// a file that had failed over to one of its Mirrors goes back to it, and
// its mirrors stay as they are (ReplaceRemotePrefix changes primaries only).
func (j *Job) SetRemoteName(file int, remoteURL string) error {
	if err := checkRemoteURL(remoteURL); err != nil {
		return err
	}
	return j.update(func() (bool, error) {
		f, err := j.fileAtLocked(file)
		if err != nil {
			return false, err
		}
		if f.Remote == remoteURL {
			return false, nil
		}
		f.Remote = remoteURL
		j.switchRemoteLocked(f)
		return true, nil
	})
}

// ReplaceRemotePrefix replaces oldPrefix with newPrefix at the start of
// every file URL that begins with it, as BITS's
// IBackgroundCopyJob3::ReplaceRemotePrefix does: the comparison is exact
// (case-sensitive, byte for byte); either prefix empty, or a resulting URL
// that AddFile would refuse (not http or https, no host, over 2,200
// characters), is ErrInvalidArg and changes nothing. No matching URL is not
// an error and changes nothing (BITS's S_FALSE). Each changed file behaves
// as with SetRemoteName. Only the RemoteURLs are compared and changed, never
// FileSpec.Mirrors.
func (j *Job) ReplaceRemotePrefix(oldPrefix, newPrefix string) error {
	if oldPrefix == "" || newPrefix == "" {
		return errorf(ErrInvalidArg, "a remote prefix is empty")
	}
	return j.update(func() (bool, error) {
		next := make([]string, len(j.files))
		changed := false
		for i, f := range j.files {
			next[i] = f.Remote
			if rest, ok := strings.CutPrefix(f.Remote, oldPrefix); ok {
				next[i] = newPrefix + rest
				if err := checkRemoteURL(next[i]); err != nil {
					return false, err
				}
				changed = changed || next[i] != f.Remote
			}
		}
		if !changed {
			return false, nil
		}
		for i, f := range j.files {
			if next[i] != f.Remote {
				f.Remote = next[i]
				j.switchRemoteLocked(f)
			}
		}
		return true, nil
	})
}

// switchRemoteLocked makes a running transfer of f take f's new URL: the
// attempt stops (its bytes are kept) and the job is queued again with its
// place in line, as a pre-emption does. A transfer of another file, or no
// transfer, takes the new URL when it gets to f.
func (j *Job) switchRemoteLocked(f *file) {
	// The caller's new URL is the one to use: a file that had failed over
	// to a mirror goes back to its primary (mirrors.go).
	f.Source = 0
	x := j.xfer
	if x == nil || !x.transferringLocked(f) || f.Transferred {
		return
	}
	j.requeueLocked()
}

// reqOpts are the job's options for one request, carried in its context to
// optsTransport, which applies them on each hop.
type reqOpts struct {
	origin string      // the file's origin: only it gets the sensitive headers and credentials
	header http.Header // custom headers; shared, never modified
	server *Credentials
	proxy  *Credentials
	net    *jobNet // the job's proxy and TLS settings (netopts.go); nil: the defaults
}

type reqOptsKey struct{}

// reqOptsLocked returns the options for a request to remote, or nil when
// the job has none.
func (j *Job) reqOptsLocked(remote string) *reqOpts {
	if j.headers == nil && j.creds == nil && j.net == nil {
		return nil
	}
	o := &reqOpts{header: j.headers, net: j.net}
	if u, err := url.Parse(remote); err == nil {
		o.origin = origin(u)
	}
	for i := range j.creds {
		c := j.creds[i]
		switch c.Target {
		case AuthTargetServer:
			o.server = &c
		case AuthTargetProxy:
			o.proxy = &c
		}
	}
	return o
}

// origin is u's origin, scheme://host:port in lower case with the default
// port made explicit, so that http://a and http://a:80 are one origin.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// optsTransport applies a request's reqOpts on every hop, including the
// redirects net/http follows (each is a new RoundTrip with the first
// request's context). It adds headers to a clone: the request the client
// holds, whose headers net/http copies onto redirects, never carries them.
type optsTransport struct {
	base  http.RoundTripper
	proxy func(*http.Request) (*url.URL, error) // the base's proxy choice; nil if unknown
	nets  *netCache                             // the transports of jobs with their own proxy or TLS settings
}

func newOptsTransport(base http.RoundTripper, nets *netCache) *optsTransport {
	if base == nil {
		base = http.DefaultTransport
	}
	t := &optsTransport{base: base, nets: nets}
	if ht, ok := base.(*http.Transport); ok {
		t.proxy = ht.Proxy
	}
	return t
}

// RoundTrip sends req with the job's options for its hop.
func (t *optsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	o, _ := req.Context().Value(reqOptsKey{}).(*reqOpts)
	if o == nil {
		return t.base.RoundTrip(req)
	}
	base, proxy := t.base, t.proxy
	if o.net != nil {
		// The job's own proxy or TLS settings: a transport derived from
		// the base (netopts.go).
		tr, err := t.nets.transport(o.net)
		if err != nil {
			return nil, err
		}
		t.nets.warn(o.net, req.URL.Hostname())
		base, proxy = tr, tr.Proxy
	}
	r := req.Clone(req.Context())
	same := origin(r.URL) == o.origin
	for name, values := range o.header {
		if !same && sensitiveHeaders[name] {
			continue
		}
		r.Header[name] = append([]string(nil), values...)
	}
	if same && o.server != nil {
		r.Header.Set("Authorization", o.server.basicAuth())
	}
	if o.proxy != nil && proxy != nil && strings.EqualFold(r.URL.Scheme, "http") {
		// Plain HTTP through an HTTP(S) proxy: the proxy reads this
		// request's headers. Without a proxy — or through a SOCKS proxy,
		// which tunnels the request as it is — they would reach the
		// server: not sent.
		if pu, err := proxy(r); err == nil && pu != nil && (strings.EqualFold(pu.Scheme, "http") || strings.EqualFold(pu.Scheme, "https")) {
			r.Header.Set("Proxy-Authorization", o.proxy.basicAuth())
		}
	}
	return base.RoundTrip(r)
}

// proxyConnectHeader gives the CONNECT of an HTTPS request through a proxy
// the job's proxy credentials (http.Transport.GetProxyConnectHeader, on the
// transport dojob owns).
func proxyConnectHeader(ctx context.Context, _ *url.URL, _ string) (http.Header, error) {
	o, _ := ctx.Value(reqOptsKey{}).(*reqOpts)
	if o == nil || o.proxy == nil {
		return nil, nil
	}
	return http.Header{"Proxy-Authorization": {o.proxy.basicAuth()}}, nil
}
