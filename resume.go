package dojob

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// verdict is what check makes of a response.
type verdict struct {
	err        error
	restart    bool  // start the file over with a fresh request
	truncate   bool  // start over, using this response's body (a 200)
	complete   bool  // the file is already complete (416 at full size)
	length     int64 // bytes the body will carry; -1 when unknown
	remoteSize int64 // the remote file's size as announced; SizeUnknown if not
	etag       string
	lastMod    string
}

// check decides whether a response can be used for span sp of f, following
// DESIGN.md §3 (Resume of a file): accept only a 206 whose Content-Range
// starts where we asked and whose total is the one we know; a 200 to a
// resume means start over with its body; a 416 whose total equals what we
// have means the file is complete.
func (x *transfer) check(resp *http.Response, f *file, sp span, sentIfRange bool, etag, lastMod string, knownSize int64) verdict {
	v := verdict{length: -1, remoteSize: SizeUnknown, etag: strongETag(resp.Header.Get("ETag")), lastMod: resp.Header.Get("Last-Modified")}
	code := resp.StatusCode
	switch {
	case code == http.StatusOK:
		if f.ranges != nil && !sp.whole {
			if sentIfRange {
				v.restart = true // If-Range failed: the content changed
				return v
			}
			v.err = protocolError(ErrInsufficientRangeSupport, "the server answered a range request with the whole file")
			return v
		}
		v.truncate = sp.off > 0
		v.length = resp.ContentLength
		v.remoteSize = SizeUnknown
		if resp.ContentLength >= 0 {
			v.remoteSize = resp.ContentLength
		}
		return v

	case code == http.StatusPartialContent:
		cr, ok := parseContentRange(resp.Header.Get("Content-Range"))
		changed := (etag != "" && v.etag != "" && v.etag != etag) ||
			(etag == "" && lastMod != "" && v.lastMod != "" && v.lastMod != lastMod) ||
			(ok && knownSize != SizeUnknown && cr.total != knownSize)
		switch {
		case !ok || cr.start < 0 || cr.total < 0:
			if f.ranges != nil {
				v.err = protocolError(ErrInsufficientRangeSupport, "206 without a usable Content-Range")
			} else {
				v.restart = true
			}
			return v
		case changed:
			v.restart = true
			return v
		case cr.start != sp.off:
			if f.ranges != nil {
				v.err = protocolError(ErrInsufficientRangeSupport, "asked for bytes from %d, got %d-%d", sp.off, cr.start, cr.end)
			} else {
				v.restart = true
			}
			return v
		}
		wantEnd := sp.end
		if wantEnd < 0 {
			wantEnd = cr.total - 1
		}
		if cr.end != wantEnd {
			if f.ranges != nil && wantEnd >= cr.total {
				v.err = protocolError(ErrInvalidRange, "range ends at %d beyond the end of the %d-byte remote file", wantEnd, cr.total)
			} else if f.ranges != nil {
				v.err = protocolError(ErrInsufficientRangeSupport, "asked for bytes %d-%d, got %d-%d", sp.off, wantEnd, cr.start, cr.end)
			} else {
				v.restart = true
			}
			return v
		}
		v.length = cr.end - cr.start + 1
		if resp.ContentLength >= 0 && resp.ContentLength != v.length {
			v.err = protocolError(ErrBlockSizeMismatch, "Content-Length %d does not match Content-Range %d-%d", resp.ContentLength, cr.start, cr.end)
			return v
		}
		v.remoteSize = cr.total
		return v

	case code == http.StatusRequestedRangeNotSatisfiable:
		cr, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if f.ranges != nil {
			v.err = protocolError(ErrInvalidRange, "the server says range %d- lies outside the file", sp.off)
			return v
		}
		if ok && cr.total >= 0 && cr.total == sp.off && (knownSize == SizeUnknown || knownSize == sp.off) {
			v.complete = true
			return v
		}
		if sp.off == 0 {
			v.err = statusError(code, 0)
			return v
		}
		v.restart = true
		return v

	case code >= 200 && code <= 299:
		v.err = &JobError{Context: ErrorContextRemoteFile, Code: ErrUnexpectedStatus2xx, transient: true,
			Err: fmt.Errorf("server answered %d %s", code, http.StatusText(code))}
		return v
	}
	v.err = statusError(code, retryAfter(resp.Header, time.Now()))
	return v
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
