package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wrongSHA256 is a well-formed checksum that no test file has.
var wrongSHA256 = "sha256:" + strings.Repeat("ab", 32)

// sha512Of returns the hex SHA-512 of b.
func sha512Of(b []byte) string {
	sum := sha512.Sum512(b)
	return hex.EncodeToString(sum[:])
}

// getResult parses the JSON that get --json prints.
func getResult(t *testing.T, r result) resultJSON {
	t.Helper()
	var got resultJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	return got
}

func TestGetChecksumRight(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "ok.bin")
	// Upper case is accepted and reported in lower case, as the library
	// keeps it.
	sum := "SHA256:" + strings.ToUpper(s.SHA256("/ok.bin"))

	r := runCmd(t, testCtx(t, 10*time.Second), "--json", "--state-dir", state, "get", "--checksum", sum, "--size", fmt.Sprint(testSize), "-o", dest, s.FileURL("/ok.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, r.stderr)
	assert.Equal(t, s.SHA256("/ok.bin"), fileSHA256(t, dest))
	got := getResult(t, r)
	assert.Equal(t, "ACKNOWLEDGED", got.State)
	require.Len(t, got.Files, 1)
	f := got.Files[0]
	assert.True(t, f.Verified)
	assert.Equal(t, "sha256:"+s.SHA256("/ok.bin"), f.Checksum)
	assert.Equal(t, int64(testSize), f.ExpectedSize)
	assert.Empty(t, f.TemporaryName, "a completed file has no temporary file")
	noTemps(t, dir)
}

// TestGetChecksumWrong: a file whose digest differs fails the job with
// BG_E_VALIDATION_FAILED; nothing is put at the destination and, without
// --keep, the job and its temporary file are gone.
func TestGetChecksumWrong(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "bad.bin")

	r := runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "--checksum", wrongSHA256, "-o", dest, s.FileURL("/bad.bin"))
	assert.Equal(t, exitFail, r.code)
	assert.Equal(t, "dojob: BG_E_VALIDATION_FAILED (0x80200053) [REMOTE_FILE]: "+s.FileURL("/bad.bin")+
		": the file's digest is "+s.SHA256("/bad.bin")+", not the expected "+strings.Repeat("ab", 32)+"\n"+
		"the download for "+dest+" failed its check (expected "+wrongSHA256+"): its data was discarded and nothing was saved there\n"+
		"the job was cancelled; check the checksum or size given, and the URL (--keep keeps a failed job)\n", r.stderr)
	assert.Contains(t, r.stdout, "\nERROR\n")
	assert.NoFileExists(t, dest)
	noTemps(t, dir)
	assert.Len(t, s.RequestsFor("/bad.bin"), 1, "a validation failure is not retried")
	r = runCmd(t, testCtx(t, 10*time.Second), "list", "--state-dir", state)
	assert.Equal(t, "no jobs\n", r.stdout)
}

// TestGetChecksumWrongKeep: with --keep the failed job stays, says how to
// download the file again, and info shows its check.
func TestGetChecksumWrongKeep(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "bad.bin")
	ctx := testCtx(t, 10*time.Second)

	r := runCmd(t, ctx, "--state-dir", state, "get", "--keep", "--checksum", wrongSHA256, "-o", dest, s.FileURL("/bad.bin"))
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "BG_E_VALIDATION_FAILED")
	id := jobID(t, r.stdout)
	assert.Contains(t, r.stderr, "the job is kept; resume downloads the file again: dojob --state-dir "+state+" resume "+id+"\n")
	assert.NoFileExists(t, dest)

	r = runCmd(t, ctx, "--json", "--state-dir", state, "info", id)
	require.Equal(t, exitOK, r.code, r.stderr)
	var info jobJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &info), r.stdout)
	assert.Equal(t, "ERROR", info.State)
	require.NotNil(t, info.Error)
	assert.Equal(t, "BG_E_VALIDATION_FAILED", info.Error.Name)
	require.Len(t, info.Files, 1)
	f := info.Files[0]
	assert.Equal(t, wrongSHA256, f.Checksum)
	assert.False(t, f.Verified)
	assert.Equal(t, int64(0), f.BytesTransferred, "the data was discarded")
	assert.Regexp(t, `^`+regexp.QuoteMeta(dir+string(filepath.Separator))+`\.dojob-[0-9a-f]{32}-0\.tmp$`, f.TemporaryName)

	r = runCmd(t, ctx, "--state-dir", state, "info", id)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "\n     checksum: "+wrongSHA256+"\n     verified: no\n     temporary file: "+f.TemporaryName+"\n")
	assert.Contains(t, r.stdout, "Error:               BG_E_VALIDATION_FAILED")
}

