package dojob_test

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sha256Of is the Checksum of data.
func sha256Of(data []byte) string {
	s := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(s[:])
}

// version is what a dojobtest server serves at path in version v.
func version(path string, v int, size int64) []byte {
	return dojobtest.Content(fmt.Sprintf("%s#v%d", path, v), size)
}

// TestAddFileSetRejectsBadSpecs: one malformed spec in a set adds none of
// the files, and with a state directory nothing is written.
func TestAddFileSetRejectsBadSpecs(t *testing.T) {
	stateDir, dir := t.TempDir(), t.TempDir()
	m, err := dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()
	j, err := m.CreateJob("set")
	require.NoError(t, err)
	recPath := filepath.Join(stateDir, "jobs", strings.ToLower(strings.Trim(strings.ReplaceAll(j.ID().String(), "-", ""), "{}"))+".json")
	before, err := os.ReadFile(recPath)
	require.NoError(t, err)

	good := func(name string) dojob.FileSpec {
		return dojob.FileSpec{RemoteURL: "https://example.com/" + name, LocalPath: filepath.Join(dir, name)}
	}
	sum := sha256Of([]byte("x"))
	sum512 := sha512.Sum512([]byte("x"))
	for _, tc := range []struct {
		name string
		bad  func(*dojob.FileSpec)
		want dojob.HRESULT
	}{
		{"unknown algorithm", func(s *dojob.FileSpec) { s.Checksum = "md5:" + strings.Repeat("0", 32) }, dojob.ErrInvalidArg},
		{"no algorithm", func(s *dojob.FileSpec) { s.Checksum = strings.TrimPrefix(sum, "sha256:") }, dojob.ErrInvalidArg},
		{"short digest", func(s *dojob.FileSpec) { s.Checksum = sum[:len(sum)-2] }, dojob.ErrInvalidArg},
		{"sha512 length under sha256", func(s *dojob.FileSpec) { s.Checksum = "sha256:" + hex.EncodeToString(sum512[:]) }, dojob.ErrInvalidArg},
		{"not hex", func(s *dojob.FileSpec) { s.Checksum = "sha256:" + strings.Repeat("g", 64) }, dojob.ErrInvalidArg},
		{"negative size", func(s *dojob.FileSpec) { s.Size = -1 }, dojob.ErrInvalidArg},
		{"ftp mirror", func(s *dojob.FileSpec) { s.Mirrors = []string{"ftp://example.com/b"} }, dojob.ErrInvalidArg},
		{"long mirror", func(s *dojob.FileSpec) { s.Mirrors = []string{"https://example.com/" + strings.Repeat("m", 2200)} }, dojob.ErrInvalidArg},
		{"relative path", func(s *dojob.FileSpec) { s.LocalPath = "b" }, dojob.ErrInvalidArg},
		{"same path twice", func(s *dojob.FileSpec) { s.LocalPath = filepath.Join(dir, "a") }, dojob.ErrInvalidArg},
		{"empty ranges", func(s *dojob.FileSpec) { s.Ranges = []dojob.FileRange{} }, dojob.ErrInvalidArg},
		{"overlapping ranges", func(s *dojob.FileSpec) { s.Ranges = []dojob.FileRange{{0, 10}, {5, 10}} }, dojob.ErrOverlappingRanges},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := good("b")
			tc.bad(&b)
			err := j.AddFileSet([]dojob.FileSpec{good("a"), b, good("c")})
			require.ErrorIs(t, err, tc.want)
			assert.Empty(t, j.Files(), "none of the files is added")
			after, err := os.ReadFile(recPath)
			require.NoError(t, err)
			assert.Equal(t, string(before), string(after), "nothing is persisted")
		})
	}
	require.ErrorIs(t, j.AddFileSet(nil), dojob.ErrInvalidArg)

	// A file already in the job: the whole set is refused.
	require.NoError(t, j.AddFile("https://example.com/a", filepath.Join(dir, "a")))
	require.ErrorIs(t, j.AddFileSet([]dojob.FileSpec{good("z"), good("a")}), dojob.ErrInvalidArg)
	require.Len(t, j.Files(), 1)
}

