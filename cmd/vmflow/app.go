package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/engine"
	"github.com/vmflow/vmflow/core/host"
)

// exitError carries an exit code; its message is already printed when
// printed is set.
type exitError struct {
	code    int
	err     error
	printed bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// app is one invocation of vmflow.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	isTTY          bool
	environ        []string

	// From the flags before the command: the task file loaded to register
	// task commands.
	pre     preFlags
	proj    *config.Project
	projErr hcl.Diagnostics
	projFor string // the path proj was loaded from
}

type preFlags struct {
	file string
	vars []string
}

// scanPre reads the global -f/--file and --var flags that come before the
// command name; the task file they name decides which task commands exist.
func scanPre(args []string) preFlags {
	var p preFlags
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesValue := map[string]bool{"f": true, "file": true, "var": true, "state-dir": true, "parallelism": true}
		if takesValue[name] && !hasVal && i+1 < len(args) {
			i++
			val = args[i]
		}
		switch name {
		case "f", "file":
			p.file = val
		case "var":
			p.vars = append(p.vars, val)
		}
	}
	return p
}

// Main runs vmflow and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, environ: os.Environ()}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb" {
		a.isTTY = true
	}
	a.pre = scanPre(args[1:])
	// Task commands come from the task file; if there is none, only the
	// built-in commands exist.
	if path, err := findTaskFile(a.pre.file); err == nil {
		a.load(path, a.pre.vars, true)
	}
	err := a.cliApp().Run(args)
	return a.exitCode(err)
}

func (a *app) exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !ee.printed && ee.err != nil {
			fmt.Fprintln(a.stderr, "Error:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(a.stderr, "Error:", err)
	return exitFailed
}

// findTaskFile resolves -f, else ./tasks.hcl, else the nearest tasks.hcl in
// a parent directory.
func findTaskFile(flag string) (string, error) {
	if flag != "" {
		if _, err := os.Stat(flag); err != nil {
			return "", usageErr("task file %s: %v", flag, errors.Unwrap(err))
		}
		return flag, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "tasks.hcl")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", usageErr("no tasks.hcl in this directory or any parent; name one with -f FILE")
		}
		dir = parent
	}
}

func (a *app) load(path string, vars []string, deferMissing bool) {
	a.proj, a.projErr = config.Load(path, config.Options{Vars: vars, Environ: a.environ, DeferMissingVars: deferMissing})
	a.projFor = path
}

// project returns the task file for a command, loading it again when the
// command's flags name another file or add variables. Errors are printed.
func (a *app) project(c *cli.Context, extraVars []string) (*config.Project, error) {
	path, err := findTaskFile(c.String("file"))
	if err != nil {
		return nil, err
	}
	vars := append(c.StringSlice("var"), extraVars...)
	if a.proj == nil || path != a.projFor || !sameStrings(vars, a.pre.vars) {
		a.load(path, vars, true)
	}
	if a.projErr.HasErrors() {
		return nil, a.printDiags(a.projErr)
	}
	return a.proj, nil
}

// requireVars reports variables that have no value; needed before anything
// is evaluated.
func (a *app) requireVars() error {
	if len(a.proj.Deferred) > 0 {
		return a.printDiags(a.proj.Deferred)
	}
	return nil
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// printDiags prints diagnostics with source snippets and returns the exit
// error for them (exit 2) when any is an error.
func (a *app) printDiags(diags hcl.Diagnostics) error {
	if len(diags) == 0 {
		return nil
	}
	var files map[string]*hcl.File
	if a.proj != nil {
		files = a.proj.Sources
	}
	width := 0
	if f, ok := a.stderr.(*os.File); ok && a.isTTY {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			width = w
		}
	}
	wr := hcl.NewDiagnosticTextWriter(a.stderr, files, uint(width), a.isTTY)
	_ = wr.WriteDiagnostics(diags)
	if diags.HasErrors() {
		return &exitError{code: exitUsage, err: errors.New("invalid task file"), printed: true}
	}
	return nil
}

