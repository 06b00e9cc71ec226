package dojob

// TransitionTable returns every move the transition table allows, for the
// external tests that check the moves jobs really make against it.
func TransitionTable() map[[2]State]bool {
	edges := make(map[[2]State]bool)
	for from, tos := range transitions {
		for _, to := range tos {
			edges[[2]State{State(from), to}] = true
		}
	}
	return edges
}
