package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/joho/godotenv"
	"github.com/zclconf/go-cty/cty"
)

// Options tune Load.
type Options struct {
	// Vars are --var name=value arguments, in the order given.
	Vars []string
	// Overrides set variables above every other source (resume uses the
	// values a run was started with).
	Overrides map[string]cty.Value
	// Environ is the process environment; nil means os.Environ().
	Environ []string
	// ReadFile reads task files; nil means os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// SkipDotEnv ignores the .env file beside the task file.
	SkipDotEnv bool
	// DeferMissingVars loads even when a required variable has no value:
	// its value is unknown and the error goes to Project.Deferred. Listing
	// tasks needs no variable values; running them does.
	DeferMissingVars bool
	// RootWorkDir is the directory the root file's relative paths (in
	// file(), abspath(), local commands) are taken from; "" means its own
	// directory. vmflow sets it to where the user is when the root is a
	// task file it ships.
	RootWorkDir string
	// Builtin finds a task file that ships with vmflow on disk, by its
	// name: include "vm" { path = "vmflow:lifecycle" } includes
	// Builtin("lifecycle"). nil: vmflow ships none.
	Builtin func(name string) (string, error)
	// Task, with CacheDir, names the one task the caller will run: Load
	// may then leave out the tasks it does not need (see lazy.go), and
	// says so in Project.Partial. CacheDir is where it keeps what it
	// needs for that; CacheSalt tells apart the builds of the caller
	// whose loading may differ (vmflow's version).
	Task, CacheDir, CacheSalt string
}

// BuiltinPrefix starts an include path that names a task file shipped
// with vmflow.
const BuiltinPrefix = "vmflow:"

// VarEnvPrefix prefixes environment variables that set task-file
// variables: VMFLOW_VAR_backend=proxmox-stub.
const VarEnvPrefix = "VMFLOW_VAR_"

type cliVar struct {
	name, value string
	used        bool
}

type loader struct {
	opts    Options
	proj    *Project
	cliVars map[string]*cliVar
	dotEnv  map[string]string // the .env file's own entries
	envPath string
	// osEnv is the process environment alone, to tell where a value came from.
	osEnv map[string]string
	diags hcl.Diagnostics
	// missing are the references to plugins and variables no file
	// declares, for one message when the root file has them.
	missing []missingRef
	// lz is this load's use of the task index (lazy.go); rootFile the
	// root as parsed.
	lz       *lazyLoad
	rootFile *hcl.File
}

// Load reads the task file at path and everything it includes. The
// returned project is usable only when the diagnostics have no errors;
// it is never nil, so its Sources can show snippets for those errors.
func Load(path string, opts Options) (*Project, hcl.Diagnostics) {
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ()
	}
	proj, diags, redo := load(path, opts, true)
	if redo {
		proj, diags, _ = load(path, opts, false)
	}
	return proj, diags
}

// load is Load, with the task index used when useIndex; redo says that a
// partial load must be done again in full.
func load(path string, opts Options, useIndex bool) (*Project, hcl.Diagnostics, bool) {
	l := &loader{
		opts:    opts,
		proj:    &Project{Env: map[string]string{}, Sources: map[string]*hcl.File{}},
		cliVars: map[string]*cliVar{},
		osEnv:   map[string]string{},
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return l.proj, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid task file path", Detail: err.Error()}}, false
	}
	l.parseCLIVars()
	l.loadEnv(filepath.Dir(abs))
	if l.diags.HasErrors() {
		return l.proj, l.diags, false
	}
	if l.lz = l.startLazy(abs); l.lz != nil && !useIndex {
		l.lz.index, l.lz.keep = nil, nil
	}
	root := l.loadFile(abs, "", nil, nil, nil, nil, opts.RootWorkDir)
	if root == nil {
		return l.proj, l.diags, l.lz != nil && l.lz.index != nil
	}
	l.proj.Root = root
	l.summarizeMissing(root)
	l.checkTaskNames()
	l.resolveCalls()
	names := make([]string, 0, len(l.cliVars))
	for n := range l.cliVars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !l.cliVars[n].used {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Value for undeclared variable",
				Detail:   fmt.Sprintf("--var %s=…: no task file declares a variable named %q.%s", n, n, Suggest(n, l.declaredVarNames())),
			})
		}
	}
	redo := l.finishLazy(l.lz, l.rootFile)
	l.proj.Partial = l.lz != nil && l.lz.index != nil
	return l.proj, l.diags, redo
}

func (l *loader) declaredVarNames() []string {
	var out []string
	for _, f := range l.proj.Files {
		for _, v := range f.Variables {
			out = append(out, v.Name)
		}
	}
	return out
}

func (l *loader) parseCLIVars() {
	for _, kv := range l.opts.Vars {
		name, value, ok := strings.Cut(kv, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid --var argument",
				Detail:   fmt.Sprintf("--var %q: expected name=value, for example --var backend=libvirt.", kv),
			})
			continue
		}
		l.cliVars[name] = &cliVar{name: name, value: value}
	}
}

// loadEnv merges the .env file beside the root task file under the process
// environment: a variable exported in the shell wins over the file.
func (l *loader) loadEnv(dir string) {
	if !l.opts.SkipDotEnv {
		p := filepath.Join(dir, ".env")
		if b, err := l.opts.ReadFile(p); err == nil {
			m, err := godotenv.UnmarshalBytes(b)
			if err != nil {
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid .env file",
					Detail:   fmt.Sprintf("%s: %v", DisplayPath(p), err),
				})
				return
			}
			l.dotEnv, l.envPath = m, DisplayPath(p)
			for k, v := range m {
				l.proj.Env[k] = v
			}
		}
	}
	for _, kv := range l.opts.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			l.proj.Env[k] = v
			l.osEnv[k] = v
		}
	}
}

// DisplayPath shortens an absolute path to one relative to the working
// directory when that is shorter, for messages.
func DisplayPath(abs string) string {
	wd, err := os.Getwd()
	if err != nil {
		return abs
	}
	if rel, err := filepath.Rel(wd, abs); err == nil && len(rel) < len(abs) {
		return rel
	}
	return abs
}
