// Package engine binds a task to its plugins, checks every step against
// the schema its plugin declares, and runs the steps as a graph: independent
// steps at the same time, outputs flowing to later steps, undos in reverse
// on failure, each transition journaled.
package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/vmflow/vmflow/core/builtin"
	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/host"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/core/lang"
	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
)

// Engine prepares and runs the tasks of one project.
type Engine struct {
	Project  *config.Project
	Plugins  *host.Manager
	Finder   *host.Finder
	StateDir string
	Logger   hclog.Logger
	// Trust decides which plugin binaries may run (the lock file); nil
	// runs any binary found.
	Trust *host.Trust
	// Key seals the sensitive values of the journals the engine writes
	// (nil: a run with sensitive values cannot be journaled).
	Key *journal.Key
	// InProcess serves plugin sources from this process instead of a
	// binary (source name → plugin). Tests and embedders use it.
	InProcess map[string]*sdk.Plugin

	mu         sync.Mutex
	bound      map[*config.PluginDecl]*bindOnce
	configured map[*host.Process]*configureOnce
	builtins   map[*config.File]*Plugin
}

type bindOnce struct {
	once  sync.Once
	p     *Plugin
	diags hcl.Diagnostics
}

type configureOnce struct {
	once  sync.Once
	diags protocol.Diagnostics
	err   error
}

// New returns an engine for a loaded project.
func New(proj *config.Project, finder *host.Finder, plugins *host.Manager, stateDir string, logger hclog.Logger) *Engine {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Engine{
		Project: proj, Finder: finder, Plugins: plugins, StateDir: stateDir, Logger: logger,
		bound: map[*config.PluginDecl]*bindOnce{}, configured: map[*host.Process]*configureOnce{},
		builtins: map[*config.File]*Plugin{},
	}
}

// Plugin is a plugin block bound to a configured plugin.
type Plugin struct {
	// Name is the local name (hypervisor); Source what it resolved to
	// (libvirt); Path the binary ("" for builtin).
	Name, Source, Path string
	Schema             *protocol.Schema

	mu     sync.Mutex
	impl   protocol.Plugin
	proc   *host.Process
	config cty.Value
	// restart starts the plugin again after a crash.
	restart func(ctx context.Context, config cty.Value) (*host.Process, error)
}

// client returns the plugin to call. A plugin process that crashed, or
// that the watchdog killed as hung, is started and configured again
// first, so that undos of the steps it completed still run.
func (p *Plugin) client(ctx context.Context) (protocol.Plugin, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil && p.proc.Gone() && p.restart != nil {
		proc, err := p.restart(ctx, p.config)
		if err != nil {
			return nil, fmt.Errorf("restarting plugin %s after its crash: %w", p.Label(), err)
		}
		p.proc, p.impl = proc, proc.Plugin
	}
	return p.impl, nil
}

// Validate asks the plugin to check a step's inputs.
func (p *Plugin) Validate(ctx context.Context, action string, in cty.Value) (protocol.Diagnostics, error) {
	c, err := p.client(ctx)
	if err != nil {
		return nil, err
	}
	return c.Validate(ctx, action, lang.Unmarked(in))
}

// Plan asks the plugin what an action would do.
func (p *Plugin) Plan(ctx context.Context, action string, in cty.Value) ([]string, protocol.Diagnostics, error) {
	c, err := p.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.Plan(ctx, action, lang.Unmarked(in))
}

// Run runs an action.
func (p *Plugin) Run(ctx context.Context, req protocol.RunRequest, emit func(protocol.Event)) (cty.Value, protocol.Diagnostics, error) {
	c, err := p.client(ctx)
	if err != nil {
		return cty.NilVal, nil, err
	}
	// Marks do not cross to a plugin: it gets the plain value.
	req.Inputs = lang.Unmarked(req.Inputs)
	return c.Run(ctx, req, emit)
}

// Undo undoes an action.
func (p *Plugin) Undo(ctx context.Context, req protocol.UndoRequest, emit func(protocol.Event)) (protocol.Diagnostics, error) {
	c, err := p.client(ctx)
	if err != nil {
		return nil, err
	}
	req.Inputs, req.Outputs = lang.Unmarked(req.Inputs), lang.Unmarked(req.Outputs)
	return c.Undo(ctx, req, emit)
}

// Label names the plugin for messages: hypervisor (libvirt 0.3.0).
func (p *Plugin) Label() string {
	if p.Name == p.Source || p.Source == "" {
		return fmt.Sprintf("%s (%s)", p.Name, p.Schema.Version)
	}
	return fmt.Sprintf("%s (%s %s)", p.Name, p.Source, p.Schema.Version)
}

// callError explains a failed call, naming the plugin.
func (p *Plugin) callError(err error) error {
	if p.proc != nil {
		err = p.proc.CallError(err)
	}
	return err
}

// Plan is a task bound to its plugins and checked: ready to run.
type Plan struct {
	Task   *config.Task
	Params cty.Value
	// Root is the task's scope; Scopes are it and those of the tasks its
	// steps call, callers first.
	Root   *Scope
	Scopes []*Scope
	// Steps in an order that respects every dependency.
	Steps []*PlanStep
	// Locks are the evaluated lock keys.
	Locks []string

	// red masks the run's secrets in free text (logs, errors).
	red     *lang.Redactor
	redOnce sync.Once
}

