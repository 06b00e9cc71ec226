package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/dojob/dojob"
)

// cacheHostFlag is the repeatable --cache-host HOST[:PORT] flag; a value
// may also list several, separated by commas (as DOCacheHost does).
type cacheHostFlag []string

// String returns the cache hosts, separated by commas (what Set takes).
func (f *cacheHostFlag) String() string { return strings.Join(*f, ",") }

// Set adds the cache hosts of one --cache-host.
func (f *cacheHostFlag) Set(s string) error {
	for _, h := range strings.Split(s, ",") {
		if _, err := dojob.ParseCacheHost(strings.TrimSpace(h)); err != nil {
			return fmt.Errorf("--cache-host %q: want HOST or HOST:PORT", h)
		}
		*f = append(*f, strings.TrimSpace(h))
	}
	return nil
}

// cacheFallbackFlag is --cache-fallback D: how long files are tried on the
// cache hosts before their own URLs (0, the default, falls back at once;
// "never" or -1 never does).
type cacheFallbackFlag time.Duration

func (f *cacheFallbackFlag) String() string {
	if time.Duration(*f) == dojob.NoCacheFallback {
		return "never"
	}
	return time.Duration(*f).String()
}

func (f *cacheFallbackFlag) Set(s string) error {
	if s == "never" || s == "-1" {
		*f = cacheFallbackFlag(dojob.NoCacheFallback)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return errors.New(`--cache-fallback wants a duration (such as 30s) or "never"`)
	}
	*f = cacheFallbackFlag(d)
	return nil
}

// cacheFlags are the Manager's cache host flags (get and resume).
type cacheFlags struct {
	hosts    cacheHostFlag
	fallback cacheFallbackFlag
}

func (cf *cacheFlags) register(fs *flag.FlagSet) {
	fs.Var(&cf.hosts, "cache-host", "")
	fs.Var(&cf.fallback, "cache-fallback", "")
}

// apply sets the cache configuration of cfg.
func (cf cacheFlags) apply(cfg *dojob.Config) {
	cfg.CacheHosts = cf.hosts
	cfg.CacheHostFallback = time.Duration(cf.fallback)
}

// fileSource describes the source that served a file's bytes, for info:
// the cache host, the origin (its URL) or a mirror; "" before any byte.
func fileSource(f dojob.FileInfo) string {
	switch {
	case f.CacheHost != "":
		return "cache host " + f.CacheHost
	case f.BytesTransferred == 0 && !f.Transferred:
		return ""
	case f.Source > 0:
		return fmt.Sprintf("mirror %d (%s)", f.Source, redact(f.SourceURL))
	}
	return "origin"
}