// TestAddFileSetPersists: a valid set is added in order with its
// verification fields, which survive a restart of the Manager.
func TestAddFileSetPersists(t *testing.T) {
	stateDir, dir := t.TempDir(), t.TempDir()
	m, err := dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.NoError(t, err)
	j, err := m.CreateJob("set")
	require.NoError(t, err)
	sum := sha256Of([]byte("a"))
	s512 := sha512.Sum512([]byte("b"))
	specs := []dojob.FileSpec{
		{RemoteURL: "https://example.com/a", LocalPath: filepath.Join(dir, "a"), Size: 1, Checksum: strings.ToUpper(sum[:7]) + sum[7:],
			Mirrors: []string{"https://mirror1.example.com/a", "http://mirror2.example.com/a"}},
		{RemoteURL: "https://example.com/b", LocalPath: filepath.Join(dir, "b"), Checksum: "sha512:" + strings.ToUpper(hex.EncodeToString(s512[:]))},
		{RemoteURL: "https://example.com/c", LocalPath: filepath.Join(dir, "c"), Ranges: []dojob.FileRange{{Offset: 10, Length: 5}}},
	}
	require.NoError(t, j.AddFileSet(specs))
	check := func(files []dojob.FileInfo) {
		t.Helper()
		require.Len(t, files, 3)
		assert.Equal(t, sum, files[0].Checksum, "lower case")
		assert.Equal(t, int64(1), files[0].ExpectedSize)
		assert.Equal(t, specs[0].Mirrors, files[0].Mirrors)
		assert.Equal(t, "sha512:"+hex.EncodeToString(s512[:]), files[1].Checksum)
		assert.Equal(t, []dojob.FileRange{{Offset: 10, Length: 5}}, files[2].Ranges)
		assert.Equal(t, int64(5), files[2].BytesTotal)
		for i, f := range files {
			assert.Equal(t, specs[i].LocalPath, f.LocalPath)
			assert.False(t, f.Verified)
			assert.Equal(t, dir, filepath.Dir(f.TemporaryName))
			assert.True(t, strings.HasPrefix(filepath.Base(f.TemporaryName), ".dojob-"), f.TemporaryName)
		}
	}
	check(j.Files())
	require.NoError(t, m.Close())
	m2, err := dojob.NewManager(dojob.Config{StateDir: stateDir})
	require.NoError(t, err)
	defer func() { require.NoError(t, m2.Close()) }()
	k, err := m2.Job(j.ID())
	require.NoError(t, err)
	check(k.Files())
}

// TestChecksumMismatch: a file whose digest differs sends the job to ERROR
// with ErrValidationFailed (REMOTE_FILE) once, never to TRANSFERRED; its
// data is discarded, Complete installs nothing, and once the server serves
// the right file Resume downloads it again from byte 0 and succeeds.
func TestChecksumMismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 100 << 10
		// Request 0 gets version 0 (the wrong file); request 1 version 1.
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.Script(dojobtest.OK(), dojobtest.ChangeContent()))
		j, err := r.m.CreateJob("verify")
		require.NoError(t, err)
		want := version("/f", 1, size)
		require.NoError(t, j.AddFileSet([]dojob.FileSpec{{RemoteURL: r.tr.FileURL("/f"), LocalPath: r.local("/f"), Checksum: sha256Of(want), Size: size}}))
		rec := dojobtest.NewRecorder()
		require.NoError(t, j.SetNotifyFlags(dojob.NotifyJobTransferred|dojob.NotifyJobError|dojob.NotifyFileTransferred))
		require.NoError(t, j.SetNotifyInterface(rec))

		require.Equal(t, dojob.StateError, resumeWait(t, j))
		jerr := mustJobError(t, j)
		assert.Equal(t, dojob.ErrValidationFailed, jerr.Code)
		assert.Equal(t, dojob.ErrorContextRemoteFile, jerr.Context)
		require.NotNil(t, jerr.File)
		assert.Equal(t, int64(0), jerr.File.BytesTransferred)
		fi := j.Files()[0]
		assert.Equal(t, int64(0), fi.BytesTransferred, "the data is discarded")
		assert.False(t, fi.Transferred)
		assert.False(t, fi.Verified)
		st, err := os.Stat(fi.TemporaryName)
		if err == nil {
			assert.Zero(t, st.Size(), "the temporary file holds nothing")
		}
		synctest.Wait()
		assert.Equal(t, 1, rec.Count(dojobtest.EventError))
		assert.Zero(t, rec.Count(dojobtest.EventTransferred))
		assert.Zero(t, rec.Count(dojobtest.EventFileTransferred))

		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		reqs := r.tr.RequestsFor("/f")
		require.Len(t, reqs, 2)
		assert.Empty(t, reqs[1].Range, "downloaded again from byte 0")
		fi = j.Files()[0]
		assert.True(t, fi.Verified)
		assert.True(t, fi.Transferred)
		require.NoError(t, j.Complete())
		r.requireFile("/f")
		synctest.Wait()
		assert.Equal(t, 1, rec.Count(dojobtest.EventError), "JobError fired once")
		assert.Equal(t, 1, rec.Count(dojobtest.EventTransferred))
	})
}

