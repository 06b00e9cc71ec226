package dojob

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
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
// file as its contiguous prefix grows; so that the prefix keeps up with the
// download, such a file is fetched in pieces (4 × MinSegmentSize, at least
// 1 MiB) taken in the file's order while several connections run, instead
// of halves of the largest part, which would all end together and leave
// most of the file to hash after the download.
//
// Connections to one host, over every job of the Manager, are bounded by
// Config.MaxConnectionsPerHost: a file's first connection waits for room
// (CONNECTING; the wait is not a stall), and further ones are opened only
// while the host has room and no file waits for it — they give their room
// up to a waiting file within a buffer, their parts going to the file's
// other connections. n outside 1 to
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
// transfers of one Manager (Config.MaxConnectionsPerHost). A file's first
// connection waits for room (wait); a further connection of a file in
// segments is opened only when there is room and no first connection waits
// for that host (try), and gives its room up as soon as one does
// (contended): files come before segments, so a job never waits on another
// job's extra connections for longer than a buffer takes.
type hostBudget struct {
	max    int
	mu     sync.Mutex
	n      map[string]int // connections open per host
	want   map[string]int // first connections waiting per host
	freed  chan struct{}  // closed and replaced when a connection is given up
	wanted atomic.Int32   // first connections waiting, over all hosts
}

// wait counts a file's first connection to host once the host has room, or
// returns ctx's error.
func (b *hostBudget) wait(ctx context.Context, host string) error {
	b.mu.Lock()
	for b.n[host] >= b.max {
		if b.want == nil {
			b.want = make(map[string]int)
		}
		if b.freed == nil {
			b.freed = make(chan struct{})
		}
		freed := b.freed
		b.want[host]++
		b.wanted.Add(1)
		b.mu.Unlock()
		var err error
		select {
		case <-freed:
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
		b.mu.Lock()
		b.wanted.Add(-1)
		if b.want[host]--; b.want[host] <= 0 {
			delete(b.want, host)
		}
		if err != nil {
			b.mu.Unlock()
			return err
		}
	}
	b.countLocked(host)
	b.mu.Unlock()
	return nil
}

// try counts a further connection to host if the host has room and no first
// connection waits for it, and reports whether it did.
func (b *hostBudget) try(host string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n[host] >= b.max || b.want[host] > 0 {
		return false
	}
	b.countLocked(host)
	return true
}

func (b *hostBudget) countLocked(host string) {
	if b.n == nil {
		b.n = make(map[string]int)
	}
	b.n[host]++
}

// contended reports whether a first connection waits for room at host: a
// further connection there gives its room up.
func (b *hostBudget) contended(host string) bool {
	if b.wanted.Load() == 0 {
		return false // the common case, without the lock
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.want[host] > 0
}

// give uncounts a connection to host and wakes the first connections
// waiting.
func (b *hostBudget) give(host string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n[host]--; b.n[host] <= 0 {
		delete(b.n, host)
	}
	if b.freed != nil {
		close(b.freed)
		b.freed = nil
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
