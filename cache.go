package dojob

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cache hosts (Config.CacheHosts), as Delivery Optimization uses a
// Microsoft Connected Cache (DOCacheHost, DelayCacheServerFallback...):
// a cache host is a source of a file in front of its RemoteURL and mirrors
// (mirrors.go). A request to a cache host is the file's URL with the cache's
// host and port in place of the origin's and the origin's host (with its
// port when it is not 80) appended to the query as cacheHostOrigin; any HTTP
// cache that proxies such requests to their origin can serve them (nginx
// proxy_cache, for example). Only http origins are sent to a cache: an https
// origin's bytes would reach dojob without the origin's TLS, so such files
// are fetched from their own sources. See docs/design.md, "Cache hosts".

// CacheHostBan is how long a failing cache host is not asked: for one
// origin after it answered a request for that origin with a 4xx status (it
// does not serve that origin), for every origin after dojob could not
// connect to it (no answer, a refused connection, a name that does not
// resolve). The ban is kept by the Manager, in memory. A failure of the
// job's own proxy on the way to the cache — a 407, a proxy that cannot be
// reached — bans nothing: it says nothing of the cache host, and the
// Manager's other jobs may not use that proxy.
const CacheHostBan = 15 * time.Minute

// NoCacheFallback as Config.CacheHostFallback: a file with a usable cache
// host is fetched from its cache hosts only, never from its own sources
// (DelayCacheServerFallback -1).
const NoCacheFallback time.Duration = -1

// cacheConnectTimeout bounds the connection to a cache host (dojob's own
// transport): a cache is close by, and a cache that does not answer should
// not delay the fallback to the origin by a full connect timeout.
const cacheConnectTimeout = 3 * time.Second

// cacheOriginParam is the query parameter that names the origin.
const cacheOriginParam = "cacheHostOrigin"

// skipCaches in file.skip: the file's bytes from a cache host failed its
// check; no cache host serves it until the caller resumes the job.
const skipCaches = -1

// cacheState is a file's use of cache hosts in this Manager (not persisted).
type cacheState struct {
	cur   int           // the cache host in use: Config.CacheHosts[cur-1]; 0 for none (f.Source)
	asked bool          // a cache host was asked for the file
	since time.Duration // when (Manager.now) it was first asked
	off   bool          // the fallback delay has passed: the file no longer uses cache hosts
}

// cacheHosts is the Manager's cache configuration and its bans.
type cacheHosts struct {
	hosts    []string      // host:port, in order
	fallback time.Duration // Config.CacheHostFallback

	mu     sync.Mutex               // a leaf
	all    map[string]time.Duration // cache host → end of its ban for every origin (Manager.now)
	origin map[[2]string]time.Duration
}

// newCacheHosts checks Config.CacheHosts and Config.CacheHostFallback.
func newCacheHosts(hosts []string, fallback time.Duration) (*cacheHosts, error) {
	if fallback < 0 && fallback != NoCacheFallback {
		return nil, errorf(ErrInvalidArg, "CacheHostFallback %v is negative and not NoCacheFallback", fallback)
	}
	c := &cacheHosts{fallback: fallback}
	for _, h := range hosts {
		hp, err := ParseCacheHost(h)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(c.hosts, hp) {
			c.hosts = append(c.hosts, hp)
		}
	}
	return c, nil
}

// ParseCacheHost checks a cache host as NewManager checks
// Config.CacheHosts — "host" or "host:port", a host being a DNS name or an
// IP address (an IPv6 address in brackets when a port follows), the port
// from 1 to 65535 — and returns it as host:port, the host in lower case and
// port 80 when none is given (the form FileInfo.CacheHost shows). Anything
// else returns an error matching ErrInvalidArg.
func ParseCacheHost(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", errorf(ErrInvalidArg, "cache host %q: %s", s, why)
	}
	host, port := s, "80"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || p[0] == '0' || p[0] == '+' {
			return bad("the port is not a number from 1 to 65535")
		}
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if host == "" {
		return bad("no host")
	}
	if ip := net.ParseIP(host); ip != nil {
		return net.JoinHostPort(strings.ToLower(host), port), nil
	}
	if len(host) > 253 {
		return bad("the host name is longer than 253 characters")
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad("not a host name, an IP address, or either with a port")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return bad("not a host name, an IP address, or either with a port")
			}
		}
	}
	return net.JoinHostPort(strings.ToLower(host), port), nil
}