// Redactor is what masks the plan's secrets in free text: the strings in
// the sensitive parts of its variables, params and step inputs, and those
// the run adds as steps produce them.
func (p *Plan) Redactor() *lang.Redactor {
	p.redOnce.Do(func() {
		p.red = &lang.Redactor{}
		for _, sc := range p.Scopes {
			p.red.Add(sc.Task.File.VarValues)
			p.red.Add(sc.Params)
		}
		for _, ps := range p.Steps {
			p.red.Add(ps.Inputs)
		}
	})
	return p.red
}

// sensitiveNames lists the attributes a plugin declares sensitive.
func sensitiveNames(as protocol.Attributes) []string {
	var out []string
	for _, a := range as {
		if a.Sensitive {
			out = append(out, a.Name)
		}
	}
	return out
}

// Plugins maps the local names of the plugins the run uses (not the
// built-in actions) to their source and version: hypervisor →
// "proxmox-stub 0.1.0".
func (p *Plan) Plugins() map[string]string {
	out := map[string]string{}
	for _, ps := range p.Steps {
		if ps.Plugin == nil || ps.Plugin.Name == config.BuiltinPlugin {
			continue
		}
		src := ps.Plugin.Source
		if src == "" {
			src = ps.Plugin.Name
		}
		out[ps.Plugin.Name] = strings.TrimSpace(src + " " + ps.Plugin.Schema.Version)
	}
	return out
}

// Step returns the planned step of that name.
func (p *Plan) Step(name string) *PlanStep {
	for _, s := range p.Steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// PlanStep is a step bound to its action.
type PlanStep struct {
	*config.Step
	// Name is the step's path in the run: its name, or for a step of a
	// called task, the call's path and its name (vm/define).
	Name string
	// Scope is the task the step belongs to.
	Scope  *Scope
	Plugin *Plugin
	Action *protocol.Action
	// Deps are the steps this one waits for.
	Deps []string
	// Inputs as known before the run: values that come from earlier steps
	// are unknown.
	Inputs cty.Value
	// Skip is set when the step's if is false, or not known before the
	// run (IfKnown tells which); the plugin does not validate it then.
	Skip, IfKnown bool
	// Would is what the plugin says Run would do (filled by Describe).
	Would []string
	// Timeout limits the step's Run, and its undo: the step's own timeout
	// (TimeoutSet) or the action's default; 0 means none.
	Timeout    time.Duration
	TimeoutSet bool
	// Commit: the step is a commit point (commit = true, or an
	// expression of variables and params that is true for this run).
	Commit bool
	// Key is the instance's key for a step with for_each (unknown for
	// vmflow validate's stand-in instance); cty.NilVal otherwise.
	Key cty.Value
}

// Describe asks each plugin what its steps would do, for vmflow plan.
func (e *Engine) Describe(ctx context.Context, plan *Plan) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, ps := range plan.Steps {
		if ps.Skip {
			continue
		}
		lines, pds, err := ps.Plugin.Plan(ctx, ps.ActionName, ps.Inputs)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Plugin could not describe the step",
				Detail: fmt.Sprintf("step %q: plugin %s: %v", ps.Name, ps.Plugin.Label(), ps.Plugin.callError(err)), Subject: ps.ActionRange.Ptr()})
			continue
		}
		diags = append(diags, pluginDiags(pds, ps.argRange, ps.DeclRange, fmt.Sprintf("plugin %s for step %q", ps.Plugin.Label(), ps.Name))...)
		ps.Would = lines
	}
	return diags
}

// builtinPlugin returns the built-in actions as seen from one task file:
// commands run in that file's directory.
func (e *Engine) builtinPlugin(ctx context.Context, f *config.File) *Plugin {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.builtins[f]; p != nil {
		return p
	}
	impl, err := sdk.InProcess(builtin.New(e.Project.Env))
	if err != nil {
		panic(err) // the built-in schema is ours; this is a vmflow bug
	}
	schema, _ := impl.Describe(ctx)
	_, _ = impl.Configure(ctx, cty.EmptyObjectVal, protocol.Env{StateDir: e.StateDir, WorkDir: f.WorkDir})
	p := &Plugin{Name: config.BuiltinPlugin, Source: config.BuiltinPlugin, Schema: schema, impl: impl}
	e.builtins[f] = p
	return p
}

// bind starts and configures the plugin behind a plugin block (once per
// block, however many steps use it).
func (e *Engine) bind(ctx context.Context, d *config.PluginDecl) (*Plugin, hcl.Diagnostics) {
	e.mu.Lock()
	b, ok := e.bound[d]
	if !ok {
		b = &bindOnce{}
		e.bound[d] = b
	}
	e.mu.Unlock()
	b.once.Do(func() { b.p, b.diags = e.doBind(ctx, d) })
	return b.p, b.diags
}

