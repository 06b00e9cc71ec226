package dojob

import (
	"net/http"
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
