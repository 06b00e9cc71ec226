package dojobtest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dojob/dojob/dojobtest"
)

// The tests in this file run each case against the Server and against the
// Transport (see both).

const size = 1 << 20 // the default file size

func TestGetWholeFile(t *testing.T) {
	both(t, nil, func(t *testing.T, tg target) {
		start := time.Now()
		resp, data := get(t, tg, "/dir/file.bin")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, int64(size), resp.ContentLength)
		assert.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))
		assert.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
		assert.Regexp(t, regexp.MustCompile(`^"0-[0-9a-f]{16}"$`), resp.Header.Get("ETag"))
		assert.Equal(t, "Mon, 01 Jan 2024 00:00:00 GMT", resp.Header.Get("Last-Modified"))
		assert.Empty(t, resp.Header.Get("Content-Range"))
		assert.NotEmpty(t, resp.Header.Get("Date"))

		require.Len(t, data, size)
		assert.Equal(t, dojobtest.Content("/dir/file.bin#v0", size), data)
		assert.Equal(t, tg.content("/dir/file.bin"), data)
		assert.Equal(t, sha(data), tg.sha("/dir/file.bin"))
		assert.Equal(t, int64(size), tg.bodyBytes("/dir/file.bin"))

		reqs := tg.requests("/dir/file.bin")
		require.Len(t, reqs, 1)
		r := reqs[0]
		assert.Equal(t, http.MethodGet, r.Method)
		assert.Equal(t, "/dir/file.bin", r.Path)
		assert.Equal(t, 0, r.N)
		assert.Equal(t, http.StatusOK, r.Status)
		assert.Equal(t, int64(size), r.BodyBytes)
		assert.Equal(t, "OK", r.Fault)
		assert.Empty(t, r.Range)
		assert.Empty(t, r.IfRange)
		assert.False(t, r.Time.Before(start))
		if tg.fake {
			assert.Equal(t, start, r.Time, "no fake time passes")
			assert.Equal(t, start, r.End)
		}
	})
}

func TestWithFile(t *testing.T) {
	data := []byte("hello, dojob")
	both(t, []dojobtest.Option{dojobtest.WithFile("/hello.txt", data), dojobtest.WithSize(100)}, func(t *testing.T, tg target) {
		resp, got := get(t, tg, "/hello.txt")
		assert.Equal(t, data, got)
		assert.Equal(t, int64(len(data)), resp.ContentLength)
		assert.Regexp(t, `^"0-[0-9a-f]{16}"$`, resp.Header.Get("ETag"))
		_, other := get(t, tg, "/other")
		assert.Equal(t, dojobtest.Content("/other#v0", 100), other)
	})
}

func TestRange(t *testing.T) {
	const n = 1000
	all := dojobtest.Content("/r#v0", n)
	cases := []struct {
		rng          string
		status       int
		contentRange string
		body         []byte
	}{
		{"bytes=100-199", 206, "bytes 100-199/1000", all[100:200]},
		{"bytes=0-0", 206, "bytes 0-0/1000", all[:1]},
		{"bytes=900-", 206, "bytes 900-999/1000", all[900:]},
		{"bytes=999-", 206, "bytes 999-999/1000", all[999:]},
		{"bytes=990-5000", 206, "bytes 990-999/1000", all[990:]},
		{"bytes=-10", 206, "bytes 990-999/1000", all[990:]},
		{"bytes=-5000", 206, "bytes 0-999/1000", all},
		{"bytes=0-", 206, "bytes 0-999/1000", all},
		{"bytes=1000-", 416, "bytes */1000", nil},
		{"bytes=5000-6000", 416, "bytes */1000", nil},
		{"bytes=-0", 416, "bytes */1000", nil},
		{"bytes=5-4", 200, "", all},     // invalid: ignored
		{"bytes=0-1,5-6", 200, "", all}, // several ranges: ignored
		{"items=0-1", 200, "", all},     // unknown unit: ignored
		{"bytes=abc-", 200, "", all},    // malformed: ignored
		{"BYTES = 10 - 19", 206, "bytes 10-19/1000", all[10:20]},
	}
	both(t, []dojobtest.Option{dojobtest.WithSize(n)}, func(t *testing.T, tg target) {
		for _, c := range cases {
			resp, body := get(t, tg, "/r", "Range", c.rng)
			assert.Equal(t, c.status, resp.StatusCode, c.rng)
			assert.Equal(t, c.contentRange, resp.Header.Get("Content-Range"), c.rng)
			assert.Equal(t, int64(len(c.body)), resp.ContentLength, c.rng)
			assert.Equal(t, len(c.body), len(body), c.rng)
			assert.True(t, string(c.body) == string(body), c.rng)
		}
		var sent int64
		for i, r := range tg.requests("/r") {
			assert.Equal(t, cases[i].rng, r.Range)
			assert.Equal(t, cases[i].status, r.Status)
			assert.Equal(t, int64(len(cases[i].body)), r.BodyBytes)
			sent += r.BodyBytes
		}
		assert.Equal(t, sent, tg.bodyBytes("/r"))
	})
}

