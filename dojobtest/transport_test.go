package dojobtest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dojob/dojob/dojobtest"
)

// The Transport's own behaviour, in synctest bubbles where time is fake and
// exact. (Behaviour it shares with the Server is tested in
// conformance_test.go.)

func TestTransportURLNeverDials(t *testing.T) {
	tr := dojobtest.NewTransport(dojobtest.WithSize(10))
	defer tr.Close()
	assert.Equal(t, "http://dojobtest.invalid/a/b", tr.FileURL("/a/b"))
	assert.Equal(t, tr.FileURL("/a/b"), tr.URL("/a/b"), "the deprecated name still works")
	assert.Same(t, tr.Client(), tr.Client())
	// Any host is answered in memory, by path: nothing is resolved.
	resp, err := tr.Client().Get("https://" + dojobtest.Host + "/x?query=1")
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, dojobtest.Content("/x#v0", 10), data)
	assert.Equal(t, "/x", tr.Requests()[0].Path)

	_, err = tr.Client().Get("ftp://" + dojobtest.Host + "/x")
	assert.ErrorContains(t, err, "unsupported protocol scheme")
}

func TestNewTestTransportClosesAtCleanup(t *testing.T) {
	var tr *dojobtest.Transport
	errs := make(chan error, 1)
	t.Run("bubble", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr = dojobtest.NewTestTransport(t, dojobtest.Script(dojobtest.StallHeaders()))
			go func() {
				_, err := tr.Client().Get(tr.FileURL("/f")) // no deadline: only Close ends it
				errs <- err
			}()
			synctest.Wait()
			// No Close here: the Cleanup registered by NewTestTransport runs
			// inside the bubble, or the stalled goroutine would deadlock it.
		})
	})
	assert.ErrorIs(t, <-errs, dojobtest.ErrTransportClosed)
	_, err := tr.Client().Get(tr.FileURL("/after"))
	assert.ErrorIs(t, err, dojobtest.ErrTransportClosed)
}

func TestTransportDripIsExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := dojobtest.NewTransport(dojobtest.WithSize(10_000), dojobtest.Script(dojobtest.Drip(1000)))
		defer tr.Close()
		start := time.Now()
		resp, err := tr.Client().Get(tr.FileURL("/f"))
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, start, time.Now(), "headers at once")

		// Read it as it drips: a byte count that never runs ahead of the rate.
		buf := make([]byte, 4096)
		var got int
		for {
			n, err := resp.Body.Read(buf)
			got += n
			elapsed := time.Since(start)
			assert.LessOrEqual(t, int64(got), int64(elapsed/time.Millisecond), "at most 1 byte per ms")
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
		}
		assert.Equal(t, 10_000, got)
		assert.Equal(t, 10*time.Second, time.Since(start), "10,000 bytes at 1000 B/s")
		r := tr.Requests()[0]
		assert.Equal(t, 10*time.Second, r.End.Sub(r.Time))
	})
}

func TestTransportWithRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := dojobtest.NewTransport(dojobtest.WithSize(3000), dojobtest.WithRate(1000),
			dojobtest.Script(dojobtest.OK(), dojobtest.Drip(3000)))
		defer tr.Close()
		for _, want := range []time.Duration{3 * time.Second, time.Second} {
			start := time.Now()
			_, data := get(t, transportTarget(tr), "/f")
			assert.Len(t, data, 3000)
			assert.Equal(t, want, time.Since(start))
		}
		// The rate applies to a range too: 1000 bytes in a second.
		start := time.Now()
		_, data := get(t, transportTarget(tr), "/f", "Range", "bytes=2000-")
		assert.Len(t, data, 1000)
		assert.Equal(t, time.Second, time.Since(start))
	})
}

func TestTransportStallUntilDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := dojobtest.NewTransport(dojobtest.Script(dojobtest.StallAfter(4096)))
		defer tr.Close()
		start := time.Now()
		ctx, cancel := context.WithDeadline(t.Context(), start.Add(90*time.Second))
		defer cancel()
		resp, data, err := fetch(ctx, t, transportTarget(tr), http.MethodGet, "/f")
		require.NotNil(t, resp)
		assert.Len(t, data, 4096)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 90*time.Second, time.Since(start), "the stall lasts until the deadline, on fake time")
		synctest.Wait()
		r := tr.Requests()[0]
		assert.Equal(t, start.Add(90*time.Second), r.End, "the handler ended with the client")
	})
}

