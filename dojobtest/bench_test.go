package dojobtest_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/dojob/dojob/dojobtest"
)

// The kit must not be the bottleneck of dojob's throughput benchmarks.

func BenchmarkServerGet(b *testing.B) {
	const n = 64 << 20
	s := dojobtest.NewServer(b, dojobtest.WithSize(n))
	s.SHA256("/f") // generate the file before timing
	benchGet(b, s.Client().Get, s.FileURL("/f"), n)
}

func BenchmarkTransportGet(b *testing.B) {
	const n = 64 << 20
	tr := dojobtest.NewTransport(dojobtest.WithSize(n))
	defer tr.Close()
	tr.SHA256("/f")
	benchGet(b, tr.Client().Get, tr.FileURL("/f"), n)
}

func benchGet(b *testing.B, get func(string) (*http.Response, error), url string, n int64) {
	b.SetBytes(n)
	b.ReportAllocs()
	buf := make([]byte, 256<<10)
	for b.Loop() {
		resp, err := get(url)
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, buf)
		resp.Body.Close()
		if err != nil || got != n {
			b.Fatalf("got %d bytes, %v", got, err)
		}
	}
}
