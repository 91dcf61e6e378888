// Package config loads task files: it parses HCL, follows includes,
// resolves variable values and checks everything that can be checked
// without starting a plugin (names, duplicates, references between steps).
// It never starts a plugin; core/engine binds steps to plugin schemas.
package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/vmflow/vmflow/core/records"
)

// BuiltinPlugin is the local plugin name of vmflow's built-in actions
// (builtin.exec). It needs no plugin block and cannot be redeclared.
const BuiltinPlugin = "builtin"

// Reserved step arguments: they configure the step itself and are never
// passed to the action.
const (
	ArgAction    = "action"
	ArgDependsOn = "depends_on"
	ArgIf        = "if"
	// ArgTimeout limits how long the step (and its undo) may take.
	ArgTimeout = "timeout"
	// ArgCommit makes the step a commit point: once it completed, the run
	// only goes forward.
	ArgCommit = "commit"
	// ArgTask makes the step a call of another task: task = "provision".
	ArgTask = "task"
	// ArgForEach makes the step one instance per key of a map (or
	// element of a set of strings): for_each = { kernel = …, initrd = … }.
	ArgForEach = "for_each"
	// ArgIgnoreError lets the run go on when the step's action fails: the
	// step then reads as skipped (its outputs null), as go-task's
	// ignore_error. Only for an action that makes nothing to undo.
	ArgIgnoreError = "ignore_error"
)

// IsReservedArg reports whether name is a step meta-argument.
func IsReservedArg(name string) bool {
	switch name {
	case ArgAction, ArgDependsOn, ArgIf, ArgTimeout, ArgCommit, ArgTask, ArgForEach, ArgIgnoreError:
		return true
	}
	return false
}

// Project is a loaded task file with everything it includes.
type Project struct {
	// Root is the task file named on the command line.
	Root *File
	// Files are all loaded files, the root first.
	Files []*File
	// Tasks in listing order: the root's in file order, then each include's.
	Tasks []*Task
	// Env is the environment expressions and the exec action see: the
	// process environment over the root's .env file.
	Env map[string]string
	// Deferred holds the errors Options.DeferMissingVars put off: report
	// them before evaluating anything.
	Deferred hcl.Diagnostics
	// Sources maps file names to their parsed files, for printing
	// diagnostics with source snippets.
	Sources map[string]*hcl.File
	// Partial: only the tasks Options.Task needs were loaded (lazy.go).
	Partial bool
}

// Task returns the task with the given qualified name.
func (p *Project) Task(name string) *Task {
	return find(p.Tasks, func(t *Task) bool { return t.Name == name })
}

// find is the first of xs that match picks, or nil.
func find[T any](xs []*T, match func(*T) bool) *T {
	for _, x := range xs {
		if match(x) {
			return x
		}
	}
	return nil
}

// TaskNames returns every qualified task name in listing order.
func (p *Project) TaskNames() []string {
	out := make([]string, len(p.Tasks))
	for i, t := range p.Tasks {
		out[i] = t.Name
	}
	return out
}

// Runnable returns the tasks a user can run by name (all but internal
// ones) in listing order.
func (p *Project) Runnable() []*Task {
	var out []*Task
	for _, t := range p.Tasks {
		if !t.Internal {
			out = append(out, t)
		}
	}
	return out
}

// RunnableNames returns the names of the tasks Runnable returns.
func (p *Project) RunnableNames() []string {
	var out []string
	for _, t := range p.Runnable() {
		out = append(out, t.Name)
	}
	return out
}

// Callers names the tasks with a step that calls t.
func (p *Project) Callers(t *Task) []string {
	var out []string
	for _, c := range p.Tasks {
		for _, s := range c.Steps {
			if s.Called == t {
				out = append(out, c.Name)
				break
			}
		}
	}
	return out
}

