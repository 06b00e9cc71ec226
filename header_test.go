package dojob

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in   string
		want contentRange
		ok   bool
	}{
		{"bytes 0-99/100", contentRange{0, 99, 100}, true},
		{"bytes 100-199/1000", contentRange{100, 199, 1000}, true},
		{"bytes 5-9/*", contentRange{5, 9, -1}, true},
		{"bytes */100", contentRange{-1, -1, 100}, true},
		{" bytes 0-0/1 ", contentRange{0, 0, 1}, true},
		{"bytes 0-100/100", contentRange{-1, -1, -1}, false}, // end beyond total
		{"bytes 9-5/100", contentRange{-1, -1, -1}, false},
		{"bytes */*", contentRange{-1, -1, -1}, false},
		{"bytes -5/100", contentRange{-1, -1, -1}, false},
		{"bytes +1-5/100", contentRange{-1, -1, -1}, false},
		{"items 0-5/100", contentRange{-1, -1, -1}, false},
		{"bytes 0-5", contentRange{-1, -1, -1}, false},
		{"", contentRange{-1, -1, -1}, false},
		{"bytes 0-99999999999999999999/1", contentRange{-1, -1, -1}, false},
	}
	for _, tt := range tests {
		got, ok := parseContentRange(tt.in)
		assert.Equal(t, tt.ok, ok, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/100", "bytes */5", "bytes 1-2/*", "bytes 9223372036854775806-9223372036854775806/9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cr, ok := parseContentRange(s)
		if !ok {
			return
		}
		if cr.start >= 0 {
			if cr.end < cr.start || (cr.total >= 0 && cr.end >= cr.total) {
				t.Fatalf("%q gave inconsistent %+v", s, cr)
			}
		} else if cr.total < 0 {
			t.Fatalf("%q gave neither range nor total", s)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	date := now.Format(http.TimeFormat)
	tests := []struct {
		v, date string
		want    time.Duration
		ok      bool
	}{
		{"120", "", 120 * time.Second, true},
		{"0", "", 0, true},
		{" 7 ", "", 7 * time.Second, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), "", 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), "", 0, true},
		// Measured from the server's Date, not from our clock.
		{now.Add(30 * time.Second).Format(http.TimeFormat), now.Add(-time.Hour).Format(http.TimeFormat), time.Hour + 30*time.Second, true},
		{"99999999999999999", date, maxRetryAfter, true},
		{"-5", "", 0, false},
		{"soon", "", 0, false},
		{"", "", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.v, tt.date, now)
		assert.Equal(t, tt.ok, ok, tt.v)
		assert.Equal(t, tt.want, got, tt.v)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Add("120", "")
	f.Add("Wed, 25 Nov 2026 12:01:00 GMT", "Wed, 25 Nov 2026 12:00:00 GMT")
	f.Fuzz(func(t *testing.T, v, date string) {
		d, ok := parseRetryAfter(v, date, now)
		if ok && (d < 0 || d > maxRetryAfter) {
			t.Fatalf("%q, %q gave %v", v, date, d)
		}
	})
}

// TestKeptHeaders: what keptHeaders keeps of a response's headers — the
// allow-list, 4 values a name, 1 KiB a value (longer ones dropped), 8 KiB
// in all, Location redacted — and that it shares nothing with its input.
func TestKeptHeaders(t *testing.T) {
	long := strings.Repeat("v", keptValueBytes)
	tests := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"nil", nil, nil},
		{"empty", http.Header{}, http.Header{}},
		{"allow-listed kept, others dropped",
			http.Header{"Etag": {`"e"`}, "Content-Length": {"10"}, "Set-Cookie": {"s=1"}, "X-Cache": {"HIT"},
				"Www-Authenticate": {`Basic realm="x"`}, "Retry-After": {"5"}},
			http.Header{"Etag": {`"e"`}, "Content-Length": {"10"}, "Www-Authenticate": {`Basic realm="x"`}, "Retry-After": {"5"}}},
		{"first 4 values of a name",
			http.Header{"Vary": {"a", "b", "c", "d", "e", "f"}},
			http.Header{"Vary": {"a", "b", "c", "d"}}},
		{"a value of 1 KiB kept, a longer one dropped, not cut",
			http.Header{"Server": {long}, "Content-Disposition": {long + "x", "inline"}},
			http.Header{"Server": {long}, "Content-Disposition": {"inline"}}},
		{"every value too long: the name is dropped",
			http.Header{"Content-Type": {long + "x"}},
			http.Header{}},
		{"Location redacted",
			http.Header{"Location": {"https://u:pw@h/p?X-Amz-Signature=abc&x=1"}},
			http.Header{"Location": {"https://u:xxxxx@h/p?X-Amz-Signature=REDACTED&x=1"}}},
		{"8 KiB in all, in allow-list order",
			// 4 × (4+1024) + 3 × (13+1024) = 7,223: Cache-Control's first
			// value (13+1024) would pass 8,192 and ends the list.
			http.Header{"Etag": {long, long, long, long}, "Last-Modified": {long, long, long}, "Cache-Control": {long, "no"}, "Vary": {"a"}},
			http.Header{"Etag": {long, long, long, long}, "Last-Modified": {long, long, long}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := keptHeaders(tc.in)
			assert.Equal(t, tc.want, got)
			n := 0
			for k, vs := range got {
				for _, v := range vs {
					n += len(k) + len(v)
				}
			}
			assert.LessOrEqual(t, n, keptHeaderBytes)
			for k := range got {
				if len(got[k]) > 0 && len(tc.in[k]) > 0 {
					got[k][0] = "changed"
					assert.NotEqual(t, "changed", tc.in[k][0], "shares %s with its input", k)
				}
			}
		})
	}
}
