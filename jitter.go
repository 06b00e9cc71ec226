package dojob

import (
	"encoding/binary"
	"time"
)

// jitter returns the extra wait Config.RetryJitter adds to a retry delay:
// up to frac×delay, at a fraction of that derived from the job's ID and its
// error count (splitmix64 of the two), so that jobs of different IDs spread
// out while one job waits the same after the same failure in every run.
// With frac 0 it is 0: BITS's exact timing.
func jitter(delay time.Duration, frac float64, id JobID, count int) time.Duration {
	if frac <= 0 || delay <= 0 {
		return 0
	}
	h := mix64(binary.LittleEndian.Uint64(id[:8]) ^ mix64(binary.LittleEndian.Uint64(id[8:])^uint64(count)))
	u := float64(h>>11) / (1 << 53) // in [0, 1)
	return time.Duration(float64(delay) * frac * u)
}

// mix64 is splitmix64's finaliser: a bijection of 64 bits whose every
// output bit depends on every input bit.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