func TestTransportCancelBeforeHeaders(t *testing.T) {
	for _, f := range []dojobtest.Fault{dojobtest.StallHeaders(), dojobtest.Delay(time.Hour)} {
		t.Run(f.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := dojobtest.NewTransport(dojobtest.Script(f))
				defer tr.Close()
				start := time.Now()
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, tr.FileURL("/f"), nil)
				require.NoError(t, err)
				resp, err := tr.RoundTrip(req)
				assert.Nil(t, resp)
				assert.Equal(t, context.DeadlineExceeded, err, "RoundTrip returns the context's error itself")
				assert.Equal(t, 30*time.Second, time.Since(start))

				// Explicit cancellation, with a cause.
				ctx2, cancel2 := context.WithCancelCause(t.Context())
				cause := errors.New("user gave up")
				time.AfterFunc(time.Minute, func() { cancel2(cause) })
				req, err = http.NewRequestWithContext(ctx2, http.MethodGet, tr.FileURL("/g"), nil)
				require.NoError(t, err)
				_, err = tr.RoundTrip(req)
				assert.Equal(t, cause, err)

				synctest.Wait()
				for _, r := range tr.Requests() {
					assert.Equal(t, 0, r.Status)
					assert.False(t, r.End.IsZero(), "handler ended")
				}
			})
		})
	}
}

func TestTransportBodyCloseEndsHandler(t *testing.T) {
	for _, f := range []dojobtest.Fault{dojobtest.StallAfter(100), dojobtest.Drip(100), dojobtest.OK()} {
		t.Run(f.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := dojobtest.NewTransport(dojobtest.Script(f))
				defer tr.Close()
				resp, err := tr.Client().Get(tr.FileURL("/f"))
				require.NoError(t, err)
				_, err = io.ReadFull(resp.Body, make([]byte, 100))
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				_, err = resp.Body.Read(make([]byte, 1))
				assert.ErrorContains(t, err, "read on closed response body")

				synctest.Wait() // the handler goroutine has ended, or is durably blocked (a failure below)
				r := tr.Requests()[0]
				assert.False(t, r.End.IsZero(), "the handler ended when the body was closed")
				assert.Less(t, r.BodyBytes, int64(size))
				assert.GreaterOrEqual(t, r.BodyBytes, int64(100))
			})
		})
	}
}

func TestTransportCancelMidBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := dojobtest.NewTransport(dojobtest.WithSize(10_000), dojobtest.Script(dojobtest.Drip(1000)))
		defer tr.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 2550*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, data, err := fetch(ctx, t, transportTarget(tr), http.MethodGet, "/f")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 2500, len(data), "100-byte steps every 100 ms until the deadline")
		assert.Equal(t, 2550*time.Millisecond, time.Since(start))
		synctest.Wait()
		assert.Equal(t, int64(2500), tr.BodyBytes("/f"))
	})
}

func TestTransportCloseEndsWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := dojobtest.NewTransport(dojobtest.ScriptFor("/stalled", dojobtest.StallHeaders()), dojobtest.ScriptFor("/body", dojobtest.StallAfter(10)))
		errs := make(chan error, 1)
		go func() {
			_, err := tr.Client().Get(tr.FileURL("/stalled")) // no deadline
			errs <- err
		}()
		resp, err := tr.Client().Get(tr.FileURL("/body"))
		require.NoError(t, err)
		defer resp.Body.Close()
		_, err = io.ReadFull(resp.Body, make([]byte, 10))
		require.NoError(t, err)
		// A third response nobody reads: its handler blocks writing.
		unread, err := tr.Client().Get(tr.FileURL("/unread"))
		require.NoError(t, err)
		defer unread.Body.Close()

		synctest.Wait() // everything is blocked
		tr.Close()
		assert.ErrorIs(t, <-errs, dojobtest.ErrTransportClosed)
		_, err = resp.Body.Read(make([]byte, 10))
		assert.ErrorIs(t, err, dojobtest.ErrTransportClosed)
		_, err = unread.Body.Read(make([]byte, 10))
		assert.ErrorIs(t, err, dojobtest.ErrTransportClosed)
		for _, r := range tr.Requests() {
			assert.False(t, r.End.IsZero(), r.Path)
		}

		tr.Close() // twice is fine
		_, err = tr.Client().Get(tr.FileURL("/after"))
		assert.ErrorIs(t, err, dojobtest.ErrTransportClosed)
	})
}

func TestTransportCloseUnreadBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := dojobtest.NewTransport()
		resp, err := tr.Client().Get(tr.FileURL("/f"))
		require.NoError(t, err)
		tr.Close() // must not wait for a reader that never comes
		_, err = io.ReadAll(resp.Body)
		assert.ErrorIs(t, err, dojobtest.ErrTransportClosed)
		assert.NoError(t, resp.Body.Close())
	})
}

func TestTransportRequestBodyClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := dojobtest.NewTransport()
		body := &closeRecorder{Reader: strings.NewReader("payload")}
		req, err := http.NewRequest(http.MethodPut, tr.FileURL("/f"), body)
		require.NoError(t, err)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		tr.Close()
		assert.True(t, body.closed, "RoundTrip closes the request body")
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	})
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestTransportRetryAfterDate(t *testing.T) {
	// Inside a bubble, Date is fake time too, so an HTTP-date Retry-After
	// can be made relative to it.
	synctest.Test(t, func(t *testing.T) {
		at := time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)
		tr := dojobtest.NewTransport(dojobtest.Script(dojobtest.StatusRetryAfter(503, at)))
		defer tr.Close()
		resp, _ := get(t, transportTarget(tr), "/f")
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, at, resp.Header.Get("Retry-After"))
		assert.Equal(t, "Sat, 01 Jan 2000 00:00:00 GMT", resp.Header.Get("Date"))
	})
}

func TestTransportAwaitRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := dojobtest.NewTransport(dojobtest.WithSize(100), dojobtest.Script(dojobtest.Delay(time.Minute)))
		defer tr.Close()
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = get(t, transportTarget(tr), "/f")
		}()
		// Wait for the request to arrive, then for its answer: on fake
		// time, the minute passes while we wait.
		reqs, err := tr.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool { return len(rs) == 1 })
		require.NoError(t, err)
		assert.Equal(t, 0, reqs[0].Status)
		reqs, err = tr.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool { return !rs[0].End.IsZero() })
		require.NoError(t, err)
		assert.Equal(t, 200, reqs[0].Status)
		assert.Equal(t, int64(100), reqs[0].BodyBytes)
		assert.Equal(t, time.Minute, reqs[0].End.Sub(start))
		<-done

		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		_, err = tr.AwaitRequests(ctx, func(rs []dojobtest.Request) bool { return len(rs) == 2 })
		assert.Equal(t, context.DeadlineExceeded, err)
	})
}

func TestTransportCancelledBeforeSending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := dojobtest.NewTransport()
		defer tr.Close()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, tr.FileURL("/f"), nil)
		require.NoError(t, err)
		_, err = tr.RoundTrip(req)
		assert.Equal(t, context.Canceled, err)
		assert.Empty(t, tr.Requests(), "a cancelled request is not sent")
	})
}

func TestTransportChangeContentKeepsFileSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := []byte("version zero")
		tr := dojobtest.NewTransport(dojobtest.WithFile("/f", data), dojobtest.Script(dojobtest.OK(), dojobtest.ChangeContent()))
		defer tr.Close()
		_, v0 := get(t, transportTarget(tr), "/f")
		assert.Equal(t, data, v0)
		_, v1 := get(t, transportTarget(tr), "/f")
		assert.Equal(t, dojobtest.Content("/f#v1", int64(len(data))), v1)
		assert.Equal(t, v1, tr.Content("/f"))
	})
}

func TestConfigForNewManager(t *testing.T) {
	tr := dojobtest.NewTransport()
	defer tr.Close()
	assert.Same(t, tr.Client(), tr.Config().HTTPClient)
	s := dojobtest.NewServer(t)
	assert.NotNil(t, s.Config().HTTPClient)
	assert.Same(t, s.Client().Transport, s.Config().HTTPClient.Transport)
}
