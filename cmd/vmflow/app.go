package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/engine"
	"github.com/vmflow/vmflow/core/host"
	"github.com/vmflow/vmflow/core/journal"
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
	// json: --json was given; jsonMu orders what goes to stdout as JSON,
	// jsonErrored: an error event was printed.
	json        bool
	jsonMu      sync.Mutex
	jsonErrored bool
	// args are vmflow's arguments (after hoisting), for printing the
	// command a wizard's answers stand for.
	args []string

	// From the flags before the command: the task file loaded to register
	// task commands.
	pre     preFlags
	proj    *config.Project
	projErr hcl.Diagnostics
	projFor string // the path proj was loaded from

	// vmflow list keeps its listing in a cache (see list.go).
	listCache, cacheKey string

	// builtinPath is where the default lifecycle vmflow ships is written
	// out, once used (lifecycle.go); usingBuiltin: no task file was
	// found, so it is the task file.
	builtinPath  string
	builtinErr   error
	usingBuiltin bool

	// early are the plugins started while the task file loads, and
	// startKey and startFile where the command line's plugins are
	// remembered for that (prestart.go).
	early               *prestarted
	startKey, startFile string
	// task is the task the command line runs, if it runs one.
	task string
}

// Main runs vmflow and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, environ: os.Environ()}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb" {
		a.isTTY = true
	}
	args = hoistGlobalFlags(args)
	a.args = args
	a.json = wantsJSON(args[1:])
	a.pre = scanPre(args[1:])
	// Task files and commands find vmflow's state directory in
	// VMFLOW_STATE_DIR (env("VMFLOW_STATE_DIR") in a task file).
	if sd, err := resolveStateDir(a.pre.stateDir); err == nil {
		a.environ = setEnv(a.environ, "VMFLOW_STATE_DIR", sd)
	}
	// Task commands come from the task file; if there is none, only the
	// built-in commands exist. A command that needs no task file does not
	// load one (the shipped lifecycle alone takes tens of milliseconds).
	if noTaskFile[commandName(args[1:])] {
		return a.exitCode(a.cliApp().Run(args))
	}
	if path, err := a.findTaskFile(a.pre.file); err == nil {
		if len(args) > 1 && args[1] == "__complete" {
			// Completion keeps the listing in the list cache too, and
			// answers what it can from it (complete.go).
			if abs, err := filepath.Abs(path); err == nil {
				a.listCache, a.cacheKey = listCachePath(abs), listCacheKey(abs, a.pre.vars, a.environ)
				if tasks, hit := readListCache(a.listCache, a.cacheKey); hit && a.fastComplete(tasks, args[2:]) {
					return exitOK
				}
			}
		}
		if asJSON, ok := listOnly(args[1:]); ok {
			if abs, err := filepath.Abs(path); err == nil {
				a.listCache, a.cacheKey = listCachePath(abs), listCacheKey(abs, a.pre.vars, a.environ)
				if tasks, hit := readListCache(a.listCache, a.cacheKey); hit {
					if a.usingBuiltin && !asJSON {
						fmt.Fprintln(stderr, builtinNote)
					}
					if err := printList(stdout, tasks, asJSON); err != nil {
						return a.exitCode(err)
					}
					return exitOK
				}
			}
		}
		a.task = a.taskOf(args[1:])
		if abs, err := filepath.Abs(path); err == nil {
			a.prestart(abs, args[1:])
		}
		a.load(path, a.pre.vars, true)
	}
	err := a.cliApp().Run(args)
	if a.early != nil { // nothing ran that took them
		a.early.mgr.Close()
	}
	return a.exitCode(err)
}

func (a *app) exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, syscall.EPIPE) {
		// The reader went away (vmflow runs | head): what it did not
		// read is not an error to report; the status says it was cut.
		return exitFailed
	}
	code := exitFailed
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if !ee.printed && ee.err != nil {
			fmt.Fprintln(a.stderr, "Error:", ee.err)
		}
	} else {
		fmt.Fprintln(a.stderr, "Error:", err)
	}
	if a.json {
		a.errorEvent(err, code)
	}
	return code
}

// findTaskFile resolves -f, else ./tasks.hcl, else the nearest tasks.hcl in
// a parent directory, else the default lifecycle vmflow ships.
func (a *app) findTaskFile(flag string) (string, error) {
	path, err := findTaskFile(flag)
	if err == nil || flag != "" {
		return path, err
	}
	p, berr := a.builtinFile("lifecycle")
	if berr != nil {
		return "", usageErr("no tasks.hcl in this directory or any parent, and the default lifecycle vmflow ships is not available (%v); name a task file with -f FILE", berr)
	}
	a.usingBuiltin = true
	return p, nil
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
	opts := config.Options{Vars: vars, Environ: a.environ, DeferMissingVars: deferMissing, Builtin: a.builtinFile}
	if a.task != "" {
		// A run of one task: the loader may leave out the tasks it
		// does not need (core/config/lazy.go).
		opts.Task, opts.CacheDir, opts.CacheSalt = a.task, cacheDir(), buildStamp()
	}
	if a.usingBuiltin {
		// The shipped lifecycle takes the user's paths from where they are.
		opts.RootWorkDir, _ = os.Getwd()
	}
	a.proj, a.projErr = config.Load(path, opts)
	a.projFor = path
}

