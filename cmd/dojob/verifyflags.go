package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dojob/dojob"
)

// verifyFlags are get's flags that describe the files in advance:
// --checksum, --checksums and --size. They become FileSpec.Checksum and
// FileSpec.Size, so the library checks each file as it arrives.
type verifyFlags struct {
	checksum  string // --checksum ALG:HEX, for a single URL
	checksums string // --checksums FILE, sha256sum/sha512sum output
	size      int64  // --size N, for a single URL; 0: not given
	sizeSet   bool
}

// register adds the verification flags to fs.
func (vf *verifyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&vf.checksum, "checksum", "", "")
	fs.StringVar(&vf.checksums, "checksums", "", "")
	fs.Func("size", "", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("--size %q is not a positive number of bytes", s)
		}
		vf.size, vf.sizeSet = n, true
		return nil
	})
}

// apply checks the verification flags against the files of a get and puts
// the checksum and size of each in its spec. Every error is a usage
// error, found before the state directory is opened and anything is
// requested: a checksum that is not sha256:HEX or sha512:HEX, --checksum or
// --size with several URLs, --checksum with --checksums, a malformed line
// of the checksums file (by its number), and a file of the get that no
// line of the checksums file names.
func (vf *verifyFlags) apply(specs []fileSpec) error {
	if vf.checksum != "" && vf.checksums != "" {
		return errors.New("get: --checksum and --checksums exclude each other")
	}
	if len(specs) > 1 && vf.checksum != "" {
		return errors.New("get: --checksum takes a single URL; use --checksums FILE for several")
	}
	if len(specs) > 1 && vf.sizeSet {
		return errors.New("get: --size takes a single URL")
	}
	if vf.checksum != "" {
		sum, err := normChecksum(vf.checksum)
		if err != nil {
			return fmt.Errorf("get: --checksum: %w", err)
		}
		specs[0].checksum = sum
	}
	if vf.sizeSet {
		specs[0].size = vf.size
	}
	if vf.checksums == "" {
		return nil
	}
	sums, err := readChecksums(vf.checksums)
	if err != nil {
		return err
	}
	for i := range specs {
		name := filepath.Base(specs[i].path)
		sum, ok := sums[name]
		if !ok {
			return fmt.Errorf("get: %s has no line for %s (the destination of %s)", vf.checksums, name, redact(specs[i].url))
		}
		specs[i].checksum = sum.checksum
	}
	return nil
}

// normChecksum checks a checksum given as ALG:HEX (sha256 or sha512, in any
// case) and returns it as the library reports it: in lower case.
func normChecksum(s string) (string, error) {
	alg, digits, ok := strings.Cut(s, ":")
	alg = strings.ToLower(alg)
	var n int
	switch alg {
	case "sha256":
		n = 64
	case "sha512":
		n = 128
	}
	if !ok || n == 0 {
		return "", fmt.Errorf("%q is not sha256:HEX or sha512:HEX", s)
	}
	if _, err := hex.DecodeString(digits); err != nil || len(digits) != n {
		return "", fmt.Errorf("%q is not %d hex digits of %s", s, n, alg)
	}
	return alg + ":" + strings.ToLower(digits), nil
}

// lineSum is a checksum of a checksums file and the line it is on.
type lineSum struct {
	checksum string // alg:hex, lower case
	line     int
}

// readChecksums reads a checksums file in the format sha256sum and
// sha512sum print — "<hex>  <name>" (text mode) or "<hex> *<name>"
// (binary mode), one file a line, and a line starting with a backslash
// when the name holds a backslash or a newline, which are then escaped as
// \\ and \n — and returns the checksums by the base name of each name
// (the part after its last slash), which is what a get's destinations are
// matched against. The algorithm is the one of the digest's length: 64
// hex digits are sha256, 128 sha512, so one file may mix them. Empty
// lines and lines starting with '#' are skipped. A malformed line, or two
// lines whose names have the same base name and different checksums, are
// a usage error naming the line.
func readChecksums(name string) (map[string]lineSum, error) {
	fd, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("get: --checksums: %w", err)
	}
	defer fd.Close()
	sums := map[string]lineSum{}
	sc := bufio.NewScanner(fd)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, file, err := parseChecksumLine(line)
		if err != nil {
			return nil, fmt.Errorf("get: %s, line %d: %w", name, n, err)
		}
		base := path.Base(file)
		if prev, ok := sums[base]; ok && prev.checksum != sum {
			return nil, fmt.Errorf("get: %s, lines %d and %d: two checksums for %s", name, prev.line, n, base)
		}
		sums[base] = lineSum{checksum: sum, line: n}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("get: --checksums %s: %w", name, err)
	}
	return sums, nil
}

// parseChecksumLine parses one line of sha256sum or sha512sum output and
// returns its checksum as alg:hex in lower case, and the file name.
func parseChecksumLine(line string) (sum, name string, err error) {
	escaped := strings.HasPrefix(line, `\`)
	line = strings.TrimPrefix(line, `\`)
	digits, rest, ok := strings.Cut(line, " ")
	if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '*') || len(rest) < 2 {
		return "", "", errors.New(`not "<hex>  <name>" or "<hex> *<name>"`)
	}
	name = rest[1:]
	var alg string
	switch len(digits) {
	case 64:
		alg = "sha256"
	case 128:
		alg = "sha512"
	default:
		return "", "", fmt.Errorf("a checksum of %d characters; sha256 has 64 hex digits, sha512 128", len(digits))
	}
	if _, err := hex.DecodeString(digits); err != nil {
		return "", "", fmt.Errorf("%q is not hex", digits)
	}
	if escaped {
		if name, err = unescapeName(name); err != nil {
			return "", "", err
		}
	}
	return alg + ":" + strings.ToLower(digits), name, nil
}

// unescapeName undoes the escaping of a name on a line that starts with a
// backslash: \\ is a backslash, \n a newline, \r a carriage return (as
// GNU coreutils writes them).
func unescapeName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i++; i == len(s) {
			return "", errors.New("the name ends with a lone backslash")
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", fmt.Errorf(`unknown escape \%c in the name`, s[i])
		}
	}
	return b.String(), nil
}

// sameVerification reports whether the file f of an existing job is
// checked as spec asks: the same expected size and checksum (both none
// counts as the same).
func sameVerification(f dojob.FileInfo, spec fileSpec) bool {
	return f.ExpectedSize == spec.size && f.Checksum == spec.checksum
}