func TestIfRange(t *testing.T) {
	const n = 1000
	all := dojobtest.Content("/f#v0", n)
	both(t, []dojobtest.Option{dojobtest.WithSize(n)}, func(t *testing.T, tg target) {
		resp, _ := get(t, tg, "/f")
		etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		require.NotEmpty(t, etag)
		require.NotEmpty(t, lastMod)

		for _, c := range []struct {
			ifRange string
			status  int
		}{
			{etag, 206},
			{lastMod, 206},
			{`"0-0000000000000000"`, 200}, // another ETag
			{"W/" + etag, 200},            // weak: never matches
			{"Tue, 02 Jan 2024 00:00:00 GMT", 200},
			{"not a date", 200},
		} {
			resp, body := get(t, tg, "/f", "Range", "bytes=500-", "If-Range", c.ifRange)
			assert.Equal(t, c.status, resp.StatusCode, c.ifRange)
			if c.status == 206 {
				assert.Equal(t, all[500:], body, c.ifRange)
				assert.Equal(t, "bytes 500-999/1000", resp.Header.Get("Content-Range"))
			} else {
				assert.Equal(t, all, body, c.ifRange)
				assert.Empty(t, resp.Header.Get("Content-Range"))
			}
		}
		// If-Range that does not match also turns a 416 into the whole file.
		resp, body := get(t, tg, "/f", "Range", "bytes=1000-", "If-Range", `"other"`)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, all, body)
		resp, _ = get(t, tg, "/f", "Range", "bytes=1000-", "If-Range", etag)
		assert.Equal(t, 416, resp.StatusCode)

		r := tg.requests("/f")[1]
		assert.Equal(t, "bytes=500-", r.Range)
		assert.Equal(t, etag, r.IfRange)
	})
}

func TestHeadAndMethods(t *testing.T) {
	both(t, []dojobtest.Option{dojobtest.WithSize(1000)}, func(t *testing.T, tg target) {
		resp, body, err := fetch(t.Context(), t, tg, http.MethodHead, "/h")
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, int64(1000), resp.ContentLength)
		assert.NotEmpty(t, resp.Header.Get("ETag"))
		assert.Empty(t, body)

		resp, _, err = fetch(t.Context(), t, tg, http.MethodHead, "/h", "Range", "bytes=10-19")
		require.NoError(t, err)
		assert.Equal(t, 206, resp.StatusCode)
		assert.Equal(t, "bytes 10-19/1000", resp.Header.Get("Content-Range"))

		resp, body, err = fetch(t.Context(), t, tg, http.MethodPost, "/h")
		require.NoError(t, err)
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
		assert.Empty(t, body)
		assert.Equal(t, int64(0), tg.bodyBytes(""))
	})
}

