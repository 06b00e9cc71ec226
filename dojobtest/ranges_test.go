package dojobtest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParseRange(t *testing.T) {
	const size = 100
	for _, c := range []struct {
		h          string
		start, end int64
		res        rangeResult
	}{
		{"bytes=0-9", 0, 9, rangeSatisfiable},
		{"bytes=10-", 10, 99, rangeSatisfiable},
		{"bytes=99-", 99, 99, rangeSatisfiable},
		{"bytes=50-1000", 50, 99, rangeSatisfiable},
		{"bytes=-1", 99, 99, rangeSatisfiable},
		{"bytes=-100", 0, 99, rangeSatisfiable},
		{"bytes=-1000", 0, 99, rangeSatisfiable},
		{" Bytes = 1 - 2 ", 1, 2, rangeSatisfiable},
		{"bytes=100-", 0, 0, rangeUnsatisfiable},
		{"bytes=100-200", 0, 0, rangeUnsatisfiable},
		{"bytes=-0", 0, 0, rangeUnsatisfiable},
		{"", 0, 0, rangeIgnored},
		{"bytes", 0, 0, rangeIgnored},
		{"bytes=", 0, 0, rangeIgnored},
		{"bytes=-", 0, 0, rangeIgnored},
		{"bytes=5", 0, 0, rangeIgnored},
		{"bytes=9-5", 0, 0, rangeIgnored},
		{"bytes=0-1,3-4", 0, 0, rangeIgnored},
		{"bytes=+1-2", 0, 0, rangeIgnored},
		{"bytes=1-2x", 0, 0, rangeIgnored},
		{"bytes=99999999999999999999-", 0, 0, rangeIgnored},
		{"pages=1-2", 0, 0, rangeIgnored},
	} {
		start, end, res := parseRange(c.h, size)
		assert.Equal(t, c.res, res, "%q", c.h)
		if res == rangeSatisfiable {
			assert.Equal(t, [2]int64{c.start, c.end}, [2]int64{start, end}, "%q", c.h)
		}
	}
	// An empty file has no satisfiable range.
	for _, h := range []string{"bytes=0-", "bytes=0-0", "bytes=-5"} {
		_, _, res := parseRange(h, 0)
		assert.Equal(t, rangeUnsatisfiable, res, h)
	}
}

func TestPlanAnswer(t *testing.T) {
	lm := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	strong := validators{etag: `"0-abc"`, lastMod: lm}
	weak := validators{etag: `W/"0-abc"`, lastMod: lm}
	none := validators{}
	for _, c := range []struct {
		name         string
		rng, ifRange string
		v            validators
		status       int
		start, end   int64
		contentRange string
	}{
		{"no range", "", "", strong, 200, 0, 10, ""},
		{"range", "bytes=2-4", "", strong, 206, 2, 5, "bytes 2-4/10"},
		{"open range", "bytes=7-", "", strong, 206, 7, 10, "bytes 7-9/10"},
		{"416", "bytes=10-", "", strong, 416, 0, 0, "bytes */10"},
		{"If-Range etag", "bytes=2-", `"0-abc"`, strong, 206, 2, 10, "bytes 2-9/10"},
		{"If-Range other etag", "bytes=2-", `"1-abc"`, strong, 200, 0, 10, ""},
		{"If-Range date", "bytes=2-", "Mon, 01 Jan 2024 00:00:00 GMT", strong, 206, 2, 10, "bytes 2-9/10"},
		{"If-Range other date", "bytes=2-", "Mon, 01 Jan 2024 00:00:01 GMT", strong, 200, 0, 10, ""},
		{"If-Range weak etag sent", "bytes=2-", `W/"0-abc"`, weak, 200, 0, 10, ""},
		{"If-Range strong form of weak etag", "bytes=2-", `"0-abc"`, weak, 200, 0, 10, ""},
		{"If-Range date with weak etag", "bytes=2-", "Mon, 01 Jan 2024 00:00:00 GMT", weak, 206, 2, 10, "bytes 2-9/10"},
		{"If-Range without validators", "bytes=2-", `"0-abc"`, none, 200, 0, 10, ""},
		{"If-Range date without Last-Modified", "bytes=2-", "Mon, 01 Jan 2024 00:00:00 GMT", none, 200, 0, 10, ""},
		{"If-Range garbage", "bytes=2-", "yesterday", strong, 200, 0, 10, ""},
		{"If-Range without Range", "", `"1-abc"`, strong, 200, 0, 10, ""},
		{"If-Range mismatch on 416", "bytes=10-", `"1-abc"`, strong, 200, 0, 10, ""},
		{"If-Range match on 416", "bytes=10-", `"0-abc"`, strong, 416, 0, 0, "bytes */10"},
	} {
		a := planAnswer(c.rng, c.ifRange, 10, c.v)
		assert.Equal(t, answer{status: c.status, start: c.start, end: c.end, contentRange: c.contentRange}, a, c.name)
	}
}

func TestTransferTime(t *testing.T) {
	for _, c := range []struct {
		n, rate int64
		want    time.Duration
	}{
		{10_000, 1000, 10 * time.Second},
		{100, 1000, 100 * time.Millisecond},
		{1, 3, 333333334 * time.Nanosecond}, // rounded up
		{0, 7, 0},
		{1 << 40, 1 << 30, 1024 * time.Second},
		{1<<62 + 1, 1 << 62, time.Second + 1}, // no overflow
		{5, 1 << 62, 1},
	} {
		assert.Equal(t, c.want, transferTime(c.n, c.rate), "%d at %d", c.n, c.rate)
	}
}

func TestLastModifiedDiffersPerVersion(t *testing.T) {
	assert.Equal(t, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), lastModified(0))
	assert.Equal(t, time.Hour, lastModified(3).Sub(lastModified(2)))
	assert.Equal(t, time.Date(2024, 1, 2, 1, 0, 0, 0, time.UTC), lastModified(25))
}
