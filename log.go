package dojob

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Diagnostics logged with a job's lock held (a state change, a transient
// error, an expired window, a failed callback, a pre-emption) are not
// handed to the Logger there: a slow slog.Handler would hold the lock, and
// the Manager's single timer loop, which takes every job's lock, would wait
// for it — one slow handler would delay every job's timers. Instead the
// record is built (only if the Logger is enabled for its level, with its
// attributes as values: the job's ID, the error) and queued; a goroutine
// the Manager owns hands the queue to the Logger in order, outside every
// lock. No goroutine of the engine ever calls the Logger for these records.

// maxQueuedLogs bounds the queue: a handler that stalls for good costs
// bounded memory; records beyond it are counted and the count is logged
// once the handler moves again.
const maxQueuedLogs = 1024

// logQueue is the Manager's queue of records waiting for the Logger.
type logQueue struct {
	mu      sync.Mutex
	recs    []slog.Record
	running bool // an emitter goroutine is running
	dropped int  // records dropped since the last report
}

// logEnabled reports whether the Logger wants records of level; a caller
// builds the attributes of a queued record only if it does.
func (m *Manager) logEnabled(level slog.Level) bool {
	return m.log.Enabled(context.Background(), level)
}

// queueLog queues a record for the Logger; any lock may be held. The caller
// checks logEnabled first.
func (m *Manager) queueLog(level slog.Level, msg string, attrs ...slog.Attr) {
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(attrs...)
	m.pushLog(r)
}

// logAsync is the way the engine's goroutines (transfers, the state
// writer) log: it queues a record, built only if the Logger is enabled for
// level, with args as in slog.Logger.Log. Those goroutines thus never wait
// for a slow handler either.
func (m *Manager) logAsync(level slog.Level, msg string, args ...any) {
	if !m.logEnabled(level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.Add(args...)
	m.pushLog(r)
}

// pushLog appends r to the queue and makes sure an emitter runs.
func (m *Manager) pushLog(r slog.Record) {
	q := &m.logq
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.recs) >= maxQueuedLogs {
		q.dropped++
		return
	}
	q.recs = append(q.recs, r)
	if !q.running && m.spawn(nil, "the log emitter", m.emitLogs) {
		q.running = true
	}
	// Once Close has begun no emitter starts; Close emits what is left after
	// every goroutine of the Manager has exited.
}

// emitLogs hands queued records to the Logger, in order, until the queue is
// empty. It runs until it has emptied the queue even while the Manager
// closes, so Close waits for a Logger that is slow — as it waits for a
// running callback.
func (m *Manager) emitLogs() {
	q := &m.logq
	for {
		q.mu.Lock()
		batch, dropped := q.recs, q.dropped
		q.recs, q.dropped = nil, 0
		if len(batch) == 0 && dropped == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		m.emit(batch, dropped)
	}
}

// flushLogs emits what is still queued; Close calls it once no goroutine of
// the Manager is left.
func (m *Manager) flushLogs() {
	q := &m.logq
	q.mu.Lock()
	batch, dropped := q.recs, q.dropped
	q.recs, q.dropped = nil, 0
	q.mu.Unlock()
	m.emit(batch, dropped)
}

func (m *Manager) emit(batch []slog.Record, dropped int) {
	ctx := context.Background()
	h := m.log.Handler()
	for _, r := range batch {
		_ = h.Handle(ctx, r)
	}
	if dropped > 0 && h.Enabled(ctx, slog.LevelWarn) {
		r := slog.NewRecord(time.Now(), slog.LevelWarn, "dojob: log records dropped while the Logger was slow", 0)
		r.AddAttrs(slog.Int("dropped", dropped))
		_ = h.Handle(ctx, r)
	}
}