func TestStatusFaults(t *testing.T) {
	opts := []dojobtest.Option{dojobtest.Script(
		dojobtest.Status(http.StatusNotFound),
		dojobtest.StatusRetryAfter(http.StatusServiceUnavailable, "120"),
		dojobtest.Status(http.StatusForbidden).And(dojobtest.DropAfter(0)), // a body fault does nothing to a status
	)}
	both(t, opts, func(t *testing.T, tg target) {
		for _, c := range []struct {
			status     int
			retryAfter string
		}{{404, ""}, {503, "120"}, {403, ""}, {200, ""}} {
			resp, body := get(t, tg, "/s")
			assert.Equal(t, c.status, resp.StatusCode)
			assert.Equal(t, c.retryAfter, resp.Header.Get("Retry-After"))
			if c.status != 200 {
				assert.Empty(t, body)
				assert.Equal(t, int64(0), resp.ContentLength)
				assert.Empty(t, resp.Header.Get("ETag"), "no file, no validator")
			} else {
				assert.Len(t, body, size)
			}
		}
		var faults []string
		for _, r := range tg.requests("/s") {
			faults = append(faults, r.Fault+" "+strconv.Itoa(r.Status))
		}
		assert.Equal(t, []string{`Status(404) 404`, `StatusRetryAfter(503, "120") 503`, `Status(403)+DropAfter(0) 403`, `OK 200`}, faults)
		// Scripts count per path.
		resp, _ := get(t, tg, "/another")
		assert.Equal(t, 404, resp.StatusCode)
	})
}

func TestDropAfter(t *testing.T) {
	for _, noLength := range []bool{false, true} {
		t.Run("noContentLength="+strconv.FormatBool(noLength), func(t *testing.T) {
			opts := []dojobtest.Option{dojobtest.Script(dojobtest.DropAfter(1000), dojobtest.DropAfter(0), dojobtest.DropAfter(size))}
			if noLength {
				opts = append(opts, dojobtest.WithoutContentLength())
			}
			both(t, opts, func(t *testing.T, tg target) {
				want := tg.content("/d")
				for _, n := range []int{1000, 0} {
					resp, data, err := fetch(t.Context(), t, tg, http.MethodGet, "/d")
					require.NotNil(t, resp)
					assert.Equal(t, 200, resp.StatusCode)
					assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
					assert.Equal(t, want[:n], data)
				}
				// DropAfter(size) comes after the whole body: it matters
				// only when the client cannot know the length.
				_, data, err := fetch(t.Context(), t, tg, http.MethodGet, "/d")
				assert.Equal(t, want, data)
				if noLength {
					assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
				} else {
					assert.NoError(t, err)
				}
				reqs := tg.requests("/d")
				require.Len(t, reqs, 3)
				assert.Equal(t, int64(1000), reqs[0].BodyBytes)
				assert.Equal(t, int64(0), reqs[1].BodyBytes)
				assert.Equal(t, int64(size), reqs[2].BodyBytes)
				assert.Equal(t, "DropAfter(1000)", reqs[0].Fault)
			})
		})
	}
}

func TestDropAfterRange(t *testing.T) {
	// A resume cut again: the byte count is of the body, not the file.
	both(t, []dojobtest.Option{dojobtest.Script(dojobtest.DropAfter(10))}, func(t *testing.T, tg target) {
		resp, data, err := fetch(t.Context(), t, tg, http.MethodGet, "/d", "Range", "bytes=100-")
		require.NotNil(t, resp)
		assert.Equal(t, 206, resp.StatusCode)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Equal(t, tg.content("/d")[100:110], data)
	})
}

func TestStallAfter(t *testing.T) {
	both(t, []dojobtest.Option{dojobtest.Script(dojobtest.StallAfter(500))}, func(t *testing.T, tg target) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		resp, data, err := fetch(ctx, t, tg, http.MethodGet, "/s")
		require.NotNil(t, resp, "headers come before the stall")
		assert.Equal(t, 200, resp.StatusCode)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, tg.content("/s")[:500], data)
		assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
		if tg.fake {
			assert.Equal(t, 200*time.Millisecond, time.Since(start))
		}
		assert.Equal(t, int64(500), tg.bodyBytes("/s"))
		assert.Equal(t, "StallAfter(500)", tg.requests("/s")[0].Fault)
	})
}

