package dojob_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/require"
)

// This file is a model-based test of one job's state machine. A sequence of
// operations — every Job method, scripted server answers and fake-time
// advances — runs against a real Manager on the in-memory Transport inside a
// synctest bubble, and against a small reference model written from the
// documented contract (the doc comments of job.go, callback.go and
// timeout.go, and docs/decisions.md). After every operation, and at every
// timed event in between, the job and the model must agree on the state,
// ErrorCount, the error object's code, the requests sent, the files
// transferred, and the exact list of callbacks delivered (state changes
// with their instants, JobTransferred, JobError with its code,
// FileTransferred).
//
// The model is exact about time except for one thing the contract leaves
// loose: a stall is noticed at a watchdog tick, no earlier than the stall
// timeout after the last byte and within two ticks of it. The harness walks
// through that window tick by tick to learn the instant. When two timed
// events could fall at the same instant (their order is not specified), the
// sequence stops there: the model does not guess.

const (
	modelStall    = 800 * time.Millisecond // Config.StallTimeout
	modelTick     = modelStall / 8         // the watchdog's tick at that stall timeout (also the progress-notification tick)
	modelStep     = 10 * time.Millisecond  // every duration in a sequence is a multiple of this
	modelSize     = 8 << 10                // bytes of each remote file
	modelCut      = 100                    // bytes before a drop or a stall in the body
	modelMaxFiles = 3
	modelMaxOps   = 48
	modelMaxRetry = 12 // longest script of one file
)

// outcome is a scripted answer of the server to one request.
type outcome uint8

const (
	outOK            outcome = iota
	out503                   // 503, no Retry-After
	out503RetryAfter         // 503 with Retry-After: 5
	out404                   // fatal
	outDrop                  // modelCut body bytes, then the connection drops
	outStallHeaders          // no headers ever
	outStallBody             // modelCut body bytes, then nothing
	numOutcomes
)

var outcomeNames = [...]string{"OK", "503", "503+RetryAfter5", "404", "drop", "stallHeaders", "stallBody"}

func (o outcome) String() string { return outcomeNames[o] }

func (o outcome) fault() dojobtest.Fault {
	switch o {
	case out503:
		return dojobtest.Status(503)
	case out503RetryAfter:
		return dojobtest.StatusRetryAfter(503, "5")
	case out404:
		return dojobtest.Status(404)
	case outDrop:
		return dojobtest.DropAfter(modelCut)
	case outStallHeaders:
		return dojobtest.StallHeaders()
	case outStallBody:
		return dojobtest.StallAfter(modelCut)
	}
	return dojobtest.OK()
}

type opKind uint8

const (
	opResume opKind = iota
	opSuspend
	opCancel
	opComplete
	opAddFile    // the next of /f0../f2; a duplicate local path once all are added
	opAddFileBad // an ftp:// URL: ErrInvalidArg
	opTimeout    // SetNoProgressTimeout(modelTimeouts[arg])
	opRetryDelay // SetMinimumRetryDelay(modelRetryDelays[arg])
	opPriority   // SetPriority(modelPriorities[arg])
	opFlags      // SetNotifyFlags(modelFlags[arg])
	opRegister   // SetNotifyInterface(the recorder)
	opUnregister // SetNotifyInterface(nil)
	opFailFinal  // the next JobTransferred/JobError returns an error
	opName       // SetDisplayName: a fine one or one too long
	opAdvance    // time passes: modelAdvances[arg]
	opWait       // Wait with a timeout of modelWaits[arg]
	opAnswer     // append outcome arg/3 to the script of file arg%3
	numOpKinds
)

var opNames = [...]string{"Resume", "Suspend", "Cancel", "Complete", "AddFile", "AddFileBad",
	"SetNoProgressTimeout", "SetMinimumRetryDelay", "SetPriority", "SetNotifyFlags",
	"Register", "Unregister", "FailNextFinal", "SetDisplayName", "Advance", "Wait", "Answer"}

var (
	modelTimeouts    = []time.Duration{0, 5 * time.Second, 33 * time.Second, 3 * time.Minute, time.Hour, -time.Second}
	modelRetryDelays = []time.Duration{time.Second, 2 * time.Second, 7 * time.Second, 40 * time.Second, 0}
	modelPriorities  = []dojob.Priority{dojob.PriorityForeground, dojob.PriorityHigh, dojob.PriorityNormal, dojob.PriorityLow, dojob.Priority(9)}
	modelFlags       = []dojob.NotifyFlags{
		dojob.DefaultNotifyFlags | dojob.NotifyJobModification,
		dojob.DefaultNotifyFlags | dojob.NotifyJobModification | dojob.NotifyFileTransferred,
		dojob.DefaultNotifyFlags,
		dojob.NotifyJobModification,
		dojob.NotifyJobModification | dojob.NotifyJobTransferred,
		dojob.NotifyJobModification | dojob.NotifyJobError | dojob.NotifyFileTransferred,
		dojob.DefaultNotifyFlags | dojob.NotifyJobModification | dojob.NotifyDisable,
		0,
		0x40, // unknown: ErrInvalidArg
	}
	modelAdvances = []time.Duration{modelStep, 370 * time.Millisecond, time.Second, 2 * time.Second,
		7 * time.Second, 45 * time.Second, 4 * time.Minute, 2 * time.Hour}
	modelWaits = []time.Duration{0, 150 * time.Millisecond, 3 * time.Second, 90 * time.Second}
)

