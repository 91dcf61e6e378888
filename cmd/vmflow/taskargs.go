package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
)

// taskArgs are the arguments after a task name: params by position or as
// --name value, and the run flags, which may come anywhere.
type taskArgs struct {
	positional []string
	named      map[string]string
	// Run flags given after the task name.
	vars          []string
	keepOnFailure bool
	parallelism   int
	json, verbose bool
	yes           bool
	help          bool
}

// runFlagNames are the flags a task command accepts besides its params:
// the global flags but those that choose the task file and the state
// directory, which go before the task name. A param of the same name
// wins; the flag then goes before the task name.
var runFlagNames = func() map[string]bool {
	m := map[string]bool{}
	for n := range takesValue {
		switch n {
		case "f", "file", "state-dir":
		default:
			m[n] = true
		}
	}
	return m
}()

// parseTaskArgs reads a task's arguments. Flags may come before, between
// or after positional arguments; "--" ends flags.
func parseTaskArgs(t *config.Task, args []string) (*taskArgs, error) {
	ta := &taskArgs{named: map[string]string{}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			ta.positional = append(ta.positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" || isNumber(arg) {
			ta.positional = append(ta.positional, arg)
			continue
		}
		name, val, hasVal := splitFlag(arg)
		next := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", usageErr("task %s: flag --%s needs a value", t.Name, name)
			}
			i++
			return args[i], nil
		}
		if name == "h" || name == "help" {
			ta.help = true
			continue
		}
		if p := t.Param(name); p != nil {
			if _, dup := ta.named[name]; dup && !isList(p.Type) {
				return nil, usageErr("task %s: --%s given twice", t.Name, name)
			}
			var v string
			if p.Type == cty.Bool && !hasVal {
				v = "true"
			} else {
				var err error
				if v, err = next(); err != nil {
					return nil, err
				}
			}
			if prev, ok := ta.named[name]; ok {
				v = prev + "," + v // repeated list flag
			}
			ta.named[name] = v
			continue
		}
		switch name {
		case "var":
			v, err := next()
			if err != nil {
				return nil, err
			}
			ta.vars = append(ta.vars, v)
		case "keep-on-failure":
			ta.keepOnFailure = !hasVal || val == "true"
		case "json":
			ta.json = !hasVal || val == "true"
		case "v", "verbose":
			ta.verbose = !hasVal || val == "true"
		case "y", "yes":
			ta.yes = !hasVal || val == "true"
		case "parallelism":
			v, err := next()
			if err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, usageErr("--parallelism needs a whole number of at least 1, got %q", v)
			}
			ta.parallelism = n
		default:
			if inTrailingList(t, ta) {
				// vmflow exec b1 ls -l /: a flag vmflow does not know,
				// once a trailing list param has begun, is one of its
				// values.
				ta.positional = append(ta.positional, arg)
				continue
			}
			names := []string{}
			for _, p := range t.Params {
				names = append(names, p.Name)
			}
			for n := range runFlagNames {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, usageErr("task %s: unknown flag %s.%s Params: %s. Arguments that start with '-' go after --: vmflow %s … -- %s",
				t.Name, arg, config.Suggest(name, names), paramList(t), t.Name, arg)
		}
	}
	return ta, nil
}

func isList(ty cty.Type) bool { return ty.IsListType() || ty.IsSetType() }

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func paramList(t *config.Task) string {
	if len(t.Params) == 0 {
		return "none"
	}
	var parts []string
	for _, p := range t.Params {
		parts = append(parts, "--"+p.Name)
	}
	return strings.Join(parts, ", ")
}

// taskHelp renders a task's usage with its params.
func taskHelp(t *config.Task) string {
	var b strings.Builder
	fmt.Fprintf(&b, "vmflow %s %s\n", t.Name, t.Usage())
	if t.Description != "" {
		fmt.Fprintf(&b, "\n%s\n", t.Description)
	}
	if len(t.Params) > 0 {
		b.WriteString("\nParams (positional in this order, or as --name value):\n")
		if t.Wizard {
			b.WriteString("(on a terminal, vmflow asks for each param not given; --yes asks nothing)\n")
		}
		for _, p := range t.Params {
			line := fmt.Sprintf("  %-14s %-14s %s", p.Name, typeLabel(p.Type), p.Description)
			if p.Options != nil {
				line += fmt.Sprintf(" (one of: %s)", strings.Join(p.OptionArgs(), ", "))
			}
			if !p.Required() {
				line += fmt.Sprintf(" (default: %s)", formatDefault(p.Default))
			} else {
				line += " (required)"
			}
			b.WriteString(strings.TrimRight(line, " ") + "\n")
		}
	}
	b.WriteString("\nRun flags: --var name=value, --keep-on-failure, --parallelism N, --json, -v, --yes\n")
	return b.String()
}

// inTrailingList reports whether the positional arguments so far have
// reached the task's trailing list param (its last, of a list type): the
// params before it are given, by position or by name, and it has a value.
func inTrailingList(t *config.Task, ta *taskArgs) bool {
	if len(t.Params) == 0 || !isList(t.Params[len(t.Params)-1].Type) {
		return false
	}
	slots := 0
	for _, p := range t.Params[:len(t.Params)-1] {
		if _, named := ta.named[p.Name]; !named {
			slots++
		}
	}
	return len(ta.positional) > slots
}
