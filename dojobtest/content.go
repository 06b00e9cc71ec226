package dojobtest

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
)

// Content returns size deterministic pseudo-random bytes derived from seed:
// the same seed and size always give the same bytes, and different seeds give
// different bytes. Content(seed, n) is a prefix of Content(seed, m) for n ≤ m.
// A size ≤ 0 gives an empty slice.
//
// The bytes come from a PCG generator seeded with the SHA-256 of seed, eight
// at a time, so a gibibyte takes well under a second. They are not suitable
// for anything but tests.
//
// The files a Server or Transport serves are made with it: the file at path
// in version v is Content(path+"#v"+v, size), where v is a decimal number.
func Content(seed string, size int64) []byte {
	if size <= 0 {
		return []byte{}
	}
	sum := sha256.Sum256([]byte(seed))
	g := rand.NewPCG(binary.LittleEndian.Uint64(sum[0:8]), binary.LittleEndian.Uint64(sum[8:16]))
	b := make([]byte, size)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], g.Uint64())
	}
	if i < len(b) {
		var tail [8]byte
		binary.LittleEndian.PutUint64(tail[:], g.Uint64())
		copy(b[i:], tail[:])
	}
	return b
}