func TestStallAfterBodyClosed(t *testing.T) {
	// A client that closes the body ends the stall.
	both(t, []dojobtest.Option{dojobtest.Script(dojobtest.StallAfter(10))}, func(t *testing.T, tg target) {
		resp, err := tg.client.Get(tg.url("/s"))
		require.NoError(t, err)
		buf := make([]byte, 10)
		_, err = io.ReadFull(resp.Body, buf)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	})
}

func TestStallHeaders(t *testing.T) {
	both(t, []dojobtest.Option{dojobtest.Script(dojobtest.StallHeaders())}, func(t *testing.T, tg target) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		resp, _, err := fetch(ctx, t, tg, http.MethodGet, "/s")
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		if tg.fake {
			assert.Equal(t, 200*time.Millisecond, time.Since(start))
		}
		r := tg.requests("/s")[0]
		assert.Equal(t, 0, r.Status)
		assert.Equal(t, "StallHeaders", r.Fault)
		// The next request is answered.
		resp, data := get(t, tg, "/s")
		assert.Equal(t, 200, resp.StatusCode)
		assert.Len(t, data, size)
	})
}

func TestIgnoreRange(t *testing.T) {
	both(t, []dojobtest.Option{dojobtest.Script(dojobtest.IgnoreRange())}, func(t *testing.T, tg target) {
		resp, data := get(t, tg, "/i", "Range", "bytes=100-")
		assert.Equal(t, 200, resp.StatusCode)
		assert.Empty(t, resp.Header.Get("Content-Range"))
		assert.Empty(t, resp.Header.Get("Accept-Ranges"))
		assert.Equal(t, tg.content("/i"), data)
		resp, _ = get(t, tg, "/i", "Range", "bytes=100-")
		assert.Equal(t, 206, resp.StatusCode, "only the scripted request ignores the range")
	})
}

func TestChangeContent(t *testing.T) {
	opts := []dojobtest.Option{dojobtest.WithSize(4096), dojobtest.Script(dojobtest.OK(), dojobtest.ChangeContent().And(dojobtest.DropAfter(100)))}
	both(t, opts, func(t *testing.T, tg target) {
		resp0, v0 := get(t, tg, "/c")
		etag0, lm0 := resp0.Header.Get("ETag"), resp0.Header.Get("Last-Modified")
		assert.Equal(t, dojobtest.Content("/c#v0", 4096), v0)

		// The second request changes the file before it is answered (and is
		// cut after 100 bytes): its If-Range names the old version.
		resp1, part, err := fetch(t.Context(), t, tg, http.MethodGet, "/c", "Range", "bytes=2000-", "If-Range", etag0)
		require.NotNil(t, resp1)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Equal(t, 200, resp1.StatusCode, "the old validator does not match the new version")
		v1 := dojobtest.Content("/c#v1", 4096)
		assert.Equal(t, v1[:100], part)
		assert.Regexp(t, `^"1-[0-9a-f]{16}"$`, resp1.Header.Get("ETag"))
		assert.NotEqual(t, etag0, resp1.Header.Get("ETag"))
		assert.NotEqual(t, lm0, resp1.Header.Get("Last-Modified"))

		assert.Equal(t, v1, tg.content("/c"))
		assert.Equal(t, sha(v1), tg.sha("/c"))
		assert.NotEqual(t, sha(v0), tg.sha("/c"))

		// Later requests get the new version, and resume against it.
		resp2, rest := get(t, tg, "/c", "Range", "bytes=100-", "If-Range", resp1.Header.Get("ETag"))
		assert.Equal(t, 206, resp2.StatusCode)
		assert.Equal(t, v1[100:], rest)
		assert.Equal(t, "ChangeContent+DropAfter(100)", tg.requests("/c")[1].Fault)
	})
}