// modelOp is one step of a sequence.
type modelOp struct {
	kind opKind
	arg  uint8
}

func (o modelOp) String() string {
	s := opNames[o.kind]
	switch o.kind {
	case opTimeout:
		s += fmt.Sprintf("(%v)", modelTimeouts[int(o.arg)%len(modelTimeouts)])
	case opRetryDelay:
		s += fmt.Sprintf("(%v)", modelRetryDelays[int(o.arg)%len(modelRetryDelays)])
	case opPriority:
		s += fmt.Sprintf("(%v)", modelPriorities[int(o.arg)%len(modelPriorities)])
	case opFlags:
		s += fmt.Sprintf("(%v)", modelFlags[int(o.arg)%len(modelFlags)])
	case opAdvance:
		s += fmt.Sprintf("(%v)", modelAdvances[int(o.arg)%len(modelAdvances)])
	case opWait:
		s += fmt.Sprintf("(%v)", modelWaits[int(o.arg)%len(modelWaits)])
	case opAnswer:
		s += fmt.Sprintf("(/f%d: %v)", o.arg%modelMaxFiles, outcome(int(o.arg/modelMaxFiles)%int(numOutcomes)))
	case opName:
		s += fmt.Sprintf("(long=%v)", o.arg%4 == 0)
	}
	return s
}

// opWeights maps an input byte to an operation kind: time passing, Resume
// and server answers are common; Cancel and Complete, which end the job,
// are rare, so most sequences explore a while before they end.
var opWeights = func() []opKind {
	weight := [numOpKinds]int{opResume: 5, opSuspend: 2, opCancel: 1, opComplete: 1, opAddFile: 3,
		opAddFileBad: 1, opTimeout: 2, opRetryDelay: 2, opPriority: 1, opFlags: 3, opRegister: 1, opUnregister: 1,
		opFailFinal: 1, opName: 1, opAdvance: 8, opWait: 3, opAnswer: 10}
	var w []opKind
	for k, n := range weight {
		for range n {
			w = append(w, opKind(k))
		}
	}
	return w
}()

// decodeOps turns fuzz input into a sequence: two bytes per operation, the
// kind and its argument. The server's scripts are the opAnswer operations,
// per file in order: the n-th request for a file gets its n-th answer, and
// every request after the script is answered normally.
func decodeOps(data []byte) (ops []modelOp, scripts [modelMaxFiles][]outcome) {
	for i := 0; i+1 < len(data) && len(ops) < modelMaxOps; i += 2 {
		op := modelOp{kind: opWeights[int(data[i])%len(opWeights)], arg: data[i+1]}
		if op.kind == opAnswer {
			f := op.arg % modelMaxFiles
			if len(scripts[f]) < modelMaxRetry {
				scripts[f] = append(scripts[f], outcome(int(op.arg/modelMaxFiles)%int(numOutcomes)))
			}
			continue
		}
		ops = append(ops, op)
	}
	return ops, scripts
}

// encodeOps is the inverse of decodeOps, for writing seeds readably.
func encodeOps(ops ...modelOp) []byte {
	var b []byte
	for _, o := range ops {
		b = append(b, byte(slices.Index(opWeights, o.kind)), o.arg)
	}
	return b
}

// answer is the opAnswer for outcome o of file f.
func answer(f int, o outcome) modelOp {
	return modelOp{kind: opAnswer, arg: byte(int(o)*modelMaxFiles + f)}
}

func op(k opKind, arg ...uint8) modelOp {
	o := modelOp{kind: k}
	if len(arg) > 0 {
		o.arg = arg[0]
	}
	return o
}

