package dojobtest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Fault describes how one request is answered: what goes wrong, if
// anything. The zero value, also returned by OK, is a normal answer. Faults
// are combined with And, e.g. ChangeContent().And(DropAfter(100)).
//
// The parts of a fault take effect in this order: ChangeContent on arrival,
// then Delay, then StallHeaders; then either the Status (an empty body) or
// the file, served with or without its Range (IgnoreRange); then the body is
// sent at the Drip rate until StallAfter or DropAfter cuts it. When both
// StallAfter and DropAfter are set, the one with the smaller byte count
// wins (StallAfter on a tie).
//
// A Fault is a plain value, safe to copy and to share between goroutines.
type Fault struct {
	status     int    // 0 = serve the file
	retryAfter string // Retry-After header with status; "" = none

	drop, stall bool
	dropAfter   int64 // with drop: body bytes before the connection is aborted
	stallAfter  int64 // with stall: body bytes before the stream stops

	stallHeaders  bool
	ignoreRange   bool
	changeContent bool

	delay time.Duration // before headers; 0 = none
	drip  int64         // body rate in bytes per second; 0 = the server's default
}

// OK returns the zero Fault: a normal answer.
func OK() Fault { return Fault{} }

// Status returns a fault that answers with the given status code and an
// empty body (Content-Length: 0), instead of the file. It panics unless
// 200 ≤ code ≤ 999: informational answers are not faults.
//
// DropAfter, StallAfter and Drip have no effect on a Status answer.
func Status(code int) Fault {
	if code < 200 || code > 999 {
		panic(fmt.Sprintf("dojobtest: Status(%d): code must be in 200..999", code))
	}
	return Fault{status: code}
}

// StatusRetryAfter is Status with a Retry-After header, sent as given:
// either delay-seconds ("120") or an HTTP-date.
func StatusRetryAfter(code int, retryAfter string) Fault {
	f := Status(code)
	f.retryAfter = retryAfter
	return f
}

// DropAfter returns a fault that sends the headers and n body bytes, then
// aborts the connection: a client sees io.ErrUnexpectedEOF after exactly n
// bytes. On the Server the handler flushes and panics with
// http.ErrAbortHandler, so net/http closes the connection; on the Transport
// the response body's Read returns io.ErrUnexpectedEOF.
//
// If the body has no more than n bytes it is sent whole, and the fault then
// matters only to a client that cannot tell that the body is complete
// (WithoutContentLength): the chunked stream ends without its last chunk.
// With a Content-Length the answer is normal. DropAfter panics if n < 0.
func DropAfter(n int64) Fault {
	if n < 0 {
		panic(fmt.Sprintf("dojobtest: DropAfter(%d): negative byte count", n))
	}
	return Fault{drop: true, dropAfter: n}
}

// StallAfter returns a fault that sends the headers and n body bytes, then
// nothing more until the client gives up: its request context is done, it
// closes the body or the connection, or the Server or Transport is closed.
// When n covers the whole body, the rule of DropAfter applies. On the
// Transport the pipe to the client is synchronous, so the stall starts once
// the client has read the n bytes. StallAfter panics if n < 0.
func StallAfter(n int64) Fault {
	if n < 0 {
		panic(fmt.Sprintf("dojobtest: StallAfter(%d): negative byte count", n))
	}
	return Fault{stall: true, stallAfter: n}
}

// StallHeaders returns a fault that never sends the headers: the request
// waits until the client gives up or the Server or Transport is closed.
func StallHeaders() Fault { return Fault{stallHeaders: true} }

// IgnoreRange returns a fault that answers 200 with the whole file even if
// the request has a Range (and If-Range) header, as a server without range
// support does. The answer has no Accept-Ranges header.
func IgnoreRange() Fault { return Fault{ignoreRange: true} }

