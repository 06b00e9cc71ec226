package dojob

// OnHeld makes f run on the worker's goroutine, with no lock held, each
// time a worker's check before an attempt finds the job held by policy —
// after that check and before the transfer applies the hold. Call it
// before any job runs.
func OnHeld(m *Manager, f func(*Job)) { m.holdHook = f }
