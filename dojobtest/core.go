package dojobtest

import (
	"context"
	"net/http"

	"github.com/dojob/dojob"
)

// core is what Server and Transport share, embedded in both: the
// fault-injecting handler (the files it serves, the faults it applies, the
// request log), the client that reaches it and the base of its URLs. Its
// methods are promoted to both types and documented once, here.
type core struct {
	h      *handler
	client *http.Client // always the same one, so Client can be compared
	base   string       // scheme and host, no trailing slash: FileURL(p) is base + p
}

// Client returns an http.Client that reaches the files (always the same
// client). The Server's trusts its TLS certificate; the Transport's answers
// in memory.
func (c *core) Client() *http.Client { return c.client }

// Config returns a dojob.Config whose HTTPClient is Client, to pass to
// dojob.NewManager (set the other fields as the test needs).
func (c *core) Config() dojob.Config { return dojob.Config{HTTPClient: c.client} }

// FileURL returns the URL of the file at path, which starts with "/": on a
// Server, its URL + path; on a Transport, "http://dojobtest.invalid" + path.
func (c *core) FileURL(path string) string { return c.base + path }

// Content returns a copy of the bytes served now at path: the latest
// version of the file, after any ChangeContent.
func (c *core) Content(path string) []byte { return c.h.content(path) }

// SHA256 returns the hex SHA-256 of Content(path), computed once per
// version.
func (c *core) SHA256(path string) string { return c.h.sha256(path) }

// Requests returns a copy of the log of every request, in arrival order.
func (c *core) Requests() []Request { return c.h.requests("") }

// RequestsFor returns the requests for path, in arrival order ("" lists
// them all).
func (c *core) RequestsFor(path string) []Request { return c.h.requests(path) }

// AwaitRequests blocks until done reports true of the request log, checking
// now and after each change of it (a request arrives, its status is
// written, body bytes are sent, it ends), and returns the log it was true
// of. If ctx ends first it returns the log so far and ctx.Err(). It waits on
// a channel, never by polling; done runs on the caller's goroutine without
// any lock held. Use it to wait until a client has come back for a retry or
// a stalled request has started.
func (c *core) AwaitRequests(ctx context.Context, done func([]Request) bool) ([]Request, error) {
	return c.h.awaitRequests(ctx, done)
}

// BodyBytes returns the body bytes sent for path, or for all paths if path
// is "". A client that resumes correctly makes it equal the file's size.
func (c *core) BodyBytes(path string) int64 { return c.h.bodyBytes(path) }