// modelSeeds are hand-written sequences that reach the interesting corners;
// FuzzJobModel and TestJobModel run them every time.
func modelSeeds() [][]byte {
	return [][]byte{
		// Empty job, then a clean transfer of two files and Complete.
		encodeOps(op(opResume), op(opAddFile), op(opAddFile), op(opFlags, 1), op(opResume), op(opWait, 2), op(opComplete), op(opResume)),
		// 503s until the (short) window expires; JobError once, with ErrNoProgress.
		encodeOps(answer(0, out503), answer(0, out503), answer(0, out503), answer(0, out503), answer(0, out503), answer(0, out503),
			op(opAddFile), op(opTimeout, 2), op(opResume), op(opAdvance, 5), op(opAdvance, 5), op(opResume), op(opAdvance, 4), op(opCancel)),
		// Timeout 0: the first transient error is the final one, with its own code.
		encodeOps(answer(0, outDrop), op(opAddFile), op(opTimeout, 0), op(opResume), op(opSuspend), op(opResume), op(opComplete)),
		// Stalls in the headers and in the body, a drop, and Retry-After.
		encodeOps(answer(0, outStallHeaders), answer(0, outStallBody), answer(0, outDrop), answer(0, out503RetryAfter),
			op(opAddFile), op(opResume), op(opAdvance, 2), op(opAdvance, 3), op(opAdvance, 3), op(opAdvance, 4), op(opWait, 3), op(opComplete)),
		// A failing JobTransferred is delivered again after the retry delay;
		// flags that hide it defer it to when they allow it.
		encodeOps(op(opAddFile), op(opFailFinal), op(opFlags, 3), op(opResume), op(opAdvance, 4), op(opFlags, 0), op(opAdvance, 4), op(opFlags, 0), op(opUnregister), op(opRegister), op(opComplete)),
		// 404 on the second file: ERROR with JobError; Resume; Suspend in a stall.
		encodeOps(answer(1, out404), answer(1, outStallBody), op(opAddFile), op(opAddFile), op(opResume), op(opResume), op(opSuspend), op(opAddFile), op(opResume), op(opAdvance, 2), op(opComplete)),
		// A shorter timeout on an open window ends it at once; priority changes move the default.
		encodeOps(answer(0, out503), answer(0, out503), answer(0, outStallHeaders), op(opAddFile), op(opResume), op(opAdvance, 3), op(opPriority, 0), op(opTimeout, 1), op(opPriority, 4), op(opRetryDelay, 4), op(opName, 0), op(opWait, 1), op(opResume), op(opAdvance, 6)),
		// TRANSFERRED, AddFile, Resume again; disabled notifications; Wait with no time.
		encodeOps(answer(1, out503), op(opAddFile), op(opFlags, 6), op(opResume), op(opWait, 0), op(opAddFile), op(opResume), op(opFlags, 1), op(opAdvance, 3), op(opRetryDelay, 3), op(opAddFileBad), op(opComplete), op(opComplete), op(opTimeout, 1)),
	}
}

// FuzzJobModel runs sequences decoded from the fuzz input against the model.
// `go test` runs the seeds; CI fuzzes it briefly.
func FuzzJobModel(f *testing.F) {
	for _, s := range modelSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) { runModel(t, data) })
	})
}

// TestJobModel runs the seeds and a bounded random walk: 300 sequences from
// fixed seeds, so every run checks the same sequences.
func TestJobModel(t *testing.T) {
	for i, s := range modelSeeds() {
		t.Run(fmt.Sprintf("seed%d", i), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runModel(t, s) })
		})
	}
	n := 300
	if testing.Short() {
		n = 50
	}
	for i := range n {
		rng := rand.New(rand.NewPCG(uint64(i), 0x646f6a6f62))
		data := make([]byte, 2*(8+rng.IntN(modelMaxOps+modelMaxFiles*4)))
		for k := range data {
			data[k] = byte(rng.UintN(256))
		}
		t.Run(fmt.Sprintf("walk%d", i), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runModel(t, data) })
		})
	}
}

// stateEv is one JobStateChanged, at its instant from the start.
type stateEv struct {
	from, to dojob.State
	at       time.Duration
}

func (e stateEv) String() string { return fmt.Sprintf("%v->%v@%v", e.from, e.to, e.at) }

// finalEv is one JobTransferred (code 0) or JobError (its code).
type finalEv struct {
	err  bool
	code dojob.HRESULT
	at   time.Duration
}

func (e finalEv) String() string {
	if !e.err {
		return fmt.Sprintf("Transferred@%v", e.at)
	}
	return fmt.Sprintf("Error(%v)@%v", e.code, e.at)
}

// modelCB is the callback the harness registers: it records what it
// receives, and fails the next JobTransferred/JobError when asked to.
type modelCB struct {
	start time.Time

	mu       sync.Mutex
	states   []stateEv
	finals   []finalEv
	files    []string
	failNext int
}

func (c *modelCB) since() time.Duration { return time.Since(c.start) }

func (c *modelCB) final(ev finalEv) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finals = append(c.finals, ev)
	if c.failNext > 0 {
		c.failNext--
		return errors.New("model: injected callback failure")
	}
	return nil
}

func (c *modelCB) JobTransferred(*dojob.Job) error {
	return c.final(finalEv{at: c.since()})
}

