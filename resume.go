package dojob

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The resume rules: what a response to one request of a transfer means.
// check is a pure function of what the request asked for and what the
// response said, so every rule has a row in a table test and a fuzz target
// shows that no response makes dojob write a byte where it did not ask for
// one.

// ask is what one request asked for, and what was known of the remote file
// when it was sent.
type ask struct {
	sp      span
	ranges  bool   // the file was added with ranges: each must be served exactly
	ifRange bool   // the request carried If-Range (etag, else lastMod)
	etag    string // the strong ETag known before the request; "" if none
	lastMod string // the Last-Modified known before the request; "" if none
	size    int64  // the remote file's size known before the request; SizeUnknown if not
	// cont: the file already holds bytes that an earlier response gave, and
	// this request asks for the bytes after them. Its answer must prove it
	// serves the same representation (see check).
	cont bool
	// chain: the bytes on hand came from this very source earlier in the
	// same attempt, and it never gave a validator (a file added with
	// ranges, range after range). The one case where the total and the
	// Content-Range alone are accepted.
	chain bool
}

// verdict is what check makes of a response. Exactly one of these holds:
// err is set (fail); restart (start over with a fresh request, discarding
// this response); complete (the file already is); otherwise the response is
// accepted and its body is written at sp.off — or at 0 after emptying the
// file, when truncate is set.
type verdict struct {
	err        error
	restart    bool  // start the file over with a fresh request
	truncate   bool  // start over, using this response's body (a 200)
	complete   bool  // the file is already complete (416 at full size)
	length     int64 // bytes the body will carry; -1 when unknown
	remoteSize int64 // the remote file's size as announced; SizeUnknown if not
	etag       string
	lastMod    string
	// reason says, in a few lower-case words, why the file starts over
	// (restart or truncate): FileInfo.RestartReason. changed: the answer
	// proved the content changed (a validator or the total differs).
	reason  string
	changed bool
}