func (e *Engine) doBind(ctx context.Context, d *config.PluginDecl) (*Plugin, hcl.Diagnostics) {
	vctx := d.File.EvalContext(cty.NilVal, cty.NilVal)
	sv, diags := d.Source.Value(vctx)
	if diags.HasErrors() {
		return nil, diags
	}
	sv = lang.Unmarked(sv)
	if sv.IsNull() || !sv.IsKnown() || sv.Type() != cty.String || sv.AsString() == "" {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Invalid plugin source",
			Detail:  fmt.Sprintf("The source of plugin %q must be a plugin name (libvirt) or a path to its binary.", d.Name),
			Subject: d.Source.Range().Ptr(),
		}}
	}
	source := sv.AsString()
	cfg, cfgRange := cty.EmptyObjectVal, d.DeclRange
	if d.Config != nil {
		if cfg, diags = d.Config.Value(vctx); diags.HasErrors() {
			return nil, diags
		}
		cfg = lang.Unmarked(cfg) // a plugin's config goes to the plugin only
		cfgRange = d.Config.Range()
	}
	env := protocol.Env{StateDir: e.StateDir, WorkDir: d.File.Dir}
	fail := func(summary string, err error) (*Plugin, hcl.Diagnostics) {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary,
			Detail: fmt.Sprintf("plugin %q (source %q): %v", d.Name, source, err), Subject: d.Source.Range().Ptr()}}
	}

	p := &Plugin{Name: d.Name, Source: source}
	var configure func(cv cty.Value) (protocol.Diagnostics, error)
	if sp, ok := e.InProcess[source]; ok {
		impl, err := sdk.InProcess(sp)
		if err != nil {
			return fail("Invalid plugin", err)
		}
		p.impl = impl
		p.Schema, _ = impl.Describe(ctx)
		configure = func(cv cty.Value) (protocol.Diagnostics, error) { return impl.Configure(ctx, cv, env) }
	} else {
		path, err := e.Finder.Find(source, d.File.Dir)
		if err != nil {
			return fail("Plugin not found", err)
		}
		key, err := ctyjson.Marshal(cfg, cty.DynamicPseudoType)
		if err != nil {
			key = []byte(fmt.Sprint(cfg))
		}
		sum, err := e.Trust.Check(source, path)
		if err != nil {
			var re *host.RefusedError
			if errors.As(err, &re) && re.Kind == host.RefusedMismatch {
				return fail("Plugin does not match the lock file", err)
			}
			return fail("Plugin not trusted", err)
		}
		proc, err := e.Plugins.GetChecked(ctx, path, string(key), sum)
		var ce *host.ChecksumError
		if errors.As(err, &ce) {
			return fail("Plugin does not match the lock file", e.Trust.Mismatch(source, path))
		}
		if err != nil {
			return fail("Plugin failed to start", err)
		}
		p.Path, p.Schema, p.impl, p.proc = path, proc.Schema, proc.Plugin, proc
		// A process shared by several plugin blocks is configured once.
		configure = func(cv cty.Value) (protocol.Diagnostics, error) {
			e.mu.Lock()
			co, ok := e.configured[proc]
			if !ok {
				co = &configureOnce{}
				e.configured[proc] = co
			}
			e.mu.Unlock()
			co.once.Do(func() { co.diags, co.err = proc.Configure(ctx, cv, env) })
			return co.diags, co.err
		}
		p.restart = func(ctx context.Context, cv cty.Value) (*host.Process, error) {
			np, err := e.Plugins.Restart(ctx, path, string(key))
			if err != nil {
				return nil, err
			}
			if ds, err := np.Configure(ctx, cv, env); err != nil || ds.HasErrors() {
				if err == nil {
					err = ds.Err()
				}
				return nil, fmt.Errorf("configuring: %w", err)
			}
			return np, nil
		}
	}

	// Check the config against the plugin's config schema, then hand it over.
	cv, diags := checkObject(cfg, p.Schema.Config, cfgRange, fmt.Sprintf("plugin %s config", p.Label()))
	if diags.HasErrors() {
		return nil, diags
	}
	p.config = cv
	pds, err := configure(cv)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Plugin configuration failed",
			Detail: fmt.Sprintf("plugin %s: %v", p.Label(), p.callError(err)), Subject: cfgRange.Ptr(),
		}}
	}
	if pds.HasErrors() {
		return nil, pluginDiags(pds, func(string) hcl.Range { return cfgRange }, cfgRange, "plugin "+p.Label())
	}
	return p, nil
}