// banned reports whether cache host h is banned for origin at now.
func (c *cacheHosts) banned(h, origin string, now time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return now < c.all[h] || now < c.origin[[2]string{h, origin}]
}

// ban bans cache host h for CacheHostBan from now: for origin, or for
// every origin when origin is "".
func (c *cacheHosts) ban(h, origin string, now time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if origin == "" {
		if c.all == nil {
			c.all = make(map[string]time.Duration)
		}
		c.all[h] = now + CacheHostBan
		return
	}
	if c.origin == nil {
		c.origin = make(map[[2]string]time.Duration)
	}
	c.origin[[2]string{h, origin}] = now + CacheHostBan
}

// cacheOrigin is the origin a cache host is asked for on behalf of remote
// (the value of cacheHostOrigin: the host, with its port unless it is 80),
// or "" when remote is not an http URL: such a file is not fetched through
// a cache.
func cacheOrigin(remote string) string {
	u, err := url.Parse(remote)
	if err != nil || !strings.EqualFold(u.Scheme, "http") || u.Host == "" {
		return ""
	}
	host := strings.ToLower(u.Hostname())
	if p := u.Port(); p != "" && p != "80" {
		return net.JoinHostPort(host, p)
	}
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// cacheURL is the URL that asks cache host h (host:port) for remote: the
// same path and query, on h, with cacheHostOrigin appended. The URL's user
// information and fragment are not sent. "" when remote is not http.
func cacheURL(remote, h string) string {
	origin := cacheOrigin(remote)
	if origin == "" {
		return ""
	}
	u, err := url.Parse(remote)
	if err != nil {
		return ""
	}
	u.Scheme, u.User, u.Fragment, u.RawFragment = "http", nil, "", ""
	u.Host = strings.TrimSuffix(h, ":80")
	// The colon of host:port is kept as is (it is allowed in a query):
	// a cache that reads the parameter undecoded, as nginx's $arg_ does,
	// gets a usable host:port.
	q := cacheOriginParam + "=" + strings.ReplaceAll(url.QueryEscape(origin), "%3A", ":")
	if u.RawQuery != "" {
		u.RawQuery += "&" + q
	} else {
		u.RawQuery = q
	}
	return u.String()
}

// Sources of a file with cache hosts: cache host k (Config.CacheHosts[k-1])
// is source -k; 0 is RemoteURL and i is Mirrors[i-1] (mirrors.go). The
// order they are tried in is the cache hosts, then RemoteURL, then the
// mirrors.

// sourcePos is the place of source s in that order, with n cache hosts.
func sourcePos(s, n int) int {
	if s < 0 {
		return -s - 1
	}
	return n + s
}

// curSourceLocked is the source f's requests go to now.
func (f *file) curSourceLocked() int {
	if f.cs.cur > 0 {
		return -f.cs.cur
	}
	return f.Source
}

// setSourceLocked makes s the source f's requests go to.
func (j *Job) setSourceLocked(f *file, s int) {
	if s < 0 {
		f.cs.cur = -s
		if !f.cs.asked {
			f.cs.asked, f.cs.since = true, j.m.now()
		}
		return
	}
	f.cs.cur = 0
	if f.Source != s {
		f.Source = s
		j.changedLocked()
	}
}

// cachesLocked lists the cache sources f may use at now, in order: none
// for a file that is not http, whose cache bytes failed its check, or
// whose fallback delay has passed (which it records); otherwise the cache
// hosts not banned for its origin.
func (j *Job) cachesLocked(f *file, now time.Duration) []int {
	c := j.m.caches
	if len(c.hosts) == 0 || f.cs.off || slices.Contains(f.skip, skipCaches) {
		return nil
	}
	origin := cacheOrigin(f.Remote)
	if origin == "" {
		return nil
	}
	if c.fallback > 0 && f.cs.asked && now >= f.cs.since+c.fallback {
		f.cs.off = true
		return nil
	}
	var list []int
	for k, h := range c.hosts {
		if !c.banned(h, origin, now) {
			list = append(list, -(k + 1))
		}
	}
	return list
}

// sourcesLocked lists the sources f may use at now, in the order they are
// tried: its usable cache hosts alone while the fallback delay runs
// (CacheHostFallback > 0 or NoCacheFallback), else those cache hosts, its
// RemoteURL and the mirrors not skipped.
func (j *Job) sourcesLocked(f *file, now time.Duration) []int {
	list := j.cachesLocked(f, now)
	if len(list) > 0 && j.m.caches.fallback != 0 {
		return list
	}
	list = append(list, 0)
	for i := 1; i <= len(f.Mirrors); i++ {
		if !slices.Contains(f.skip, i) {
			list = append(list, i)
		}
	}
	return list
}

// nextSourceIn is the source after cur in list (in the order of
// sourcePos, cur need not be in it), wrapping to list's first.
func nextSourceIn(cur int, list []int, ncache int) int {
	p := sourcePos(cur, ncache)
	for _, s := range list {
		if sourcePos(s, ncache) > p {
			return s
		}
	}
	return list[0]
}

// startSourceLocked chooses the source a run's first attempt at f goes to:
// the first usable cache host, as DO asks its cache first on every start
// and resume; otherwise f's own source (RemoteURL or a mirror).
func (j *Job) startSourceLocked(f *file) {
	list := j.cachesLocked(f, j.m.now())
	if len(list) == 0 {
		f.cs.cur = 0
		return
	}
	if cur := f.curSourceLocked(); !slices.Contains(list, cur) {
		j.setSourceLocked(f, list[0])
	}
}

// cacheFailedLocked applies the failure e of cache source s of f: a 4xx
// bans the cache host for f's origin, a failed connection for every
// origin — neither with NoCacheFallback, where the cache is never left.
func (j *Job) cacheFailedLocked(f *file, s int, e *JobError, now time.Duration) {
	c := j.m.caches
	if c.fallback == NoCacheFallback || -s > len(c.hosts) {
		return
	}
	h := c.hosts[-s-1]
	origin := cacheOrigin(f.Remote)
	switch code, ok := e.Code.HTTPStatus(); {
	case ok && code == http.StatusProxyAuthRequired:
		return // the proxy's answer (the job's credentials for it), not the cache's
	case ok && code >= 400 && code < 500:
		c.ban(h, origin, now)
	case (e.Code == ErrCannotConnect || e.Code == ErrNameNotResolved) && !atProxy(e):
		c.ban(h, "", now)
	default:
		return
	}
	if j.m.logEnabled(slog.LevelInfo) {
		j.m.queueLog(slog.LevelInfo, "dojob: cache host banned", slog.Any("job", j.id), slog.String("cache", h),
			slog.String("origin", origin), slog.Duration("for", CacheHostBan), slog.Any("err", e))
	}
}

// atProxy reports whether err is a failure to reach the proxy the request
// was to go through (an HTTP proxy's "proxyconnect", a SOCKS proxy's
// "socks ..."), not the server behind it: a job whose own proxy is down
// must not ban a cache host for every job of the Manager.
func atProxy(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && (op.Op == "proxyconnect" || strings.HasPrefix(op.Op, "socks"))
}

// requestURLLocked is the URL f's requests go to now: its source's, or
// through the cache host in use.
func (j *Job) requestURLLocked(f *file) string {
	if k := f.cs.cur; k > 0 && k <= len(j.m.caches.hosts) {
		if u := cacheURL(f.Remote, j.m.caches.hosts[k-1]); u != "" {
			return u
		}
	}
	return f.sourceURLLocked()
}

// sourceURLOfLocked is the URL of source s of f.
func (j *Job) sourceURLOfLocked(f *file, s int) string {
	if s < 0 && -s <= len(j.m.caches.hosts) {
		if u := cacheURL(f.Remote, j.m.caches.hosts[-s-1]); u != "" {
			return u
		}
	}
	return sourceURL(f.Remote, f.Mirrors, s)
}

// servedLocked records that source src gave bytes of f.
func (j *Job) servedLocked(f *file, src int) {
	if src < 0 {
		if -src <= len(j.m.caches.hosts) {
			f.CacheHost = j.m.caches.hosts[-src-1]
		}
		return
	}
	f.addSourceLocked(src)
}

// cacheDialer dials cache hosts.
var cacheDialer = &net.Dialer{Timeout: cacheConnectTimeout, KeepAlive: 30 * time.Second}

// cacheDialKey marks the context of a request to a cache host, for
// cacheDial.
type cacheDialKey struct{}

// withCacheDial marks ctx as the context of requests to a cache host.
func withCacheDial(ctx context.Context) context.Context {
	return context.WithValue(ctx, cacheDialKey{}, true)
}

// cacheDial wraps the DialContext of dojob's own transport: a connection
// for a request to a cache host gives up after cacheConnectTimeout, others
// dial as before.
func cacheDial(base func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if base == nil {
		base = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if ctx.Value(cacheDialKey{}) != nil {
			return cacheDialer.DialContext(ctx, network, addr)
		}
		return base(ctx, network, addr)
	}
}