// ChangeContent returns a fault that, before the request is answered,
// replaces the file at the request's path with a new version of the same
// size: new bytes (Content(path+"#v"+newVersion, size)), a new ETag and a
// new Last-Modified. Later requests get the new version too.
func ChangeContent() Fault { return Fault{changeContent: true} }

// Delay returns a fault that waits d before sending the headers, or until
// the client gives up. The wait is a timer, so it runs on fake time inside a
// testing/synctest bubble. Delay panics if d < 0.
func Delay(d time.Duration) Fault {
	if d < 0 {
		panic(fmt.Sprintf("dojobtest: Delay(%v): negative duration", d))
	}
	return Fault{delay: d}
}

// Drip returns a fault that sends the body at bytesPerSecond, overriding
// WithRate for this request: byte k of the body leaves no earlier than k /
// bytesPerSecond seconds after the headers, in steps of about a tenth of a
// second, so 10,000 bytes at 1,000 B/s take exactly 10 s. The waits are
// timers (fake time inside a synctest bubble). Drip panics unless
// bytesPerSecond > 0.
func Drip(bytesPerSecond int64) Fault {
	if bytesPerSecond <= 0 {
		panic(fmt.Sprintf("dojobtest: Drip(%d): rate must be positive", bytesPerSecond))
	}
	return Fault{drip: bytesPerSecond}
}

// And combines two faults: the parts that g sets override those of f (a
// status with its Retry-After, a byte count, a delay, a rate), and its flags
// (StallHeaders, IgnoreRange, ChangeContent) add to those of f.
func (f Fault) And(g Fault) Fault {
	if g.status != 0 {
		f.status, f.retryAfter = g.status, g.retryAfter
	}
	if g.drop {
		f.drop, f.dropAfter = true, g.dropAfter
	}
	if g.stall {
		f.stall, f.stallAfter = true, g.stallAfter
	}
	f.stallHeaders = f.stallHeaders || g.stallHeaders
	f.ignoreRange = f.ignoreRange || g.ignoreRange
	f.changeContent = f.changeContent || g.changeContent
	if g.delay != 0 {
		f.delay = g.delay
	}
	if g.drip != 0 {
		f.drip = g.drip
	}
	return f
}

// String describes the fault in the order its parts take effect, in the
// syntax that builds it, e.g. "ChangeContent+DropAfter(100)"; the zero
// Fault is "OK".
func (f Fault) String() string {
	var parts []string
	if f.changeContent {
		parts = append(parts, "ChangeContent")
	}
	if f.delay != 0 {
		parts = append(parts, "Delay("+f.delay.String()+")")
	}
	if f.stallHeaders {
		parts = append(parts, "StallHeaders")
	}
	switch {
	case f.status != 0 && f.retryAfter != "":
		parts = append(parts, fmt.Sprintf("StatusRetryAfter(%d, %q)", f.status, f.retryAfter))
	case f.status != 0:
		parts = append(parts, fmt.Sprintf("Status(%d)", f.status))
	}
	if f.ignoreRange {
		parts = append(parts, "IgnoreRange")
	}
	if f.drip != 0 {
		parts = append(parts, "Drip("+strconv.FormatInt(f.drip, 10)+")")
	}
	if f.stall {
		parts = append(parts, "StallAfter("+strconv.FormatInt(f.stallAfter, 10)+")")
	}
	if f.drop {
		parts = append(parts, "DropAfter("+strconv.FormatInt(f.dropAfter, 10)+")")
	}
	if len(parts) == 0 {
		return "OK"
	}
	return strings.Join(parts, "+")
}

// cut reports where the body of an answer is cut short, if it is: after
// limit bytes, by a stall or else a drop.
func (f Fault) cut() (limit int64, stall, ok bool) {
	switch {
	case f.stall && (!f.drop || f.stallAfter <= f.dropAfter):
		return f.stallAfter, true, true
	case f.drop:
		return f.dropAfter, false, true
	}
	return 0, false, false
}
