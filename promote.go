package dojob

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// promote renames every transferred, not yet completed file of j over its
// destination and syncs the directories, for Complete. No transfer goroutine
// is running. A rename refused because another program has a file open is
// retried for a while (see inUseWindow). Up to promoteParallel files are
// renamed at once: a job of a thousand small files spends most of Complete
// in the checks and renames of promoteFile, which are independent from
// file to file. Once a rename fails no other starts; the files renamed
// (those before the failure, and any renamed meanwhile) stay renamed and are
// marked Completed, and the failure of the first failing file in the job's
// order is returned as a LOCAL_FILE *JobError.
func (m *Manager) promote(j *Job, files []*file) error {
	var ready []*file
	j.mu.Lock()
	for _, f := range files {
		switch {
		case !f.Transferred || f.Completed:
		case f.Stream:
			// Its bytes are already the caller's: nothing to install.
			f.Completed = true
		default:
			ready = append(ready, f)
		}
	}
	j.mu.Unlock()

	errs := make([]error, len(ready))
	var next atomic.Int64 // index of the next file to rename
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(promoteParallel, len(ready)) {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(ready) {
					return
				}
				f := ready[i]
				if err := retryInUse(m.fs.rename, isInUse, m.fs.inUseWindow, f.Temp, f.Local); err != nil {
					errs[i] = err
					failed.Store(true)
					return
				}
				j.mu.Lock()
				f.Completed = true
				j.mu.Unlock()
			}
		})
	}
	wg.Wait()

	// One change for all the files: the record (saved by Complete once it
	// is done) need not be rewritten after each of them.
	j.mu.Lock()
	j.modified = time.Now()
	j.changedLocked()
	j.mu.Unlock()

	dirs := map[string]bool{}
	var first error
	for i, f := range ready {
		if errs[i] != nil && first == nil {
			e := localPathError(f.Local, errs[i])
			j.mu.Lock()
			fi := f.infoLocked()
			j.mu.Unlock()
			e.File = &fi
			first = e
		}
		if f.Completed {
			dirs[filepath.Dir(f.Local)] = true
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			m.log.Warn("dojob: syncing directory", "dir", d, "err", err)
		}
	}
	return first
}

// promoteParallel is how many files Complete renames at once.
const promoteParallel = 4

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