// TestCompleteNeverInstallsAFailedFile: Complete on a job in ERROR after a
// mismatch installs the verified file before it and not the failed one.
func TestCompleteNeverInstallsAFailedFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 8 << 10
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size))
		j, err := r.m.CreateJob("verify")
		require.NoError(t, err)
		require.NoError(t, j.AddFileSet([]dojob.FileSpec{
			{RemoteURL: r.tr.FileURL("/good"), LocalPath: r.local("/good"), Checksum: sha256Of(version("/good", 0, size))},
			{RemoteURL: r.tr.FileURL("/bad"), LocalPath: r.local("/bad"), Checksum: sha256Of([]byte("something else"))},
		}))
		require.Equal(t, dojob.StateError, resumeWait(t, j))
		assert.Equal(t, dojob.ErrValidationFailed, mustJobError(t, j).Code)
		require.NoError(t, j.Complete())
		r.requireFile("/good")
		_, err = os.Stat(r.local("/bad"))
		assert.ErrorIs(t, err, os.ErrNotExist, "the file that failed its check is not installed")
		assert.Empty(t, tempFiles(t, r.dir))
	})
}

// TestChecksumVariants: sha512, a ranged file (the digest is of the bytes
// the ranges give), and a file whose body comes in several responses.
func TestChecksumVariants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 64 << 10
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size),
			dojobtest.ScriptFor("/dropped", dojobtest.DropAfter(10000), dojobtest.DropAfter(20000)))
		content := version("/f", 0, size)
		s512 := sha512.Sum512(content)
		ranged := append(append([]byte(nil), content[1000:2000]...), content[100:200]...)
		j, err := r.m.CreateJob("verify")
		require.NoError(t, err)
		require.NoError(t, j.AddFileSet([]dojob.FileSpec{
			{RemoteURL: r.tr.FileURL("/f"), LocalPath: r.local("/f"), Checksum: "sha512:" + hex.EncodeToString(s512[:])},
			{RemoteURL: r.tr.FileURL("/f"), LocalPath: r.local("/ranged"), Size: size, Checksum: sha256Of(ranged),
				Ranges: []dojob.FileRange{{Offset: 1000, Length: 1000}, {Offset: 100, Length: 100}}},
			{RemoteURL: r.tr.FileURL("/dropped"), LocalPath: r.local("/dropped"), Size: size, Checksum: sha256Of(version("/dropped", 0, size))},
		}))
		require.NoError(t, j.Resume())
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		st, err := j.Wait(ctx)
		require.NoError(t, err)
		require.Equal(t, dojob.StateTransferred, st)
		for _, fi := range j.Files() {
			assert.True(t, fi.Verified, fi.LocalPath)
		}
		assert.Len(t, r.tr.RequestsFor("/dropped"), 3, "resumed twice")
		assert.Zero(t, dojob.Rehashes(r.m), "a resume continues the digest")
		require.NoError(t, j.Complete())
		r.requireFile("/f")
		r.requireFile("/dropped")
		got, err := os.ReadFile(r.local("/ranged"))
		require.NoError(t, err)
		assert.Equal(t, ranged, got)
	})
}

