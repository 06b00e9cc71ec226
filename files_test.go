package dojob_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tempPath is where dojob keeps the temporary file of j's file number i,
// whose destination is in dir.
func tempPath(j *dojob.Job, dir string, i int) string {
	id := strings.ToLower(strings.NewReplacer("{", "", "}", "", "-", "").Replace(j.ID().String()))
	return filepath.Join(dir, ".dojob-"+id+"-"+strconv.Itoa(i)+".tmp")
}

// victim is a file outside the download folder that a planted hard link
// points to; check asserts it was not touched.
type victim struct {
	path string
	sum  string
	mode os.FileMode
}

func newVictim(t *testing.T, size int) victim {
	t.Helper()
	p := filepath.Join(t.TempDir(), "precious")
	require.NoError(t, os.WriteFile(p, []byte(rand.Text()+strings.Repeat("x", size)), 0o600))
	require.NoError(t, os.Chmod(p, 0o640))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return victim{path: p, sum: fileSHA256(t, p), mode: fi.Mode()}
}

func (v victim) check(t *testing.T) {
	t.Helper()
	assert.Equal(t, v.sum, fileSHA256(t, v.path), "the linked file's content is untouched")
	fi, err := os.Stat(v.path)
	require.NoError(t, err)
	assert.Equal(t, v.mode, fi.Mode(), "the linked file's mode is untouched")
}

// requireAccessDenied checks that j ended in ERROR with a LOCAL_FILE
// E_ACCESSDENIED.
func requireAccessDenied(t *testing.T, j *dojob.Job) {
	t.Helper()
	jerr, err := j.Error()
	require.NoError(t, err)
	assert.Equal(t, dojob.ErrAccessDenied, jerr.Code, "%v", jerr)
	assert.Equal(t, dojob.ErrorContextLocalFile, jerr.Context)
	assert.False(t, jerr.Transient())
}

// TestHardLinkAtFreshTempRefused: a hard link planted where a new
// temporary file will be created is neither written through nor removed;
// the job fails with LOCAL_FILE E_ACCESSDENIED.
func TestHardLinkAtFreshTempRefused(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(64<<10))
	v := newVictim(t, 1000)
	j, _ := r.job("/f")
	require.NoError(t, os.Link(v.path, tempPath(j, r.dir, 0)))
	require.Equal(t, dojob.StateError, r.run(j))
	requireAccessDenied(t, j)
	v.check(t)
	require.NoError(t, j.Cancel())
	v.check(t)
}

// TestStaleLeftoverTempReplaced: a leftover temporary file of ours (a
// regular file with one link) where a fresh one must be created is
// replaced, and the download is right.
func TestStaleLeftoverTempReplaced(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(64<<10))
	j, _ := r.job("/f")
	require.NoError(t, os.WriteFile(tempPath(j, r.dir, 0), bytes.Repeat([]byte{0xAA}, 100<<10), 0o600))
	require.Equal(t, dojob.StateTransferred, r.run(j))
	r.complete(j, "/f")
}

// TestSymlinkAtFreshTempRefused: a symbolic link planted at the temporary
// path is refused the same way.
func TestSymlinkAtFreshTempRefused(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(64<<10))
	v := newVictim(t, 1000)
	j, _ := r.job("/f")
	symlinkOrSkip(t, v.path, tempPath(j, r.dir, 0))
	require.Equal(t, dojob.StateError, r.run(j))
	requireAccessDenied(t, j)
	v.check(t)
}

// TestHardLinkAtPromoteRefused: a temporary file swapped for a hard link
// after the transfer is not chmod-ed nor renamed by Complete.
func TestHardLinkAtPromoteRefused(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(64<<10))
	v := newVictim(t, 1000)
	j, _ := r.job("/f")
	require.Equal(t, dojob.StateTransferred, r.run(j))
	tmp := tempPath(j, r.dir, 0)
	require.NoError(t, os.Remove(tmp))
	require.NoError(t, os.Link(v.path, tmp))
	err := j.Complete()
	var jerr *dojob.JobError
	require.ErrorAs(t, err, &jerr)
	assert.Equal(t, dojob.ErrAccessDenied, jerr.Code)
	assert.Equal(t, dojob.ErrorContextLocalFile, jerr.Context)
	assert.Equal(t, dojob.StateTransferred, j.State())
	v.check(t)
	_, err = os.Lstat(r.local("/f"))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing appears at the destination")
	require.NoError(t, j.Cancel())
	v.check(t)
}

