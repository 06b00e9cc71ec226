package dojob

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

var errBusy = errors.New("in use")

func isBusy(err error) bool { return errors.Is(err, errBusy) }

// TestRetryInUse: a rename refused because a file is in use is tried again
// until it succeeds, for at most the window; any other error ends it at
// once.
func TestRetryInUse(t *testing.T) {
	t.Run("freed in time", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			calls := 0
			start := time.Now()
			err := retryInUse(func(from, to string) error {
				calls++
				assert.Equal(t, "a.tmp", from)
				assert.Equal(t, "a", to)
				if calls < 5 {
					return errBusy
				}
				return nil
			}, isBusy, 2*time.Second, "a.tmp", "a")
			assert.NoError(t, err)
			assert.Equal(t, 5, calls)
			assert.Equal(t, 15*time.Millisecond, time.Since(start), "waits of 1, 2, 4 and 8 ms")
		})
	})
	t.Run("still in use after the window", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			calls := 0
			start := time.Now()
			err := retryInUse(func(string, string) error { calls++; return errBusy }, isBusy, 2*time.Second, "a.tmp", "a")
			assert.ErrorIs(t, err, errBusy)
			assert.Equal(t, 2*time.Second, time.Since(start), "gives up at the window, not later")
			// The first call; after waits of 1 to 64 ms (127 ms), 18 of 100 ms, and a
			// last one of 73 ms that ends at the window.
			assert.Equal(t, 1+7+18+1, calls)
		})
	})
	t.Run("another error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			calls := 0
			start := time.Now()
			other := errors.New("no such directory")
			err := retryInUse(func(string, string) error { calls++; return other }, isBusy, 2*time.Second, "a.tmp", "a")
			assert.Same(t, other, err)
			assert.Equal(t, 1, calls)
			assert.Zero(t, time.Since(start))
		})
	})
	t.Run("no window", func(t *testing.T) {
		calls := 0
		err := retryInUse(func(string, string) error { calls++; return errBusy }, isBusy, 0, "a.tmp", "a")
		assert.ErrorIs(t, err, errBusy)
		assert.Equal(t, 1, calls)
	})
}
