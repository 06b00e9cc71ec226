package dojob

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// edges is the state diagram of doc.go, written out edge by edge and
// independently of the transitions table, so a change to either that is not
// made to both fails TestTransitionTable.
var edges = map[State][]State{
	StateSuspended:      {StateQueued, StateAcknowledged, StateCancelled},
	StateQueued:         {StateConnecting, StateTransferred, StateError, StateSuspended, StateAcknowledged, StateCancelled},
	StateConnecting:     {StateTransferring, StateTransientError, StateError, StateQueued, StateTransferred, StateSuspended, StateAcknowledged, StateCancelled},
	StateTransferring:   {StateConnecting, StateTransferred, StateTransientError, StateError, StateQueued, StateSuspended, StateAcknowledged, StateCancelled},
	StateTransientError: {StateQueued, StateError, StateSuspended, StateAcknowledged, StateCancelled},
	StateError:          {StateQueued, StateSuspended, StateAcknowledged, StateCancelled},
	StateTransferred:    {StateQueued, StateAcknowledged, StateCancelled},
}

func TestTransitionTable(t *testing.T) {
	for from := StateQueued; from <= StateCancelled; from++ {
		for to := StateQueued; to <= StateCancelled; to++ {
			want := false
			for _, s := range edges[from] {
				want = want || s == to
			}
			assert.Equal(t, want, canTransition(from, to), "%s -> %s", from, to)
		}
	}
	assert.False(t, canTransition(State(-1), StateQueued))
	assert.False(t, canTransition(StateQueued, State(9)))
}

func TestStateNames(t *testing.T) {
	want := []string{"QUEUED", "CONNECTING", "TRANSFERRING", "SUSPENDED", "ERROR", "TRANSIENT_ERROR", "TRANSFERRED", "ACKNOWLEDGED", "CANCELLED"}
	for i, name := range want {
		assert.Equal(t, name, State(i).String())
		assert.Equal(t, i == 7 || i == 8, State(i).Final())
	}
	assert.Equal(t, "State(42)", State(42).String())
	assert.Equal(t, State(0), StateQueued)
	assert.Equal(t, State(8), StateCancelled)
}