// TestConcurrentCompletesLastRenameWins: two jobs whose files go to the
// same destination are completed at once, and the second one's rename lands
// between the first one's rename and its check of the destination. That is
// a legitimate replacement, not a planted file: both jobs end ACKNOWLEDGED,
// the destination holds the bytes of the last rename (the second job's),
// mode 0644, and no temporary file is left.
func TestConcurrentCompletesLastRenameWins(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(64<<10))
	dest := r.local("/f")
	newJob := func(url string) *dojob.Job {
		j, err := r.m.CreateJob(url)
		require.NoError(t, err)
		require.NoError(t, j.AddFile(r.s.FileURL(url), dest))
		return j
	}
	first, second := newJob("/a"), newJob("/b")
	require.NotEqual(t, r.s.SHA256("/a"), r.s.SHA256("/b"))
	require.Equal(t, dojob.StateTransferred, r.run(first))
	require.Equal(t, dojob.StateTransferred, r.run(second))
	_, err := os.Lstat(dest)
	require.ErrorIs(t, err, fs.ErrNotExist, "nothing at the destination before Complete")

	firstTemp := tempPath(first, r.dir, 0)
	renamed, secondDone := make(chan struct{}), make(chan struct{})
	dojob.PausePromote(r.m, func(step, from, _ string) {
		if step == "renamed" && from == firstTemp {
			close(renamed)
			<-secondDone
		}
	})
	firstErr := make(chan error, 1)
	go func() { firstErr <- first.Complete() }()
	<-renamed // the first file is at the destination, not yet checked there
	secondErr := second.Complete()
	close(secondDone)
	require.NoError(t, secondErr)
	require.NoError(t, <-firstErr)

	assert.Equal(t, dojob.StateAcknowledged, first.State())
	assert.Equal(t, dojob.StateAcknowledged, second.State())
	assert.Equal(t, r.s.SHA256("/b"), fileSHA256(t, dest), "the last rename wins")
	assert.Equal(t, []string{"f"}, dirEntries(t, r.dir), "no temporary file left")
	if runtime.GOOS != "windows" {
		fi, err := os.Lstat(dest)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o644), fi.Mode())
	}
}

// TestLinkSwappedInAtCompleteRefused: a hard or symbolic link to another
// file swapped in at the temporary path while Complete renames it is
// refused with LOCAL_FILE E_ACCESSDENIED and the linked file is untouched.
// Swapped in before Complete, or — for a temporary file still 0600, which
// Complete chmod-s through a descriptor (one left by an earlier version) —
// after the file was checked and closed, it is caught by the check by name
// before the rename: nothing appears at the destination. Swapped in in the
// instant after the last check, it is renamed to the destination and caught
// there. Either way Cancel then ends the job.
func TestLinkSwappedInAtCompleteRefused(t *testing.T) {
	for _, link := range []string{"hard", "symbolic"} {
		for _, step := range []string{"before", "closed", "rename"} {
			t.Run(link+"/"+step, func(t *testing.T) {
				r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(64<<10))
				v := newVictim(t, 1000)
				j, _ := r.job("/f")
				require.Equal(t, dojob.StateTransferred, r.run(j))
				tmp := tempPath(j, r.dir, 0)
				if runtime.GOOS != "windows" {
					fi, err := os.Lstat(tmp)
					require.NoError(t, err)
					assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm(), "the transfer gave the finished mode")
				}
				if link == "symbolic" {
					probe := filepath.Join(r.dir, "probe")
					symlinkOrSkip(t, v.path, probe)
					require.NoError(t, os.Remove(probe))
				}
				swap := func() {
					require.NoError(t, os.Remove(tmp))
					if link == "hard" {
						require.NoError(t, os.Link(v.path, tmp))
					} else {
						require.NoError(t, os.Symlink(v.path, tmp))
					}
				}
				swapped := false
				switch step {
				case "before":
					swap()
					swapped = true
				case "closed":
					require.NoError(t, os.Chmod(tmp, 0o600))
				}
				dojob.PausePromote(r.m, func(at, from, _ string) {
					if at == step && from == tmp {
						swap()
						swapped = true
					}
				})
				err := j.Complete()
				require.True(t, swapped, "Complete passed step %q", step)
				var jerr *dojob.JobError
				require.ErrorAs(t, err, &jerr)
				assert.Equal(t, dojob.ErrAccessDenied, jerr.Code, "%v", jerr)
				assert.Equal(t, dojob.ErrorContextLocalFile, jerr.Context)
				assert.Equal(t, dojob.StateTransferred, j.State())
				v.check(t)
				if step != "rename" {
					_, err = os.Lstat(r.local("/f"))
					assert.ErrorIs(t, err, fs.ErrNotExist, "nothing appears at the destination")
				} else {
					vi, err := os.Stat(v.path)
					require.NoError(t, err)
					di, err := os.Stat(r.local("/f"))
					require.NoError(t, err)
					assert.True(t, os.SameFile(vi, di), "the link swapped in was renamed there")
				}
				require.NoError(t, j.Cancel())
				v.check(t)
				assert.Empty(t, tempFiles(t, r.dir))
			})
		}
	}
}