// checkObject converts a config object to the attributes' object type:
// unknown attributes, missing required ones and wrong types are errors.
func checkObject(v cty.Value, attrs protocol.Attributes, rng hcl.Range, what string) (cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	if v.IsNull() {
		v = cty.EmptyObjectVal
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		return cty.NilVal, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid config", Detail: what + " must be an object: { name = value }.", Subject: rng.Ptr()}}
	}
	given := map[string]cty.Value{}
	if v.IsKnown() {
		given = v.AsValueMap()
	}
	names := make([]string, 0, len(given))
	for k := range given {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := attrs.Get(k); !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Unsupported config attribute",
				Detail:  fmt.Sprintf("%s has no attribute %q.%s", what, k, suggestAttr(k, attrs)),
				Subject: rng.Ptr(),
			})
		}
	}
	vals := map[string]cty.Value{}
	for _, a := range attrs {
		gv, ok := given[a.Name]
		if !ok || gv.IsNull() {
			if a.Required {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Missing required config attribute",
					Detail: fmt.Sprintf("%s requires %q: %s", what, a.Name, a.Description), Subject: rng.Ptr(),
				})
				continue
			}
			gv = cty.NullVal(a.Type)
			if a.Default != cty.NilVal {
				gv = a.Default
			}
		}
		cv, err := convert.Convert(gv, a.Type)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid config attribute",
				Detail: fmt.Sprintf("%s: %q: %v.", what, a.Name, err), Subject: rng.Ptr(),
			})
			continue
		}
		vals[a.Name] = cv
	}
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	if len(vals) == 0 {
		return cty.EmptyObjectVal, nil
	}
	return cty.ObjectVal(vals), nil
}

func suggestAttr(name string, attrs protocol.Attributes) string {
	return config.Suggest(name, attrs.Names())
}

// pluginDiags turns a plugin's diagnostics into HCL diagnostics, placing
// each at the argument its path names.
func pluginDiags(ds protocol.Diagnostics, argRange func(name string) hcl.Range, whole hcl.Range, who string) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range ds {
		sev := hcl.DiagError
		if d.Severity == protocol.Warning {
			sev = hcl.DiagWarning
		}
		rng := whole
		summary := d.Summary
		if len(d.Path) > 0 {
			if ga, ok := d.Path[0].(cty.GetAttrStep); ok {
				rng = argRange(ga.Name)
			}
			summary = fmt.Sprintf("Invalid %s: %s", protocol.FormatPath(d.Path), d.Summary)
		}
		detail := d.Detail
		if detail != "" {
			detail += "\n\n"
		}
		detail += "Reported by " + who + "."
		out = append(out, &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail, Subject: rng.Ptr()})
	}
	return out
}

