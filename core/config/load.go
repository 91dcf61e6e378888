package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/joho/godotenv"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/vmflow/vmflow/core/lang"
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

var fileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "plugin", LabelNames: []string{"name"}},
		{Type: "task", LabelNames: []string{"name"}},
		{Type: "include", LabelNames: []string{"name"}},
		{Type: "locals"},
	},
}

// loadFile loads one file. stack holds the files that include it, to catch
// include cycles; includeVars pins variables; from is the include block
// and parent the file it is in; workDir, when set, is where its relative
// paths start (else its own directory).
func (l *loader) loadFile(abs, ns string, includeVars map[string]cty.Value, stack []string, from *hcl.Range, parent *File, workDir string) *File {
	for _, s := range stack {
		if s == abs {
			chain := make([]string, 0, len(stack)+1)
			for _, c := range stack {
				chain = append(chain, DisplayPath(c))
			}
			chain = append(chain, DisplayPath(abs))
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Include cycle",
				Detail:   fmt.Sprintf("A task file includes itself: %s.", strings.Join(chain, " → ")),
				Subject:  from,
			})
			return nil
		}
	}
	name := DisplayPath(abs)
	src, err := l.opts.ReadFile(abs)
	if err != nil {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot read task file",
			Detail:   err.Error(),
			Subject:  from,
		})
		return nil
	}
	hf, diags := hclsyntax.ParseConfig(l.lz.source(abs, src), name, hcl.InitialPos)
	hf.Bytes = src // what diagnostics quote
	if stack == nil {
		l.rootFile = hf
	}
	l.proj.Sources[name] = hf
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	f := &File{Path: abs, Dir: filepath.Dir(abs), WorkDir: workDir, Namespace: ns, Plugins: map[string]*PluginDecl{}, Parent: parent}
	if f.WorkDir == "" {
		f.WorkDir = f.Dir
	}
	sum := sha256.Sum256(src)
	f.Sum = hex.EncodeToString(sum[:])
	f.Funcs = lang.Functions(f.WorkDir, l.proj.Env)
	l.proj.Files = append(l.proj.Files, f)
	l.diags = append(l.diags, unknownFunctions(hf.Body.(*hclsyntax.Body), f.Funcs)...)

	content, diags := hf.Body.Content(fileSchema)
	l.diags = append(l.diags, diags...)

	byType := map[string][]*hcl.Block{}
	for _, b := range content.Blocks {
		byType[b.Type] = append(byType[b.Type], b)
	}
	l.decodeVariables(f, byType["variable"], includeVars)
	f.inheritVariables()
	for _, k := range sortedKeys(includeVars) {
		if !f.declaresVar(k) {
			var names []string
			for _, v := range f.Variables {
				names = append(names, v.Name)
			}
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Include sets an undeclared variable",
				Detail:  fmt.Sprintf("The include's vars set %q, but %s declares no such variable.%s", k, name, Suggest(k, names)),
				Subject: from,
			})
		}
	}
	l.decodeLocals(f, byType["locals"])
	l.lz.checkState(f)
	for _, b := range byType["plugin"] {
		l.decodePlugin(f, b)
	}
	var tasks []*Task
	seenTask := map[string]*Task{}
	for _, b := range byType["task"] {
		t := l.decodeTask(f, b)
		if t == nil {
			continue
		}
		if prev, ok := seenTask[t.LocalName]; ok {
			l.diags = append(l.diags, duplicate("task", t.LocalName, b.DefRange, prev.DeclRange))
			continue
		}
		seenTask[t.LocalName] = t
		tasks = append(tasks, t)
	}
	l.proj.Tasks = append(l.proj.Tasks, tasks...)

	seenInc := map[string]hcl.Range{}
	for _, b := range byType["include"] {
		inc := l.decodeInclude(f, b)
		if inc == nil {
			continue
		}
		if prev, ok := seenInc[inc.Name]; ok {
			l.diags = append(l.diags, duplicate("include", inc.Name, b.DefRange, prev))
			continue
		}
		if seenTask[inc.Name] != nil {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Include name clashes with a task",
				Detail:   fmt.Sprintf("A task named %q is declared in this file; give the include another name.", inc.Name),
				Subject:  b.LabelRanges[0].Ptr(),
			})
			continue
		}
		seenInc[inc.Name] = b.DefRange
		if inc.Optional {
			if _, err := l.opts.ReadFile(inc.Path); errors.Is(err, fs.ErrNotExist) {
				continue // an optional include that is not there: nothing to load
			}
		}
		f.Includes = append(f.Includes, inc)
		childNS := inc.Name
		switch {
		case inc.Flatten:
			childNS = ns // its tasks keep their names
		case ns != "":
			childNS = ns + "." + inc.Name
		}
		workDir := ""
		if inc.Shipped {
			// A file vmflow ships takes the user's paths from where
			// they work, not from where it was written out.
			workDir = f.WorkDir
		}
		l.loadFile(inc.Path, childNS, inc.Vars, append(append([]string(nil), stack...), abs), inc.DeclRange.Ptr(), f, workDir)
	}
	return f
}

