package dojob

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNetCacheSharesTransports: jobs with the same settings share one
// derived transport (and so its connections), other settings get another;
// NO_PROXY clears the environment's proxy of dojob's own transport;
// Close closes them all (goleak checks no connection goroutine is left).
func TestNetCacheSharesTransports(t *testing.T) {
	m, err := NewManager(Config{})
	require.NoError(t, err)
	defer m.Close()
	require.NotNil(t, m.ownTr.Proxy, "dojob's own transport reads the environment")
	a := &jobNet{usage: ProxyOverride, proxyList: "proxy.test:3128"}
	b := &jobNet{usage: ProxyOverride, proxyList: "proxy.test:3128"}
	c := &jobNet{usage: ProxyNoProxy}
	ta, err := m.nets.transport(a)
	require.NoError(t, err)
	tb, err := m.nets.transport(b)
	require.NoError(t, err)
	tc, err := m.nets.transport(c)
	require.NoError(t, err)
	assert.Same(t, ta, tb)
	assert.NotSame(t, ta, tc)
	assert.Nil(t, tc.Proxy)
	assert.NotSame(t, m.ownTr, ta)
}

// TestProxyChoice: the entry for the URL's scheme first, else the first
// without a protocol, else none; the bypass rules.
func TestProxyChoice(t *testing.T) {
	p, err := parseProxies("https=secure.test:443 plain.test socks5://sock.test", "<local> *.corp 10.0.0.1:8080 [::2]")
	require.NoError(t, err)
	for _, c := range []struct{ url, want string }{
		{"http://a.example/f", "http://plain.test"},
		{"https://a.example/f", "http://secure.test:443"},
		{"http://intranet/f", ""},
		{"http://localhost:8080/f", ""},
		{"http://127.0.0.1/f", ""},
		{"http://[::1]/f", ""},
		{"http://192.168.0.1/f", "http://plain.test"},
		{"http://x.corp/f", ""},
		{"http://corp/f", ""}, // <local>
		{"http://xcorp.example/f", "http://plain.test"},
		{"http://10.0.0.1:8080/f", ""},
		{"http://10.0.0.1/f", "http://plain.test"},
		{"http://[::2]/f", ""},
	} {
		u, _ := url.Parse(c.url)
		got, err := p.proxy(&http.Request{URL: u})
		require.NoError(t, err)
		s := ""
		if got != nil {
			s = got.String()
		}
		assert.Equal(t, c.want, s, c.url)
	}
}

// TestRedactProxyList: every entry's user and password are hidden, whatever
// separates the entries (spaces, semicolons, commas: those SetProxySettings
// takes) and with a protocol prefix; entries without them are kept.
func TestRedactProxyList(t *testing.T) {
	for list, want := range map[string]string{
		"":                                     "",
		"proxy.example:8080":                   "proxy.example:8080",
		"http://alice:s3cret@127.0.0.1:3128":   "http://REDACTED@127.0.0.1:3128",
		"http://a:pw@h1;socks5://b:pw@h2:1080": "http://REDACTED@h1 socks5://REDACTED@h2:1080",
		"http=http://a:pw@h1, https=h2":        "http=http://REDACTED@h1 https=h2",
		"  http://a@h1\th2  ":                  "http://REDACTED@h1 h2",
	} {
		got := RedactProxyList(list)
		assert.Equal(t, want, got, "%q", list)
		assert.NotContains(t, got, "pw")
	}
}