// Prepare binds every step of a task to its plugin and checks it: the
// action exists, arguments are known and well typed, references resolve,
// the graph has no cycle, and each plugin accepts its steps' inputs. params
// is the param.* object; its values may be unknown (vmflow validate).
// Nothing runs.
func (e *Engine) Prepare(ctx context.Context, t *config.Task, params cty.Value) (*Plan, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	root := &Scope{Task: t, Params: params}
	plan := &Plan{Task: t, Params: params, Root: root}

	// The tasks the run takes part in: this one and those its steps call.
	var tasks []*config.Task
	var collect func(*config.Task)
	collect = func(t *config.Task) {
		if slices.Contains(tasks, t) {
			return
		}
		tasks = append(tasks, t)
		for _, s := range t.Steps {
			if s.Called != nil {
				collect(s.Called)
			}
		}
	}
	collect(t)

	// Start every plugin they use, concurrently.
	bound := map[*config.PluginDecl]*Plugin{} // written under mu
	starting := map[*config.PluginDecl]bool{}
	builtins := map[*config.File]*Plugin{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range tasks {
		for _, s := range t.Steps {
			switch {
			case s.Plugin == "":
			case s.Plugin == config.BuiltinPlugin:
				if builtins[t.File] == nil {
					builtins[t.File] = e.builtinPlugin(ctx, t.File)
				}
			default:
				d := t.File.Plugin(s.Plugin)
				if d == nil {
					continue // reported by the loader
				}
				if starting[d] {
					continue
				}
				starting[d] = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					p, ds := e.bind(ctx, d)
					mu.Lock()
					defer mu.Unlock()
					bound[d] = p
					diags = append(diags, ds...)
				}()
			}
		}
	}
	wg.Wait()
	if diags.HasErrors() {
		return nil, dedupe(diags)
	}
	pluginOf := func(f *config.File, s *config.Step) *Plugin {
		if s.Plugin == config.BuiltinPlugin {
			return builtins[f]
		}
		return bound[f.Plugin(s.Plugin)]
	}

	// Expand calls, bind steps to actions and check argument names.
	var expand func(sc *Scope)
	expand = func(sc *Scope) {
		plan.Scopes = append(plan.Scopes, sc)
		sc.leaves, sc.calls, sc.groups = map[string]*PlanStep{}, map[string]*Scope{}, map[string][]*PlanStep{}
		// What is known before the run, for for_each keys: params and
		// variables (a call's params worked out with steps unknown).
		kctx, _ := sc.Task.EvalContext(sc.Params, cty.DynamicVal)
		for _, s := range sc.Task.Steps {
			if s.Called != nil {
				c := &Scope{Task: s.Called, Prefix: sc.Prefix + s.Name + "/", Parent: sc, Call: s}
				c.Params, _ = callParams(c, kctx)
				sc.calls[s.Name] = c
				expand(c)
				continue
			}
			p := pluginOf(sc.Task.File, s)
			if p == nil {
				continue
			}
			a, ok := p.Schema.Action(s.ActionName)
			if !ok {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Unknown action",
					Detail: fmt.Sprintf("Plugin %s has no action %q.%s Its actions: %s.",
						p.Label(), s.ActionName, config.Suggest(s.ActionName, p.Schema.ActionNames()), strings.Join(p.Schema.ActionNames(), ", ")),
					Subject: s.ActionRange.Ptr(),
				})
				continue
			}
			if s.ForEach != nil {
				keys, known, ds := forEachKeys(s, kctx, params.IsWhollyKnown())
				diags = append(diags, ds...)
				var ks []cty.Value
				for _, k := range keys {
					ks = append(ks, cty.StringVal(k))
				}
				if !known && !ds.HasErrors() {
					ks = []cty.Value{cty.UnknownVal(cty.String)}
				}
				insts := []*PlanStep{}
				for _, k := range ks {
					ps := &PlanStep{Step: s, Name: instanceName(sc.Prefix, s.Name, k), Scope: sc, Plugin: p, Action: a, Key: k}
					insts = append(insts, ps)
					plan.Steps = append(plan.Steps, ps)
				}
				if len(insts) > 0 {
					diags = append(diags, checkArgNames(insts[0])...)
				}
				sc.groups[s.Name] = insts
				continue
			}
			ps := &PlanStep{Step: s, Name: sc.Prefix + s.Name, Scope: sc, Plugin: p, Action: a}
			diags = append(diags, checkArgNames(ps)...)
			sc.leaves[s.Name] = ps
			plan.Steps = append(plan.Steps, ps)
		}
	}
	expand(root)
	if diags.HasErrors() {
		return nil, diags
	}
	// A failure can be ignored only where it leaves nothing behind.
	for _, ps := range plan.Steps {
		if ps.Step.IgnoreError && ps.Action.HasUndo {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "ignore_error on a step that makes something",
				Detail: fmt.Sprintf("Step %q runs %s, which makes something it can undo: a failure of it may leave part of that behind, so it cannot be ignored. Remove ignore_error, or handle the failure with if on the steps after it.",
					ps.Name, actionName(ps)),
				Subject: ps.ActionRange.Ptr(),
			})
		}
	}
	// A task that says it changes nothing runs only actions that make
	// nothing to undo.
	if t.ReadOnly {
		for _, ps := range plan.Steps {
			if ps.Action.HasUndo {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Step of a read-only task makes something",
					Detail: fmt.Sprintf("Task %s is read_only (%s:%d), so its runs are not journaled; step %q runs %s, which makes something it can undo. Remove read_only from the task, or the step.",
						t.Name, t.ReadOnlyRange.Filename, t.ReadOnlyRange.Start.Line, ps.Name, actionName(ps)),
					Subject: ps.ActionRange.Ptr(),
				})
			}
		}
		if diags.HasErrors() {
			return nil, diags
		}
	}

	// References to outputs must name declared outputs.
	checkRef := func(sc *Scope, r config.StepRef) {
		if r.Output == "" {
			return
		}
		dep := sc.leaves[r.Step]
		if g := sc.groups[r.Step]; len(g) > 0 {
			dep = g[0]
		}
		if dep != nil {
			if _, ok := dep.Action.Outputs.Get(r.Output); !ok {
				diags = append(diags, unknownOutput(dep, r))
			}
		} else if c := sc.calls[r.Step]; c != nil && !slices.ContainsFunc(c.Task.Outputs, func(o *config.Output) bool { return o.Name == r.Output }) {
			diags = append(diags, unknownCallOutput(c, r))
		}
	}
	for _, sc := range plan.Scopes {
		for _, s := range sc.Task.Steps {
			for _, r := range s.Refs {
				checkRef(sc, r)
			}
		}
		for _, o := range sc.Task.Outputs {
			for _, r := range o.Refs {
				checkRef(sc, r)
			}
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}

	// Order the graph.
	names := make([]string, len(plan.Steps))
	deps := map[string][]string{}
	for i, ps := range plan.Steps {
		names[i] = ps.Name
		ps.Deps = ps.Scope.resolve(ps.Refs)
		for _, n := range ps.Scope.inherited() {
			ps.Deps = appendOnce(ps.Deps, n)
		}
		deps[ps.Name] = ps.Deps
	}
	sorted, cycle := order(names, deps)
	if cycle != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Dependency cycle between steps",
			Detail:  fmt.Sprintf("These steps wait for each other: %s. Remove a reference or a depends_on to break the cycle.", formatCycle(cycle)),
			Subject: plan.Step(cycle[0]).DeclRange.Ptr(),
		}}
	}
	byName := map[string]*PlanStep{}
	for _, ps := range plan.Steps {
		byName[ps.Name] = ps
	}
	plan.Steps = plan.Steps[:0]
	for _, n := range sorted {
		plan.Steps = append(plan.Steps, byName[n])
	}

	// Type-check arguments with step outputs unknown, scope by scope
	// (callers first), then ask each plugin.
	ectxs := map[*Scope]*hcl.EvalContext{}
	skipped := map[*Scope]bool{} // the if of a call around it is false, or not known yet
	ifKnown := map[*Scope]bool{root: true}
	for _, sc := range plan.Scopes {
		if sc.Parent != nil {
			pctx := ectxs[sc.Parent]
			ps, ds := callParams(sc, pctx)
			diags = append(diags, ds...)
			sc.Params = ps
			skipped[sc], ifKnown[sc] = skipped[sc.Parent], ifKnown[sc.Parent]
			if sc.Call.If != nil {
				ds := checkBool(sc.Call.If, pctx, "if")
				diags = append(diags, ds...)
				if !ds.HasErrors() {
					v, _ := sc.Call.If.Value(pctx)
					v = lang.Unmarked(v)
					skipped[sc] = skipped[sc] || !v.IsKnown() || v.False()
					ifKnown[sc] = ifKnown[sc] && v.IsKnown()
				}
			}
			if sc.Call.Timeout != nil {
				tctx, _ := sc.Parent.Task.EvalContext(sc.Parent.Params, cty.NilVal)
				d, ds := evalLimit(sc.Call.Timeout, tctx, sc.Call.Name)
				diags = append(diags, ds...)
				sc.Timeout = d
			}
		}
		unknownSteps := map[string]cty.Value{}
		for _, s := range sc.Task.Steps {
			if ps := sc.leaves[s.Name]; ps != nil {
				unknownSteps[s.Name] = cty.UnknownVal(ps.Action.Outputs.ObjectType())
			} else if g, ok := sc.groups[s.Name]; ok {
				unknownSteps[s.Name] = groupValue(g, func(ps *PlanStep) cty.Value { return cty.UnknownVal(ps.Action.Outputs.ObjectType()) })
			} else if c := sc.calls[s.Name]; c != nil {
				unknownSteps[s.Name] = cty.UnknownVal(outputType(c.Task))
			}
		}
		ectx, ds := sc.Task.EvalContext(sc.Params, objectOf(unknownSteps))
		diags = append(diags, ds...)
		ectxs[sc] = ectx
	}
	for _, ps := range plan.Steps {
		ectx, ds := eachContext(ps, ectxs[ps.Scope])
		if diags = append(diags, ds...); ds.HasErrors() {
			continue
		}
		tctx, _ := ps.Scope.Task.EvalContext(ps.Scope.Params, cty.NilVal)
		diags = append(diags, evalTimeout(ps, tctx)...)
		diags = append(diags, evalCommit(ps, tctx, params.IsWhollyKnown())...)
		in, ds := evalInputs(ps, ectx)
		diags = append(diags, ds...)
		if ds.HasErrors() {
			continue
		}
		ps.Inputs = lang.MarkAttrs(in, sensitiveNames(ps.Action.Inputs))
		diags = append(diags, runsVmflow(ps)...)
		ps.Skip, ps.IfKnown = skipped[ps.Scope], ifKnown[ps.Scope]
		if ps.If != nil {
			ds := checkBool(ps.If, ectx, "if")
			diags = append(diags, ds...)
			if !ds.HasErrors() {
				v, _ := ps.If.Value(ectx)
				v = lang.Unmarked(v)
				ps.Skip = ps.Skip || !v.IsKnown() || v.False()
				ps.IfKnown = ps.IfKnown && v.IsKnown()
			}
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	var vwg sync.WaitGroup
	for _, ps := range plan.Steps {
		if ps.Skip {
			// A step that will not run, or may not, is not asked: its
			// inputs may only make sense when its condition holds.
			continue
		}
		vwg.Add(1)
		go func() {
			defer vwg.Done()
			ds := e.validateStep(ctx, ps)
			mu.Lock()
			diags = append(diags, ds...)
			mu.Unlock()
		}()
	}
	vwg.Wait()

	for _, sc := range plan.Scopes {
		if sc.Params.IsWhollyKnown() {
			// With params unknown (vmflow validate, or a call whose
			// arguments come from steps) a precondition, which is about
			// values, cannot say anything yet.
			diags = append(diags, checkPreconditions(sc.Task, sc.Params)...)
		}
		// Outputs and the lock.
		for _, o := range sc.Task.Outputs {
			if _, ds := o.Value.Value(ectxs[sc]); ds.HasErrors() {
				diags = append(diags, ds...)
			}
		}
		if sc.Task.Lock == nil {
			continue
		}
		lctx, _ := sc.Task.EvalContext(sc.Params, cty.NilVal)
		keys, ds := evalLock(sc.Task.Lock, lctx)
		diags = append(diags, ds...)
		if sc.Parent != nil && keys == nil && !ds.HasErrors() && !sc.Params.IsWhollyKnown() && params.IsWhollyKnown() {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Lock not known before the run",
				Detail: fmt.Sprintf("Step %q calls task %s, whose lock depends on a param that comes from a step; the run takes its locks before any step runs. Pass that param a value known before the run.",
					sc.Name(), sc.Task.Name),
				Subject: sc.Task.Lock.Range().Ptr(),
			})
		}
		// A lock a caller holds already is taken once: re-entrant.
		for _, k := range keys {
			plan.Locks = appendOnce(plan.Locks, k)
		}
	}
	if diags.HasErrors() {
		return nil, sortDiags(diags)
	}
	return plan, sortDiags(diags)
}

