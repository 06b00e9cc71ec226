package dojob

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jsonRecord encodes a record for its file, as encoding/json would.
//
// The files are most of a record — a job of a thousand files has a record
// of half a megabyte, rewritten at each checkpoint and state change — and
// encoding/json spends most of its time on them in reflection and in
// sorting each file's header map. So the files are appended by hand
// (appendRecordFile) and spliced into what encoding/json makes of the rest
// of the record. TestRecordFileJSON holds the two to the same bytes: a field
// added to recordFile without its line in appendRecordFile fails it.
func jsonRecord(r *record) ([]byte, error) {
	rest := *r
	rest.Files = nil
	head, err := json.Marshal(&rest)
	if err != nil {
		return nil, err
	}
	// "files" has no omitempty: the key is there once, with null. A string
	// value cannot hold these bytes (its quotes are escaped).
	const key = `"files":null`
	i := bytes.Index(head, []byte(key))
	if i < 0 {
		return nil, fmt.Errorf("encoding the record: no %s in %.80s", key, head)
	}
	size := len(head) + 2
	for k := range r.Files {
		f := &r.Files[k]
		size += 512 + len(f.Remote) + len(f.Local) + len(f.Temp)
	}
	out := make([]byte, 0, size)
	out = append(out, head[:i+len(`"files":`)]...)
	if r.Files == nil {
		out = append(out, "null"...)
	} else {
		out = append(out, '[')
		for k := range r.Files {
			if k > 0 {
				out = append(out, ',')
			}
			out = appendRecordFile(out, &r.Files[k])
		}
		out = append(out, ']')
	}
	return append(out, head[i+len(key):]...), nil
}

// appendRecordFile appends f as encoding/json encodes a recordFile: the
// fields in order, with their tags' names, omitempty honoured.
func appendRecordFile(b []byte, f *recordFile) []byte {
	b = append(b, `{"remote":`...)
	b = appendJSONString(b, f.Remote)
	b = append(b, `,"local":`...)
	b = appendJSONString(b, f.Local)
	b = append(b, `,"temp":`...)
	b = appendJSONString(b, f.Temp)
	if len(f.Ranges) > 0 {
		b = append(b, `,"ranges":[`...)
		for i, r := range f.Ranges {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"Offset":`...)
			b = strconv.AppendInt(b, r.Offset, 10)
			b = append(b, `,"Length":`...)
			b = strconv.AppendInt(b, r.Length, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendJSONInt(b, `,"size":`, f.Size)
	b = appendJSONInt(b, `,"remote_size":`, f.RemoteSize)
	b = appendJSONInt(b, `,"durable":`, f.Durable)
	b = appendJSONStringOmit(b, `,"etag":`, f.ETag)
	b = appendJSONStringOmit(b, `,"last_modified":`, f.LastModified)
	b = appendJSONTrue(b, `,"transferred":true`, f.Transferred)
	b = appendJSONTrue(b, `,"completed":true`, f.Completed)
	b = appendJSONIntOmit(b, `,"high_water":`, f.HighWater)
	b = appendJSONIntOmit(b, `,"restarts":`, int64(f.Restarts))
	b = appendJSONStringOmit(b, `,"restart_reason":`, f.RestartReason)
	if len(f.ResponseHeaders) > 0 {
		b = append(b, `,"response_headers":{`...)
		var room [16]string
		keys := room[:0]
		for k := range f.ResponseHeaders {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONStrings(b, f.ResponseHeaders[k])
		}
		b = append(b, '}')
	}
	b = appendJSONIntOmit(b, `,"expected_size":`, f.ExpectedSize)
	b = appendJSONStringOmit(b, `,"checksum":`, f.Checksum)
	if len(f.Mirrors) > 0 {
		b = append(b, `,"mirrors":`...)
		b = appendJSONStrings(b, f.Mirrors)
	}
	b = appendJSONTrue(b, `,"verified":true`, f.Verified)
	if len(f.HashState) > 0 {
		b = append(b, `,"hash_state":"`...)
		b = base64.StdEncoding.AppendEncode(b, f.HashState)
		b = append(b, '"')
	}
	b = appendJSONIntOmit(b, `,"hash_len":`, f.HashLen)
	b = appendJSONIntOmit(b, `,"source":`, int64(f.Source))
	b = appendJSONIntOmit(b, `,"validator_source":`, int64(f.ValidatorSource))
	if len(f.Sources) > 0 {
		b = append(b, `,"sources":[`...)
		for i, s := range f.Sources {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(s), 10)
		}
		b = append(b, ']')
	}
	b = appendJSONStringOmit(b, `,"cache_host":`, f.CacheHost)
	if len(f.Spans) > 0 {
		b = append(b, `,"spans":[`...)
		for i, s := range f.Spans {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = strconv.AppendInt(b, s[0], 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, s[1], 10)
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	b = appendJSONTrue(b, `,"stream":true`, f.Stream)
	return append(b, '}')
}

func appendJSONInt(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(append(b, key...), v, 10)
}

func appendJSONIntOmit(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return appendJSONInt(b, key, v)
}

func appendJSONStringOmit(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, key...), s)
}

func appendJSONTrue(b []byte, keyTrue string, v bool) []byte {
	if !v {
		return b
	}
	return append(b, keyTrue...)
}

// appendJSONStrings appends a []string as encoding/json does (nil: null).
func appendJSONStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// jsonSafe marks the bytes appendJSONString copies as they are: ASCII from
// the space on, but for ", \, <, > and &. One load a byte: the paths and
// URLs of a thousand files go through here on every write of a record.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, rune(c))
	}
	return t
}()

// appendJSONString appends s quoted as encoding/json quotes strings (with
// its default HTML escaping): ", \ and control characters escaped, <, >
// and & as \u003c, \u003e and \u0026, U+2028 and U+2029 escaped, and each
// byte of invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonSafe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
