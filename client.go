package dojob

import (
	"net/http"
	"strings"
	"time"
)

// newHTTPClient returns the client transfers use, and the transport dojob
// owns (nil when the caller gave the client). See Config.HTTPClient.
func newHTTPClient(c *http.Client) (*http.Client, *http.Transport) {
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
		return &http.Client{Transport: tr, CheckRedirect: checkRedirect}, tr
	}
	if c.CheckRedirect == nil {
		cc := *c
		cc.CheckRedirect = checkRedirect
		return &cc, nil
	}
	return c, nil
}

// checkRedirect is dojob's redirect policy: at most 10 redirects, none from
// https to http. (net/http already drops Authorization and cookies on a
// redirect to another host.)
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errRedirects
	}
	if prev := via[len(via)-1]; strings.EqualFold(prev.URL.Scheme, "https") && strings.EqualFold(req.URL.Scheme, "http") {
		return errInsecure
	}
	return nil
}
