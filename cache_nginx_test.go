//go:build unix

package dojob_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nginxCache is a real HTTP cache in front of the test's origins: nginx
// with proxy_cache, configured as a DO cache host is used — a request
// http://CACHE/path?cacheHostOrigin=ORIGIN is answered from the cache, or
// proxied to http://ORIGIN/path and kept. Only the origins it is given are
// served (others get 403, as a Connected Cache answers an origin it does
// not serve), and /boom always answers 503. Its access log records each
// request with $upstream_cache_status.
type nginxCache struct {
	addr string // 127.0.0.1:port
	log  string // the access log
}

// startNginx runs nginx as the current user with every path in a temporary
// directory; the test owns the process, which is stopped and waited for at
// cleanup. It skips the test when nginx is not installed (.ci/run installs
// Debian's nginx-light).
func startNginx(t *testing.T, origins ...string) *nginxCache {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		t.Skip("nginx is not installed (apt-get install nginx-light): the test against a real cache is skipped")
	}
	dir := t.TempDir()
	// The listening socket is the test's, handed to nginx as an inherited
	// one (the NGINX variable): it accepts into its backlog before nginx
	// runs, so nothing waits for nginx to be ready.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	lf, err := ln.(*net.TCPListener).File()
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // lf still holds the socket
	t.Cleanup(func() { lf.Close() })

	allow := make([]string, len(origins))
	for i, o := range origins {
		allow[i] = strings.ReplaceAll(o, ".", `\.`)
	}
	userLine := ""
	if os.Getuid() == 0 {
		// Workers would otherwise run as nobody, who cannot reach dir.
		userLine = "user root;"
		if u, err := user.Current(); err == nil {
			userLine = "user " + u.Username + ";"
		}
	}
	conf := fmt.Sprintf(`%[1]s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 64; }
http {
	log_format cache '$request_uri $status $upstream_cache_status';
	access_log %[2]s/access.log cache;
	client_body_temp_path %[2]s/client_temp;
	proxy_temp_path %[2]s/proxy_temp;
	fastcgi_temp_path %[2]s/fastcgi_temp;
	uwsgi_temp_path %[2]s/uwsgi_temp;
	scgi_temp_path %[2]s/scgi_temp;
	proxy_cache_path %[2]s/cache levels=1:2 keys_zone=dojob:1m max_size=64m inactive=1h use_temp_path=off;
	server {
		listen %[3]s;
		location /boom {
			return 503;
		}
		location / {
			if ($arg_cacheHostOrigin !~ "^(%[4]s)$") {
				return 403;
			}
			proxy_pass http://$arg_cacheHostOrigin$uri;
			proxy_cache dojob;
			proxy_cache_lock on; # concurrent misses (segments) wait for one upstream fetch
			proxy_cache_key $arg_cacheHostOrigin$uri;
			proxy_cache_valid 200 1h;
			add_header X-Cache-Status $upstream_cache_status always;
		}
	}
}
`, userLine, dir, addr, strings.Join(allow, "|"))
	confPath := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o600))

	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath, "-g", "daemon off;")
	cmd.ExtraFiles = []*os.File{lf} // fd 3
	cmd.Env = append(os.Environ(), "NGINX=3;")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // SIGINT: fast shutdown, workers too
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out.String(), errLog)
		}
	})
	return &nginxCache{addr: addr, log: filepath.Join(dir, "access.log")}
}

// entries returns the access log's lines that contain sub: "uri status
// cache-status", once there are at least want of them (or after 10 s).
func (c *nginxCache) entries(t *testing.T, sub string, want int) []string {
	t.Helper()
	var lines []string
	// The log line is written as the request is finalized, which may be
	// just after the client read the last byte: a bounded wait.
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		lines = lines[:0]
		if f, err := os.Open(c.log); err == nil {
			s := bufio.NewScanner(f)
			for s.Scan() {
				if strings.Contains(s.Text(), sub) {
					lines = append(lines, s.Text())
				}
			}
			f.Close()
		}
		if len(lines) >= want || time.Now().After(deadline) {
			return lines
		}
		<-tick.C
	}
}

