package dojobtest_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dojob/dojob/dojobtest"
)

func TestContent(t *testing.T) {
	a := dojobtest.Content("seed", 1000)
	assert.Len(t, a, 1000)
	assert.Equal(t, a, dojobtest.Content("seed", 1000), "deterministic")
	assert.NotEqual(t, a, dojobtest.Content("seed2", 1000), "seed matters")
	assert.Equal(t, a[:13], dojobtest.Content("seed", 13), "prefix of a longer one")
	assert.Empty(t, dojobtest.Content("seed", 0))
	assert.Empty(t, dojobtest.Content("seed", -5))
	assert.NotNil(t, dojobtest.Content("seed", 0))

	// Not a constant or a short cycle: every byte value appears in 64 KiB.
	b := dojobtest.Content("x", 64<<10)
	var seen [256]bool
	for _, c := range b {
		seen[c] = true
	}
	for v, ok := range seen {
		assert.True(t, ok, "byte %d never appears", v)
	}
	assert.False(t, bytes.Equal(b[:32<<10], b[32<<10:]))
}

func BenchmarkContent(b *testing.B) {
	const n = 64 << 20
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		dojobtest.Content("bench", n)
	}
}
