// Command vmflow runs the tasks of a tasks.hcl file by calling out-of-process
// plugins. See `vmflow help` and the README.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

// Exit codes; documented in docs/cli.md.
const (
	exitOK          = 0
	exitFailed      = 1   // a step failed (or vmflow itself hit an error)
	exitUsage       = 2   // usage or task-file error; nothing ran
	exitLocked      = 3   // another run holds the lock
	exitInterrupted = 130 // stopped by Ctrl-C or SIGTERM
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	// A closed stdout or stderr (vmflow … | head -1) must not stop a run
	// half-way: with SIGPIPE caught, a write to a closed pipe fails with
	// EPIPE instead of killing vmflow, the output is dropped, and the run
	// goes on to its end (and its exit code). A caught signal, unlike an
	// ignored one, is back to its default in the plugins vmflow starts.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	os.Exit(Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