// check decides what a response with the given status, header and
// Content-Length (-1 when unknown) means for request a. now is the time the
// response arrived, for a Retry-After given as a date.
//
// The rules:
//   - 206 is accepted only with a Content-Range that starts at the offset
//     asked for, ends where the span ends (or at the end of the file), and
//     whose total is the size known before; its Content-Length, if any,
//     must match the Content-Range (else ErrBlockSizeMismatch). A changed
//     validator (ETag, else Last-Modified) or total means the file changed:
//     restart.
//   - A 206 that continues bytes already in the file (a.cont: a resume,
//     another source, the next range) must also prove that it serves the
//     representation those bytes came from: it carries the same strong
//     ETag, or — when the bytes came with no ETag — no ETag and the same
//     Last-Modified. Having sent If-Range proves nothing (many servers,
//     gateways and caches ignore it). Anything less restarts the file:
//     bytes of two contents are never spliced. The one exception is
//     a.chain: the next range of a file from the same source in the same
//     attempt, when that source never gave a validator at all — the total
//     and the Content-Range must then match.
//   - 200 carries the whole file: to a request from byte 0 it is accepted;
//     to a resume it means the server ignored the range or the content
//     changed, so the file is truncated and this body is the new file. A
//     file added with ranges cannot use the whole file: restart if If-Range
//     failed (the content changed), else ErrInsufficientRangeSupport.
//   - 416 to a resume whose total equals the bytes we have (and the size
//     we knew, and no changed validator) means the file is complete; any
//     other 416 to a resume starts over. For a file added with ranges it is
//     ErrInvalidRange: a range lies beyond the end. A 416 to a request
//     without Range is a statusError.
//   - 304 to a request with If-Range: the server treated If-Range as a
//     conditional GET. Restart; after a restart requests carry no If-Range.
//   - Any other 2xx is DO's transient ErrUnexpectedStatus2xx; any other
//     status is a statusError (transient or fatal by its code).
//
// A whole file whose resume gets an unusable 206 or 416 starts over (it can
// always do with the whole file); a file added with ranges fails instead
// when the server cannot serve its ranges, and starts over when the content
// may have changed.
func check(a ask, status int, h http.Header, contentLength int64, now time.Time) verdict {
	sp := a.sp
	v := verdict{length: -1, remoteSize: SizeUnknown, etag: strongETag(h.Get("ETag")), lastMod: h.Get("Last-Modified")}
	// changed reports a validator in the response that differs from the one
	// known before. The ETag decides when we knew one; Last-Modified only
	// when it is all we had (a server may touch the date of the same bytes).
	etagChanged := a.etag != "" && v.etag != "" && v.etag != a.etag
	lmChanged := a.etag == "" && a.lastMod != "" && v.lastMod != "" && v.lastMod != a.lastMod
	changed := etagChanged || lmChanged
	restart := func(reason string) verdict {
		v.restart, v.reason = true, reason
		return v
	}
	restartChanged := func(reason string) verdict {
		v.restart, v.reason, v.changed = true, reason, true
		return v
	}
	switch {
	case status == http.StatusOK:
		if a.ranges && !sp.whole {
			if a.ifRange {
				return restart(changedReason(etagChanged, lmChanged, "content changed")) // If-Range failed
			}
			v.err = protocolError(ErrInsufficientRangeSupport, "the server answered a range request with the whole file")
			return v
		}
		v.truncate = sp.off > 0
		if v.truncate {
			v.reason = changedReason(a.ifRange && a.etag != "" && v.etag != a.etag, a.ifRange && a.etag == "" && a.lastMod != "" && v.lastMod != a.lastMod, "server ignored the range")
		}
		v.length = contentLength
		if contentLength >= 0 {
			v.remoteSize = contentLength
		}
		return v

	case status == http.StatusPartialContent:
		cr, ok := parseContentRange(h.Get("Content-Range"))
		switch {
		case !ok || cr.start < 0 || cr.total < 0:
			if a.ranges {
				v.err = protocolError(ErrInsufficientRangeSupport, "206 without a usable Content-Range")
				return v
			}
			return restart("server sent no usable content-range")
		case changed:
			return restartChanged(changedReason(etagChanged, lmChanged, ""))
		case a.size != SizeUnknown && cr.total != a.size:
			return restartChanged("content changed (size)")
		case cr.start != sp.off:
			if a.ranges {
				v.err = protocolError(ErrInsufficientRangeSupport, "asked for bytes from %d, got %d-%d", sp.off, cr.start, cr.end)
				return v
			}
			return restart("server sent another range")
		}
		wantEnd := sp.end
		if wantEnd < 0 {
			wantEnd = cr.total - 1
		}
		if cr.end != wantEnd {
			switch {
			case a.ranges && wantEnd >= cr.total:
				v.err = protocolError(ErrInvalidRange, "range ends at %d beyond the end of the %d-byte remote file", wantEnd, cr.total)
			case a.ranges:
				v.err = protocolError(ErrInsufficientRangeSupport, "asked for bytes %d-%d, got %d-%d", sp.off, wantEnd, cr.start, cr.end)
			default:
				return restart("server sent another range")
			}
			return v
		}
		if a.cont {
			if why := unproven(a, v.etag, v.lastMod); why != "" {
				return restart(why)
			}
		}
		v.length = cr.end - cr.start + 1
		if contentLength >= 0 && contentLength != v.length {
			v.err = protocolError(ErrBlockSizeMismatch, "Content-Length %d does not match Content-Range %d-%d", contentLength, cr.start, cr.end)
			return v
		}
		v.remoteSize = cr.total
		return v

	case status == http.StatusRequestedRangeNotSatisfiable:
		if a.ranges {
			v.err = protocolError(ErrInvalidRange, "the server says range %d- lies outside the file", sp.off)
			return v
		}
		if !sp.ranged {
			// No Range was sent, so no range can be unsatisfiable.
			v.err = statusError(status, 0)
			return v
		}
		cr, ok := parseContentRange(h.Get("Content-Range"))
		if ok && cr.total >= 0 && cr.total == sp.off && (a.size == SizeUnknown || a.size == sp.off) && !changed {
			// No byte is taken from this answer: the file holds every byte
			// already, all of one content.
			v.complete = true
			return v
		}
		return restart("server refused the range")

	case status == http.StatusNotModified && a.ifRange:
		// The server took If-Range for a conditional GET (If-None-Match or
		// If-Modified-Since). Nothing says which bytes it would serve, so
		// start over with a fresh request, which carries no If-Range.
		return restart("server would not resume")

	case status >= 200 && status <= 299:
		v.err = &JobError{Context: ErrorContextRemoteFile, Code: ErrUnexpectedStatus2xx, transient: true,
			Err: fmt.Errorf("server answered %d %s", status, http.StatusText(status))}
		return v
	}
	v.err = statusError(status, retryAfter(h, now))
	return v
}

// unproven says why a 206 with the given strong ETag and Last-Modified
// does not prove that it continues the representation the bytes of a came
// from, or returns "" when it does.
func unproven(a ask, etag, lastMod string) string {
	switch {
	case a.etag != "":
		if etag == a.etag {
			return ""
		}
		return "answer without the same ETag"
	case a.lastMod != "":
		if etag == "" && lastMod == a.lastMod {
			return ""
		}
		return "answer without the same Last-Modified"
	case a.chain && etag == "" && lastMod == "":
		return ""
	}
	return "no validator to continue safely"
}

// changedReason is the reason of a restart for a changed validator, else
// otherwise.
func changedReason(etag, lastMod bool, otherwise string) string {
	switch {
	case etag:
		return "content changed (ETag)"
	case lastMod:
		return "content changed (Last-Modified)"
	}
	return otherwise
}

// strongETag returns an ETag usable in If-Range: a strong one. Weak ETags
// (W/"...") cannot be used (RFC 9110), so they count as none.
func strongETag(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "W/") {
		return ""
	}
	return s
}