func (c *modelCB) JobError(_ *dojob.Job, e *dojob.JobError) error {
	ev := finalEv{err: true, at: c.since()}
	if e != nil {
		ev.code = e.Code
	}
	return c.final(ev)
}

func (c *modelCB) JobModification(*dojob.Job) error { return nil }

func (c *modelCB) FileTransferred(_ *dojob.Job, f dojob.FileInfo) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files = append(c.files, f.LocalPath)
	return nil
}

func (c *modelCB) JobStateChanged(_ *dojob.Job, from, to dojob.State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.states = append(c.states, stateEv{from, to, c.since()})
	return nil
}

// mfile is a file of the model's job.
type mfile struct {
	path, local string
	done        bool
}

// model is the reference: what the contract says the job does. Its time is
// the fake time since the sequence started.
type model struct {
	scripts [modelMaxFiles][]outcome

	now        time.Duration
	state      dojob.State
	files      []mfile
	reqs       [modelMaxFiles]int
	errCount   int
	code       dojob.HRESULT // of the error object, in ERROR and TRANSIENT_ERROR
	prio       dojob.Priority
	timeout    time.Duration
	timeoutSet bool
	retryDelay time.Duration
	flags      dojob.NotifyFlags
	cbSet      bool
	failNext   int

	streak      int
	windowOpen  bool
	windowStart time.Duration
	retryAt     time.Duration // in TRANSIENT_ERROR
	stalled     bool          // the attempt in CONNECTING/TRANSFERRING hangs
	stallStart  time.Duration // when its last byte (or its request) came
	pending     bool          // JobTransferred/JobError owed for this stay in TRANSFERRED/ERROR
	redeliver   bool
	redeliverAt time.Duration

	// What the callback must have received.
	states []stateEv
	finals []finalEv
	fileCb []string

	ambiguous string // why the model cannot say what comes next
}

func newModel(scripts [modelMaxFiles][]outcome) *model {
	return &model{scripts: scripts, state: dojob.StateSuspended, prio: dojob.PriorityNormal,
		retryDelay: dojob.DefaultMinimumRetryDelay, flags: dojob.DefaultNotifyFlags}
}

func (m *model) clone() *model {
	c := *m
	c.files = slices.Clone(m.files)
	c.states = slices.Clone(m.states)
	c.finals = slices.Clone(m.finals)
	c.fileCb = slices.Clone(m.fileCb)
	return &c
}

func (m *model) timeoutVal() time.Duration {
	switch {
	case m.timeoutSet:
		return m.timeout
	case m.prio == dojob.PriorityForeground:
		return time.Hour
	}
	return 24 * time.Hour
}

func active(s dojob.State) bool {
	return s == dojob.StateQueued || s == dojob.StateConnecting || s == dojob.StateTransferring || s == dojob.StateTransientError
}

// wants reports whether the callback would receive kind now.
func (m *model) wants(flag dojob.NotifyFlags) bool {
	return m.cbSet && m.flags&dojob.NotifyDisable == 0 && m.flags&flag != 0
}

// set is a state change, with everything the contract ties to it.
func (m *model) set(to dojob.State) {
	from := m.state
	if from == to {
		return
	}
	switch from {
	case dojob.StateTransferred, dojob.StateError:
		m.pending, m.redeliver = false, false
	}
	switch to {
	case dojob.StateError, dojob.StateTransientError:
		m.errCount++
	}
	switch to {
	case dojob.StateSuspended, dojob.StateError, dojob.StateTransferred, dojob.StateAcknowledged, dojob.StateCancelled:
		m.windowOpen = false
	}
	if to != dojob.StateConnecting && to != dojob.StateTransferring {
		m.stalled = false
	}
	m.state = to
	if m.wants(dojob.NotifyJobModification) {
		m.states = append(m.states, stateEv{from, to, m.now})
	}
	if to == dojob.StateError || to == dojob.StateTransferred {
		m.pending = true
		m.offerFinal()
	}
}

// offerFinal delivers the JobTransferred/JobError owed, if the callback can
// receive it now.
func (m *model) offerFinal() {
	if !m.pending {
		return
	}
	ev := finalEv{at: m.now}
	flag := dojob.NotifyJobTransferred
	if m.state == dojob.StateError {
		ev.err, ev.code, flag = true, m.code, dojob.NotifyJobError
	}
	if !m.wants(flag) {
		return
	}
	m.finals = append(m.finals, ev)
	m.redeliver = false
	if m.failNext > 0 {
		m.failNext--
		m.redeliver, m.redeliverAt = true, m.now+m.retryDelay
		return
	}
	m.pending = false
}

func (m *model) noteProgress() {
	m.windowOpen = false
	m.streak = 0
}