// suspended is a job of one file stopped half-way: its Manager's config,
// the Manager, the job, the Transport, the destination folder and the bytes
// recorded.
type suspended struct {
	cfg  dojob.Config
	m    *dojob.Manager
	j    *dojob.Job
	tr   *dojobtest.Transport
	dir  string
	have int64
}

const suspendSize = 256 << 10

// suspendMidFile runs a job of one 256 KiB file, inside a synctest bubble,
// until about half of it is in the temporary file, then suspends it.
func suspendMidFile(t *testing.T, stateDir string) *suspended {
	t.Helper()
	s := &suspended{dir: t.TempDir()}
	s.tr = dojobtest.NewTransport(dojobtest.WithSize(suspendSize), dojobtest.Script(dojobtest.Drip(suspendSize), dojobtest.OK()))
	t.Cleanup(s.tr.Close)
	s.cfg = dojob.Config{StateDir: stateDir, HTTPClient: s.tr.Client(), CheckpointInterval: time.Hour}
	var err error
	s.m, err = dojob.NewManager(s.cfg)
	require.NoError(t, err)
	s.j, err = s.m.CreateJob("suspended")
	require.NoError(t, err)
	require.NoError(t, s.j.AddFile(s.tr.FileURL("/f"), filepath.Join(s.dir, "f")))
	require.NoError(t, s.j.Resume())
	_, err = s.tr.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool { return len(rs) == 1 && rs[0].BodyBytes >= suspendSize/2 })
	require.NoError(t, err)
	require.NoError(t, s.j.Suspend())
	synctest.Wait()
	s.have = s.j.Progress().BytesTransferred
	require.Greater(t, s.have, int64(0))
	return s
}

// TestLostTempStartsOver: a temporary file deleted or truncated while its
// job was suspended is never padded with zeros: the file starts over from
// byte 0 (a request without Range) and the result is right — in the same
// Manager, and after a restart from the state directory.
func TestLostTempStartsOver(t *testing.T) {
	damage := map[string]func(t *testing.T, p string){
		"deleted": func(t *testing.T, p string) { require.NoError(t, os.Remove(p)) },
		"truncated": func(t *testing.T, p string) {
			require.NoError(t, os.Truncate(p, 1000))
		},
	}
	for name, hurt := range damage {
		for _, reload := range []bool{false, true} {
			t.Run(name+"/reload="+strconv.FormatBool(reload), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					stateDir := ""
					if reload {
						stateDir = t.TempDir()
					}
					s := suspendMidFile(t, stateDir)
					j, m := s.j, s.m
					if reload {
						require.NoError(t, m.Close())
					}
					hurt(t, tempPath(j, s.dir, 0))
					if reload {
						var err error
						m, err = dojob.NewManager(s.cfg)
						require.NoError(t, err)
						j, err = m.Job(s.j.ID())
						require.NoError(t, err)
					}
					defer m.Close()
					require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
					reqs := s.tr.RequestsFor("/f")
					require.Len(t, reqs, 2)
					if !reload || name == "deleted" {
						// (A restart resumes a truncated file from what it
						// holds: the reload's own reconciliation, which
						// also never pads.)
						assert.Equal(t, "", reqs[1].Range, "the file starts over")
					}
					require.NoError(t, j.Complete())
					got, err := os.ReadFile(filepath.Join(s.dir, "f"))
					require.NoError(t, err)
					assert.Equal(t, s.tr.SHA256("/f"), fileSHA256(t, filepath.Join(s.dir, "f")))
					assert.Equal(t, s.tr.Content("/f")[:4096], got[:4096], "no zero padding")
				})
			})
		}
	}
}

// TestHardLinkAtExistingTempRefused: a suspended job's temporary file
// replaced by a hard link to another file is refused on Resume before a
// byte is written or cut.
func TestHardLinkAtExistingTempRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := suspendMidFile(t, "")
		defer s.m.Close()
		v := newVictim(t, int(s.have)+1000) // longer than the record: it would be cut back
		tmp := tempPath(s.j, s.dir, 0)
		require.NoError(t, os.Remove(tmp))
		require.NoError(t, os.Link(v.path, tmp))
		require.Equal(t, dojob.StateError, resumeWait(t, s.j))
		requireAccessDenied(t, s.j)
		v.check(t)
		assert.Len(t, s.tr.RequestsFor("/f"), 1, "no request after the refusal")
	})
}

