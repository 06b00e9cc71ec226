package dojob

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRetryDelay(t *testing.T) {
	s := time.Second
	tests := []struct {
		base       time.Duration
		streak     int
		retryAfter time.Duration
		want       time.Duration
	}{
		{2 * s, 0, 0, 2 * s},
		{2 * s, 1, 0, 4 * s},
		{2 * s, 2, 0, 8 * s},
		{2 * s, 4, 0, 32 * s},
		{2 * s, 5, 0, 60 * s}, // capped at 60 s
		{2 * s, 63, 0, 60 * s},
		{2 * s, 0, 30 * s, 30 * s},   // Retry-After is a floor
		{2 * s, 5, 120 * s, 120 * s}, // even above the cap
		{90 * s, 0, 0, 90 * s},       // a base above 60 s is its own cap
		{90 * s, 3, 0, 90 * s},
		{time.Millisecond, 30, 0, 60 * s},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, retryDelay(tt.base, tt.streak, tt.retryAfter), "base %v streak %d retry-after %v", tt.base, tt.streak, tt.retryAfter)
	}
}