// run is the transfer that starts when the job is QUEUED: files in order,
// each request answered by its file's script, until a failure, a stall or
// TRANSFERRED.
func (m *model) run() {
	for {
		i := slices.IndexFunc(m.files, func(f mfile) bool { return !f.done })
		if i < 0 {
			m.noteProgress()
			m.set(dojob.StateTransferred)
			return
		}
		m.set(dojob.StateConnecting)
		o := outOK
		if n := m.reqs[i]; n < len(m.scripts[i]) {
			o = m.scripts[i][n]
		}
		m.reqs[i]++
		switch o {
		case outOK:
			m.set(dojob.StateTransferring)
			m.noteProgress()
			m.files[i].done = true
			if m.wants(dojob.NotifyFileTransferred) {
				m.fileCb = append(m.fileCb, m.files[i].local)
			}
			continue
		case out503:
			m.fail(true, dojob.HTTPStatus(503), 0)
		case out503RetryAfter:
			m.fail(true, dojob.HTTPStatus(503), 5*time.Second)
		case out404:
			m.fail(false, dojob.HTTPStatus(404), 0)
		case outDrop:
			m.set(dojob.StateTransferring)
			m.noteProgress()
			m.fail(true, dojob.ErrConnectionError, 0)
		case outStallHeaders:
			m.stalled, m.stallStart = true, m.now
		case outStallBody:
			m.set(dojob.StateTransferring)
			m.noteProgress()
			m.stalled, m.stallStart = true, m.now
		}
		return
	}
}

// fail is a failed attempt: fatal errors end in ERROR; transient ones retry
// after the back-off unless the timeout leaves no room.
func (m *model) fail(transient bool, code dojob.HRESULT, retryAfter time.Duration) {
	to := m.timeoutVal()
	if !transient || to == 0 || m.retryDelay > to {
		m.code = code
		m.set(dojob.StateError)
		return
	}
	if !m.windowOpen {
		m.windowOpen, m.windowStart = true, m.now
	}
	if m.now-m.windowStart >= to {
		m.expire()
		return
	}
	limit := max(time.Minute, m.retryDelay)
	d := m.retryDelay
	for i := 0; i < m.streak && d < limit; i++ {
		d *= 2
	}
	d = max(min(d, limit), retryAfter)
	m.streak++
	m.code = code
	m.set(dojob.StateTransientError)
	m.retryAt = m.now + d
}

// expire: the no-progress window reached the timeout.
func (m *model) expire() {
	if !active(m.state) {
		m.windowOpen = false
		return
	}
	m.code = dojob.ErrNoProgress
	m.set(dojob.StateError)
}

// rearm applies a changed timeout to an open window.
func (m *model) rearm() {
	if m.windowOpen && m.now >= m.windowStart+m.timeoutVal() {
		m.expire()
	}
}

// Timed events.
type evKind uint8

const (
	evNone evKind = iota
	evRetry
	evWindow
	evStall // the stall window opens at the event's time
	evRedeliver
)

// next returns the earliest timed event, and whether another one may fall
// at the same instant (their order is not specified, so the model stops
// there). For a stall it is the earliest instant the stall may be noticed;
// the latest is two ticks later.
func (m *model) next() (k evKind, at time.Duration, tie bool) {
	type cand struct {
		k  evKind
		at time.Duration
	}
	var cs []cand
	if m.state == dojob.StateTransientError {
		cs = append(cs, cand{evRetry, m.retryAt})
	}
	if m.windowOpen && active(m.state) {
		cs = append(cs, cand{evWindow, m.windowStart + m.timeoutVal()})
	}
	if m.stalled {
		cs = append(cs, cand{evStall, m.stallStart + modelStall})
	}
	if m.redeliver && m.pending {
		cs = append(cs, cand{evRedeliver, m.redeliverAt})
	}
	if len(cs) == 0 {
		return evNone, 0, false
	}
	slices.SortFunc(cs, func(a, b cand) int { return int(a.at - b.at) })
	if len(cs) > 1 {
		gap := time.Duration(0)
		if cs[0].k == evStall || cs[1].k == evStall {
			gap = 2*modelTick + modelStep // the stall may come anywhere in its window
		}
		if cs[1].at-cs[0].at <= gap {
			m.ambiguous = fmt.Sprintf("%v and %v due together at %v/%v", cs[0].k, cs[1].k, cs[0].at, cs[1].at)
			tie = true
		}
	}
	return cs[0].k, cs[0].at, tie
}

// fire applies the timed event k at its time.
func (m *model) fire(k evKind) {
	switch k {
	case evRetry:
		m.set(dojob.StateQueued)
		m.run()
	case evWindow:
		m.expire()
	case evStall:
		m.fail(true, dojob.ErrTimeout, 0)
	case evRedeliver:
		m.redeliver = false
		m.offerFinal()
	}
}