// File is one task file.
type File struct {
	Path string
	Dir  string
	// Sum is the sha256 (hex) of the content it was loaded from.
	Sum string
	// WorkDir is where relative paths in its functions (file, abspath)
	// and local commands start: its own directory, except for a task
	// file vmflow ships, which works where the user does.
	WorkDir string
	// Namespace is "" for the root file, the include's name ("team") for an
	// included file, "team.sub" for one included from there.
	Namespace string
	Variables []*Variable
	// VarValues is the object of resolved variable values (var.*).
	VarValues cty.Value
	// LocalNames are the file's locals; LocalValues their values
	// (local.*), worked out when the file loaded.
	LocalNames  []string
	LocalValues cty.Value
	Plugins     map[string]*PluginDecl
	// Params are the file's shared params (param blocks outside a task),
	// which tasks take with params = [param.NAME, …].
	Params   map[string]*Param
	Includes []*Include
	Funcs    map[string]function.Function
	// Parent is the file that includes this one (nil for the root): an
	// included file sees its variables and plugins, unless it declares
	// its own of the same name.
	Parent *File
}

// Variable is a variable block.
type Variable struct {
	Name        string
	Type        cty.Type
	Default     cty.Value // cty.NilVal when there is none
	Description string
	Sensitive   bool
	// Options are the values it accepts (options = [...]); nil: any.
	Options     []cty.Value
	Validations []*Validation
	DeclRange   hcl.Range
	// Origin says where its value came from: "the default", "--var",
	// "environment variable VMFLOW_VAR_backend", a .env file, …
	Origin string
}

// Validation is a variable's validation block.
type Validation struct {
	Condition    hcl.Expression
	ErrorMessage hcl.Expression
	DeclRange    hcl.Range
}

// PluginDecl binds a local name to a plugin: plugin "hypervisor" {...}.
type PluginDecl struct {
	Name   string
	Source hcl.Expression
	Config hcl.Expression // nil when absent
	// Host names where the plugin's resources live (host = var.host), for
	// display: the run header, run_started, vmflow runs. nil when absent.
	Host hcl.Expression
	// Timeout limits how long the plugin may take to be configured (a
	// duration string or seconds). nil when absent: the engine's default.
	Timeout   hcl.Expression
	File      *File
	DeclRange hcl.Range
}

// Include is an include block.
type Include struct {
	Name string
	Path string // absolute
	Vars map[string]cty.Value
	// Optional: a file that does not exist is skipped (optional = true).
	Optional bool
	// Flatten: its tasks keep their own names (flatten = true), rather
	// than NAME.task.
	Flatten bool
	// Shipped: the file is one vmflow ships (path = "vmflow:NAME").
	Shipped   bool
	DeclRange hcl.Range
}

// Task is a task block.
type Task struct {
	// Name is qualified: "create", or "team.build" for an included task.
	Name        string
	LocalName   string
	Description string
	// Wizard asks for every param not given on the command line when
	// vmflow runs on a terminal (wizard = true).
	Wizard bool
	// Internal tasks are called by steps only: not listed, not run from
	// the command line (internal = true).
	Internal bool
	// Supersedes: when a run of this task succeeds, earlier runs holding
	// one of its locks that were interrupted, or failed part-way, are
	// marked superseded (the task removes what they were about: purge).
	Supersedes bool
	// ReadOnly: the task changes nothing (read_only = true): its runs
	// are not journaled, so they are not in vmflow runs and cannot be
	// resumed; every step's action must be one without an undo.
	ReadOnly      bool
	ReadOnlyRange hcl.Range
	Params        []*Param
	Lock          hcl.Expression // nil when absent
	// Preconditions are checked before anything runs, once params are
	// known.
	Preconditions []*Validation
	Steps         []*Step
	Outputs       []*Output
	// Locals are the task's own locals, in an order in which each comes
	// after those it uses; LocalNames their names.
	Locals     []*hcl.Attribute
	LocalNames []string
	File       *File
	DeclRange  hcl.Range
}