// TestExpectedSizeMismatch: a response announcing another size than
// FileSpec.Size fails at its headers — no temporary file, no byte — with
// ErrValidationFailed, a fatal ERROR; a body without Content-Length that
// ends at another size fails when it ends, its data discarded.
func TestExpectedSizeMismatch(t *testing.T) {
	const size = 8 << 10
	for _, tc := range []struct {
		name   string
		opts   []dojobtest.Option
		noTemp bool
	}{
		{"200 with Content-Length", nil, true},
		{"206 to a ranged file", nil, true},
		{"no Content-Length", []dojobtest.Option{dojobtest.WithoutContentLength()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, dojob.Config{}, append([]dojobtest.Option{dojobtest.WithSize(size)}, tc.opts...)...)
				j, err := r.m.CreateJob("size")
				require.NoError(t, err)
				spec := dojob.FileSpec{RemoteURL: r.tr.FileURL("/f"), LocalPath: r.local("/f"), Size: size + 1}
				if strings.Contains(tc.name, "ranged") {
					spec.Ranges = []dojob.FileRange{{Offset: 100, Length: 100}}
				}
				require.NoError(t, j.AddFileSet([]dojob.FileSpec{spec}))
				require.Equal(t, dojob.StateError, resumeWait(t, j))
				jerr := mustJobError(t, j)
				assert.Equal(t, dojob.ErrValidationFailed, jerr.Code)
				assert.Equal(t, dojob.ErrorContextRemoteFile, jerr.Context)
				assert.Equal(t, int64(0), j.Files()[0].BytesTransferred)
				if tc.noTemp {
					assert.Empty(t, tempFiles(t, r.dir), "not a byte written")
				}
				require.Len(t, r.tr.RequestsFor("/f"), 1, "fatal: no retry")
				require.NoError(t, j.Complete())
				_, err = os.Stat(r.local("/f"))
				assert.ErrorIs(t, err, os.ErrNotExist)
			})
		})
	}
}

// editRecordFiles rewrites the files of the one job record in stateDir.
func editRecordFiles(t *testing.T, stateDir string, edit func(f map[string]any)) {
	t.Helper()
	jobs := filepath.Join(stateDir, "jobs")
	names := dirEntries(t, jobs)
	require.Len(t, names, 1)
	path := filepath.Join(jobs, names[0])
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var rec map[string]any
	require.NoError(t, json.Unmarshal(data, &rec))
	for _, f := range rec["files"].([]any) {
		edit(f.(map[string]any))
	}
	data, err = json.Marshal(rec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// TestDigestSurvivesRestart: a transfer stopped mid-file by a Manager
// restart resumes its digest from the record, without reading the
// temporary file again; with the saved state missing or damaged the file
// is hashed once from disk, and the result is right either way.
func TestDigestSurvivesRestart(t *testing.T) {
	const size = 64 << 10
	for _, tc := range []struct {
		name     string
		edit     func(f map[string]any)
		rehashes int64
	}{
		{"saved state", nil, 0},
		{"state missing", func(f map[string]any) { delete(f, "hash_state") }, 1},
		{"state damaged", func(f map[string]any) { f["hash_state"] = "AAAA" }, 1},
		{"state of other bytes", func(f map[string]any) { f["hash_len"] = 100 }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stateDir, dir := t.TempDir(), t.TempDir()
				tr1 := dojobtest.NewTransport(dojobtest.WithSize(size), dojobtest.Script(dojobtest.DropAfter(48<<10)),
					dojobtest.Always(dojobtest.StallHeaders()))
				defer tr1.Close()
				m, err := dojob.NewManager(dojob.Config{StateDir: stateDir, HTTPClient: tr1.Client()})
				require.NoError(t, err)
				j, err := m.CreateJob("digest")
				require.NoError(t, err)
				sum := sha256Of(version("/f", 0, size))
				require.NoError(t, j.AddFileSet([]dojob.FileSpec{{RemoteURL: tr1.FileURL("/f"), LocalPath: filepath.Join(dir, "f"), Checksum: sum}}))
				require.NoError(t, j.Resume())
				_, err = tr1.AwaitRequests(t.Context(), func(rs []dojobtest.Request) bool { return len(rs) == 1 && !rs[0].End.IsZero() })
				require.NoError(t, err)
				synctest.Wait()
				require.Equal(t, dojob.StateTransientError, j.State())
				require.Equal(t, int64(48<<10), j.Files()[0].BytesTransferred)
				require.NoError(t, m.Close())
				if tc.edit != nil {
					editRecordFiles(t, stateDir, tc.edit)
				}

				tr2 := dojobtest.NewTransport(dojobtest.WithSize(size))
				defer tr2.Close()
				m2, err := dojob.NewManager(dojob.Config{StateDir: stateDir, HTTPClient: tr2.Client()})
				require.NoError(t, err)
				defer func() { require.NoError(t, m2.Close()) }()
				k, err := m2.Job(j.ID())
				require.NoError(t, err)
				require.NoError(t, k.Resume())
				st, err := k.Wait(t.Context())
				require.NoError(t, err)
				require.Equal(t, dojob.StateTransferred, st)
				reqs := tr2.RequestsFor("/f")
				require.Len(t, reqs, 1)
				assert.Equal(t, fmt.Sprintf("bytes=%d-", 48<<10), reqs[0].Range, "resumed")
				assert.Equal(t, tc.rehashes, dojob.Rehashes(m2), "temporary files read from disk")
				assert.True(t, k.Files()[0].Verified)
				require.NoError(t, k.Complete())
				assert.Equal(t, strings.TrimPrefix(sum, "sha256:"), fileSHA256(t, filepath.Join(dir, "f")))
			})
		})
	}
}

