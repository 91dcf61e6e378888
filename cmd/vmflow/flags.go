package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/vmflow/vmflow/core/engine"
)

// vmflow's own flags, and the one scanner every reading of the command
// line before the CLI parser uses (scanPre, commandName, hoistGlobalFlags,
// listOnly, completion, a task's arguments): which flags exist and which
// take a value is said once, here.

var globalFlags = []cli.Flag{
	&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "task file (default: ./tasks.hcl, else the nearest in a parent directory)"},
	&cli.StringSliceFlag{Name: "var", Usage: "set a variable: --var name=value (repeatable)"},
	&cli.StringFlag{Name: "state-dir", Usage: "state directory (default: $VMFLOW_STATE_DIR, else ${XDG_STATE_HOME:-~/.local/state}/vmflow)"},
	&cli.BoolFlag{Name: "json", Usage: "print one JSON event per line instead of text"},
	&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "show debug logs"},
	&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "never ask for params (a missing required param is an error)"},
}

var runFlags = []cli.Flag{
	&cli.BoolFlag{Name: "keep-on-failure", Usage: "do not undo completed steps when a step fails or the run is interrupted"},
	&cli.IntFlag{Name: "parallelism", Value: engine.DefaultParallelism, Usage: "how many independent steps may run at once"},
}

// takesValue holds every global flag's names (aliases included), true
// for a flag that takes a value: the table the scanners read, made from
// the flags the CLI parser is given.
var takesValue = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range append(append([]cli.Flag{}, globalFlags...), runFlags...) {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}()

// isGlobalFlag reports whether name (without dashes) is a global flag.
func isGlobalFlag(name string) bool {
	_, ok := takesValue[name]
	return ok
}

// takesValueFlag reports whether a word (-f, --file) is a global flag
// that takes a value.
func takesValueFlag(w string) bool { return takesValue[strings.TrimLeft(w, "-")] }

// splitFlag splits a flag argument: "--file=x" is file, x, true.
func splitFlag(arg string) (name, val string, hasVal bool) {
	return strings.Cut(strings.TrimLeft(arg, "-"), "=")
}

// leadingFlags walks the flags at the start of args, calling each (when
// not nil) with every flag's name and value; a global flag that takes a
// value and has no "=" takes the next argument. It returns the index of
// the first argument that is no flag, the command (len(args) when there
// is none), or -1 at "--".
func leadingFlags(args []string, each func(name, val string)) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return -1
		}
		if !strings.HasPrefix(a, "-") {
			return i
		}
		name, val, hasVal := splitFlag(a)
		if takesValue[name] && !hasVal {
			i++
			if i < len(args) {
				val = args[i]
			}
		}
		if each != nil {
			each(name, val)
		}
	}
	return len(args)
}

type preFlags struct {
	file     string
	vars     []string
	stateDir string
}

// scanPre reads the global -f/--file and --var flags that come before the
// command name; the task file they name decides which task commands exist.
func scanPre(args []string) preFlags {
	var p preFlags
	leadingFlags(args, func(name, val string) {
		switch name {
		case "f", "file":
			p.file = val
		case "var":
			p.vars = append(p.vars, val)
		case "state-dir":
			p.stateDir = val
		}
	})
	return p
}

// hoistable are the commands whose arguments may carry global flags after
// the command name (vmflow list -f x.hcl); task commands, run and plan
// parse their own arguments.
var hoistable = map[string]bool{"lock": true, "output": true, "list": true, "validate": true, "plugins": true, "runs": true, "resume": true, "vars": true, "init": true, "version": true}

// hoistGlobalFlags moves global flags written after a built-in command's
// name to before it, where the CLI parser expects them.
func hoistGlobalFlags(args []string) []string {
	if len(args) < 2 {
		return args
	}
	cmdAt := leadingFlags(args[1:], nil) + 1
	if cmdAt <= 0 || cmdAt >= len(args) || !hoistable[args[cmdAt]] {
		return args
	}
	var globals, rest []string
	for i := cmdAt + 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, _, hasVal := splitFlag(a)
		switch {
		case strings.HasPrefix(a, "-") && takesValue[name]:
			globals = append(globals, a)
			if !hasVal && i+1 < len(args) {
				i++
				globals = append(globals, args[i])
			}
		case strings.HasPrefix(a, "-") && isGlobalFlag(name):
			globals = append(globals, a)
		default:
			rest = append(rest, a)
		}
	}
	out := append([]string{}, args[:cmdAt]...)
	out = append(out, globals...)
	out = append(out, args[cmdAt])
	return append(out, rest...)
}

// noTaskFile are the built-in commands that read no task file.
var noTaskFile = map[string]bool{"version": true, "completion": true}

// commandName is the first argument that is not a global flag (or a
// global flag's value): the command, or "".
func commandName(args []string) string {
	if i := leadingFlags(args, nil); i >= 0 && i < len(args) {
		return args[i]
	}
	return ""
}

// listOnly reports whether the arguments are just `list` with global
// flags (the case the list cache serves), and whether --json is among
// them.
func listOnly(args []string) (asJSON, ok bool) {
	seenList := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasVal := splitFlag(a)
		switch {
		case a == "list" && !seenList:
			seenList = true
		case a == "--json":
			asJSON = true
		case strings.HasPrefix(a, "-") && takesValue[name] && !seenList:
			if !hasVal {
				i++
			}
		case a == "-v" || a == "--verbose":
		default:
			return false, false
		}
	}
	return asJSON, seenList
}
