package dojob

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// reload brings back the jobs of the state directory (NewManager). A
// paused Manager (Config.Paused) only looks: it recovers nothing — damaged
// records are logged but stay where they are, an interrupted write, Complete
// or Cancel is left for the next Manager that is not paused, and no record
// is rewritten — so it writes nothing to the directory.
func (m *Manager) reload() error {
	s := m.store
	look := m.cfg.Paused
	entries, err := os.ReadDir(s.jobs)
	if err != nil {
		if look && errors.Is(err, fs.ErrNotExist) {
			return nil // nothing to look at
		}
		return localError(fmt.Errorf("reading state directory: %w", err))
	}
	var jobs []*Job
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".json.tmp") {
			if !look {
				_ = os.Remove(filepath.Join(s.jobs, name)) // a write a crash interrupted
			}
			continue
		}
		if !strings.HasSuffix(name, ".json") || e.IsDir() {
			continue
		}
		path := filepath.Join(s.jobs, name)
		rec, err := readRecord(path)
		if err == nil && rec.ID.hex32()+".json" != name {
			err = fmt.Errorf("record for job %s stored as %s", rec.ID, name)
		}
		if err != nil {
			if look {
				m.log.Error("dojob: damaged job record (left in place: the Manager is paused)", "record", path, "cause", err)
				continue
			}
			m.setAside(path, err)
			continue
		}
		if look && (rec.Completing || rec.State.Final()) {
			continue // an interrupted Complete or Cancel: the job has ended
		}
		if j := m.restore(rec); j != nil {
			jobs = append(jobs, j)
		}
	}
	slices.SortFunc(jobs, func(a, b *Job) int { return cmpUint64(a.seq, b.seq) })
	for _, j := range jobs {
		m.mu.Lock()
		m.jobs[j.id] = j
		m.seq = max(m.seq, j.seq)
		m.mu.Unlock()
		j.mu.Lock()
		if j.state == StateQueued {
			m.sched.enqueue(j)
		}
		j.mu.Unlock()
	}
	m.kick()
	return nil
}

// setAside moves a damaged record to StateDir/damaged and logs why.
func (m *Manager) setAside(path string, cause error) {
	s := m.store
	dir := filepath.Join(s.dir, "damaged")
	dest := filepath.Join(dir, filepath.Base(path))
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = os.Rename(path, dest)
	}
	m.log.Error("dojob: damaged job record set aside", "record", path, "moved_to", dest, "cause", cause, "move_err", err)
}