// Step returns the named step.
func (t *Task) Step(name string) *Step {
	return find(t.Steps, func(s *Step) bool { return s.Name == name })
}

// StepCount is how many steps a run of the task has: a step that calls
// a task counts as that task's steps.
func (t *Task) StepCount() int {
	n := 0
	for _, s := range t.Steps {
		if s.Called != nil {
			n += s.Called.StepCount()
		} else {
			n++
		}
	}
	return n
}

// Param returns the named param.
func (t *Task) Param(name string) *Param {
	return find(t.Params, func(p *Param) bool { return p.Name == name })
}

// Param is a task parameter; positional in declared order, or a flag.
type Param struct {
	Name        string
	Type        cty.Type
	Default     cty.Value // cty.NilVal: required
	Description string
	// Options are the values the param accepts (for a list or set param,
	// the values its elements may take), converted to that type; nil
	// accepts any value.
	Options []cty.Value
	// Prompt is the wizard's question; "" means Question falls back to the
	// description.
	Prompt string
	// Complete says where shell completion finds the param's values:
	// "records:COLLECTION" (the names of the machine records in that
	// collection of the state directory, such as machines/libvirt), or
	// "task:TASK.OUTPUT" (run the read-only task TASK with the params of
	// the same names already given, and offer its list output OUTPUT).
	Complete string
	// Applies is when the param matters (applies = param.static_ip !=
	// ""), from var.* and the task's params; nil: always.
	// The wizard does not ask a param that does not apply.
	Applies hcl.Expression
	// NotAsked (ask = false): the wizard leaves an optional param to its
	// flag, as it does a finer setting most runs keep at its default.
	NotAsked bool
	// Shared: declared outside any task, taken by params = [param.NAME].
	Shared    bool
	DeclRange hcl.Range
}

// ParamApplies evaluates p's applies with the values known so far (given
// or answered; a param not in known counts with its default, a required
// one as unknown). A param without applies, or whose applies cannot be
// decided, applies.
func (t *Task) ParamApplies(p *Param, known map[string]cty.Value) bool {
	if p.Applies == nil || t.File == nil {
		return true
	}
	vals := map[string]cty.Value{}
	for _, q := range t.Params {
		switch v, ok := known[q.Name]; {
		case ok:
			vals[q.Name] = v
		case !q.Required():
			vals[q.Name] = q.Default
		default:
			vals[q.Name] = cty.UnknownVal(q.Type)
		}
	}
	ctx := t.File.EvalContext(cty.ObjectVal(vals), cty.NilVal)
	v, diags := p.Applies.Value(ctx)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() {
		return true
	}
	v, err := convert.Convert(v, cty.Bool)
	if err != nil || !v.IsKnown() || v.IsNull() {
		return true
	}
	return v.True()
}

// CheckComplete checks a param's complete attribute.
func CheckComplete(c string) error {
	kind, arg, _ := strings.Cut(c, ":")
	switch kind {
	case "records":
		return records.CheckCollection(arg)
	case "task":
		task, out, ok := strings.Cut(arg, ".")
		if ok && task != "" && out != "" {
			return nil
		}
		return fmt.Errorf("complete = %q: name a read-only task and its output, as in \"task:snapshots.snapshots\"", c)
	}
	return fmt.Errorf("complete = %q: it is \"records:COLLECTION\" (machine records, as in \"records:machines/${var.backend}\") or \"task:TASK.OUTPUT\" (a read-only task's list output)", c)
}

// Required reports whether the param has no default.
func (p *Param) Required() bool { return p.Default == cty.NilVal }