// stateDir resolves --state-dir, VMFLOW_STATE_DIR, then
// ${XDG_STATE_HOME:-~/.local/state}/vmflow.
func (a *app) stateDir(c *cli.Context) (string, error) {
	if d := c.String("state-dir"); d != "" {
		return filepath.Abs(d)
	}
	if d := os.Getenv("VMFLOW_STATE_DIR"); d != "" {
		return filepath.Abs(d)
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "vmflow"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find a state directory: %w; set --state-dir or VMFLOW_STATE_DIR", err)
	}
	return filepath.Join(home, ".local", "state", "vmflow"), nil
}

// finder builds the plugin search path for a task file directory.
func (a *app) finder(taskDir string) *host.Finder {
	exe, _ := os.Executable()
	env := map[string]string{}
	for _, kv := range a.environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return host.NewFinder(exe, taskDir, env)
}

// logger is vmflow's log: warnings on stderr (everything with -v), and the
// whole debug log in the run's directory once a run starts.
func (a *app) logger(c *cli.Context, out io.Writer) hclog.InterceptLogger {
	level := hclog.Warn
	if c.Bool("verbose") {
		level = hclog.Debug
	}
	return hclog.NewInterceptLogger(&hclog.LoggerOptions{
		Name: "vmflow", Level: level, Output: out, Color: hclog.ColorOff,
	})
}

// newEngine loads what a task needs to run.
func (a *app) newEngine(c *cli.Context, proj *config.Project, logger hclog.Logger) (*engine.Engine, *host.Manager, error) {
	sd, err := a.stateDir(c)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(sd, 0o700); err != nil {
		return nil, nil, err
	}
	mgr := host.NewManager(logger)
	return engine.New(proj, a.finder(proj.Root.Dir), mgr, sd, logger), mgr, nil
}

var globalFlags = []cli.Flag{
	&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "task file (default: ./tasks.hcl, else the nearest in a parent directory)"},
	&cli.StringSliceFlag{Name: "var", Usage: "set a variable: --var name=value (repeatable)"},
	&cli.StringFlag{Name: "state-dir", Usage: "state directory (default: $VMFLOW_STATE_DIR, else ${XDG_STATE_HOME:-~/.local/state}/vmflow)"},
	&cli.BoolFlag{Name: "json", Usage: "print one JSON event per line instead of text"},
	&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "show debug logs"},
}

var runFlags = []cli.Flag{
	&cli.BoolFlag{Name: "keep-on-failure", Usage: "do not undo completed steps when a step fails or the run is interrupted"},
	&cli.IntFlag{Name: "parallelism", Value: engine.DefaultParallelism, Usage: "how many independent steps may run at once"},
}

func (a *app) cliApp() *cli.App {
	ca := &cli.App{
		Name:                 "vmflow",
		Usage:                "run VM workflows from tasks.hcl through out-of-process plugins",
		Version:              version,
		Writer:               a.stdout,
		ErrWriter:            a.stderr,
		Reader:               a.stdin,
		Flags:                append(append([]cli.Flag{}, globalFlags...), runFlags...),
		HideVersion:          true,
		EnableBashCompletion: false,
		Suggest:              true,
		ExitErrHandler:       func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageErr("%v", err)
		},
		CommandNotFound: func(c *cli.Context, name string) {},
	}
	ca.Commands = a.builtinCommands()
	builtin := map[string]bool{}
	for _, cmd := range ca.Commands {
		builtin[cmd.Name] = true
	}
	if a.proj != nil && !a.projErr.HasErrors() {
		for _, t := range a.proj.Tasks {
			if builtin[t.Name] {
				continue // still reachable as vmflow run <name>
			}
			ca.Commands = append(ca.Commands, a.taskCommand(t))
		}
	}
	ca.Action = func(c *cli.Context) error {
		if c.NArg() == 0 {
			return cli.ShowAppHelp(c)
		}
		name := c.Args().First()
		if a.projErr.HasErrors() {
			fmt.Fprintf(a.stderr, "vmflow: cannot tell whether %q is a task: the task file has errors.\n", name)
			return a.printDiags(a.projErr)
		}
		msg := fmt.Sprintf("no command or task named %q", name)
		if a.proj != nil {
			names := a.proj.TaskNames()
			for _, cmd := range ca.Commands {
				names = append(names, cmd.Name)
			}
			sort.Strings(names)
			msg += "." + config.Suggest(name, names) + " Run `vmflow list` for the tasks."
		}
		return usageErr("%s", msg)
	}
	return ca
}
