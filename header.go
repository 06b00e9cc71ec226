package dojob

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// contentRange is a parsed Content-Range header: "bytes start-end/total",
// with total -1 for "*", or "bytes */total" (start and end -1), the form a
// 416 carries.
type contentRange struct {
	start, end, total int64
}

// parseContentRange parses a byte Content-Range (RFC 9110 §14.4). It
// rejects anything malformed or inconsistent: end before start, a total
// that does not cover end.
func parseContentRange(s string) (contentRange, bool) {
	bad := contentRange{-1, -1, -1}
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !ok {
		return bad, false
	}
	rng, tot, ok := strings.Cut(strings.TrimSpace(rest), "/")
	if !ok {
		return bad, false
	}
	cr := contentRange{-1, -1, -1}
	if tot != "*" {
		t, ok := parseDigits(tot)
		if !ok {
			return bad, false
		}
		cr.total = t
	}
	if rng == "*" {
		if cr.total < 0 {
			return bad, false
		}
		return cr, true
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return bad, false
	}
	start, ok1 := parseDigits(a)
	end, ok2 := parseDigits(b)
	if !ok1 || !ok2 || end < start || (cr.total >= 0 && end >= cr.total) {
		return bad, false
	}
	cr.start, cr.end = start, end
	return cr, true
}

// parseDigits parses a non-negative decimal integer of digits only.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// maxRetryAfter bounds a server's Retry-After so the arithmetic cannot
// overflow; a wait this long ends in the no-progress timeout anyway.
const maxRetryAfter = 100 * 365 * 24 * time.Hour

// retryAfter returns the server's Retry-After, or 0: either delay-seconds
// or an HTTP-date, measured from the response's Date header when there is
// one (so clock skew between client and server does not matter), else from
// now.
func retryAfter(h http.Header, now time.Time) time.Duration {
	d, ok := parseRetryAfter(h.Get("Retry-After"), h.Get("Date"), now)
	if !ok {
		return 0
	}
	return d
}

// parseRetryAfter parses a Retry-After value (RFC 9110 §10.2.3).
func parseRetryAfter(v, date string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, ok := parseDigits(v); ok {
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	if len(v) > 64 {
		return 0, false
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	ref := now
	if d, err := http.ParseTime(date); err == nil {
		ref = d
	}
	diff := at.Sub(ref)
	switch {
	case diff <= 0:
		return 0, true
	case diff > maxRetryAfter || diff == time.Duration(math.MaxInt64):
		return maxRetryAfter, true
	}
	return diff, true
}

// Bounds on what keptHeaders keeps of a response's headers
// (FileInfo.ResponseHeaders).
const (
	keptValuesPerName = 4       // values of one name; later ones are dropped
	keptValueBytes    = 1 << 10 // a longer value is dropped, never truncated
	keptHeaderBytes   = 8 << 10 // names and values of one file, in all
)

// keptHeaderNames are the response headers dojob keeps, in the order they
// are kept until keptHeaderBytes is reached: validators and the
// description of the content first, then caching and diagnostics.
var keptHeaderNames = func() []string {
	names := []string{
		"ETag", "Last-Modified", "Content-Length", "Content-Range", "Content-Type",
		"Content-Encoding", "Content-Disposition", "Content-Language", "Content-Location",
		"Digest", "Repr-Digest", "Content-Digest", "Accept-Ranges", "Retry-After",
		"Date", "Age", "Expires", "Cache-Control", "Vary", "Server",
		"WWW-Authenticate", "Proxy-Authenticate", "Location",
	}
	for i, n := range names {
		names[i] = http.CanonicalHeaderKey(n)
	}
	return names
}()

// keptHeaders is what dojob keeps of a response's headers h: the names of
// keptHeaderNames (any other name is dropped: cookies, vendor X- headers,
// whatever else a server sends), at most keptValuesPerName values of each,
// each of at most keptValueBytes (a longer one is dropped: a cut validator
// or digest would be wrong rather than short), with Location's URL
// redacted (RedactURL), and at most keptHeaderBytes of names and values in
// all — a value that would pass it is dropped, and so are the names after
// it in keptHeaderNames' order. It returns a new Header (nil for nil h),
// sharing nothing with h. A server can thus make dojob keep, and persist,
// at most 8 KiB per file, however many headers it sends.
func keptHeaders(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := http.Header{}
	total := 0
	for _, name := range keptHeaderNames {
		vs := h[name]
		if len(vs) == 0 {
			continue
		}
		var kept []string
		for _, v := range vs {
			if len(kept) == keptValuesPerName {
				break
			}
			if len(v) > keptValueBytes {
				continue
			}
			if name == "Location" {
				v = redactURL(v)
			}
			if total+len(name)+len(v) > keptHeaderBytes {
				return finishKept(out, name, kept)
			}
			total += len(name) + len(v)
			kept = append(kept, v)
		}
		out = finishKept(out, name, kept)
	}
	return out
}

// finishKept adds the values kept of name to out.
func finishKept(out http.Header, name string, kept []string) http.Header {
	if len(kept) > 0 {
		out[name] = kept
	}
	return out
}