func duplicate(kind, name string, at, prev hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Duplicate %s %q", kind, name),
		Detail:   fmt.Sprintf("A %s named %q was already declared at %s. Names must be unique.", kind, name, prev),
		Subject:  at.Ptr(),
	}
}

// varContext is the evaluation context with var.* and functions.
func (f *File) varContext() *hcl.EvalContext {
	vars := map[string]cty.Value{"var": f.VarValues}
	if f.LocalValues != cty.NilVal {
		vars["local"] = f.LocalValues
	}
	return &hcl.EvalContext{Variables: vars, Functions: f.Funcs}
}

// EvalContext is the context for step arguments, outputs and locks: var.*,
// local.*, param.* and step.*, plus functions. params and steps may be cty.NilVal.
func (f *File) EvalContext(params, steps cty.Value) *hcl.EvalContext {
	vars := map[string]cty.Value{"var": f.VarValues}
	if f.LocalValues != cty.NilVal {
		vars["local"] = f.LocalValues
	}
	if params != cty.NilVal {
		vars["param"] = params
	}
	if steps != cty.NilVal {
		vars["step"] = steps
	}
	return &hcl.EvalContext{Variables: vars, Functions: f.Funcs}
}

var pluginSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "source", Required: true},
		{Name: "config"},
	},
}

func (l *loader) decodePlugin(f *File, b *hcl.Block) {
	name := b.Labels[0]
	if !hclsyntax.ValidIdentifier(name) {
		l.diags = append(l.diags, badName("plugin", name, b.LabelRanges[0]))
		return
	}
	if name == BuiltinPlugin {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Reserved plugin name",
			Detail:   fmt.Sprintf("%q names vmflow's built-in actions (builtin.exec); choose another name.", name),
			Subject:  b.LabelRanges[0].Ptr(),
		})
		return
	}
	if prev, ok := f.Plugins[name]; ok {
		l.diags = append(l.diags, duplicate("plugin", name, b.DefRange, prev.DeclRange))
		return
	}
	content, diags := b.Body.Content(pluginSchema)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return
	}
	d := &PluginDecl{Name: name, Source: content.Attributes["source"].Expr, File: f, DeclRange: b.DefRange}
	l.diags = append(l.diags, l.checkRefs(d.Source, f, nil, "a plugin's source", "var")...)
	if a, ok := content.Attributes["config"]; ok {
		d.Config = a.Expr
		l.diags = append(l.diags, l.checkRefs(d.Config, f, nil, "a plugin's config", "var")...)
	}
	f.Plugins[name] = d
}

var includeSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "path", Required: true},
		{Name: "vars"},
		{Name: "optional"},
		{Name: "flatten"},
	},
}