// TestAddFileNameTooLong: a name longer than the file system allows is
// refused at AddFile.
func TestAddFileNameTooLong(t *testing.T) {
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer m.Close()
	j, err := m.CreateJob("long")
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, j.AddFile("http://127.0.0.1/a", filepath.Join(dir, strings.Repeat("a", 255))))
	err = j.AddFile("http://127.0.0.1/b", filepath.Join(dir, strings.Repeat("b", 256)))
	assert.ErrorIs(t, err, dojob.ErrInvalidArg)
	err = j.AddFile("http://127.0.0.1/c", filepath.Join(dir, strings.Repeat("c", 300), "f"))
	assert.ErrorIs(t, err, dojob.ErrInvalidArg, "a folder name counts too")
	// 128 two-byte characters: 256 bytes but 128 UTF-16 units.
	err = j.AddFile("http://127.0.0.1/d", filepath.Join(dir, strings.Repeat("é", 128)))
	if runtime.GOOS == "windows" {
		assert.NoError(t, err)
	} else {
		assert.ErrorIs(t, err, dojob.ErrInvalidArg)
	}
	assert.Len(t, j.Files(), 1+boolInt(runtime.GOOS == "windows"))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestAddFileSameRealPath: a second file reaching the same real path
// through a symbolic link to a folder is refused.
func TestAddFileSameRealPath(t *testing.T) {
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer m.Close()
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	require.NoError(t, os.Mkdir(real, 0o755))
	alias := filepath.Join(dir, "alias")
	symlinkOrSkip(t, real, alias)
	j, err := m.CreateJob("alias")
	require.NoError(t, err)
	require.NoError(t, j.AddFile("http://127.0.0.1/a", filepath.Join(real, "f")))
	err = j.AddFile("http://127.0.0.1/b", filepath.Join(alias, "f"))
	assert.ErrorIs(t, err, dojob.ErrInvalidArg)
	// Also below a folder that does not exist yet.
	require.NoError(t, j.AddFile("http://127.0.0.1/c", filepath.Join(real, "sub", "g")))
	err = j.AddFile("http://127.0.0.1/d", filepath.Join(alias, "sub", "g"))
	assert.ErrorIs(t, err, dojob.ErrInvalidArg)
	require.NoError(t, j.AddFile("http://127.0.0.1/e", filepath.Join(alias, "other")))
	assert.Len(t, j.Files(), 3)
}

// TestMissingDestinationDirectory: the error names the missing directory,
// not the hidden temporary file, with ERROR_PATH_NOT_FOUND.
func TestMissingDestinationDirectory(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(1000))
	j, err := r.m.CreateJob("missing")
	require.NoError(t, err)
	missing := filepath.Join(r.dir, "nowhere")
	require.NoError(t, j.AddFile(r.s.FileURL("/f"), filepath.Join(missing, "f")))
	require.Equal(t, dojob.StateError, r.run(j))
	jerr, err := j.Error()
	require.NoError(t, err)
	assert.Equal(t, dojob.ErrPathNotFound, jerr.Code)
	assert.Equal(t, dojob.ErrorContextLocalFile, jerr.Context)
	assert.Contains(t, jerr.Error(), "destination directory "+missing+" does not exist")
	assert.NotContains(t, jerr.Error(), ".dojob-")
}

// TestCompleteAfterFolderRemoved: a Complete that fails because the folder
// is gone names the folder and leaves a job that Resume brings back to
// TRANSFERRED (the file is downloaded again) or Cancel ends.
func TestCompleteAfterFolderRemoved(t *testing.T) {
	for _, then := range []string{"resume", "cancel"} {
		t.Run(then, func(t *testing.T) {
			r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(64<<10))
			dir := filepath.Join(r.dir, "sub")
			require.NoError(t, os.Mkdir(dir, 0o755))
			j, err := r.m.CreateJob("removed")
			require.NoError(t, err)
			require.NoError(t, j.AddFile(r.s.FileURL("/f"), filepath.Join(dir, "f")))
			require.Equal(t, dojob.StateTransferred, r.run(j))
			require.NoError(t, os.RemoveAll(dir))

			err = j.Complete()
			var jerr *dojob.JobError
			require.ErrorAs(t, err, &jerr)
			assert.Equal(t, dojob.ErrPathNotFound, jerr.Code)
			assert.Equal(t, dojob.ErrorContextLocalFile, jerr.Context)
			assert.Contains(t, jerr.Error(), dir)
			assert.Equal(t, dojob.StateTransferred, j.State())
			files := j.Files()
			assert.False(t, files[0].Transferred, "the lost file must be fetched again")
			assert.Zero(t, files[0].BytesTransferred)

			switch then {
			case "resume":
				require.NoError(t, os.Mkdir(dir, 0o755))
				require.Equal(t, dojob.StateTransferred, r.run(j))
				require.NoError(t, j.Complete())
				assert.Equal(t, r.s.SHA256("/f"), fileSHA256(t, filepath.Join(dir, "f")))
				assert.Len(t, r.s.RequestsFor("/f"), 2)
			case "cancel":
				require.NoError(t, j.Cancel())
				assert.Equal(t, dojob.StateCancelled, j.State())
				assert.Empty(t, tempFiles(t, r.dir))
			}
		})
	}
}