// TestGetChecksumsFile: --checksums FILE in sha256sum/sha512sum format
// checks each file by its destination's base name; one file may mix the
// two algorithms.
func TestGetChecksumsFile(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	sums := filepath.Join(t.TempDir(), "SUMS")
	content := "# made by sha256sum and sha512sum\n" +
		s.SHA256("/a.bin") + "  a.bin\n" +
		"\n" +
		s.SHA256("/other.bin") + "  other.bin\n" + // a line no URL uses is fine
		strings.ToUpper(s.SHA256("/sub/b.bin")) + " *release/b.bin\r\n" + // binary mode, a path, CRLF
		sha512Of(s.Content("/c.iso")) + "  c.iso\n"
	require.NoError(t, os.WriteFile(sums, []byte(content), 0o600))
	args := []string{"--json", "--state-dir", state, "get", "--checksums", sums, "-d", dir}
	for _, p := range []string{"/a.bin", "/sub/b.bin", "/c.iso"} {
		args = append(args, s.FileURL(p))
	}

	r := runCmd(t, testCtx(t, 10*time.Second), args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	got := getResult(t, r)
	require.Len(t, got.Files, 3)
	want := []string{"sha256:" + s.SHA256("/a.bin"), "sha256:" + s.SHA256("/sub/b.bin"), "sha512:" + sha512Of(s.Content("/c.iso"))}
	for i, p := range []string{"/a.bin", "/sub/b.bin", "/c.iso"} {
		assert.Equal(t, s.SHA256(p), fileSHA256(t, filepath.Join(dir, filepath.Base(p))), p)
		assert.True(t, got.Files[i].Verified, p)
		assert.Equal(t, want[i], got.Files[i].Checksum, p)
	}
	noTemps(t, dir)
}

// TestGetVerifyUsageErrors: every mistake in the verification flags is a
// usage error (exit 2) found before anything is requested.
func TestGetVerifyUsageErrors(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	dir := t.TempDir()
	sumsDir := t.TempDir()
	writeSums := func(name, content string) string {
		p := filepath.Join(sumsDir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	good := s.SHA256("/a.bin")
	missing := writeSums("missing", good+"  a.bin\n")
	malformed := writeSums("malformed", good+"  a.bin\n"+good+"\tb.bin\n")
	short := writeSums("short", good+"  a.bin\n"+good[:40]+"  b.bin\n")
	nothex := writeSums("nothex", strings.Repeat("g", 64)+"  a.bin\n")
	twice := writeSums("twice", good+"  x/a.bin\n"+strings.Repeat("0", 64)+"  y/a.bin\n")
	a, b := s.FileURL("/a.bin"), s.FileURL("/b.bin")
	none := filepath.Join(sumsDir, "none")
	_, noneErr := os.Open(none)
	require.Error(t, noneErr)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing line", []string{"--checksums", missing, a, b}, "dojob: get: " + missing + " has no line for b.bin (the destination of " + b + ")\n"},
		{"malformed line", []string{"--checksums", malformed, a, b}, "dojob: get: " + malformed + `, line 2: not "<hex>  <name>" or "<hex> *<name>"` + "\n"},
		{"short digest", []string{"--checksums", short, a, b}, "dojob: get: " + short + ", line 2: a checksum of 40 characters; sha256 has 64 hex digits, sha512 128\n"},
		{"not hex", []string{"--checksums", nothex, a}, "dojob: get: " + nothex + `, line 1: "` + strings.Repeat("g", 64) + `" is not hex` + "\n"},
		{"two checksums", []string{"--checksums", twice, a}, "dojob: get: " + twice + ", lines 1 and 2: two checksums for a.bin\n"},
		{"no such file", []string{"--checksums", none, a}, "dojob: get: --checksums: " + noneErr.Error() + "\n"},
		{"checksum with two URLs", []string{"--checksum", "sha256:" + good, a, b}, "dojob: get: --checksum takes a single URL; use --checksums FILE for several\n"},
		{"size with two URLs", []string{"--size", "5", a, b}, "dojob: get: --size takes a single URL\n"},
		{"both", []string{"--checksum", "sha256:" + good, "--checksums", missing, a}, "dojob: get: --checksum and --checksums exclude each other\n"},
		{"bad algorithm", []string{"--checksum", "md5:" + good[:32], a}, `dojob: get: --checksum: "md5:` + good[:32] + `" is not sha256:HEX or sha512:HEX` + "\n"},
		{"bad length", []string{"--checksum", "sha512:" + good, a}, `dojob: get: --checksum: "sha512:` + good + `" is not 128 hex digits of sha512` + "\n"},
		{"size zero", []string{"--size", "0", a}, `dojob: invalid value "0" for flag -size: --size "0" is not a positive number of bytes` + "\n"},
		{"size not a number", []string{"--size", "1k", a}, `dojob: invalid value "1k" for flag -size: --size "1k" is not a positive number of bytes` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			args := append([]string{"--state-dir", state, "get", "-d", dir}, tc.args...)
			r := runCmd(t, testCtx(t, 10*time.Second), args...)
			assert.Equal(t, exitUsage, r.code)
			assert.Equal(t, tc.want+"Run 'dojob help get' for usage.\n", r.stderr)
			assert.Empty(t, s.Requests(), "nothing is requested")
			ents, err := os.ReadDir(state)
			require.NoError(t, err)
			assert.Empty(t, ents, "the state directory is not opened")
		})
	}
	noTemps(t, dir)
}

// TestGetSizeMismatch: a server that announces another size fails the
// job at the headers of the one request: nothing is written.
func TestGetSizeMismatch(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "s.bin")

	r := runCmd(t, testCtx(t, 10*time.Second), "--state-dir", state, "get", "--size", fmt.Sprint(testSize+1), "-o", dest, s.FileURL("/s.bin"))
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "dojob: BG_E_VALIDATION_FAILED (0x80200053) [REMOTE_FILE]: "+s.FileURL("/s.bin")+": the server announced 262144 bytes, not the expected 262145\n")
	assert.Contains(t, r.stderr, "the download for "+dest+" failed its check (expected 262145 bytes): its data was discarded and nothing was saved there\n")
	assert.Len(t, s.Requests(), 1)
	assert.NoFileExists(t, dest)
	noTemps(t, dir)
}

