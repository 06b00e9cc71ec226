// Package dojobtest is a test kit for code built on dojob, and the one
// dojob's own tests use. Like net/http/httptest, it gives a test everything
// it needs to script a flaky download server and watch what a job does,
// deterministically and without sleeping. It has three main parts, and
// helpers for tests of proxies and certificates.
//
// # A fault-injecting file server: Server
//
// NewServer starts an HTTP server on 127.0.0.1 (NewTLSServer one over TLS)
// that serves a file at every path: WithSize bytes of deterministic
// pseudo-random Content, or data given by WithFile. It implements what a
// resuming client relies on: single byte ranges (206 with Content-Range,
// 416 with "bytes */size"), If-Range with a strong ETag or a Last-Modified
// date, and a strong ETag and a fixed Last-Modified per version of a file.
// Options take some of that away (WithoutETag, WithWeakETag,
// WithoutLastModified, WithoutContentLength) or slow every body down
// (WithRate).
//
// Faults are scripted per request: Script(f0, f1, ...) gives the n-th
// request of each path the fault fn, and Always the fault of every request
// after that (ScriptFor and AlwaysFor do the same for one path). A Fault can answer with an error Status (optionally with
// Retry-After), DropAfter or StallAfter a number of body bytes,
// StallHeaders, IgnoreRange, ChangeContent (a new version of the file),
// Delay the headers or Drip the body; And combines them:
//
//	s := dojobtest.NewServer(t, dojobtest.Script(
//		dojobtest.DropAfter(1000),              // 1st request of each path: cut after 1000 bytes
//		dojobtest.StatusRetryAfter(503, "120"), // 2nd: busy, retry in two minutes
//		dojobtest.OK(),                         // 3rd: a normal answer (the resume)
//	))
//	// ... let the code under test download s.FileURL("/file.bin") with s.Client() ...
//	require.Equal(t, s.SHA256("/file.bin"), sha256OfTheDownloadedFile)
//	require.Equal(t, int64(len(s.Content("/file.bin"))), s.BodyBytes("/file.bin")) // no byte twice
//
// Every request is logged (Requests, RequestsFor) with its Range and
// If-Range headers, the status answered, the body bytes sent and the fault
// applied, and BodyBytes adds up what was sent: a client that resumes
// correctly downloads each byte once. AwaitRequests waits, without polling,
// until the log shows what a test expects (say, the client's retry). Close stops every wait, closes every
// connection and waits for every handler; NewServer registers it with
// tb.Cleanup.
//
// # The same server in memory: Transport
//
// NewTransport takes the same options and answers with the same handler,
// but as an http.RoundTripper that never dials: each request runs the
// handler on a goroutine the Transport owns, and the body streams to the
// client through an in-memory pipe. Its URLs (FileURL) are on the host
// dojobtest.invalid, which never resolves. NewTestTransport(t, ...) also
// registers Close with t.Cleanup, as NewServer does.
//
// Server and Transport embed one implementation of everything but their
// plumbing, so FileURL, Client, Config, Content, SHA256, Requests,
// RequestsFor, AwaitRequests and BodyBytes mean the same on both.
//
// Because every wait in the handler is a timer or a channel, a Transport
// works inside a testing/synctest bubble, where time is fake: a Drip of
// 10,000 bytes at 1,000 B/s takes exactly ten seconds of fake time, a stall
// lasts until the client's deadline, and hours of retries and no-progress
// timeouts run in milliseconds. Create the Transport, hand its Client to
// the code under test, and Close it, all inside the bubble (NewTestTransport
// with the bubble's t closes it there):
//
//	func TestRetry(t *testing.T) {
//		synctest.Test(t, func(t *testing.T) {
//			tr := dojobtest.NewTestTransport(t, dojobtest.Script(dojobtest.StallAfter(100)))
//			m, err := dojob.NewManager(dojob.Config{HTTPClient: tr.Client(), StallTimeout: time.Minute})
//			// ... add tr.FileURL("/file.bin") to a job, resume it, wait ...
//		})
//	}
//
// Close ends every request still being answered and waits for every
// goroutine the Transport started, so synctest's check that no goroutine
// outlives the bubble holds.
//
// # A callback recorder: Recorder
//
// Recorder implements dojob.Callback, dojob.FileCallback and
// dojob.StateCallback. It records each callback as an Event (kind, job state
// and progress at that moment, the move of a state change, the error
// delivered, the time, what the callback returned), can complete
// the job from JobTransferred (CompleteOnTransferred) or fail on purpose to
// test re-delivery (FailTransferred, FailError), and lets a test wait for
// what it expects with Await and AwaitCount, which block on a channel, never
// poll, and respect a context.
//
// # A forward proxy and a certificate authority: Proxy, CA
//
// NewProxy starts a forward HTTP proxy on 127.0.0.1 (absolute-URI requests
// and CONNECT tunnels) that sends every connection to 127.0.0.1 at the
// port asked, whatever the host name, and records each request (method,
// target, Range, Proxy-Authorization). NewCA makes a certificate authority
// whose Issue makes server or client certificates (names, validity,
// usage); NewTLSServerConfig serves files over TLS with such a certificate
// and, if the configuration says so, requires a client certificate.
//
// Everything in this package is safe for concurrent use, keeps no
// package-level state, and leaves no goroutine behind once closed.
package dojobtest
