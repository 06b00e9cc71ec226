package dojobtest

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// This file holds the range semantics of the handler as pure functions of
// the request headers and the file, so they can be table-tested.

// answer is how a file request is answered: its status and the part of the
// file that forms the body.
type answer struct {
	status       int
	start, end   int64  // the body is data[start:end]
	contentRange string // the Content-Range header; "" for none
}

// validators are what the server says about the current version of a file.
type validators struct {
	etag    string    // as sent: `"..."`, `W/"..."`, or "" when none is sent
	lastMod time.Time // as sent (whole seconds); zero when none is sent
}

// planAnswer decides the answer to a GET or HEAD of a file of size bytes,
// given the request's Range and If-Range header values (RFC 9110 §14):
//
//   - no Range, a Range that is not a single syntactically valid byte range
//     (multiple ranges included: the kit serves single ranges only, which a
//     server may do), or an If-Range that does not match: 200, whole file;
//   - a satisfiable range: 206 with Content-Range "bytes a-b/size";
//   - a range that starts at or after the end: 416 with Content-Range
//     "bytes */size" and an empty body.
func planAnswer(rangeHdr, ifRange string, size int64, v validators) answer {
	whole := answer{status: http.StatusOK, start: 0, end: size}
	if rangeHdr == "" {
		return whole
	}
	start, end, res := parseRange(rangeHdr, size)
	switch res {
	case rangeIgnored:
		return whole
	case rangeUnsatisfiable:
		// If-Range is evaluated only when the range would be served
		// (RFC 9110 §13.2.2 step 5); a mismatch gives the whole file.
		if ifRange != "" && !ifRangeMatches(ifRange, v) {
			return whole
		}
		return answer{status: http.StatusRequestedRangeNotSatisfiable, contentRange: "bytes */" + strconv.FormatInt(size, 10)}
	}
	if ifRange != "" && !ifRangeMatches(ifRange, v) {
		return whole
	}
	return answer{
		status:       http.StatusPartialContent,
		start:        start,
		end:          end + 1,
		contentRange: "bytes " + strconv.FormatInt(start, 10) + "-" + strconv.FormatInt(end, 10) + "/" + strconv.FormatInt(size, 10),
	}
}

type rangeResult int

const (
	rangeIgnored       rangeResult = iota // serve the whole file
	rangeSatisfiable                      // serve [start, end]
	rangeUnsatisfiable                    // 416
)

// parseRange parses a Range header value of a single byte range: "bytes=a-b",
// "bytes=a-" or the suffix form "bytes=-n". It returns the inclusive range
// within a file of size bytes.
func parseRange(h string, size int64) (start, end int64, res rangeResult) {
	unit, spec, ok := strings.Cut(strings.TrimSpace(h), "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return 0, 0, rangeIgnored
	}
	spec = strings.TrimSpace(spec)
	if strings.Contains(spec, ",") {
		return 0, 0, rangeIgnored
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, rangeIgnored
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" { // suffix: the last n bytes
		n, ok := digits(last)
		if !ok {
			return 0, 0, rangeIgnored
		}
		if n == 0 || size == 0 {
			return 0, 0, rangeUnsatisfiable
		}
		n = min(n, size)
		return size - n, size - 1, rangeSatisfiable
	}
	a, ok := digits(first)
	if !ok {
		return 0, 0, rangeIgnored
	}
	b := size - 1
	if last != "" {
		if b, ok = digits(last); !ok || b < a {
			return 0, 0, rangeIgnored
		}
	}
	if a >= size {
		return 0, 0, rangeUnsatisfiable
	}
	return a, min(b, size-1), rangeSatisfiable
}

// digits parses a non-empty run of decimal digits that fits in an int64.
func digits(s string) (int64, bool) {
	if s == "" {
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

// ifRangeMatches reports whether an If-Range value names the current
// version: a strong ETag equal to the one sent (a weak ETag never matches),
// or an HTTP-date equal to the Last-Modified sent.
func ifRangeMatches(ifRange string, v validators) bool {
	ifRange = strings.TrimSpace(ifRange)
	switch {
	case strings.HasPrefix(ifRange, "W/"):
		return false
	case strings.HasPrefix(ifRange, `"`):
		return v.etag != "" && !strings.HasPrefix(v.etag, "W/") && ifRange == v.etag
	}
	t, err := http.ParseTime(ifRange)
	return err == nil && !v.lastMod.IsZero() && t.Equal(v.lastMod)
}