// Step is a step block: it runs an action, or calls a task.
type Step struct {
	Name string
	// Plugin and ActionName come from action = <plugin>.<action>.
	Plugin      string
	ActionName  string
	ActionRange hcl.Range
	// Call is the task a step calls (task = "provision"), as written;
	// Called is that task, found once every file is loaded. CallRange
	// is where the name is written.
	Call      string
	Called    *Task
	CallRange hcl.Range
	// Args are the action's arguments (the called task's params) in
	// source order.
	Args      []*hcl.Attribute
	DependsOn []StepRef
	If        hcl.Expression // nil when absent
	// ForEach makes the step one instance per key (nil when absent): its
	// keys are known before the run, its values may come from steps;
	// each.key and each.value name them in the step's expressions.
	ForEach hcl.Expression
	// Timeout is the step's own limit (a duration string such as "10m",
	// or a number of seconds); nil: the action's default.
	Timeout hcl.Expression
	// Commit marks a commit point: once this step has completed, nothing
	// the run did is undone any more; it can only be finished (resumed).
	// CommitIf is set instead when commit is an expression of variables
	// and params (commit = param.commit), worked out before the run.
	Commit   bool
	CommitIf hcl.Expression
	// IgnoreError (ignore_error = true): a failure of the action does not
	// fail the run; the step reads as skipped, its outputs null.
	IgnoreError bool
	DeclRange   hcl.Range
	// Refs are the steps this step's expressions refer to, in order of
	// appearance (duplicates removed).
	Refs []StepRef
}

// Arg returns the named argument.
func (s *Step) Arg(name string) *hcl.Attribute {
	return find(s.Args, func(a *hcl.Attribute) bool { return a.Name == name })
}

// StepRef is a reference to a step (step.<name>, optionally .<output>).
type StepRef struct {
	Step string
	// Key is the instance of a for_each step a reference names
	// (step.copy["kernel"].path); "" for none or all of them.
	Key    string
	Output string // "" for a whole-step reference (depends_on)
	Range  hcl.Range
}

// Output is a task output block.
type Output struct {
	Name        string
	Value       hcl.Expression
	Description string
	Sensitive   bool
	DeclRange   hcl.Range
	Refs        []StepRef
}

// Plugin returns the plugin block a name stands for in this file: its
// own, else the one the files that include it see.
func (f *File) Plugin(name string) *PluginDecl {
	return inherited(f, func(g *File) *PluginDecl { return g.Plugins[name] })
}

// SharedParam returns the shared param a name stands for in this file: its
// own, else the one the files that include it see.
func (f *File) SharedParam(name string) *Param {
	return inherited(f, func(g *File) *Param { return g.Params[name] })
}

// inherited is what get finds in this file, else in the nearest file that
// includes it.
func inherited[T any](f *File, get func(*File) *T) *T {
	for g := f; g != nil; g = g.Parent {
		if x := get(g); x != nil {
			return x
		}
	}
	return nil
}

// SharedParamNames lists the shared params this file sees.
func (f *File) SharedParamNames() []string {
	return namesSeen(f, func(g *File) []string { return slices.Collect(maps.Keys(g.Params)) })
}

// PluginNames lists the plugin names this file sees.
func (f *File) PluginNames() []string {
	return namesSeen(f, func(g *File) []string { return slices.Collect(maps.Keys(g.Plugins)) })
}

// namesSeen lists, sorted and once each, the names of a file and of the
// files that include it.
func namesSeen(f *File, names func(*File) []string) []string {
	var out []string
	for g := f; g != nil; g = g.Parent {
		out = append(out, names(g)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// inheritVariables gives an included file the variables of the files that
// include it, where it declares none of that name.
func (f *File) inheritVariables() {
	if f.Parent == nil || f.Parent.VarValues == cty.NilVal || !f.Parent.VarValues.Type().IsObjectType() {
		return
	}
	vals := map[string]cty.Value{}
	for k, v := range f.Parent.VarValues.AsValueMap() {
		vals[k] = v
	}
	if f.VarValues != cty.NilVal && f.VarValues.Type().IsObjectType() {
		for k, v := range f.VarValues.AsValueMap() {
			vals[k] = v
		}
	}
	if len(vals) > 0 {
		f.VarValues = cty.ObjectVal(vals)
	}
}
