// Command dojob downloads files with dojob jobs, the way bitsadmin drives
// BITS jobs on Windows: a job retries transient errors, resumes where it
// stopped, survives an interrupted command, and puts its files in place only
// when they are complete.
//
// Run "dojob help" for the commands and flags. All the work is done by run,
// so that tests can drive the command with buffers; main only wires it to the
// process: arguments, standard output and error, signals and the exit code.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// main runs the command with a context that SIGINT (Ctrl-C) and SIGTERM
// cancel, and exits with run's status.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