// restore rebuilds a job from its record, or finishes a job that ended
// (Cancel, Complete) while the previous Manager crashed; it returns nil for
// those.
func (m *Manager) restore(r *record) *Job {
	j := m.newJob(r.ID, r.Created)
	j.seq = r.Seq
	j.name, j.desc = r.DisplayName, r.Description
	j.prio, j.qprio = r.Priority, r.Priority
	if r.NoProgressTimeout != nil {
		j.timeout, j.timeoutSet = *r.NoProgressTimeout, true
	}
	j.retryDelay = r.MinimumRetryDelay
	j.flags = r.NotifyFlags
	j.modified, j.completedAt = r.Modified, r.TransferCompleted
	j.errCount, j.streak = r.ErrorCount, r.Streak
	j.parallel = r.MaxParallelFiles
	j.conns = r.MaxConnections
	j.minSpeed, j.speedWindow = r.MinimumSpeed, r.MinimumSpeedWindow
	j.maxBandwidth = r.MaximumBandwidth
	setBucket(&j.bucket, r.MaximumBandwidth)
	if r.CostPolicy != nil {
		j.cost, j.costSet = *r.CostPolicy, true
	}
	j.maxTime, j.dlUsed, j.maxSize, j.notifyIv = r.MaxDownloadTime, r.DownloadTimeUsed, r.MaxDownloadSize, r.MinNotificationInterval
	if len(r.CustomHeaders) > 0 {
		j.headers, _ = checkHeaders(r.CustomHeaders) // checked by readRecord
	}
	j.headersWriteOnly = r.CustomHeadersWriteOnly
	j.restoreNet(r.recordNet)
	if len(r.Credentials) > 0 {
		j.creds = r.Credentials
	}
	for _, rf := range r.Files {
		f := &file{recordFile: rf} // checked by readRecord
		// What an older release wrote, brought up to date.
		f.Checksum, f.sum, _ = parseChecksum(rf.Checksum)
		f.HighWater = max(rf.HighWater, rf.Durable)
		f.Restarts = max(rf.Restarts, 0)
		f.ResponseHeaders = keptHeaders(rf.ResponseHeaders) // an older release kept every header
		f.Sources = recordSources(rf)
		j.files = append(j.files, f)
	}

	switch {
	case r.Completing || r.State == StateAcknowledged:
		// Complete was under way: finish promoting what was transferred.
		// A temporary file already gone was renamed before the crash.
		for _, f := range j.files {
			if f.Transferred && !f.Completed {
				if f.Stream {
					f.Completed = true // nothing to install
					continue
				}
				if _, err := os.Stat(f.Temp); err == nil {
					if err := m.fs.rename(f.Temp, f.Local); err != nil {
						m.log.Error("dojob: finishing an interrupted Complete", "job", r.ID.String(), "file", f.Local, "err", err)
						continue
					}
					_ = syncDir(filepath.Dir(f.Local))
				}
				f.Completed = true
			}
		}
		m.discardPartials(j, j.files)
		m.unpersist(j)
		return nil
	case r.State == StateCancelled:
		temps := make([]string, 0, len(j.files))
		for _, f := range j.files {
			if !f.Stream {
				temps = append(temps, f.Temp)
			}
		}
		_ = m.removeTemps(j, temps)
		m.unpersist(j)
		return nil
	}
	for _, f := range j.files {
		m.checkTemp(j, f)
		if !f.Transferred {
			f.Verified = false // it will be checked again when it is
		}
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	j.jerr = j.jobError(r.Error)
	j.lastTransient = j.jobError(r.LastTransient)
	now := m.now()
	if r.WindowAge != nil {
		j.windowOpen, j.windowStart = true, now-*r.WindowAge
	}
	state := r.State
	switch r.State {
	case StateConnecting, StateTransferring, StateQueued:
		// The transfer died with the previous Manager: queue it again; it
		// resumes from the temporary files.
		state = StateQueued
	case StateTransientError:
		j.retryAt = now + r.RetryIn
		if r.Error != nil && holdCode(r.Error.Code) {
			// Held by policy in the previous Manager: this one's limits
			// and cost decide again at once (hold.go).
			j.retryAt = now
		}
		if !m.store.readOnly { // a read-only Manager's jobs stay as recorded
			m.clock.set(&j.retryDL, j.retryAt)
		}
	case StateTransferred, StateError:
		j.episode, j.pendingFinal = 1, true
		if r.State == StateTransferred && j.nextFileLocked() != nil {
			// A transferred file lost its temporary file: fetch it again.
			state = StateQueued
			j.pendingFinal = false
		}
	}
	j.restoreStateLocked(state)
	if j.state != StateError && j.state != StateTransientError {
		j.jerr = nil
	}
	if j.windowOpen && j.state.active() {
		if !m.store.readOnly {
			m.clock.set(&j.windowDL, j.windowStart+j.timeoutLocked())
		}
	} else {
		j.windowOpen = false
	}
	j.changedLocked() // the restored state (e.g. QUEUED) is written on the next save
	j.saved = 0
	if m.cfg.Paused {
		// Written only if a change is made (by a Manager that owns the
		// directory): a paused Manager writes nothing of its own accord,
		// and persist writes nothing while the version is the one saved.
		j.saved = j.version
	}
	return j
}

// checkTemp reconciles a restored file with its temporary file: a transfer
// resumes from the last checkpoint (the bytes fsynced and recorded); a
// temporary file shorter than that (data lost) resumes from what it holds;
// a missing one starts over.
func (m *Manager) checkTemp(j *Job, f *file) {
	if f.Completed {
		return
	}
	if f.Stream {
		// No temporary file to look at, and no writer yet: the sink the
		// next attempt opens on the writer SetFileWriter gives decides
		// whether the recorded bytes are there (lazyTemp.open).
		f.sinkDirty.Store(true) // bytes may have gone to a writer before the restart
		f.done.Store(f.Durable)
		return
	}
	fi, err := os.Stat(f.Temp)
	switch {
	case err != nil && errors.Is(err, fs.ErrNotExist):
		if f.Transferred || f.Durable > 0 {
			m.log.Warn("dojob: temporary file missing; the file starts over", "job", j.id.String(), "file", f.Temp)
			f.Restarts++
			f.RestartReason = "temporary file missing"
		}
		f.Transferred = false
		f.Durable = 0
		f.Spans = nil
		f.ETag, f.LastModified = "", ""
	case err != nil:
		m.log.Warn("dojob: temporary file unreadable", "job", j.id.String(), "file", f.Temp, "err", err)
	case f.Transferred && fi.Size() != f.Size:
		f.Transferred = false
		f.Durable = min(f.Durable, fi.Size())
	case f.Spans != nil:
		// In segments: bytes past the file's end are gone.
		if n := len(f.Spans); n > 0 && fi.Size() < f.Spans[n-1][1] {
			f.Spans, f.Durable = clipSpans(f.Spans, fi.Size())
			f.HashState, f.HashLen = nil, 0
		}
	case fi.Size() < f.Durable:
		f.Durable = fi.Size()
	}
	f.done.Store(f.Durable)
}
