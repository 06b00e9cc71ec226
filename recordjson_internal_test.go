package dojob

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jsonTricky are strings encoding/json escapes in every way it has.
var jsonTricky = []string{
	"", "plain", `quote " and \ backslash`, "<html> & co", "\x00\x01\b\f\n\r\t\x1f\x7f",
	"ünïcødé ✓ 😀", "\u2028 line \u2029 para", "bad \xff utf-8 \xc3", "/path/to/a file.tmp",
}

// fill sets every field reachable from v to a value that is not zero,
// varying with seed, so that encoding it shows every field.
func fill(t *testing.T, v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(jsonTricky[1+seed%(len(jsonTricky)-1)])
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(seed*7919 + 1))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Uint8:
		v.SetUint(uint64(seed*31 + 1))
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i), seed+i)
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(t, v.Index(i), seed+i)
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 3, 3)
		for i := range 3 {
			fill(t, s.Index(i), seed+i)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := range 4 {
			k := reflect.New(v.Type().Key()).Elem()
			fill(t, k, seed+i)
			e := reflect.New(v.Type().Elem()).Elem()
			if i != 2 { // one key with a nil value
				fill(t, e, seed+i)
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	default:
		t.Fatalf("fill: no filling for a %s: teach fill and appendRecordFile this field", v.Type())
	}
}

// TestRecordFileJSON: the hand-written encoding of a file and of a record
// is byte for byte encoding/json's — for a file with every field set (a
// field added to recordFile and not to appendRecordFile fails here), a
// file with none, empty but non-nil slices, and whole records.
func TestRecordFileJSON(t *testing.T) {
	var full recordFile
	for seed := range 5 {
		fill(t, reflect.ValueOf(&full).Elem(), seed)
		want, err := json.Marshal(full)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(appendRecordFile(nil, &full)), "seed %d", seed)
	}
	empty := recordFile{Ranges: []FileRange{}, ResponseHeaders: http.Header{}, Mirrors: []string{}, HashState: []byte{}, Sources: []int{}, Spans: [][2]int64{}}
	for _, f := range []recordFile{{}, empty} {
		want, err := json.Marshal(f)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(appendRecordFile(nil, &f)))
	}
	for _, files := range [][]recordFile{nil, {}, {full}, {full, {}, empty}} {
		r := &record{Version: recordVersion, DisplayName: `a "job" <with> files`, Files: files}
		want, err := json.Marshal(r)
		require.NoError(t, err)
		got, err := jsonRecord(r)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got))
		var back record
		require.NoError(t, json.Unmarshal(got, &back))
	}
}

// FuzzJSONString: appendJSONString quotes every string as encoding/json does.
func FuzzJSONString(f *testing.F) {
	for _, s := range jsonTricky {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("appendJSONString(%q) = %s, encoding/json gives %s", s, got, want)
		}
	})
}

// BenchmarkAppendJSONString quotes a thousand URLs as a record of a
// thousand files holds them: the strings are most of the bytes of every
// write of such a record.
func BenchmarkAppendJSONString(b *testing.B) {
	ss := make([]string, 1000)
	for i := range ss {
		ss[i] = "http://127.0.0.1:46335/some/path/to/a/file-" + strconv.Itoa(i) + ".bin?token=abcdef"
	}
	var n int64
	for _, s := range ss {
		n += int64(len(s))
	}
	b.SetBytes(n)
	var buf []byte
	for b.Loop() {
		buf = buf[:0]
		for _, s := range ss {
			buf = appendJSONString(buf, s)
		}
	}
}
