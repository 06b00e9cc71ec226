package dojob

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestInCallback: a goroutine is inside a callback while deliver is on its
// stack, however deep the callback's own calls go; an ordinary goroutine,
// and one the callback starts, are not.
func TestInCallback(t *testing.T) {
	assert.False(t, inCallback())
	var inside, deep, spawned bool
	var depth func(n int) bool
	depth = func(n int) bool {
		if n == 0 {
			return inCallback()
		}
		return depth(n - 1)
	}
	cb := CallbackFuncs{Modification: func(*Job) error {
		inside = inCallback()
		deep = depth(1000) // past the first buffer of program counters
		done := make(chan bool)
		go func() { done <- inCallback() }()
		spawned = <-done
		return nil
	}}
	assert.NoError(t, deliver(nil, cb, note{kind: noteModification}, nil))
	assert.True(t, inside)
	assert.True(t, deep)
	assert.False(t, spawned)
	assert.Equal(t, "github.com/dojob/dojob.deliver", deliverName)
}