// TestDigestAcrossSuspendResume: Suspend mid-file and Resume continue the
// digest in memory: nothing is read back, and the file verifies.
func TestDigestAcrossSuspendResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 64 << 10
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size), dojobtest.Script(dojobtest.StallAfter(20000)))
		j, err := r.m.CreateJob("digest")
		require.NoError(t, err)
		require.NoError(t, j.AddFileSet([]dojob.FileSpec{{RemoteURL: r.tr.FileURL("/f"), LocalPath: r.local("/f"), Checksum: sha256Of(version("/f", 0, size))}}))
		require.NoError(t, j.Resume())
		synctest.Wait()
		require.Equal(t, dojob.StateTransferring, j.State())
		require.NoError(t, j.Suspend())
		require.Equal(t, int64(20000), j.Files()[0].BytesTransferred)
		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		reqs := r.tr.RequestsFor("/f")
		require.Len(t, reqs, 2)
		assert.Equal(t, "bytes=20000-", reqs[1].Range)
		assert.Zero(t, dojob.Rehashes(r.m))
		assert.True(t, j.Files()[0].Verified)
		require.NoError(t, j.Complete())
		r.requireFile("/f")
	})
}

// TestSetValidationState: the argument and state checks, a file accepted,
// and a file rejected from FileTransferred after checking its temporary
// file: the job goes to ERROR once (never TRANSFERRED), the file's data is
// discarded, and Resume downloads it again.
func TestSetValidationState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 8 << 10
		r := newRig(t, dojob.Config{}, dojobtest.WithSize(size))
		j := r.job("validate", "/a", "/b")
		assert.ErrorIs(t, j.SetValidationState(2, true), dojob.ErrInvalidArg)
		assert.ErrorIs(t, j.SetValidationState(-1, false), dojob.ErrInvalidArg)
		assert.ErrorIs(t, j.SetValidationState(0, true), dojob.ErrInvalidState, "not transferred")

		rejected := 0
		var tempSeen string
		rec := dojobtest.NewRecorder()
		cb := fileCheck{rec, func(k *dojob.Job, fi dojob.FileInfo) error {
			if fi.LocalPath != r.local("/a") {
				return nil
			}
			// The caller's own check reads the temporary file.
			tempSeen = fileSHA256(t, fi.TemporaryName)
			if rejected == 0 {
				rejected++
				return k.SetValidationState(0, false)
			}
			return k.SetValidationState(0, true)
		}}
		require.NoError(t, j.SetNotifyFlags(dojob.NotifyJobTransferred|dojob.NotifyJobError|dojob.NotifyFileTransferred))
		require.NoError(t, j.SetNotifyInterface(cb))
		require.NoError(t, j.Resume())
		synctest.Wait()
		require.Equal(t, dojob.StateError, j.State())
		assert.Equal(t, r.tr.SHA256("/a"), tempSeen, "FileTransferred saw the data in TemporaryName")
		jerr := mustJobError(t, j)
		assert.Equal(t, dojob.ErrValidationFailed, jerr.Code)
		assert.Equal(t, dojob.ErrorContextRemoteFile, jerr.Context)
		require.NotNil(t, jerr.File)
		assert.Equal(t, r.local("/a"), jerr.File.LocalPath)
		fi := j.Files()[0]
		assert.False(t, fi.Transferred)
		assert.Equal(t, int64(0), fi.BytesTransferred)
		assert.Equal(t, 1, rec.Count(dojobtest.EventError))
		assert.Zero(t, rec.Count(dojobtest.EventTransferred))

		require.Equal(t, dojob.StateTransferred, resumeWait(t, j))
		assert.Len(t, r.tr.RequestsFor("/a"), 2, "downloaded again")
		assert.True(t, j.Files()[0].Verified, "accepted by the caller")
		assert.False(t, j.Files()[1].Verified, "no checksum, not checked")
		assert.Equal(t, 1, rec.Count(dojobtest.EventTransferred))
		assert.Equal(t, 1, rec.Count(dojobtest.EventError))

		// Rejected in TRANSFERRED: ERROR; Complete installs only the other.
		require.NoError(t, j.SetValidationState(1, false))
		require.Equal(t, dojob.StateError, j.State())
		require.NoError(t, j.Complete())
		r.requireFile("/a")
		_, err := os.Stat(r.local("/b"))
		assert.ErrorIs(t, err, os.ErrNotExist)
		assert.ErrorIs(t, j.SetValidationState(0, true), dojob.ErrInvalidState, "final state")
	})
}

