// Command crosscheck type-checks this module's packages for other
// platforms without compiling them: go/types over the sources, with the
// standard library type-checked from source too, under each target's
// build tags (GOOS, GOARCH, cgo off). It catches what breaks a port — a
// syscall or constant that a platform lacks, a build-tagged file missing
// for it — in seconds per platform, where `GOOS=x go build ./...` compiles
// the whole standard library once per platform. CI runs it for every
// platform the README claims; a real cross build of a few confirms that
// the type check tells the truth.
//
// Usage: go run ./.ci/crosscheck [-skip-cmd goos,goos] goos/goarch... -- packages
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	skip := flag.String("skip", "", "comma-separated goos:package-suffix pairs not checked, e.g. js:/cmd/dojob")
	flag.Parse()
	args := flag.Args()
	sep := len(args)
	for i, a := range args {
		if a == "--" {
			sep = i
		}
	}
	if sep == len(args) || sep == 0 {
		fmt.Fprintln(os.Stderr, "usage: crosscheck [-skip goos:suffix,...] goos/goarch... -- packages")
		os.Exit(2)
	}
	targets, patterns := args[:sep], args[sep+1:]
	failed := false
	for _, t := range targets {
		goos, goarch, ok := strings.Cut(t, "/")
		if !ok {
			fmt.Fprintf(os.Stderr, "bad target %q\n", t)
			os.Exit(2)
		}
		pkgs, err := list(goos, goarch, patterns)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", t, err)
			failed = true
			continue
		}
		ctx := build.Default
		ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = goos, goarch, false
		build.Default = ctx // the source importer reads build.Default
		fset := token.NewFileSet()
		imp := importer.ForCompiler(fset, "source", nil) // one per target: the standard library is checked once
		n := 0
		for _, p := range pkgs {
			if skipped(*skip, goos, p.importPath) {
				continue
			}
			if err := check(fset, imp, goarch, p); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %s: %v\n", t, p.importPath, err)
				failed = true
			}
			n++
		}
		fmt.Printf("  %-16s %d packages type-check\n", t, n)
	}
	if failed {
		os.Exit(1)
	}
}

func skipped(spec, goos, path string) bool {
	for _, s := range strings.Split(spec, ",") {
		if o, suffix, ok := strings.Cut(s, ":"); ok && o == goos && strings.HasSuffix(path, suffix) {
			return true
		}
	}
	return false
}

type pkg struct {
	importPath, dir string
	files           []string
}

// list asks the go command which files make up each package (and its
// tests) for the target.
func list(goos, goarch string, patterns []string) ([]pkg, error) {
	cmd := exec.Command("go", append([]string{"list", "-e", "-f",
		"{{.ImportPath}}|{{.Dir}}|{{join .GoFiles \",\"}}|{{if .Error}}{{.Error}}{{end}}"}, patterns...)...)
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "|", 4)
		if len(f) != 4 {
			continue
		}
		if f[3] != "" {
			return nil, fmt.Errorf("%s: %s", f[0], f[3])
		}
		p := pkg{importPath: f[0], dir: f[1]}
		if f[2] != "" {
			p.files = strings.Split(f[2], ",")
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// check type-checks one package with imp, which type-checks its imports
// from source under the target's build context.
func check(fset *token.FileSet, imp types.Importer, goarch string, p pkg) error {
	var files []*ast.File
	for _, name := range p.files {
		f, err := parser.ParseFile(fset, filepath.Join(p.dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	var first error
	conf := types.Config{
		Importer: imp,
		Sizes:    types.SizesFor("gc", goarch),
		Error: func(err error) {
			if first == nil {
				first = err
			}
		},
	}
	_, _ = conf.Check(p.importPath, fset, files, nil)
	return first
}