func (l *loader) decodeInclude(f *File, b *hcl.Block) *Include {
	name := b.Labels[0]
	if !validTaskName(name) {
		l.diags = append(l.diags, badName("include", name, b.LabelRanges[0]))
		return nil
	}
	content, diags := b.Body.Content(includeSchema)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	inc := &Include{Name: name, DeclRange: b.DefRange}
	pa := content.Attributes["path"]
	if d := l.checkRefs(pa.Expr, f, nil, "an include's path", "var"); d.HasErrors() {
		l.diags = append(l.diags, d...)
		return nil
	}
	pv, diags := pa.Expr.Value(f.varContext())
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	if !pv.IsWhollyKnown() {
		l.diags = append(l.diags, unknownInclude("path", pa.Expr.Range()))
		return nil
	}
	if pv.IsNull() || pv.Type() != cty.String {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Invalid include path",
			Detail: "path must be a string: the task file to include, relative to this one.", Subject: pa.Expr.Range().Ptr(),
		})
		return nil
	}
	p := pv.AsString()
	if name, ok := strings.CutPrefix(p, BuiltinPrefix); ok {
		err := fmt.Errorf("vmflow ships no task file %q", name)
		bp := ""
		if l.opts.Builtin != nil {
			bp, err = l.opts.Builtin(name)
		}
		if err != nil {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Built-in task file not available",
				Detail: fmt.Sprintf("%s: %v.", p, err), Subject: pa.Expr.Range().Ptr(),
			})
			return nil
		}
		p = bp
		inc.Shipped = true
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(f.Dir, p)
	}
	inc.Path = filepath.Clean(p)
	inc.Flatten = l.constBool(content.Attributes, "flatten")
	inc.Optional = l.constBool(content.Attributes, "optional")
	if va, ok := content.Attributes["vars"]; ok {
		if d := l.checkRefs(va.Expr, f, nil, "an include's vars", "var"); d.HasErrors() {
			l.diags = append(l.diags, d...)
			return nil
		}
		vv, diags := va.Expr.Value(f.varContext())
		l.diags = append(l.diags, diags...)
		if diags.HasErrors() {
			return nil
		}
		if !vv.IsWhollyKnown() {
			l.diags = append(l.diags, unknownInclude("vars", va.Expr.Range()))
			return nil
		}
		if vv.IsNull() || !(vv.Type().IsObjectType() || vv.Type().IsMapType()) {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid include vars",
				Detail: "vars must be an object: { name = value, … }.", Subject: va.Expr.Range().Ptr(),
			})
			return nil
		}
		inc.Vars = vv.AsValueMap()
	}
	return inc
}

func unknownInclude(attr string, r hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Include " + attr + " not known",
		Detail:  fmt.Sprintf("The include's %s uses a variable that has no value, so vmflow cannot tell which tasks it brings. Give the variable a value.", attr),
		Subject: r.Ptr(),
	}
}

func badName(kind, name string, r hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Invalid %s name", kind),
		Detail:   fmt.Sprintf("%q is not a valid %s name: use letters, digits, '_' and '-', starting with a letter.", name, kind),
		Subject:  r.Ptr(),
	}
}

// validTaskName: letters, digits, '_' and '-', starting with a letter. Dots
// separate include namespaces, so a task name never has one.
func validTaskName(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Suggest returns " Did you mean "x"?" for the closest name, or "". Among
// equally close names the first in sorted order wins, so the message is
// the same on every run.
func Suggest(name string, candidates []string) string {
	candidates = append([]string(nil), candidates...)
	sort.Strings(candidates)
	best, bestD := "", 3
	for _, c := range candidates {
		if d := levenshtein.Distance(name, c, nil); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

// checkTaskNames refuses two tasks of one name in different files (a
// flattened include gives its tasks the names they have in their file).
func (l *loader) checkTaskNames() {
	seen := map[string]*Task{}
	for _, t := range l.proj.Tasks {
		if prev, ok := seen[t.Name]; ok {
			if prev.File != t.File {
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: fmt.Sprintf("Duplicate task %q", t.Name),
					Detail:  fmt.Sprintf("Task %q is declared at %s already; a flattened include keeps its tasks' names, so they must not clash. Rename one, or drop flatten = true.", t.Name, prev.DeclRange),
					Subject: t.DeclRange.Ptr(),
				})
			}
			continue
		}
		seen[t.Name] = t
	}
}

// unknownFunctions finds every call of a function the task language does
// not have, anywhere in a file: without it, a typo in a precondition or
// an output would pass `vmflow validate` and fail only when evaluated.
func unknownFunctions(body *hclsyntax.Body, funcs map[string]function.Function) hcl.Diagnostics {
	names := make([]string, 0, len(funcs))
	for n := range funcs {
		names = append(names, n)
	}
	var diags hcl.Diagnostics
	check := func(n hclsyntax.Node) hcl.Diagnostics {
		call, ok := n.(*hclsyntax.FunctionCallExpr)
		if !ok {
			return nil
		}
		if _, ok := funcs[call.Name]; ok {
			return nil
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Call to unknown function",
			Detail:  fmt.Sprintf("There is no function named %q.%s", call.Name, Suggest(call.Name, names)),
			Subject: call.NameRange.Ptr(),
		})
		return nil
	}
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		for name, a := range b.Attributes {
			// A type (list(string), object({…})) is written like a call
			// but is no expression.
			if name == "type" {
				continue
			}
			_ = hclsyntax.VisitAll(a.Expr, check)
		}
		for _, blk := range b.Blocks {
			walk(blk.Body)
		}
	}
	walk(body)
	sort.Slice(diags, func(i, j int) bool { return diags[i].Subject.Start.Byte < diags[j].Subject.Start.Byte })
	return diags
}