// project returns the task file for a command, loading it again when the
// command's flags name another file or add variables. Errors are printed.
func (a *app) project(c *cli.Context, extraVars []string) (*config.Project, error) {
	path, err := a.findTaskFile(c.String("file"))
	if err != nil {
		return nil, err
	}
	vars := append(c.StringSlice("var"), extraVars...)
	if a.proj == nil || path != a.projFor || !slices.Equal(vars, a.pre.vars) {
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

// printDiags prints diagnostics with source snippets and returns the exit
// error for them (exit 2) when any is an error.
func (a *app) printDiags(diags hcl.Diagnostics) error {
	if len(diags) == 0 {
		return nil
	}
	if a.json {
		a.diagEvents(diags)
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
	// hcl's writer names the line; editors and the issue tracker want the
	// column too, so "on f.hcl line 3" becomes "on f.hcl:3:14".
	var buf bytes.Buffer
	wr := hcl.NewDiagnosticTextWriter(&buf, files, uint(width), a.isTTY)
	for _, d := range diags {
		buf.Reset()
		_ = wr.WriteDiagnostic(d)
		out := buf.String()
		if d.Subject != nil {
			s := d.Subject
			out = strings.Replace(out, fmt.Sprintf("on %s line %d", s.Filename, s.Start.Line),
				fmt.Sprintf("on %s:%d:%d", s.Filename, s.Start.Line, s.Start.Column), 1)
		}
		fmt.Fprint(a.stderr, out)
	}
	if diags.HasErrors() {
		return &exitError{code: exitUsage, err: errors.New("invalid task file"), printed: true}
	}
	return nil
}

// stateDir resolves --state-dir, VMFLOW_STATE_DIR, then
// ${XDG_STATE_HOME:-~/.local/state}/vmflow.
func (a *app) stateDir(c *cli.Context) (string, error) {
	return resolveStateDir(c.String("state-dir"))
}

func resolveStateDir(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
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

// setEnv sets key in an environment list, replacing an earlier value.
func setEnv(env []string, key, val string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+val)
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

// logs are vmflow's two logs. main carries vmflow's and the steps' log
// lines: warnings on stderr, everything with -v. plugins carries the
// plugin processes' own chatter (start, exit, stderr lines): only with -v.
// Once a run starts, both also go, in full, to vmflow.log in its directory.
type logs struct {
	main, plugins hclog.InterceptLogger
	// red masks a run's secrets in every log line, the plugins' own
	// stderr included, once the plan says what they are.
	red *redactWriters
}

func (a *app) logs(verbose bool, out io.Writer) logs {
	level, pluginLevel := hclog.Warn, hclog.Off
	if verbose {
		level, pluginLevel = hclog.Debug, hclog.Debug
	}
	red := &redactWriters{}
	out = red.wrap(out)
	return logs{
		main:    hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "vmflow", Level: level, Output: out}),
		plugins: hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "plugin", Level: pluginLevel, Output: out}),
		red:     red,
	}
}

// toFile copies both logs, at debug level, into a file.
func (l logs) toFile(path string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		l.main.Warn("cannot write the run log", "error", err)
		return
	}
	sink := hclog.NewSinkAdapter(&hclog.LoggerOptions{Level: hclog.Debug, Output: l.red.wrap(f)})
	l.main.RegisterSink(sink)
	l.plugins.RegisterSink(sink)
}

// newEngine loads what a task needs to run.
// early, if not nil, holds plugins started ahead (prestart.go), and lg
// is then its logs.
func (a *app) newEngine(c *cli.Context, proj *config.Project, lg logs, early *prestarted) (*engine.Engine, *host.Manager, error) {
	sd, err := a.stateDir(c)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(sd, 0o700); err != nil {
		return nil, nil, err
	}
	finder := a.finder(proj.Root.Dir)
	trust, diags := host.NewTrust(proj.Root.Dir, finder)
	if diags.HasErrors() {
		return nil, nil, a.printDiags(diags)
	}
	mgr := host.NewManager(lg.plugins)
	if early != nil {
		mgr = early.mgr
	}
	eng := engine.New(proj, finder, mgr, sd, lg.main)
	eng.PluginLogger = lg.plugins.Named("vmflow")
	eng.Trust = trust
	eng.Key = a.journalKey()
	return eng, mgr, nil
}

// getenv reads vmflow's environment.
func (a *app) getenv(key string) string {
	for i := len(a.environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(a.environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// journalKey is the key that seals sensitive values in journals.
func (a *app) journalKey() *journal.Key {
	return journal.NewKey(journal.KeyPath(a.getenv))
}

// journals is the runs store of the state directory, able to open the
// sensitive values it holds.
func (a *app) journals(c *cli.Context) (*journal.Store, error) {
	sd, err := a.stateDir(c)
	if err != nil {
		return nil, err
	}
	s := journal.New(sd)
	s.Key = a.journalKey()
	return s, nil
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
	for _, cmd := range ca.Commands {
		// A bad flag is a usage error (exit 2), said once, with where to
		// look, rather than the command's whole help and an exit 1.
		cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
			return usageErr("%v; vmflow %s --help shows its flags", err, c.Command.Name)
		}
	}
	builtin := map[string]bool{}
	for _, cmd := range ca.Commands {
		builtin[cmd.Name] = true
	}
	if a.proj != nil && !a.projErr.HasErrors() {
		for _, t := range a.proj.Runnable() {
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
		if a.proj != nil {
			if t := a.proj.Task(name); t != nil && t.Internal {
				return internalTaskErr(a.proj, t)
			}
		}
		msg := fmt.Sprintf("no command or task named %q", name)
		if a.proj != nil {
			names := a.proj.RunnableNames()
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