func TestDelay(t *testing.T) {
	both(t, []dojobtest.Option{dojobtest.WithSize(10), dojobtest.Script(dojobtest.Delay(100 * time.Millisecond))}, func(t *testing.T, tg target) {
		start := time.Now()
		resp, data := get(t, tg, "/d")
		elapsed := time.Since(start)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Len(t, data, 10)
		assert.GreaterOrEqual(t, elapsed, 100*time.Millisecond)
		if tg.fake {
			assert.Equal(t, 100*time.Millisecond, elapsed)
		}

		// A client that gives up during the delay (of the first request
		// of /d2) gets its context's error.
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, _, err := fetch(ctx, t, tg, http.MethodGet, "/d2")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestDrip(t *testing.T) {
	// 10,000 bytes at 100,000 B/s: 100 ms (exactly, in fake time).
	both(t, []dojobtest.Option{dojobtest.WithSize(10_000), dojobtest.Script(dojobtest.Drip(100_000))}, func(t *testing.T, tg target) {
		start := time.Now()
		_, data := get(t, tg, "/d")
		elapsed := time.Since(start)
		assert.Equal(t, tg.content("/d"), data)
		assert.GreaterOrEqual(t, elapsed, 100*time.Millisecond)
		if tg.fake {
			assert.Equal(t, 100*time.Millisecond, elapsed)
		}
		assert.Equal(t, "Drip(100000)", tg.requests("/d")[0].Fault)
	})
}

func TestWithoutContentLength(t *testing.T) {
	opts := []dojobtest.Option{dojobtest.WithoutContentLength(), dojobtest.WithSize(100)}
	both(t, opts, func(t *testing.T, tg target) {
		resp, data := get(t, tg, "/n")
		assert.Equal(t, int64(-1), resp.ContentLength)
		assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)
		assert.Empty(t, resp.Header.Get("Content-Length"))
		assert.Equal(t, tg.content("/n"), data)

		resp, data = get(t, tg, "/n", "Range", "bytes=90-")
		assert.Equal(t, 206, resp.StatusCode)
		assert.Equal(t, int64(-1), resp.ContentLength)
		assert.Equal(t, "bytes 90-99/100", resp.Header.Get("Content-Range"))
		assert.Equal(t, tg.content("/n")[90:], data)
	})
}

func TestValidatorOptions(t *testing.T) {
	t.Run("WeakETag", func(t *testing.T) {
		both(t, []dojobtest.Option{dojobtest.WithWeakETag(), dojobtest.WithSize(100)}, func(t *testing.T, tg target) {
			resp, _ := get(t, tg, "/w")
			etag := resp.Header.Get("ETag")
			assert.Regexp(t, `^W/"0-[0-9a-f]{16}"$`, etag)
			resp, data := get(t, tg, "/w", "Range", "bytes=50-", "If-Range", etag)
			assert.Equal(t, 200, resp.StatusCode, "a weak ETag never matches")
			assert.Len(t, data, 100)
			resp, _ = get(t, tg, "/w", "Range", "bytes=50-", "If-Range", etag[2:])
			assert.Equal(t, 200, resp.StatusCode, "nor does its strong form")
			resp, _ = get(t, tg, "/w", "Range", "bytes=50-", "If-Range", resp.Header.Get("Last-Modified"))
			assert.Equal(t, 206, resp.StatusCode, "the date still does")
		})
	})
	t.Run("WithoutETag", func(t *testing.T) {
		both(t, []dojobtest.Option{dojobtest.WithoutETag(), dojobtest.WithSize(100)}, func(t *testing.T, tg target) {
			resp, _ := get(t, tg, "/w")
			assert.Empty(t, resp.Header.Values("ETag"))
			lm := resp.Header.Get("Last-Modified")
			resp, data := get(t, tg, "/w", "Range", "bytes=50-", "If-Range", lm)
			assert.Equal(t, 206, resp.StatusCode)
			assert.Equal(t, tg.content("/w")[50:], data)
		})
	})
	t.Run("WithoutLastModified", func(t *testing.T) {
		both(t, []dojobtest.Option{dojobtest.WithoutLastModified(), dojobtest.WithSize(100)}, func(t *testing.T, tg target) {
			resp, _ := get(t, tg, "/w")
			assert.Empty(t, resp.Header.Values("Last-Modified"))
			resp, _ = get(t, tg, "/w", "Range", "bytes=50-", "If-Range", "Mon, 01 Jan 2024 00:00:00 GMT")
			assert.Equal(t, 200, resp.StatusCode)
			resp, _ = get(t, tg, "/w", "Range", "bytes=50-", "If-Range", resp.Header.Get("ETag"))
			assert.Equal(t, 206, resp.StatusCode)
		})
	})
}

func TestResumeIsLogged(t *testing.T) {
	// What a resuming client does, and what the log shows of it.
	opts := []dojobtest.Option{dojobtest.Script(dojobtest.DropAfter(1000))}
	both(t, opts, func(t *testing.T, tg target) {
		resp, part, err := fetch(t.Context(), t, tg, http.MethodGet, "/f")
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		etag := resp.Header.Get("ETag")
		resp, rest := get(t, tg, "/f", "Range", "bytes="+strconv.Itoa(len(part))+"-", "If-Range", etag)
		require.Equal(t, 206, resp.StatusCode)
		assert.Equal(t, tg.sha("/f"), sha(append(part, rest...)))
		assert.Equal(t, int64(size), tg.bodyBytes("/f"), "every byte sent once")
		assert.Equal(t, int64(size), tg.bodyBytes(""))

		reqs := tg.requests("/f")
		require.Len(t, reqs, 2)
		assert.Equal(t, dojobtest.Request{Method: "GET", Path: "/f", N: 0, Status: 200, BodyBytes: 1000, Fault: "DropAfter(1000)",
			Header: reqs[0].Header, URL: "/f", Time: reqs[0].Time, End: reqs[0].End}, reqs[0])
		assert.Equal(t, dojobtest.Request{Method: "GET", Path: "/f", Range: "bytes=1000-", IfRange: etag, N: 1, Status: 206,
			BodyBytes: size - 1000, Fault: "OK", Header: reqs[1].Header, URL: "/f", Time: reqs[1].Time, End: reqs[1].End}, reqs[1])
		assert.Equal(t, etag, reqs[1].Header.Get("If-Range"), "Header is what the request carried")
	})
}

func TestScriptForAndAlways(t *testing.T) {
	opts := []dojobtest.Option{
		dojobtest.WithSize(10),
		dojobtest.Script(dojobtest.Status(500)),
		dojobtest.Always(dojobtest.Status(502)),
		dojobtest.ScriptFor("/special", dojobtest.OK()),
		dojobtest.AlwaysFor("/special", dojobtest.Status(410)),
	}
	both(t, opts, func(t *testing.T, tg target) {
		var got []int
		for _, p := range []string{"/a", "/a", "/a", "/special", "/special", "/b"} {
			resp, _ := get(t, tg, p)
			got = append(got, resp.StatusCode)
		}
		assert.Equal(t, []int{500, 502, 502, 200, 410, 500}, got)
	})
}

func TestConcurrentRequests(t *testing.T) {
	// Many clients at once; run with -race.
	both(t, []dojobtest.Option{dojobtest.WithSize(64 << 10), dojobtest.Script(dojobtest.DropAfter(1 << 10))}, func(t *testing.T, tg target) {
		const clients = 8
		errs := make(chan error, clients)
		for i := range clients {
			go func() {
				path := "/c" + strconv.Itoa(i%2)
				resp, err := tg.client.Get(tg.url(path))
				if err != nil {
					errs <- err
					return
				}
				defer resp.Body.Close()
				_, err = io.Copy(io.Discard, resp.Body)
				if errors.Is(err, io.ErrUnexpectedEOF) {
					err = nil
				}
				errs <- err
			}()
		}
		for range clients {
			require.NoError(t, <-errs)
		}
		assert.Len(t, tg.requests(""), clients, "RequestsFor(\"\") lists every path")
		assert.Len(t, tg.requests("/c0"), clients/2)
		assert.Equal(t, int64(2*(1<<10)+(clients-2)*(64<<10)), tg.bodyBytes(""))
	})
}