// TestProgressTotalSaturates: a job's BytesTotal saturates at MaxInt64
// instead of wrapping to a negative number.
func TestProgressTotalSaturates(t *testing.T) {
	m, err := dojob.NewManager(dojob.Config{})
	require.NoError(t, err)
	defer m.Close()
	j, err := m.CreateJob("huge")
	require.NoError(t, err)
	dir := t.TempDir()
	half := []dojob.FileRange{{Offset: 0, Length: math.MaxInt64/2 + 1}}
	require.NoError(t, j.AddFileWithRanges("http://127.0.0.1/a", filepath.Join(dir, "a"), half))
	require.NoError(t, j.AddFileWithRanges("http://127.0.0.1/b", filepath.Join(dir, "b"), half))
	assert.Equal(t, int64(math.MaxInt64), j.Progress().BytesTotal)
	assert.Equal(t, int64(math.MaxInt64/2+1), j.Files()[0].BytesTotal)
}

// symlinkOrSkip makes a symbolic link at link to target, or skips the test
// where no symbolic link can be made: on Windows without the privilege to
// create one (os.Symlink fails), and under Wine 8, which has no reparse
// points at all — its CreateSymbolicLinkW is a stub that reports success
// and makes nothing (os.Symlink succeeds, the link is not there), and it
// refuses the junctions a Windows user could make instead
// (FSCTL_SET_REPARSE_POINT: ERROR_NOT_SUPPORTED).
func symlinkOrSkip(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("symbolic links unavailable: %v", err)
	}
	if _, err := os.Lstat(link); errors.Is(err, fs.ErrNotExist) {
		t.Skip("os.Symlink succeeded but made no link: Wine 8 has no symbolic links (CreateSymbolicLinkW is a stub) nor junctions")
	}
}

// TestCompleteOntoADirectory: a directory that appears at a destination
// after the transfer is left alone: Complete fails with a LOCAL_FILE
// E_ACCESSDENIED (what Windows reports, EISDIR elsewhere) naming the
// destination, the job stays TRANSFERRED with its file kept, and
// once the directory is gone Complete installs the file without fetching it
// again.
func TestCompleteOntoADirectory(t *testing.T) {
	r := newNetRig(t, dojob.Config{}, dojobtest.WithSize(64<<10))
	dst := filepath.Join(r.dir, "f")
	j, err := r.m.CreateJob("onto a directory")
	require.NoError(t, err)
	require.NoError(t, j.AddFile(r.s.FileURL("/f"), dst))
	require.Equal(t, dojob.StateTransferred, r.run(j))
	require.NoError(t, os.Mkdir(dst, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dst, "inside"), []byte("kept"), 0o644))

	err = j.Complete()
	var jerr *dojob.JobError
	require.ErrorAs(t, err, &jerr)
	assert.Equal(t, dojob.ErrorContextLocalFile, jerr.Context)
	assert.Equal(t, dojob.ErrAccessDenied, jerr.Code, "as on Windows")
	assert.Contains(t, jerr.Error(), dst)
	assert.Equal(t, dojob.StateTransferred, j.State())
	assert.True(t, j.Files()[0].Transferred, "the file is kept for the next Complete")
	inside, err := os.ReadFile(filepath.Join(dst, "inside"))
	require.NoError(t, err)
	assert.Equal(t, "kept", string(inside))

	require.NoError(t, os.RemoveAll(dst))
	require.NoError(t, j.Complete())
	assert.Equal(t, dojob.StateAcknowledged, j.State())
	assert.Equal(t, r.s.SHA256("/f"), fileSHA256(t, dst))
	assert.Len(t, r.s.RequestsFor("/f"), 1)
}