func (e *Engine) validateStep(ctx context.Context, ps *PlanStep) hcl.Diagnostics {
	pds, err := ps.Plugin.Validate(ctx, ps.ActionName, ps.Inputs)
	if err != nil {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Plugin failed to validate the step",
			Detail:  fmt.Sprintf("step %q: plugin %s: %v", ps.Name, ps.Plugin.Label(), ps.Plugin.callError(err)),
			Subject: ps.ActionRange.Ptr(),
		}}
	}
	return pluginDiags(pds, ps.argRange, ps.DeclRange, fmt.Sprintf("plugin %s for step %q", ps.Plugin.Label(), ps.Name))
}

// argRange is where an argument is written, or the step block when unset.
func (ps *PlanStep) argRange(name string) hcl.Range {
	if a := ps.Arg(name); a != nil {
		return a.Expr.Range()
	}
	return ps.DeclRange
}

func checkArgNames(ps *PlanStep) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, a := range ps.Args {
		if _, ok := ps.Action.Inputs.Get(a.Name); !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Unsupported argument",
				Detail: fmt.Sprintf("%s.%s has no argument %q.%s Its arguments: %s.",
					ps.Plugin.Name, ps.ActionName, a.Name, suggestAttr(a.Name, ps.Action.Inputs), argList(ps.Action.Inputs)),
				Subject: a.NameRange.Ptr(),
			})
		}
	}
	for _, in := range ps.Action.Inputs {
		if in.Required && ps.Arg(in.Name) == nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Missing required argument",
				Detail:  fmt.Sprintf("Step %q: %s.%s requires %q (%s).", ps.Name, ps.Plugin.Name, ps.ActionName, in.Name, in.Description),
				Subject: ps.DeclRange.Ptr(),
			})
		}
	}
	return diags
}

