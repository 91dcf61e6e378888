// Command vmflow runs the tasks of a tasks.hcl file by calling out-of-process
// plugins. See `vmflow help` and the README.
package main

import (
	"os"
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
	os.Exit(Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
