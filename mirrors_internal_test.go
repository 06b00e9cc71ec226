package dojob

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSourceURL(t *testing.T) {
	mirrors := []string{"http://m1/f", "http://m2/f"}
	for _, tc := range []struct {
		src  int
		want string
	}{
		{0, "http://p/f"}, {1, "http://m1/f"}, {2, "http://m2/f"},
		{3, "http://p/f"}, {-1, "http://p/f"}, // out of range: the primary
	} {
		assert.Equal(t, tc.want, sourceURL("http://p/f", mirrors, tc.src), "source %d", tc.src)
	}
	assert.Equal(t, "http://p/f", sourceURL("http://p/f", nil, 1))
}

func TestNextSource(t *testing.T) {
	for _, tc := range []struct{ cur, n, want int }{
		{0, 1, 0},            // a single source stays
		{0, 2, 1}, {1, 2, 0}, // wraps to the primary
		{0, 3, 1}, {1, 3, 2}, {2, 3, 0},
	} {
		var list []int
		for s := range tc.n {
			list = append(list, s)
		}
		assert.Equal(t, tc.want, nextSourceIn(tc.cur, list, 0), "next of %d among %d", tc.cur, tc.n)
	}
	// Two cache hosts (-1, -2) come first, and the round wraps to them.
	list := []int{-1, -2, 0, 1}
	for cur, want := range map[int]int{-1: -2, -2: 0, 0: 1, 1: -1} {
		assert.Equal(t, want, nextSourceIn(cur, list, 2), "next of %d", cur)
	}
	assert.Equal(t, 0, nextSourceIn(-1, []int{0, 1}, 2), "a banned cache host moves on to the primary")
}

func TestSourceRound(t *testing.T) {
	e404 := statusError(404, 0)
	e403 := statusError(403, 0)
	e503 := statusError(503, 0)
	e502 := statusError(502, 0)
	for _, tc := range []struct {
		name   string
		n      int
		errs   []*JobError
		over   []bool
		result *JobError
	}{
		{"single source", 1, []*JobError{e503}, []bool{true}, e503},
		{"single fatal", 1, []*JobError{e404}, []bool{true}, e404},
		{"all fatal: the first", 3, []*JobError{e404, e403, e404}, []bool{false, false, true}, e404},
		{"all transient: the last", 2, []*JobError{e503, e502}, []bool{false, true}, e502},
		{"fatal then transient", 2, []*JobError{e404, e503}, []bool{false, true}, e503},
		{"transient then fatal", 2, []*JobError{e503, e404}, []bool{false, true}, e503},
		{"cache fatal, then the origin's", 2, []*JobError{e403, e404}, []bool{false, true}, e404},
		{"only caches failed", 1, []*JobError{e403}, []bool{true}, e403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r sourceRound
			for i, e := range tc.errs {
				cache := strings.HasPrefix(tc.name, "cache") && i == 0 || strings.HasPrefix(tc.name, "only caches")
				assert.Equal(t, tc.over[i], r.add(e, tc.n, cache), "failure %d", i)
			}
			assert.Same(t, tc.result, r.result())
			assert.Equal(t, tc.result.transient, r.result().transient)
		})
	}
}

// TestSkippedSources: the mirrors that gave bytes of a file that failed
// its check are skipped by failover; the primary never is.
func TestSkippedSources(t *testing.T) {
	f := &file{recordFile: recordFile{Mirrors: []string{"http://a/", "http://b/", "http://c/"}}}
	f.addSourceLocked(2)
	f.addSourceLocked(0)
	f.addSourceLocked(2)
	assert.Equal(t, []int{0, 2}, f.Sources)
	assert.True(t, f.foreignLocked())
	f.Source = 2
	assert.True(t, f.blameMirrorsLocked("why"))
	assert.Equal(t, 0, f.Source, "back to the primary")
	assert.Equal(t, 1, f.Restarts)
	assert.Equal(t, "why", f.RestartReason)
	assert.Equal(t, []int{2}, f.skip)
	j := &Job{m: &Manager{caches: &cacheHosts{}}}
	list := j.sourcesLocked(f, 0)
	assert.Equal(t, []int{0, 1, 3}, list, "mirror 2 is skipped")
	assert.Equal(t, 1, nextSourceIn(0, list, 0))
	assert.Equal(t, 3, nextSourceIn(1, list, 0), "mirror 2 is skipped")
	assert.Equal(t, 0, nextSourceIn(3, list, 0))

	g := &file{recordFile: recordFile{Mirrors: []string{"http://a/"}}}
	g.addSourceLocked(0)
	assert.False(t, g.foreignLocked(), "bytes of the primary alone")
	assert.False(t, g.blameMirrorsLocked("why"))
	assert.Zero(t, g.Restarts)
	g.skip = []int{1}
	list = j.sourcesLocked(g, 0)
	assert.Equal(t, 0, nextSourceIn(0, list, 0), "a single usable source stays where it is")
}

func TestFromSource(t *testing.T) {
	remote := statusError(503, 0)
	local := localError(errors.New("disk"))
	assert.True(t, fromSource(&sourceError{remote}, remote))
	assert.True(t, fromSource(&sourceError{errStalled}, classify(&sourceError{errStalled})))
	assert.False(t, fromSource(&sourceError{local}, local), "a local error is not the source's")
	assert.False(t, fromSource(remote, remote), "not from a request (the final check)")
	assert.Equal(t, ErrTimeout, classify(&sourceError{errStalled}).Code)
}