// fileCheck is a Recorder whose FileTransferred runs check instead.
type fileCheck struct {
	*dojobtest.Recorder
	check func(*dojob.Job, dojob.FileInfo) error
}

func (c fileCheck) FileTransferred(j *dojob.Job, fi dojob.FileInfo) error { return c.check(j, fi) }

// BenchmarkAddFileSet builds a job with a state directory two ways: one
// AddFileSet of 10,000 files (one durable write), and — the baseline —
// 1,500 AddFile calls (a durable write each, of a growing record).
func BenchmarkAddFileSet(b *testing.B) {
	run := func(b *testing.B, n int, add func(j *dojob.Job, specs []dojob.FileSpec) error) {
		dir := b.TempDir()
		specs := make([]dojob.FileSpec, n)
		for i := range specs {
			specs[i] = dojob.FileSpec{
				RemoteURL: fmt.Sprintf("https://example.com/files/%d.bin", i),
				LocalPath: filepath.Join(dir, fmt.Sprintf("%d.bin", i)),
				Checksum:  sha256Of([]byte{byte(i)}),
			}
		}
		for b.Loop() {
			b.StopTimer()
			m, err := dojob.NewManager(dojob.Config{StateDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			j, err := m.CreateJob("many")
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := add(j, specs); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if len(j.Files()) != n {
				b.Fatalf("%d files", len(j.Files()))
			}
			if err := m.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.Run("AddFileSet=10000", func(b *testing.B) {
		run(b, 10000, func(j *dojob.Job, specs []dojob.FileSpec) error { return j.AddFileSet(specs) })
	})
	b.Run("AddFile=1500", func(b *testing.B) {
		run(b, 1500, func(j *dojob.Job, specs []dojob.FileSpec) error {
			for _, s := range specs {
				if err := j.AddFile(s.RemoteURL, s.LocalPath); err != nil {
					return err
				}
			}
			return nil
		})
	})
}