func argList(as protocol.Attributes) string {
	if len(as) == 0 {
		return "none"
	}
	return strings.Join(as.Names(), ", ")
}

func unknownCallOutput(c *Scope, r config.StepRef) *hcl.Diagnostic {
	names := make([]string, len(c.Task.Outputs))
	for i, o := range c.Task.Outputs {
		names[i] = o.Name
	}
	list := strings.Join(names, ", ")
	if list == "" {
		list = "none"
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Reference to unknown output",
		Detail: fmt.Sprintf("Step %q calls task %s, which has no output %q.%s Its outputs: %s.",
			r.Step, c.Task.Name, r.Output, config.Suggest(r.Output, names), list),
		Subject: r.Range.Ptr(),
	}
}

func unknownOutput(dep *PlanStep, r config.StepRef) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Reference to unknown output",
		Detail: fmt.Sprintf("Step %q (%s.%s) has no output %q.%s Its outputs: %s.",
			dep.Name, dep.Plugin.Name, dep.ActionName, r.Output, suggestAttr(r.Output, dep.Action.Outputs), argList(dep.Action.Outputs)),
		Subject: r.Range.Ptr(),
	}
}

// evalInputs evaluates a step's arguments and converts them to the action's
// input types, filling defaults.
func evalInputs(ps *PlanStep, ectx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	vals := map[string]cty.Value{}
	for _, in := range ps.Action.Inputs {
		a := ps.Arg(in.Name)
		if a == nil {
			v := cty.NullVal(in.Type)
			if in.Default != cty.NilVal {
				v = in.Default
			}
			vals[in.Name] = v
			continue
		}
		v, ds := a.Expr.Value(ectx)
		diags = append(diags, ds...)
		if ds.HasErrors() {
			continue
		}
		cv, err := convert.Convert(v, in.Type)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid value for argument",
				Detail:  fmt.Sprintf("%s.%s argument %q: %v.", ps.Plugin.Name, ps.ActionName, in.Name, err),
				Subject: a.Expr.Range().Ptr(),
			})
			continue
		}
		if cv.IsNull() && in.Default != cty.NilVal {
			cv = in.Default
		}
		if cv.IsKnown() && cv.IsNull() && in.Required {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Missing required argument",
				Detail:  fmt.Sprintf("%s.%s argument %q is required, but the value is null.", ps.Plugin.Name, ps.ActionName, in.Name),
				Subject: a.Expr.Range().Ptr(),
			})
			continue
		}
		vals[in.Name] = cv
	}
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	return objectOf(vals), diags
}

// checkPreconditions evaluates a task's precondition blocks. With params
// not known yet (vmflow validate) only their types are checked.
func checkPreconditions(t *config.Task, params cty.Value) hcl.Diagnostics {
	var diags hcl.Diagnostics
	ectx, _ := t.EvalContext(params, cty.NilVal)
	for _, pc := range t.Preconditions {
		if ds := checkBool(pc.Condition, ectx, "precondition"); ds.HasErrors() {
			diags = append(diags, ds...)
			continue
		}
		v, _ := pc.Condition.Value(ectx)
		v = lang.Unmarked(v)
		if !v.IsKnown() || v.True() {
			continue
		}
		msg := "The task's precondition is not met."
		if mv, ds := pc.ErrorMessage.Value(ectx); !ds.HasErrors() && !mv.IsMarked() && mv.IsKnown() && !mv.IsNull() && mv.Type() == cty.String {
			msg = mv.AsString()
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Precondition failed",
			Detail: msg, Subject: pc.Condition.Range().Ptr(),
		})
	}
	return diags
}

