package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/dojob/dojob"
	"golang.org/x/term"
)

// passwordEnv names the environment variable --user reads the password
// from; a password is never taken from the command line (it would show in
// the process list and the shell history).
const passwordEnv = "DOJOB_PASSWORD"

// headerFlag is a repeatable -H 'Name: value' flag.
type headerFlag struct{ h http.Header }

// String returns the header names only: values may be secrets.
func (f *headerFlag) String() string {
	var names []string
	for k := range f.h {
		names = append(names, k)
	}
	return strings.Join(names, ",")
}

// Set parses one "Name: value" header.
func (f *headerFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return errors.New(`-H wants "Name: value"`)
	}
	if f.h == nil {
		f.h = http.Header{}
	}
	f.h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	return nil
}

// httpFlags are get's -H and --user.
type httpFlags struct {
	headers headerFlag
	user    string
}

func (hf *httpFlags) register(fs *flag.FlagSet) {
	fs.Var(&hf.headers, "H", "")
	fs.StringVar(&hf.user, "user", "", "")
}

// given reports whether any HTTP option was given.
func (hf *httpFlags) given() bool { return hf.headers.h != nil || hf.user != "" }

// credentials returns the Basic credentials of --user, the password from
// DOJOB_PASSWORD or else read without echo from the terminal on stdin.
func (hf *httpFlags) credentials(stderr io.Writer) (dojob.Credentials, error) {
	c := dojob.Credentials{Target: dojob.AuthTargetServer, Scheme: dojob.AuthSchemeBasic, UserName: hf.user}
	if p, ok := os.LookupEnv(passwordEnv); ok {
		c.Password = p
		return c, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return c, fmt.Errorf("--user: set %s, or run on a terminal to be asked for the password", passwordEnv)
	}
	fmt.Fprintf(stderr, "Password for %s: ", hf.user)
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return c, fmt.Errorf("--user: reading the password: %w", err)
	}
	c.Password = string(p)
	return c, nil
}

// apply sets the custom headers and credentials on j.
func (hf *httpFlags) apply(j *dojob.Job, creds *dojob.Credentials) error {
	if hf.headers.h != nil {
		if err := j.SetCustomHeaders(hf.headers.h); err != nil {
			return err
		}
	}
	if creds != nil {
		if err := j.SetCredentials(*creds); err != nil {
			return err
		}
	}
	return nil
}
