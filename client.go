package dojob

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// maxRedirects is how many redirects one request follows: WinHTTP's
// default. The next one is refused with ErrRedirectFailed.
const maxRedirects = 10

// maxResponseHeaderBytes caps the response headers dojob's own transport
// reads (http.Transport.MaxResponseHeaderBytes; net/http's default is 10
// MiB): 256 KiB, in line with curl, which accepts 300 KiB of response
// headers in all (and 100 KiB per line) — no real server needs more, and a
// download client need not hold 10 MiB per connection for a server that
// sends them. A response over the cap fails with ErrHeaderSizeOverflow.
const maxResponseHeaderBytes = 256 << 10

// newHTTPClient returns the client transfers use, and the transport dojob
// owns (nil when the caller gave the client). See Config.HTTPClient.
//
// dojob's own transport reads at most maxResponseHeaderBytes of response
// headers. A caller's Transport is shared with the caller, not cloned, so
// dojob does not change it: its own MaxResponseHeaderBytes applies (10 MiB
// when 0). Either way keptHeaders bounds what dojob keeps of the headers,
// and a response over the transport's cap is ErrHeaderSizeOverflow.
//
// The client's Transport is wrapped in an optsTransport, which puts each
// job's custom headers and credentials on each hop of a request (see
// httpopts.go). A caller's client is copied (the copy shares its Transport,
// wrapped, and its Jar) so that its CheckRedirect can be wrapped too: nil gets dojob's policy
// (checkRedirect), a policy of the caller's own is kept but runs after the
// scheme rule, which no policy can lift — dojob fetches only http and https
// URLs, and a redirect must not lead to a local file (file://) or to a
// protocol the caller's Transport may have registered for other uses.
func newHTTPClient(c *http.Client, nets *netCache) (*http.Client, *http.Transport) {
	if c == nil {
		var tr *http.Transport
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			tr = dt.Clone()
		} else {
			// A program replaced http.DefaultTransport; start from net/http's
			// defaults rather than from its replacement.
			tr = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true,
				MaxIdleConns: 100, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second}
		}
		// Keep a connection per file a job may transfer at once
		// (SetMaxParallelFiles), not net/http's 2 per host: a job of many
		// small files would otherwise open a new connection for most files.
		tr.MaxIdleConnsPerHost = MaxParallelFilesLimit
		tr.GetProxyConnectHeader = proxyConnectHeader
		tr.MaxResponseHeaderBytes = maxResponseHeaderBytes
		tr.DialContext = cacheDial(tr.DialContext) // a short connect timeout to cache hosts (cache.go)
		return &http.Client{Transport: newOptsTransport(tr, nets), CheckRedirect: checkRedirect}, tr
	}
	cc := *c
	cc.Transport = newOptsTransport(c.Transport, nets)
	if c.CheckRedirect == nil {
		cc.CheckRedirect = checkRedirect
	} else {
		cc.CheckRedirect = callerRedirect(c.CheckRedirect)
	}
	return &cc, nil
}

// checkRedirect is dojob's redirect policy: exactly 10 redirects are
// followed (the 11th is refused), only to http and https, and none from
// https to http. (net/http already drops Authorization and cookies on a
// redirect to another host.) Each refusal is a fatal ErrRedirectFailed.
//
// net/http calls it before following a redirect, with via holding the
// requests made so far: the first request and each redirect followed. So
// len(via) is the number of the redirect being decided.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if err := checkScheme(req); err != nil {
		return err
	}
	if len(via) > maxRedirects {
		return errRedirects
	}
	if prev := via[len(via)-1]; strings.EqualFold(prev.URL.Scheme, "https") && strings.EqualFold(req.URL.Scheme, "http") {
		return errInsecure
	}
	return nil
}

// checkScheme refuses a redirect to a scheme other than http and https. It
// is fatal at once: without it net/http's Transport would fail the request
// with "unsupported protocol scheme", a connection error dojob retries
// until the no-progress timeout.
func checkScheme(req *http.Request) error {
	if s := req.URL.Scheme; !strings.EqualFold(s, "http") && !strings.EqualFold(s, "https") {
		return errScheme
	}
	return nil
}

// callerRedirect wraps a caller's own redirect policy: the scheme rule
// first, then the caller's decision. A refusal by the caller's policy is a
// refused redirect like dojob's own (fatal ErrRedirectFailed; the caller's
// error stays reachable with errors.Is and errors.As, its text redacted,
// see redactErr); http.ErrUseLastResponse passes
// through unchanged, and the 3xx it leaves is then a fatal status error.
func callerRedirect(policy func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if err := checkScheme(req); err != nil {
			return err
		}
		err := policy(req, via)
		if err == nil || errors.Is(err, http.ErrUseLastResponse) {
			return err
		}
		// The caller's error may name the URL it refused (a presigned
		// one): its text is redacted, errors.Is and errors.As still
		// reach it.
		return fmt.Errorf("%w: %w", errCallerRedirect, redactErr(err))
	}
}
