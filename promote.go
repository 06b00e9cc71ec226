package dojob

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// promote renames every transferred, not yet completed file of j over its
// destination and syncs the directories, for Complete. No transfer goroutine
// is running. A rename refused because another program has a file open is
// retried for a while (see inUseWindow). Files renamed before a failure stay
// renamed and are marked Completed; the failure is returned as a LOCAL_FILE
// *JobError.
func (m *Manager) promote(j *Job, files []*file) error {
	dirs := map[string]bool{}
	defer func() {
		for d := range dirs {
			if err := syncDir(d); err != nil {
				m.log.Warn("dojob: syncing directory", "dir", d, "err", err)
			}
		}
	}()
	for _, f := range files {
		j.mu.Lock()
		ready := f.Transferred && !f.Completed
		j.mu.Unlock()
		if !ready {
			continue
		}
		if f.Stream {
			// Its bytes are already the caller's: nothing to install.
			j.mu.Lock()
			f.Completed = true
			j.modified = time.Now()
			j.changedLocked()
			j.mu.Unlock()
			continue
		}
		if err := retryInUse(m.fs.rename, isInUse, m.fs.inUseWindow, f.Temp, f.Local); err != nil {
			e := localPathError(f.Local, err)
			j.mu.Lock()
			fi := f.infoLocked()
			j.mu.Unlock()
			e.File = &fi
			return e
		}
		dirs[filepath.Dir(f.Local)] = true
		j.mu.Lock()
		f.Completed = true
		j.modified = time.Now()
		j.changedLocked()
		j.mu.Unlock()
	}
	return nil
}

// forgetLost handles the files a failed Complete could not promote because
// their temporary files are gone (the folder was removed, say): such a file
// is no longer transferred and starts over from byte 0, so Resume fetches
// it again, or Cancel ends the job cleanly. A file whose temporary file is
// still there (a permission error, a directory in the way) stays
// transferred, and Complete can be called again once the cause is fixed.
func (m *Manager) forgetLost(j *Job, files []*file) {
	for _, f := range files {
		j.mu.Lock()
		ready := f.Transferred && !f.Completed && !f.Stream
		j.mu.Unlock()
		if !ready {
			continue
		}
		if _, err := os.Lstat(f.Temp); err == nil || !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		m.log.Warn("dojob: temporary file of a transferred file is gone; the file starts over", "job", j.id.String(), "file", f.Temp)
		j.mu.Lock()
		f.Transferred = false
		f.Verified = false
		f.emptyLocked()
		j.changedLocked()
		j.mu.Unlock()
	}
}

// discardPartials deletes the temporary files Complete does not keep.
func (m *Manager) discardPartials(j *Job, files []*file) {
	var temps []string
	j.mu.Lock()
	for _, f := range files {
		if !f.Completed && !f.Stream {
			temps = append(temps, f.Temp)
		}
	}
	j.mu.Unlock()
	m.removeTemps(j, temps)
}

// removeTemps deletes temporary files of j; a file already gone is no
// error. Failures are logged and returned together.
func (m *Manager) removeTemps(j *Job, temps []string) error {
	var errs []error
	for _, p := range temps {
		if err := removeIfExists(p); err != nil {
			m.log.Error("dojob: deleting temporary file", "job", j.id.String(), "file", p, "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