func checkBool(e hcl.Expression, ectx *hcl.EvalContext, what string) hcl.Diagnostics {
	v, diags := e.Value(ectx)
	if diags.HasErrors() {
		return diags
	}
	if _, err := convert.Convert(v, cty.Bool); err != nil || (v.IsKnown() && !v.IsMarked() && v.IsNull()) {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: fmt.Sprintf("Invalid %s", what),
			Detail: fmt.Sprintf("%s must be true or false.", what), Subject: e.Range().Ptr(),
		}}
	}
	return nil
}

// evalCommit works out whether a step is a commit point. An expression
// must be known before the run, for the journal records it with the
// step's start; it is not while a task is only checked (vmflow validate,
// run false).
func evalCommit(ps *PlanStep, ectx *hcl.EvalContext, run bool) hcl.Diagnostics {
	ps.Commit = ps.Step.Commit
	if ps.CommitIf == nil {
		return nil
	}
	if diags := checkBool(ps.CommitIf, ectx, "commit"); diags.HasErrors() {
		return diags
	}
	v, _ := ps.CommitIf.Value(ectx)
	v = lang.Unmarked(v) // it decides; it is not shown
	if !v.IsKnown() {
		if !run {
			return nil
		}
		return hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Commit not known before the run",
			Detail:  fmt.Sprintf("Step %q: commit depends on a param that comes from a step; whether a step is a commit point is settled before the run. Pass that param a value known before the run.", ps.Name),
			Subject: ps.CommitIf.Range().Ptr(),
		}}
	}
	v, _ = convert.Convert(v, cty.Bool)
	ps.Commit = v.True()
	return nil
}

// evalLock evaluates a lock expression: a string, or a list of strings.
func evalLock(e hcl.Expression, ectx *hcl.EvalContext) ([]string, hcl.Diagnostics) {
	v, diags := e.Value(ectx)
	if diags.HasErrors() {
		return nil, diags
	}
	if lang.IsSensitive(v) {
		// A lock key is a name: it is written in lock files, journals and
		// messages, where a secret must not be.
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Sensitive lock",
			Detail:  "lock is computed from a sensitive value; a lock key is written in lock files, the journal and messages. Name what the task changes with values that are not secret.",
			Subject: e.Range().Ptr(),
		}}
	}
	bad := hcl.Diagnostics{{
		Severity: hcl.DiagError, Summary: "Invalid lock",
		Detail: "lock must be a non-empty string (the name of what the task changes, such as a VM) or a list of them.", Subject: e.Range().Ptr(),
	}}
	if !v.IsWhollyKnown() {
		return nil, nil // vmflow validate: params not known yet
	}
	if v.IsNull() {
		return nil, nil
	}
	if v.Type() == cty.String {
		if v.AsString() == "" {
			return nil, bad
		}
		return []string{v.AsString()}, nil
	}
	lv, err := convert.Convert(v, cty.List(cty.String))
	if err != nil {
		return nil, bad
	}
	var keys []string
	for _, k := range lv.AsValueSlice() {
		if k.IsNull() || k.AsString() == "" {
			return nil, bad
		}
		keys = append(keys, k.AsString())
	}
	return keys, nil
}

func objectOf(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

func appendOnce(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// dedupe drops repeated diagnostics (several steps sharing a broken plugin).
func dedupe(diags hcl.Diagnostics) hcl.Diagnostics {
	seen := map[string]bool{}
	var out hcl.Diagnostics
	for _, d := range diags {
		k := d.Summary + "\x00" + d.Detail
		if d.Subject != nil {
			k += d.Subject.String()
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}

// sortDiags orders diagnostics by file position, so output is stable
// whatever order concurrent checks finished in.
func sortDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a != nil && b == nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return dedupe(diags)
}

// runsVmflow warns about a local command that runs vmflow: that starts a
// second run, which fails on the locks this one holds (exit 3) and is
// neither undone nor resumed with it. A step that calls the task does
// what was meant.
func runsVmflow(ps *PlanStep) hcl.Diagnostics {
	if ps.Plugin.Name != config.BuiltinPlugin || ps.ActionName != "exec" || !ps.Inputs.Type().IsObjectType() || !ps.Inputs.Type().HasAttribute("argv") {
		return nil
	}
	argv := lang.Unmarked(ps.Inputs.GetAttr("argv"))
	if !argv.IsKnown() || argv.IsNull() || argv.LengthInt() == 0 {
		return nil
	}
	first := argv.AsValueSlice()[0]
	if !first.IsKnown() || first.IsNull() || filepath.Base(first.AsString()) != "vmflow" {
		return nil
	}
	task := "NAME"
	if argv.LengthInt() > 1 {
		if second := argv.AsValueSlice()[1]; second.IsKnown() && !second.IsNull() && !strings.HasPrefix(second.AsString(), "-") {
			task = second.AsString()
		}
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagWarning, Summary: "A step that runs vmflow",
		Detail: fmt.Sprintf("Step %q runs vmflow as a local command: that is a second run, which cannot take a lock this run holds (it stops with exit 3) and is neither undone nor resumed with this one. To run a task as part of this run, call it: task = %q.",
			ps.Name, task),
		Subject: ps.argRange("argv").Ptr(),
	}}
}
