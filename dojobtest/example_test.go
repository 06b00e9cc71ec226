package dojobtest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/dojob/dojob/dojobtest"
)

// Serve a file, fetch it, and check it against what the server says it
// served. In a test, pass the *testing.T instead of nil: NewServer then
// closes the server when the test ends.
func ExampleNewServer() {
	s := dojobtest.NewServer(nil, dojobtest.WithSize(1000))
	defer s.Close()

	resp, err := s.Client().Get(s.FileURL("/firmware.bin"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Println(err)
		return
	}
	sum := sha256.Sum256(data)
	fmt.Println(resp.Status, len(data), "bytes")
	fmt.Println("SHA-256 matches:", hex.EncodeToString(sum[:]) == s.SHA256("/firmware.bin"))
	// Output:
	// 200 OK 1000 bytes
	// SHA-256 matches: true
}

// A scripted fault: the first request is cut after 400 bytes, and a client
// resumes it with Range and If-Range. The log shows what happened, and
// BodyBytes that no byte was sent twice.
func ExampleScript() {
	s := dojobtest.NewServer(nil, dojobtest.WithSize(1000), dojobtest.Script(dojobtest.DropAfter(400)))
	defer s.Close()
	url := s.FileURL("/f")

	resp, err := s.Client().Get(url)
	if err != nil {
		fmt.Println(err)
		return
	}
	part, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(len(part), "bytes, then:", err)

	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Range", "bytes="+strconv.Itoa(len(part))+"-")
	req.Header.Set("If-Range", resp.Header.Get("ETag"))
	resp, err = s.Client().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Content-Range"), len(rest), "bytes")

	for _, r := range s.Requests() {
		fmt.Printf("%s %q -> %d, %d bytes (%s)\n", r.Method, r.Range, r.Status, r.BodyBytes, r.Fault)
	}
	fmt.Println("bytes sent:", s.BodyBytes("/f"))
	// Output:
	// 400 bytes, then: unexpected EOF
	// 206 Partial Content bytes 400-999/1000 600 bytes
	// GET "" -> 200, 400 bytes (DropAfter(400))
	// GET "bytes=400-" -> 206, 600 bytes (OK)
	// bytes sent: 1000
}

// The Transport answers in memory: nothing is dialled, and inside a
// testing/synctest bubble its delays run on fake time.
func ExampleNewTransport() {
	tr := dojobtest.NewTransport(dojobtest.Script(dojobtest.StatusRetryAfter(http.StatusServiceUnavailable, "120")))
	defer tr.Close()

	for range 2 {
		resp, err := tr.Client().Get(tr.FileURL("/big.iso"))
		if err != nil {
			fmt.Println(err)
			return
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Status, "Retry-After:", resp.Header.Get("Retry-After"), "body:", n)
	}
	// Output:
	// 503 Service Unavailable Retry-After: 120 body: 0
	// 200 OK Retry-After:  body: 1048576
}
