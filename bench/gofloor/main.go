// Command gofloor is the floor of a download manager written in Go with
// net/http, for bench/compare.sh: what the same machine, the same client
// library and the same copy buffer do with none of dojob's work around the
// bytes — no temporary file, no checks of the paths, no rename, no fsync, no
// record, no callbacks. It downloads like curl: one file with -o, or several
// URLs into a directory with -d, up to -parallel at once, each named after
// the last segment of its URL's path. Any error ends it with status 1.
//
// Usage:
//
//	gofloor -o FILE URL
//	gofloor -d DIR [-parallel N] URL...
//
// The URLs must be loopback URLs: the benchmark never leaves the machine.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// bufferSize is dojob's copy buffer (dojob.CopyBufferSize), so that the
// floor reads and writes in the same pieces.
const bufferSize = 256 << 10

func main() {
	out := flag.String("o", "", "the file of a single URL")
	dir := flag.String("d", "", "the directory of several URLs")
	parallel := flag.Int("parallel", 8, "files at once with -d")
	flag.Parse()
	if err := run(*out, *dir, *parallel, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "gofloor:", err)
		os.Exit(1)
	}
}

// job is one URL and the file it goes to.
type job struct{ url, dst string }

func run(out, dir string, parallel int, urls []string) error {
	var jobs []job
	switch {
	case len(urls) == 0:
		return errors.New("no URL")
	case (out == "") == (dir == ""):
		return errors.New("give -o FILE (one URL) or -d DIR")
	case out != "" && len(urls) != 1:
		return errors.New("-o takes one URL")
	case parallel < 1:
		return errors.New("-parallel must be at least 1")
	case out != "":
		jobs = []job{{urls[0], out}}
	default:
		for _, u := range urls {
			jobs = append(jobs, job{u, filepath.Join(dir, path.Base(u))})
		}
	}
	for _, jb := range jobs {
		if err := loopback(jb.url); err != nil {
			return err
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = parallel
	client := &http.Client{Transport: tr}
	defer client.CloseIdleConnections()

	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range min(parallel, len(jobs)) {
		wg.Go(func() {
			buf := make([]byte, bufferSize)
			for failed.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				if err := fetch(client, jobs[i], buf); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// fetch downloads one URL to its file with buf, as an application would
// without a download manager.
func fetch(client *http.Client, jb job, buf []byte) error {
	resp, err := client.Get(jb.url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", jb.url, resp.Status)
	}
	f, err := os.Create(jb.dst)
	if err != nil {
		return err
	}
	// Hide the file's ReadFrom, which would copy through its own 32 KiB
	// buffer and ignore buf.
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, resp.Body, buf); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loopback refuses a URL whose host is not a loopback address.
func loopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s: not a loopback URL", raw)
	}
	return nil
}