// advanceExact runs the exact timed events up to t. If a stall window or
// two events due together come first, it stops before them and returns
// their time and false.
func (m *model) advanceExact(t time.Duration) (time.Duration, bool) {
	for {
		k, at, tie := m.next()
		if k == evNone || at > t {
			m.now = t
			return t, true
		}
		if tie || k == evStall {
			return at, false
		}
		m.now = at
		m.fire(k)
	}
}

func (k evKind) String() string {
	return [...]string{"none", "retry", "window", "stall", "redeliver"}[k]
}

// harness runs one sequence against the real job and the model.
type harness struct {
	t     *testing.T
	tr    *dojobtest.Transport
	mgr   *dojob.Manager
	j     *dojob.Job
	cb    *modelCB
	m     *model
	dir   string
	start time.Time
	trace []string
}

func (h *harness) since() time.Duration { return time.Since(h.start) }

func runModel(t *testing.T, data []byte) {
	ops, scripts := decodeOps(data)
	var opts []dojobtest.Option
	opts = append(opts, dojobtest.WithSize(modelSize))
	for i, s := range scripts {
		fs := make([]dojobtest.Fault, len(s))
		for k, o := range s {
			fs[k] = o.fault()
		}
		opts = append(opts, dojobtest.ScriptFor(fmt.Sprintf("/f%d", i), fs...))
	}
	tr := dojobtest.NewTransport(opts...)
	defer tr.Close()
	mgr, err := dojob.NewManager(dojob.Config{HTTPClient: tr.Client(), StallTimeout: modelStall})
	require.NoError(t, err)
	defer func() {
		require.NoError(t, mgr.Close())
		require.Zero(t, dojob.StateDefects(mgr), "state changes the table refused")
	}()
	j, err := mgr.CreateJob("model")
	require.NoError(t, err)
	h := &harness{t: t, tr: tr, mgr: mgr, j: j, m: newModel(scripts), dir: t.TempDir(), start: time.Now()}
	h.cb = &modelCB{start: h.start}
	// Start with every state change reported, so a sequence checks them
	// unless it turns the flag off.
	require.NoError(t, j.SetNotifyFlags(dojob.DefaultNotifyFlags|dojob.NotifyJobModification))
	require.NoError(t, j.SetNotifyInterface(h.cb))
	h.m.cbSet, h.m.flags = true, dojob.DefaultNotifyFlags|dojob.NotifyJobModification
	h.trace = append(h.trace, fmt.Sprintf("scripts %v", scripts))
	defer func() {
		if t.Failed() {
			t.Logf("sequence:\n  %s", strings.Join(h.trace, "\n  "))
		}
	}()
	for _, o := range ops {
		h.trace = append(h.trace, fmt.Sprintf("@%v %v", h.since(), o))
		if !h.do(o) {
			return
		}
		if t.Failed() {
			return
		}
		h.check(o.String())
		if t.Failed() {
			return
		}
	}
	h.finalCheck()
}

// wantErr checks a method's error against the code the model expects (0:
// none).
func (h *harness) wantErr(what string, err error, code dojob.HRESULT) {
	h.t.Helper()
	if code == 0 {
		require.NoError(h.t, err, what)
		return
	}
	require.ErrorIs(h.t, err, code, what)
}

// mutable is the error the model expects from a state-changing call or a
// setter with valid arguments.
func (m *model) mutable() dojob.HRESULT {
	if m.state.Final() {
		return dojob.ErrInvalidState
	}
	return 0
}