// TestNginxCacheHost: dojob against a real cache (nginx proxy_cache). The
// first download of a file is a MISS that the origin serves once, the
// second a HIT the origin never sees, both with the origin's bytes; a file
// the cache answers 503 for falls back to the origin and bans nothing; an
// origin the cache does not serve (403) falls back and is banned, so its
// next file goes straight to the origin while the other origin still uses
// the cache; and a cache that is down (connection refused) is left for the
// origin at once.
func TestNginxCacheHost(t *testing.T) {
	origin := dojobtest.NewServer(t, dojobtest.WithSize(3<<20))
	other := dojobtest.NewServer(t, dojobtest.WithSize(64<<10))
	originHost := strings.TrimPrefix(origin.FileURL(""), "http://")
	cache := startNginx(t, originHost)

	m, err := dojob.NewManager(dojob.Config{CacheHosts: []string{cache.addr}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	conns := 1
	download := func(url string) dojob.FileInfo {
		t.Helper()
		j, local := transferredJob(t, m, url, conns)
		fi := j.Files()[0]
		require.NoError(t, j.Complete())
		u := strings.TrimPrefix(strings.TrimPrefix(url, origin.FileURL("")), other.FileURL(""))
		if strings.HasPrefix(url, other.FileURL("")) {
			assert.Equal(t, other.SHA256(u), fileSHA256(t, local), "SHA-256 of %s", url)
		} else {
			assert.Equal(t, origin.SHA256(u), fileSHA256(t, local), "SHA-256 of %s", url)
		}
		return fi
	}

	// MISS, then HIT: the origin serves the file once.
	fi := download(origin.FileURL("/pkg.bin"))
	assert.Equal(t, cache.addr, fi.CacheHost)
	fi = download(origin.FileURL("/pkg.bin"))
	assert.Equal(t, cache.addr, fi.CacheHost)
	assert.Len(t, origin.RequestsFor("/pkg.bin"), 1, "the origin served the file more than once")
	lines := cache.entries(t, "/pkg.bin", 2)
	require.Len(t, lines, 2)
	q := "/pkg.bin?cacheHostOrigin=" + originHost
	assert.Equal(t, q+" 200 MISS", lines[0])
	assert.Equal(t, q+" 200 HIT", lines[1])

	// A file fetched in segments over 4 connections: the cache fetches it
	// from the origin once (proxy_cache_lock), then serves every range.
	conns = 4
	for range 2 {
		fi = download(origin.FileURL("/seg.bin"))
		assert.Equal(t, cache.addr, fi.CacheHost)
	}
	conns = 1
	assert.Len(t, origin.RequestsFor("/seg.bin"), 1, "the origin served the file more than once")
	misses := 0
	for _, l := range cache.entries(t, "/seg.bin", 2) {
		if strings.HasSuffix(l, " MISS") {
			misses++
		}
	}
	assert.Equal(t, 1, misses, "only the first request fetches from the origin")

	// 503 from the cache: the origin serves it; the cache is asked again.
	fi = download(origin.FileURL("/boom"))
	assert.Empty(t, fi.CacheHost)
	fi = download(origin.FileURL("/boom"))
	assert.Empty(t, fi.CacheHost)
	assert.Len(t, origin.RequestsFor("/boom"), 2)
	lines = cache.entries(t, "/boom", 2)
	require.Len(t, lines, 2)
	assert.Contains(t, lines[0], " 503 ")
	assert.Contains(t, lines[1], " 503 ")

	// 403 for an origin the cache does not serve: banned for that origin.
	fi = download(other.FileURL("/a"))
	assert.Empty(t, fi.CacheHost)
	fi = download(other.FileURL("/b"))
	assert.Empty(t, fi.CacheHost)
	lines = cache.entries(t, "cacheHostOrigin="+strings.TrimPrefix(other.FileURL(""), "http://"), 1)
	require.Len(t, lines, 1, "the cache was asked for a banned origin")
	assert.Contains(t, lines[0], " 403 ")
	fi = download(origin.FileURL("/pkg.bin")) // the served origin still uses the cache
	assert.Equal(t, cache.addr, fi.CacheHost)
	assert.Len(t, cache.entries(t, "/pkg.bin", 3), 3)
	assert.Len(t, origin.RequestsFor("/pkg.bin"), 1)
}

// transferredJob downloads url with m over conns connections, into a new
// temporary directory, and returns the job once TRANSFERRED (a minute at
// most) and the file's destination.
func transferredJob(t *testing.T, m *dojob.Manager, url string, conns int) (*dojob.Job, string) {
	t.Helper()
	j, err := m.CreateJob("nginx")
	require.NoError(t, err)
	require.NoError(t, j.SetMaxConnections(conns))
	local := filepath.Join(t.TempDir(), "f")
	require.NoError(t, j.AddFile(url, local))
	require.NoError(t, j.Resume())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	st, err := j.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, dojob.StateTransferred, st)
	return j, local
}

// TestNginxCacheHostDown: a cache host that refuses connections (nothing
// listens) is left for the origin at once, in the same attempt.
func TestNginxCacheHostDown(t *testing.T) {
	origin := dojobtest.NewServer(t, dojobtest.WithSize(256<<10))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	m, err := dojob.NewManager(dojob.Config{CacheHosts: []string{down}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	j, local := transferredJob(t, m, origin.FileURL("/f"), 1)
	assert.Zero(t, j.ErrorCount())
	assert.Empty(t, j.Files()[0].CacheHost)
	require.NoError(t, j.Complete())
	assert.Equal(t, origin.SHA256("/f"), fileSHA256(t, local))
	assert.Len(t, origin.RequestsFor("/f"), 1)
}
