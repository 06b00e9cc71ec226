package dojobtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dojob/dojob"
)

// EventKind is the kind of a recorded callback.
type EventKind int

// The kinds of Event, one per callback method.
const (
	EventTransferred     EventKind = iota + 1 // Callback.JobTransferred
	EventError                                // Callback.JobError
	EventModification                         // Callback.JobModification
	EventFileTransferred                      // FileCallback.FileTransferred
	EventStateChanged                         // StateCallback.JobStateChanged
)

// String returns "Transferred", "Error", "Modification", "FileTransferred"
// or "StateChanged".
func (k EventKind) String() string {
	switch k {
	case EventTransferred:
		return "Transferred"
	case EventError:
		return "Error"
	case EventModification:
		return "Modification"
	case EventFileTransferred:
		return "FileTransferred"
	case EventStateChanged:
		return "StateChanged"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one callback the Recorder received.
type Event struct {
	Kind     EventKind       // which callback
	Job      *dojob.Job      // the job it was called for
	State    dojob.State     // j.State() when the callback ran
	Err      *dojob.JobError // EventError: the error delivered
	File     dojob.FileInfo  // EventFileTransferred: the file
	From, To dojob.State     // EventStateChanged: the move, as it happened (State may already be later)
	Progress dojob.Progress  // j.Progress() when the callback ran
	Time     time.Time       // time.Now() when the callback ran (fake time inside a synctest bubble)
	Returned error           // what the callback returned, including Complete's error with CompleteOnTransferred
}

// String describes the event for test logs, e.g. "Modification TRANSFERRING".
func (e Event) String() string {
	s := e.Kind.String() + " " + e.State.String()
	if e.Err != nil {
		s += " " + e.Err.Error()
	}
	if e.Kind == EventFileTransferred {
		s += " " + e.File.String()
	}
	if e.Kind == EventStateChanged {
		s = e.Kind.String() + " " + e.From.String() + "->" + e.To.String()
	}
	if e.Returned != nil {
		s += " returned: " + e.Returned.Error()
	}
	return s
}

// ErrInjected is wrapped by the errors that FailTransferred and FailError
// make the Recorder's callbacks return.
var ErrInjected = errors.New("dojobtest: injected callback failure")

// RecorderOption configures a Recorder.
type RecorderOption func(*Recorder)

// CompleteOnTransferred makes JobTransferred call j.Complete() and return
// its error: the canonical BITS pattern. The event is recorded after
// Complete returns, so once an Await sees it the files are in place.
func CompleteOnTransferred() RecorderOption {
	return func(r *Recorder) { r.complete = true }
}

// FailTransferred makes the first n calls of JobTransferred return an error
// wrapping ErrInjected (without calling Complete), to test re-delivery.
func FailTransferred(n int) RecorderOption {
	return func(r *Recorder) { r.failTransferred = n }
}

// FailError makes the first n calls of JobError return an error wrapping
// ErrInjected.
func FailError(n int) RecorderOption {
	return func(r *Recorder) { r.failError = n }
}

// Recorder is a dojob.Callback (and dojob.FileCallback, dojob.StateCallback) that records every
// call, in delivery order, and lets a test wait for the events it expects
// without polling. It is safe for concurrent use: callbacks of several jobs
// may call it at once. The zero value records and returns nil.
//
// Inside a testing/synctest bubble, Await blocks durably (on a channel that
// the waiting goroutine creates), so fake time advances while it waits.
type Recorder struct {
	// Set by the options, read-only afterwards.
	complete        bool
	failTransferred int
	failError       int

	mu          sync.Mutex
	events      []Event
	changed     chan struct{} // closed and cleared at each event; made by a waiter
	transferred int           // JobTransferred calls so far
	errorCalls  int           // JobError calls so far
}

// NewRecorder returns a Recorder configured by opts.
func NewRecorder(opts ...RecorderOption) *Recorder {
	r := &Recorder{}
	for _, o := range opts {
		if o != nil {
			o(r)
		}
	}
	return r
}

var (
	_ dojob.Callback      = (*Recorder)(nil)
	_ dojob.FileCallback  = (*Recorder)(nil)
	_ dojob.StateCallback = (*Recorder)(nil)
)

// JobTransferred records an EventTransferred. With FailTransferred it
// fails; with CompleteOnTransferred it completes the job.
func (r *Recorder) JobTransferred(j *dojob.Job) error {
	ev := newEvent(EventTransferred, j)
	r.mu.Lock()
	r.transferred++
	call := r.transferred
	r.mu.Unlock()
	switch {
	case call <= r.failTransferred:
		ev.Returned = fmt.Errorf("%w: JobTransferred call %d of %d", ErrInjected, call, r.failTransferred)
	case r.complete && j != nil:
		ev.Returned = j.Complete()
	}
	r.record(ev)
	return ev.Returned
}

// JobError records an EventError with the error delivered. With FailError
// it fails.
func (r *Recorder) JobError(j *dojob.Job, e *dojob.JobError) error {
	ev := newEvent(EventError, j)
	ev.Err = e
	r.mu.Lock()
	r.errorCalls++
	call := r.errorCalls
	r.mu.Unlock()
	if call <= r.failError {
		ev.Returned = fmt.Errorf("%w: JobError call %d of %d", ErrInjected, call, r.failError)
	}
	r.record(ev)
	return ev.Returned
}

// JobModification records an EventModification.
func (r *Recorder) JobModification(j *dojob.Job) error {
	r.record(newEvent(EventModification, j))
	return nil
}

// FileTransferred records an EventFileTransferred with the file.
func (r *Recorder) FileTransferred(j *dojob.Job, f dojob.FileInfo) error {
	ev := newEvent(EventFileTransferred, j)
	ev.File = f
	r.record(ev)
	return nil
}

// JobStateChanged records an EventStateChanged with the move (the job's
// flags must include NotifyJobModification).
func (r *Recorder) JobStateChanged(j *dojob.Job, from, to dojob.State) error {
	ev := newEvent(EventStateChanged, j)
	ev.From, ev.To = from, to
	r.record(ev)
	return nil
}

// newEvent captures the job's state as the callback starts. j may be nil
// (a test calling the Recorder directly): State and Progress stay zero.
func newEvent(k EventKind, j *dojob.Job) Event {
	ev := Event{Kind: k, Job: j, Time: time.Now()}
	if j != nil {
		ev.State = j.State()
		ev.Progress = j.Progress()
	}
	return ev
}

// record appends ev and wakes the waiters.
func (r *Recorder) record(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// Events returns a copy of the events, in delivery order.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Count returns how many events of kind k were recorded.
func (r *Recorder) Count(k EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return count(r.events, k)
}

func count(events []Event, k EventKind) int {
	n := 0
	for _, e := range events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// States returns the states the job moved into, in order, from its
// EventStateChanged events: exactly the transitions that happened (the job's
// flags must include NotifyJobModification). Several jobs sharing the
// Recorder interleave.
func (r *Recorder) States() []dojob.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []dojob.State
	for _, e := range r.events {
		if e.Kind == EventStateChanged {
			s = append(s, e.To)
		}
	}
	return s
}

// Await blocks until done(events) reports true, checking once now and again
// after each new event, and returns the events it was true of. If ctx ends
// first it returns the events so far and ctx.Err(). It waits on a channel
// that each event closes, never by polling; done runs without the
// Recorder's lock held, on the caller's goroutine.
func (r *Recorder) Await(ctx context.Context, done func([]Event) bool) ([]Event, error) {
	for {
		r.mu.Lock()
		events := slices.Clone(r.events)
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		if done(events) {
			return events, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return events, ctx.Err()
		}
	}
}

// AwaitCount waits until at least n events of kind k have been recorded;
// see Await.
func (r *Recorder) AwaitCount(ctx context.Context, k EventKind, n int) ([]Event, error) {
	return r.Await(ctx, func(events []Event) bool { return count(events, k) >= n })
}