// do runs one operation on the job and on the model. It returns false when
// the sequence must stop because the model cannot predict what follows.
func (h *harness) do(o modelOp) bool {
	m, j := h.m, h.j
	arg := int(o.arg)
	switch o.kind {
	case opResume:
		want := m.mutable()
		if want == 0 && len(m.files) == 0 {
			want = dojob.ErrJobEmpty
		}
		err := j.Resume()
		synctest.Wait()
		h.wantErr("Resume", err, want)
		if want == 0 {
			switch m.state {
			case dojob.StateSuspended, dojob.StateError, dojob.StateTransientError:
				m.windowOpen, m.streak = false, 0
				m.set(dojob.StateQueued)
				m.run()
			case dojob.StateTransferred:
				if slices.ContainsFunc(m.files, func(f mfile) bool { return !f.done }) {
					m.set(dojob.StateQueued)
					m.run()
				}
			}
		}
	case opSuspend:
		want := m.mutable()
		err := j.Suspend()
		synctest.Wait()
		h.wantErr("Suspend", err, want)
		if want == 0 && m.state != dojob.StateTransferred {
			m.set(dojob.StateSuspended)
		}
	case opCancel:
		want := m.mutable()
		err := j.Cancel()
		synctest.Wait()
		h.wantErr("Cancel", err, want)
		if want == 0 {
			m.set(dojob.StateCancelled)
		}
	case opComplete:
		want := m.mutable()
		err := j.Complete()
		synctest.Wait()
		h.wantErr("Complete", err, want)
		if want == 0 {
			m.set(dojob.StateAcknowledged)
		}
	case opAddFile:
		want := m.mutable()
		n := len(m.files)
		path := fmt.Sprintf("/f%d", min(n, modelMaxFiles-1))
		local := filepath.Join(h.dir, fmt.Sprintf("f%d", n))
		if n >= modelMaxFiles {
			local = filepath.Join(h.dir, "f0") // already in the job
			if want == 0 {
				want = dojob.ErrInvalidArg
			}
		}
		err := j.AddFile(h.tr.FileURL(path), local)
		synctest.Wait()
		h.wantErr("AddFile", err, want)
		if err == nil {
			m.files = append(m.files, mfile{path: path, local: local})
		}
	case opAddFileBad:
		err := j.AddFile("ftp://"+dojobtest.Host+"/x", filepath.Join(h.dir, "bad"))
		h.wantErr("AddFile(ftp)", err, dojob.ErrInvalidArg)
	case opTimeout:
		d := modelTimeouts[arg%len(modelTimeouts)]
		want := m.mutable()
		if d < 0 {
			want = dojob.ErrInvalidArg
		}
		err := j.SetNoProgressTimeout(d)
		synctest.Wait()
		h.wantErr("SetNoProgressTimeout", err, want)
		if want == 0 && !(m.timeoutSet && m.timeout == d) {
			m.timeout, m.timeoutSet = d, true
			m.rearm()
		}
	case opRetryDelay:
		d := modelRetryDelays[arg%len(modelRetryDelays)]
		want := m.mutable()
		if d <= 0 {
			want = dojob.ErrInvalidArg
		}
		err := j.SetMinimumRetryDelay(d)
		h.wantErr("SetMinimumRetryDelay", err, want)
		if want == 0 {
			m.retryDelay = d
		}
	case opPriority:
		p := modelPriorities[arg%len(modelPriorities)]
		want := m.mutable()
		if p < dojob.PriorityForeground || p > dojob.PriorityLow {
			want = dojob.ErrInvalidArg
		}
		err := j.SetPriority(p)
		synctest.Wait()
		h.wantErr("SetPriority", err, want)
		if want == 0 && m.prio != p {
			m.prio = p
			m.rearm()
		}
	case opFlags:
		f := modelFlags[arg%len(modelFlags)]
		want := m.mutable()
		if f&^(dojob.NotifyJobTransferred|dojob.NotifyJobError|dojob.NotifyDisable|dojob.NotifyJobModification|dojob.NotifyFileTransferred) != 0 {
			want = dojob.ErrInvalidArg
		}
		err := j.SetNotifyFlags(f)
		synctest.Wait()
		h.wantErr("SetNotifyFlags", err, want)
		if want == 0 && m.flags != f {
			m.flags = f
			m.offerFinal()
		}
	case opRegister, opUnregister:
		var cb dojob.Callback
		if o.kind == opRegister {
			cb = h.cb
		}
		want := m.mutable()
		err := j.SetNotifyInterface(cb)
		synctest.Wait()
		h.wantErr("SetNotifyInterface", err, want)
		if want == 0 {
			m.cbSet = cb != nil
			m.offerFinal()
		}
	case opFailFinal:
		h.cb.mu.Lock()
		h.cb.failNext++
		h.cb.mu.Unlock()
		m.failNext++
	case opName:
		name := "model job"
		want := m.mutable()
		if arg%4 == 0 {
			name = strings.Repeat("é", 257)
			want = dojob.ErrStringTooLong
		}
		h.wantErr("SetDisplayName", j.SetDisplayName(name), want)
	case opAdvance:
		return h.advance(h.since() + modelAdvances[arg%len(modelAdvances)])
	case opWait:
		return h.wait(modelWaits[arg%len(modelWaits)])
	}
	return true
}

// advance lets fake time run to target, stopping at every timed event of
// the model to compare, and walking through stall windows tick by tick.
func (h *harness) advance(target time.Duration) bool {
	m := h.m
	for {
		k, at, tie := m.next()
		if k == evNone || at > target {
			break
		}
		if tie {
			h.trace = append(h.trace, "stop: "+m.ambiguous)
			return false
		}
		if k != evStall {
			advance(at - h.since())
			m.now = at
			m.fire(k)
			h.check(fmt.Sprintf("%v at %v", k, at))
			if h.t.Failed() {
				return false
			}
			continue
		}
		// The stall is noticed at a tick in [at, at+2 ticks]: never before.
		advance(at - modelStep - h.since())
		m.now = h.since()
		h.check("just before the stall window")
		if h.t.Failed() {
			return false
		}
		count := h.j.ErrorCount()
		for h.j.ErrorCount() == count {
			require.LessOrEqual(h.t, h.since(), at+2*modelTick, "stall not noticed within two ticks of the stall timeout")
			advance(modelStep)
		}
		m.now = h.since()
		m.fire(evStall)
		h.check(fmt.Sprintf("stall noticed at %v", m.now))
		if h.t.Failed() {
			return false
		}
	}
	advance(target - h.since()) // a timer of d <= 0 fires at once
	m.now = h.since()
	return true
}