// TestGetContinuesOnlyTheSameCheck: get continues a job with the same
// URLs and destinations only if it checks them the same way; another
// checksum or size is refused, naming the job and the commands that
// cancel or continue it, before anything is requested.
func TestGetContinuesOnlyTheSameCheck(t *testing.T) {
	s := dojobtest.NewServer(t, dojobtest.WithSize(testSize))
	state, dir := t.TempDir(), t.TempDir()
	dest := filepath.Join(dir, "c.bin")
	sum := "sha256:" + s.SHA256("/c.bin")
	m, err := dojob.NewManager(dojob.Config{StateDir: state})
	require.NoError(t, err)
	j, err := m.CreateJob("c.bin")
	require.NoError(t, err)
	require.NoError(t, j.AddFileSet([]dojob.FileSpec{{RemoteURL: s.FileURL("/c.bin"), LocalPath: dest, Checksum: sum}}))
	id := j.ID().String()
	require.NoError(t, m.Close())
	ctx := testCtx(t, 10*time.Second)

	for _, args := range [][]string{
		{},                                  // no checksum
		{"--checksum", wrongSHA256},         // another checksum
		{"--checksum", sum, "--size", "10"}, // the checksum, and a size
	} {
		args = append([]string{"--state-dir", state, "get", "-o", dest, s.FileURL("/c.bin")}, args...)
		r := runCmd(t, ctx, args...)
		assert.Equal(t, exitFail, r.code)
		assert.Equal(t, "dojob: get: job "+id+" (c.bin) downloads these URLs to these destinations with another checksum or size\n"+
			"cancel it: dojob --state-dir "+state+" cancel "+id+"\n"+
			"or continue it as it is: dojob --state-dir "+state+" resume "+id+"\n", r.stderr)
	}
	assert.Empty(t, s.Requests())

	// The same checksum, in another case, continues it.
	r := runCmd(t, ctx, "--state-dir", state, "get", "-o", dest, "--checksum", strings.ToUpper(sum), s.FileURL("/c.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "continuing job "+id)
	assert.Equal(t, s.SHA256("/c.bin"), fileSHA256(t, dest))
}

// TestSharedGetChecksum: a get through the holder of the state directory
// (a child process) sends its checksum: the holder's job checks it, a
// mismatch is reported as a local run reports it, info through the holder
// shows the check, and a get with another checksum is refused there too.
func TestSharedGetChecksum(t *testing.T) {
	t.Parallel() // seconds of bytes dripping, the CPU idle: it waits beside the others
	s := slowServer(t, 32<<10, "/held.bin")
	state, dir := t.TempDir(), t.TempDir()
	holder, _ := holdGet(t, s, state, filepath.Join(dir, "held.bin"), "/held.bin")
	ctx := testCtx(t, procLimit)

	ok := filepath.Join(dir, "ok.bin")
	r := runCmd(t, ctx, "--json", "get", "--state-dir", state, "--checksum", "sha256:"+s.SHA256("/ok.bin"), "-o", ok, s.FileURL("/ok.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, s.SHA256("/ok.bin"), fileSHA256(t, ok))
	got := getResult(t, r)
	require.Len(t, got.Files, 1)
	assert.True(t, got.Files[0].Verified)
	assert.Equal(t, "sha256:"+s.SHA256("/ok.bin"), got.Files[0].Checksum)

	bad := filepath.Join(dir, "bad.bin")
	r = runCmd(t, ctx, "get", "--state-dir", state, "--keep", "--checksum", wrongSHA256, "-o", bad, s.FileURL("/bad.bin"))
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "dojob: BG_E_VALIDATION_FAILED (0x80200053) [REMOTE_FILE]: "+s.FileURL("/bad.bin")+": the file's digest is "+s.SHA256("/bad.bin"))
	assert.Contains(t, r.stderr, "the download for "+bad+" failed its check (expected "+wrongSHA256+")")
	id := jobID(t, r.stdout)
	assert.Contains(t, r.stderr, "the job is kept; resume downloads the file again: dojob --state-dir "+state+" resume "+id+"\n")
	assert.NoFileExists(t, bad)

	r = runCmd(t, ctx, "--json", "info", id, "--state-dir", state)
	require.Equal(t, exitOK, r.code, r.stderr)
	var info jobJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &info), r.stdout)
	assert.Equal(t, "ERROR", info.State)
	require.Len(t, info.Files, 1)
	assert.Equal(t, wrongSHA256, info.Files[0].Checksum)
	assert.False(t, info.Files[0].Verified)
	assert.Regexp(t, `\.dojob-[0-9a-f]{32}-0\.tmp$`, info.Files[0].TemporaryName)

	r = runCmd(t, ctx, "get", "--state-dir", state, "-o", bad, s.FileURL("/bad.bin"))
	assert.Equal(t, exitFail, r.code)
	assert.Equal(t, "dojob: get: job "+id+" (bad.bin) downloads these URLs to these destinations with another checksum or size\n"+
		"cancel it: dojob --state-dir "+state+" cancel "+id+"\n"+
		"or continue it as it is: dojob --state-dir "+state+" resume "+id+"\n", r.stderr)
	assert.Len(t, s.RequestsFor("/bad.bin"), 1)

	assert.False(t, holder.exited(), "the holder's own get goes on")
	hr := holder.wait()
	require.Equal(t, exitOK, hr.code, hr.stderr)
}

// TestReadChecksumsEscapedName: a line that starts with a backslash has
// an escaped name, as GNU sha256sum writes names with a backslash or a
// newline.
func TestReadChecksumsEscapedName(t *testing.T) {
	sum := sha256.Sum256(nil)
	hexSum := hex.EncodeToString(sum[:])
	p := filepath.Join(t.TempDir(), "SUMS")
	require.NoError(t, os.WriteFile(p, []byte(`\`+hexSum+`  dir/a\\b\nc`+"\n"), 0o600))
	got, err := readChecksums(p)
	require.NoError(t, err)
	assert.Equal(t, map[string]lineSum{"a\\b\nc": {checksum: "sha256:" + hexSum, line: 1}}, got)

	require.NoError(t, os.WriteFile(p, []byte(`\`+hexSum+`  a\x`+"\n"), 0o600))
	_, err = readChecksums(p)
	assert.EqualError(t, err, "get: "+p+`, line 1: unknown escape \x in the name`)
}

func TestHelpGetDocumentsVerification(t *testing.T) {
	r := runCmd(t, testCtx(t, 10*time.Second), "help", "get")
	require.Equal(t, exitOK, r.code)
	for _, flag := range []string{"\n  --checksum ALG:HEX ", "\n  --checksums FILE ", "\n  --size N ", "BG_E_VALIDATION_FAILED"} {
		assert.Contains(t, r.stdout, flag)
	}
}

// TestGetRemoteOlderHolder: a holder from before checksums ignores the
// fields and answers with a job that does not check its file; the client
// cancels that job and fails rather than download unchecked.
func TestGetRemoteOlderHolder(t *testing.T) {
	client, holder := net.Pipe()
	cl := &ctlClient{conn: client, r: bufio.NewReader(client)}
	defer cl.close()
	id := dojob.JobID{1, 2, 3}
	reqs := make(chan ctlRequest, 2)
	served := make(chan struct{})
	go func() {
		defer close(served)
		defer holder.Close()
		r, enc := bufio.NewReader(holder), json.NewEncoder(holder)
		for range 2 {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			var req ctlRequest
			if json.Unmarshal(line, &req) != nil {
				return
			}
			reqs <- req
			// The job as an older holder makes it: no checksum.
			snap := jobSnapshot{JobID: id, Name: "f.bin", St: dojob.StateQueued,
				FileList: []dojob.FileInfo{{RemoteURL: "http://127.0.0.1:1/f.bin", LocalPath: "/tmp/f.bin"}}}
			if enc.Encode(ctlResponse{Job: &snap}) != nil {
				return
			}
		}
	}()
	var out, errb bytes.Buffer
	c := &cli{ctx: testCtx(t, 10*time.Second), stdout: &out, stderr: &errb, opts: options{prog: "dojob"}}
	specs := []fileSpec{{url: "http://127.0.0.1:1/f.bin", path: "/tmp/f.bin", checksum: wrongSHA256}}
	var jf jobFlags
	jf.set = map[string]bool{}
	code, err := c.getRemote(cl, specs, &jf, true)
	cl.close() // ends the fake holder if it still waits for a request
	<-served
	require.NoError(t, err)
	assert.Equal(t, exitFail, code)
	assert.Equal(t, "dojob: get: the dojob command holding the state directory is older and cannot check checksums or sizes; run this get when it is done, or with another --state-dir\n", errb.String())
	require.Len(t, reqs, 2)
	get, cancel := <-reqs, <-reqs
	assert.Equal(t, "get", get.Op)
	assert.Equal(t, []ctlFile{{URL: specs[0].url, Path: specs[0].path, Checksum: wrongSHA256}}, get.Files)
	assert.Equal(t, ctlRequest{Op: "cancel", ID: id}, cancel)
}
