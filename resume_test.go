package dojob

import (
	"errors"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// outcome is the part of a verdict a rule decides, in comparable form.
type outcome struct {
	kind       string // "use", "truncate", "restart", "complete" or "fail"
	code       HRESULT
	transient  bool
	retryAfter time.Duration
	length     int64 // for use and truncate
	size       int64 // remoteSize, for use and truncate
}

func outcomeOf(t *testing.T, v verdict) outcome {
	t.Helper()
	switch {
	case v.err != nil:
		var je *JobError
		require.True(t, errors.As(v.err, &je), "a failing verdict carries a *JobError: %v", v.err)
		return outcome{kind: "fail", code: je.Code, transient: je.transient, retryAfter: je.retryAfter}
	case v.restart:
		return outcome{kind: "restart"}
	case v.complete:
		return outcome{kind: "complete"}
	case v.truncate:
		return outcome{kind: "truncate", length: v.length, size: v.remoteSize}
	}
	return outcome{kind: "use", length: v.length, size: v.remoteSize}
}

func outUse(length, size int64) outcome { return outcome{kind: "use", length: length, size: size} }
func outTruncate(length, size int64) outcome {
	return outcome{kind: "truncate", length: length, size: size}
}
func outFatal(code HRESULT) outcome     { return outcome{kind: "fail", code: code} }
func outTransient(code HRESULT) outcome { return outcome{kind: "fail", code: code, transient: true} }

var (
	outRestart  = outcome{kind: "restart"}
	outComplete = outcome{kind: "complete"}
)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// TestCheck has a row for every resume rule (see check's comment).
func TestCheck(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	lm1 := now.Add(-48 * time.Hour).Format(http.TimeFormat)
	lm2 := now.Add(-24 * time.Hour).Format(http.TimeFormat)

	// The requests.
	fresh := ask{sp: span{off: 0, end: -1, whole: true}, size: SizeUnknown}
	resume := ask{sp: span{off: 100, end: -1, ranged: true}, ifRange: true, etag: `"v1"`, size: 1000, cont: true}
	resumeLM := ask{sp: span{off: 100, end: -1, ranged: true}, ifRange: true, lastMod: lm1, size: 1000, cont: true}
	resumeAll := ask{sp: span{off: 1000, end: -1, ranged: true}, ifRange: true, etag: `"v1"`, size: SizeUnknown, cont: true} // all bytes there, the end not confirmed
	resumeBlind := ask{sp: span{off: 100, end: -1, ranged: true}, size: 1000, cont: true}                                    // bytes, but no validator known
	rng := ask{sp: span{off: 100, end: 199, ranged: true}, ranges: true, ifRange: true, etag: `"v1"`, size: 4096, cont: true}
	rngFirst := ask{sp: span{off: 100, end: 199, ranged: true}, ranges: true, size: SizeUnknown} // nothing known: no If-Range
	rngChain := ask{sp: span{off: 300, end: 399, ranged: true}, ranges: true, size: 4096, cont: true, chain: true}
	rngNoChain := ask{sp: span{off: 300, end: 399, ranged: true}, ranges: true, size: 4096, cont: true}
	rngEOF := ask{sp: span{off: 4046, end: -1, ranged: true}, ranges: true, ifRange: true, etag: `"v1"`, size: 4096, cont: true}
	rngWhole := ask{sp: span{off: 0, end: -1, ranged: true, whole: true}, ranges: true, size: SizeUnknown}
	rngPastEOF := ask{sp: span{off: 4000, end: 4199, ranged: true}, ranges: true, size: SizeUnknown}

	tests := []struct {
		name   string
		a      ask
		status int
		h      http.Header
		cl     int64
		want   outcome
	}{
		// 206: accepted only at the asked offset, to the asked end, with the known total.
		{"206 resume accepted", resume, 206, hdr("Content-Range", "bytes 100-999/1000", "ETag", `"v1"`), 900, outUse(900, 1000)},
		{"206 without Content-Length: length from Content-Range", resume, 206, hdr("Content-Range", "bytes 100-999/1000", "ETag", `"v1"`), -1, outUse(900, 1000)},
		{"206 range accepted", rng, 206, hdr("Content-Range", "bytes 100-199/4096", "ETag", `"v1"`), 100, outUse(100, 4096)},
		{"206 first range, nothing known", rngFirst, 206, hdr("Content-Range", "bytes 100-199/4096"), 100, outUse(100, 4096)},
		{"206 range to EOF", rngEOF, 206, hdr("Content-Range", "bytes 4046-4095/4096", "ETag", `"v1"`), 50, outUse(50, 4096)},
		{"206 at another offset: whole file starts over", resume, 206, hdr("Content-Range", "bytes 50-999/1000", "ETag", `"v1"`), 950, outRestart},
		{"206 at another offset: range fails", rng, 206, hdr("Content-Range", "bytes 150-199/4096", "ETag", `"v1"`), 50, outFatal(ErrInsufficientRangeSupport)},

		// A 206 that continues bytes must prove it serves their content:
		// If-Range sent proves nothing (a server, mirror or cache may ignore it).
		{"206 continuing, no ETag where one was known: starts over", resume, 206, hdr("Content-Range", "bytes 100-999/1000"), 900, outRestart},
		{"206 continuing, only Last-Modified where an ETag was known", resume, 206, hdr("Content-Range", "bytes 100-999/1000", "Last-Modified", lm1), 900, outRestart},
		{"206 continuing, no Last-Modified where only it was known", resumeLM, 206, hdr("Content-Range", "bytes 100-999/1000"), 900, outRestart},
		{"206 continuing, same Last-Modified", resumeLM, 206, hdr("Content-Range", "bytes 100-999/1000", "Last-Modified", lm1), 900, outUse(900, 1000)},
		{"206 continuing, an ETag appears where only Last-Modified was known", resumeLM, 206, hdr("Content-Range", "bytes 100-999/1000", "ETag", `"v1"`, "Last-Modified", lm1), 900, outRestart},
		{"206 continuing without any validator known", resumeBlind, 206, hdr("Content-Range", "bytes 100-999/1000"), 900, outRestart},
		{"206 continuing without any validator known, the answer has one", resumeBlind, 206, hdr("Content-Range", "bytes 100-999/1000", "ETag", `"v1"`), 900, outRestart},
		{"206 next range, same source and attempt, no validator ever", rngChain, 206, hdr("Content-Range", "bytes 300-399/4096"), 100, outUse(100, 4096)},
		{"206 next range, same attempt, the answer has a validator now", rngChain, 206, hdr("Content-Range", "bytes 300-399/4096", "ETag", `"v1"`), 100, outRestart},
		{"206 next range, chain but another total", rngChain, 206, hdr("Content-Range", "bytes 300-399/5000"), 100, outRestart},
		{"206 next range, not chained: starts over", rngNoChain, 206, hdr("Content-Range", "bytes 300-399/4096"), 100, outRestart},
		{"206 range continuing without the ETag: starts over", rng, 206, hdr("Content-Range", "bytes 100-199/4096"), 100, outRestart},
		{"206 with another total: changed", resume, 206, hdr("Content-Range", "bytes 100-1999/2000"), 1900, outRestart},
		{"206 with another total: range changed", rng, 206, hdr("Content-Range", "bytes 100-199/5000"), 100, outRestart},
		{"206 with another ETag: changed", resume, 206, hdr("Content-Range", "bytes 100-999/1000", "ETag", `"v2"`), 900, outRestart},
		{"206 with another Last-Modified, none but it known: changed", resumeLM, 206, hdr("Content-Range", "bytes 100-999/1000", "Last-Modified", lm2), 900, outRestart},
		{"206 same ETag, another Last-Modified: the ETag decides", resume, 206, hdr("Content-Range", "bytes 100-999/1000", "ETag", `"v1"`, "Last-Modified", lm2), 900, outUse(900, 1000)},
		{"206 weak ETag counts as none: no proof", resume, 206, hdr("Content-Range", "bytes 100-999/1000", "ETag", `W/"v1"`), 900, outRestart},
		{"206 without Content-Range: whole file starts over", resume, 206, hdr(), 900, outRestart},
		{"206 without Content-Range: range fails", rng, 206, hdr(), 100, outFatal(ErrInsufficientRangeSupport)},
		{"206 with unknown total: whole file starts over", resume, 206, hdr("Content-Range", "bytes 100-999/*"), 900, outRestart},
		{"206 with unknown total: range fails", rng, 206, hdr("Content-Range", "bytes 100-199/*"), 100, outFatal(ErrInsufficientRangeSupport)},
		{"206 malformed Content-Range", resume, 206, hdr("Content-Range", "bytes 100-1000/1000"), 901, outRestart},
		{"206 short of the end: whole file starts over", resume, 206, hdr("Content-Range", "bytes 100-500/1000"), 401, outRestart},
		{"206 short of the range: range fails", rng, 206, hdr("Content-Range", "bytes 100-150/4096"), 51, outFatal(ErrInsufficientRangeSupport)},
		{"206 range beyond EOF", rngPastEOF, 206, hdr("Content-Range", "bytes 4000-4095/4096"), 96, outFatal(ErrInvalidRange)},
		{"206 Content-Length differs from Content-Range", resume, 206, hdr("Content-Range", "bytes 100-999/1000", "ETag", `"v1"`), 500, outFatal(ErrBlockSizeMismatch)},
		{"206 range Content-Length differs", rng, 206, hdr("Content-Range", "bytes 100-199/4096", "ETag", `"v1"`), 101, outFatal(ErrBlockSizeMismatch)},

		// 200: the whole file.
		{"200 to a fresh request", fresh, 200, hdr("ETag", `"v1"`), 1000, outUse(1000, 1000)},
		{"200 without Content-Length", fresh, 200, hdr(), -1, outUse(-1, SizeUnknown)},
		{"200 to a resume: start over with its body", resume, 200, hdr("ETag", `"v2"`), 1000, outTruncate(1000, 1000)},
		{"200 to a resume without Content-Length", resumeLM, 200, hdr(), -1, outTruncate(-1, SizeUnknown)},
		{"200 to a range whose If-Range failed: changed", rng, 200, hdr("ETag", `"v2"`), 4096, outRestart},
		{"200 to a range without If-Range: no range support", rngFirst, 200, hdr(), 4096, outFatal(ErrInsufficientRangeSupport)},
		{"200 to a range that is the whole file", rngWhole, 200, hdr(), 4096, outUse(4096, 4096)},

		// 416.
		{"416 with total == have: complete", resumeAll, 416, hdr("Content-Range", "bytes */1000"), -1, outComplete},
		{"416 with total == have == known size: complete", ask{sp: resumeAll.sp, ifRange: true, etag: `"v1"`, size: 1000}, 416, hdr("Content-Range", "bytes */1000", "ETag", `"v1"`), -1, outComplete},
		{"416 with total == have but another known size", ask{sp: resumeAll.sp, ifRange: true, etag: `"v1"`, size: 2000}, 416, hdr("Content-Range", "bytes */1000"), -1, outRestart},
		{"416 with total == have but another ETag", resumeAll, 416, hdr("Content-Range", "bytes */1000", "ETag", `"v2"`), -1, outRestart},
		{"416 with another total", resume, 416, hdr("Content-Range", "bytes */5000"), -1, outRestart},
		{"416 without Content-Range", resume, 416, hdr(), -1, outRestart},
		{"416 to a fresh request", fresh, 416, hdr("Content-Range", "bytes */0"), -1, outFatal(HTTPStatus(416))},
		{"416 to a range: beyond EOF", rngPastEOF, 416, hdr("Content-Range", "bytes */4096"), -1, outFatal(ErrInvalidRange)},

		// Other statuses.
		{"204: unexpected 2xx, transient", fresh, 204, hdr(), -1, outTransient(ErrUnexpectedStatus2xx)},
		{"201: unexpected 2xx", resume, 201, hdr(), 10, outTransient(ErrUnexpectedStatus2xx)},
		{"299: unexpected 2xx", rng, 299, hdr(), 10, outTransient(ErrUnexpectedStatus2xx)},
		{"304 to a fresh request", fresh, 304, hdr(), -1, outFatal(HTTPStatus(304))},
		{"304 to If-Range: start over without it", resume, 304, hdr("ETag", `"v1"`), -1, outRestart},
		{"304 to If-Range with Last-Modified", resumeLM, 304, hdr(), -1, outRestart},
		{"304 to a range with If-Range", rng, 304, hdr(), -1, outRestart},
		{"304 to a range without If-Range", rngFirst, 304, hdr(), -1, outFatal(HTTPStatus(304))},
		{"302 not followed", fresh, 302, hdr("Location", "/elsewhere"), -1, outFatal(HTTPStatus(302))},
		{"404", resume, 404, hdr(), -1, outFatal(HTTPStatus(404))},
		{"501", fresh, 501, hdr(), -1, outFatal(HTTPStatus(501))},
		{"503", resume, 503, hdr(), -1, outTransient(HTTPStatus(503))},
		{"429 with Retry-After", fresh, 429, hdr("Retry-After", "7"), -1, outcome{kind: "fail", code: HTTPStatus(429), transient: true, retryAfter: 7 * time.Second}},
		{"503 with Retry-After date", fresh, 503, hdr("Retry-After", now.Add(time.Minute).Format(http.TimeFormat)), -1, outcome{kind: "fail", code: HTTPStatus(503), transient: true, retryAfter: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := check(tt.a, tt.status, tt.h, tt.cl, now)
			assert.Equal(t, tt.want, outcomeOf(t, v))
			assert.Equal(t, strongETag(tt.h.Get("ETag")), v.etag, "the response's strong ETag is reported")
			assert.Equal(t, tt.h.Get("Last-Modified"), v.lastMod)
		})
	}
}

// FuzzResponseVerdict: whatever the status and headers, check never panics,
// gives exactly one verdict, and an accepted response's body is written
// where the request asked — at sp.off, or at 0 after a truncate — and is
// never longer than the span asked for; a 206 after bytes already on hand
// is accepted only when it carries their validator.
func FuzzResponseVerdict(f *testing.F) {
	// status, Content-Range, ETag, Last-Modified, Content-Length, off, end,
	// ranges, whole, If-Range, known ETag, known Last-Modified, known size,
	// bytes on hand (cont), chain.
	f.Add(206, "bytes 100-999/1000", `"v1"`, "", int64(900), int64(100), int64(-1), false, false, true, `"v1"`, "", int64(1000), true, false)
	f.Add(206, "bytes 0-999/1000", `"v1"`, "", int64(1000), int64(100), int64(-1), false, false, true, `"v1"`, "", int64(1000), true, false)
	f.Add(206, "bytes 100-199/4096", "", "", int64(100), int64(100), int64(199), true, false, false, "", "", int64(-1), true, false)
	f.Add(206, "bytes 100-4095/4096", "", "", int64(-1), int64(100), int64(199), true, false, false, "", "", int64(-1), true, false)
	f.Add(200, "", `"v2"`, "", int64(1000), int64(100), int64(-1), false, false, true, `"v1"`, "", int64(1000), true, false)
	f.Add(200, "", "", "", int64(4096), int64(0), int64(-1), true, true, false, "", "", int64(-1), true, false)
	f.Add(200, "", "", "", int64(4096), int64(100), int64(199), true, false, true, `"v1"`, "", int64(4096), true, false)
	f.Add(416, "bytes */1000", "", "", int64(-1), int64(1000), int64(-1), false, false, true, `"v1"`, "", int64(-1), true, false)
	f.Add(416, "bytes */4096", "", "", int64(-1), int64(4000), int64(4199), true, false, false, "", "", int64(-1), true, false)
	f.Add(304, "", "", "", int64(-1), int64(100), int64(-1), false, false, true, "", "Wed, 25 Nov 2026 12:00:00 GMT", int64(1000), true, false)
	f.Add(204, "", "", "", int64(0), int64(0), int64(-1), false, true, false, "", "", int64(-1), true, false)
	f.Add(503, "", "", "", int64(-1), int64(0), int64(-1), false, true, false, "", "", int64(-1), true, false)
	f.Add(206, "bytes 100-999/1000", "", "", int64(900), int64(100), int64(-1), false, false, true, `"v1"`, "", int64(1000), true, false)
	f.Add(206, "bytes 300-399/4096", "", "", int64(100), int64(300), int64(399), true, false, false, "", "", int64(4096), true, true)
	f.Fuzz(func(t *testing.T, status int, contentRange, etag, lastMod string, contentLength, off, end int64,
		ranges, whole, ifRange bool, knownETag, knownLastMod string, knownSize int64, cont, chain bool) {
		// A span and a known state dojob could have asked with.
		off &= math.MaxInt64
		if end < off || !ranges {
			end = -1
		}
		sp := span{off: off, end: end}
		if ranges {
			sp.ranged = true
			sp.whole = whole && off == 0 && end == -1
		} else {
			sp.ranged = off > 0
			sp.whole = off == 0
		}
		knownETag = strongETag(knownETag)
		ifRange = ifRange && sp.ranged && (knownETag != "" || knownLastMod != "")
		if knownSize < 0 {
			knownSize = SizeUnknown
		}
		if contentLength < 0 {
			contentLength = -1
		}
		// Bytes on hand: a whole file resumes after them; a file with
		// ranges may have some at any offset.
		cont = cont && (off > 0 || ranges)
		a := ask{sp: sp, ranges: ranges, ifRange: ifRange, etag: knownETag, lastMod: knownLastMod, size: knownSize, cont: cont, chain: chain && cont}
		h := http.Header{}
		for k, v := range map[string]string{"Content-Range": contentRange, "ETag": etag, "Last-Modified": lastMod} {
			if v != "" {
				h.Set(k, v)
			}
		}

		v := check(a, status, h, contentLength, time.Now())

		n := 0
		for _, b := range []bool{v.err != nil, v.restart, v.complete} {
			if b {
				n++
			}
		}
		if n > 1 || (n == 1 && v.truncate) {
			t.Fatalf("more than one verdict: %+v", v)
		}
		if v.err != nil {
			var je *JobError
			if !errors.As(v.err, &je) || je.Code == 0 {
				t.Fatalf("a failure without a code: %v", v.err)
			}
			return
		}
		if v.complete {
			cr, ok := parseContentRange(contentRange)
			if status != http.StatusRequestedRangeNotSatisfiable || ranges || !sp.ranged || !ok || cr.total != off {
				t.Fatalf("complete at %d on %d %q", off, status, contentRange)
			}
			return
		}
		if v.restart {
			return
		}
		// Accepted: where does the body start in the remote file?
		var bodyStart int64
		switch status {
		case http.StatusOK:
			bodyStart = 0
		case http.StatusPartialContent:
			cr, ok := parseContentRange(contentRange)
			if !ok || cr.start < 0 {
				t.Fatalf("206 accepted with Content-Range %q", contentRange)
			}
			bodyStart = cr.start
			if v.length != cr.end-cr.start+1 {
				t.Fatalf("206 %q accepted with length %d", contentRange, v.length)
			}
			if knownSize != SizeUnknown && cr.total != knownSize {
				t.Fatalf("206 %q accepted though the known size is %d", contentRange, knownSize)
			}
		default:
			t.Fatalf("status %d accepted", status)
		}
		if cont && status == http.StatusPartialContent {
			// Bytes after others: the answer proved it is their content.
			got := strongETag(etag)
			proven := (knownETag != "" && got == knownETag) ||
				(knownETag == "" && knownLastMod != "" && got == "" && lastMod == knownLastMod) ||
				(knownETag == "" && knownLastMod == "" && chain && got == "" && lastMod == "")
			if !proven {
				t.Fatalf("206 accepted after bytes of %q/%q with ETag %q, Last-Modified %q (chain %v)", knownETag, knownLastMod, etag, lastMod, chain)
			}
		}
		if v.truncate {
			if bodyStart != 0 || ranges || off == 0 {
				t.Fatalf("truncate with a body from %d (off %d, ranges %v)", bodyStart, off, ranges)
			}
		} else if bodyStart != off {
			t.Fatalf("a body from %d written at %d", bodyStart, off)
		}
		if end >= 0 && v.length != end-off+1 {
			t.Fatalf("span %d-%d accepted with a body of %d bytes", off, end, v.length)
		}
		if v.length >= 0 && contentLength >= 0 && v.length != contentLength {
			t.Fatalf("length %d accepted with Content-Length %d", v.length, contentLength)
		}
	})
}