// wait calls Wait with a timeout of d (shortened so that no stall window
// falls inside it: the model learns a stall's instant only by walking
// through its window).
func (h *harness) wait(d time.Duration) bool {
	m := h.m
	end := m.now + d
	if at, ok := m.clone().advanceExact(end); !ok {
		end = max(m.now, at-modelStep)
	}
	ctx, cancel := context.WithTimeout(h.t.Context(), end-m.now)
	defer cancel()
	s, err := h.j.Wait(ctx)
	synctest.Wait()
	got := h.since()
	if _, ok := m.advanceExact(got); !ok {
		h.t.Fatalf("Wait returned at %v, past the model's horizon %v", got, end)
	}
	if err != nil {
		require.ErrorIs(h.t, err, context.DeadlineExceeded, "Wait")
		require.Equal(h.t, end, got, "Wait returned its context's error before the deadline")
		return true
	}
	require.Contains(h.t, []dojob.State{dojob.StateTransferred, dojob.StateError, dojob.StateSuspended,
		dojob.StateAcknowledged, dojob.StateCancelled}, s, "Wait returned %v", s)
	require.Equal(h.t, m.state, s, "Wait's state at %v", got)
	return true
}

// check compares the job with the model.
func (h *harness) check(after string) {
	t, m, j := h.t, h.m, h.j
	t.Helper()
	synctest.Wait()
	require.Equal(t, m.now, h.since(), "model time after %s", after)
	require.Equal(t, m.state, j.State(), "state after %s", after)
	require.Equal(t, m.errCount, j.ErrorCount(), "ErrorCount after %s", after)
	jerr, err := j.Error()
	if m.state == dojob.StateError || m.state == dojob.StateTransientError {
		require.NoError(t, err, "Error after %s", after)
		require.Equal(t, m.code, jerr.Code, "error code after %s", after)
	} else {
		require.ErrorIs(t, err, dojob.ErrErrorInformationUnavailable, "Error after %s", after)
	}
	for i := range modelMaxFiles {
		require.Len(t, h.tr.RequestsFor(fmt.Sprintf("/f%d", i)), m.reqs[i], "requests for /f%d after %s", i, after)
	}
	p := j.Progress()
	done := 0
	for _, f := range m.files {
		if f.done {
			done++
		}
	}
	require.Equal(t, len(m.files), p.FilesTotal, "FilesTotal after %s", after)
	require.Equal(t, done, p.FilesTransferred, "FilesTransferred after %s", after)
	h.cb.mu.Lock()
	states, finals, files := slices.Clone(h.cb.states), slices.Clone(h.cb.finals), slices.Clone(h.cb.files)
	h.cb.mu.Unlock()
	require.Equal(t, fmt.Sprint(m.states), fmt.Sprint(states), "JobStateChanged calls after %s", after)
	require.Equal(t, fmt.Sprint(m.finals), fmt.Sprint(finals), "JobTransferred/JobError calls after %s", after)
	require.Equal(t, m.fileCb, files, "FileTransferred calls after %s", after)
	if m.state != dojob.StateAcknowledged {
		for _, f := range m.files {
			_, err := os.Stat(f.local)
			require.ErrorIs(t, err, os.ErrNotExist, "%s appeared before Complete (after %s)", f.local, after)
		}
	}
}

// finalCheck looks at the files once the sequence is over: after Complete,
// exactly the transferred files are at their destinations with the server's
// bytes; after Cancel, none; in both, no temporary file is left.
func (h *harness) finalCheck() {
	t, m := h.t, h.m
	if !m.state.Final() {
		return
	}
	for _, f := range m.files {
		if m.state == dojob.StateAcknowledged && f.done {
			h.requireSHA(f)
			continue
		}
		_, err := os.Stat(f.local)
		require.ErrorIs(t, err, os.ErrNotExist, "%s", f.local)
	}
	require.Empty(t, tempFiles(t, h.dir), "temporary files left in a %v job", m.state)
}

func (h *harness) requireSHA(f mfile) {
	h.t.Helper()
	require.Equal(h.t, h.tr.SHA256(f.path), fileSHA256(h.t, f.local), "SHA-256 of %s", f.local)
}
