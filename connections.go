package dojob

import (
	"net/url"
	"strings"
	"sync"
)

// MaxConnectionsLimit is the most connections one file may use at once
// (SetMaxConnections).
const MaxConnectionsLimit = 16

// DefaultMaxConnectionsPerHost is Config.MaxConnectionsPerHost's default.
const DefaultMaxConnectionsPerHost = 8

// DefaultMinSegmentSize is the smallest half a split leaves
// (Config.MinSegmentSize's default): a connection that is free splits the
// largest segment still being fetched at its middle only if each half is at
// least this long.
const DefaultMinSegmentSize = 1 << 20

// SetMaxConnections sets how many connections each file of the job may use
// at once: 1 (the default) fetches a file over one connection, as BITS
// does; n > 1 splits a file into segments fetched together, which pays off
// where a server or the way to it limits each connection (many CDNs and
// object stores do).
//
// Only a file of known size, added without ranges, whose server answered a
// request for a range with a 206 that carries a strong ETag (or a
// Last-Modified) is split: the first request asks for the whole file as a
// range ("bytes=0-"), and while its body arrives each further connection
// splits the largest part still to come at its middle when each half is at
// least Config.MinSegmentSize (1 MiB by default). Every segment request
// carries Range and If-Range, and its 206 must carry exactly the range asked,
// the same total and the same validator: an answer that proves another
// content starts the file over; a 200 or any other answer the file cannot
// use stops the splitting and the file ends over the connections it has. A
// failing connection gives its part back to the others. Bytes are written at
// their offsets into the one temporary file, every segment's durable bytes
// are recorded with the checkpoints, and a restart resumes each part where
// its durable bytes end. A file with a Checksum is hashed from its temporary
// file as its contiguous prefix grows.
//
// Connections to one host, over every job of the Manager, are bounded by
// Config.MaxConnectionsPerHost: a file's first connection is always made,
// further ones only while the host has fewer open. n outside 1 to
// MaxConnectionsLimit returns ErrInvalidArg. A new value applies from the
// next attempt; it is persisted.
func (j *Job) SetMaxConnections(n int) error {
	if n < 1 || n > MaxConnectionsLimit {
		return errorf(ErrInvalidArg, "connections %d is outside 1 to %d", n, MaxConnectionsLimit)
	}
	return j.update(func() (bool, error) {
		if j.maxConnsLocked() == n {
			return false, nil
		}
		j.conns = n
		return true, nil
	})
}

// MaxConnections returns how many connections each file of the job may use
// at once.
func (j *Job) MaxConnections() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.maxConnsLocked()
}

// maxConnsLocked is MaxConnections; the field's zero value means 1.
func (j *Job) maxConnsLocked() int { return max(j.conns, 1) }

// hostBudget counts the connections dojob has open to each host for the
// transfers of one Manager (Config.MaxConnectionsPerHost). It is not a
// semaphore: a file's first connection is counted but never refused (so no
// job waits on another), and further connections are refused, never
// queued, once the host has its share — a segment nobody takes is fetched
// by a connection already open.
type hostBudget struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// take counts a connection to host. A forced one is always counted; another
// only if the host has fewer than max, which take reports.
func (b *hostBudget) take(host string, force bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !force && b.n[host] >= b.max {
		return false
	}
	if b.n == nil {
		b.n = make(map[string]int)
	}
	b.n[host]++
	return true
}

// give uncounts a connection to host.
func (b *hostBudget) give(host string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n[host]--; b.n[host] <= 0 {
		delete(b.n, host)
	}
}

// hostOf is the host:port a URL's connections go to (the budget's key).
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	return host + ":" + port
}
