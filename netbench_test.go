package dojob_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/dojob/dojob"
	"github.com/dojob/dojob/dojobtest"
)

// BenchmarkNetSettings downloads 64 MiB over loopback with the Manager's
// own transport (PRECONFIG), with a transport derived for the job
// (NO_PROXY: the same path, another transport), and through an in-test
// forward proxy (OVERRIDE), to show what a job's own settings cost.
func BenchmarkNetSettings(b *testing.B) {
	const size = 64 << 20
	data := dojobtest.Content("bench", size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"b"`)
		http.ServeContent(w, r, "f", time.Unix(1e9, 0), bytes.NewReader(data))
	}))
	defer srv.Close()
	for _, c := range []struct {
		name string
		set  func(j *dojob.Job, proxyURL string) error
	}{
		{"preconfig", func(*dojob.Job, string) error { return nil }},
		{"noproxy", func(j *dojob.Job, _ string) error { return j.SetProxySettings(dojob.ProxyNoProxy, "", "") }},
		{"override", func(j *dojob.Job, p string) error { return j.SetProxySettings(dojob.ProxyOverride, p, "") }},
	} {
		b.Run(c.name, func(b *testing.B) {
			proxy := dojobtest.NewProxy(b)
			m, err := dojob.NewManager(dojob.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			dir := b.TempDir()
			b.SetBytes(size)
			for i := 0; b.Loop(); i++ {
				j, err := m.CreateJob("bench")
				if err != nil {
					b.Fatal(err)
				}
				if err := j.AddFile(srv.URL+"/f", filepath.Join(dir, "f")); err != nil {
					b.Fatal(err)
				}
				if err := c.set(j, proxy.URL()); err != nil {
					b.Fatal(err)
				}
				if err := j.Resume(); err != nil {
					b.Fatal(err)
				}
				if st, err := j.Wait(b.Context()); err != nil || st != dojob.StateTransferred {
					b.Fatal(st, err)
				}
				if err := j.Cancel(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
