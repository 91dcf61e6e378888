package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/lang"
	"github.com/vmflow/vmflow/core/protocol"
)

// Prepare binds every step of a task to its plugin and checks it: the
// action exists, arguments are known and well typed, references resolve,
// the graph has no cycle, and each plugin accepts its steps' inputs. params
// is the param.* object; its values may be unknown (vmflow validate).
// Nothing runs.
func (e *Engine) Prepare(ctx context.Context, t *config.Task, params cty.Value) (*Plan, hcl.Diagnostics) {
	root := &Scope{Task: t, Params: params}
	plan := &Plan{Task: t, Params: params, Root: root}

	pluginOf, diags := e.startPlugins(ctx, taskClosure(t))
	if diags.HasErrors() {
		return nil, dedupe(diags)
	}
	diags = append(diags, plan.expand(root, pluginOf)...)
	if diags.HasErrors() {
		return nil, diags
	}
	if diags = append(diags, checkIgnoreError(plan.Steps)...); diags.HasErrors() {
		return nil, diags
	}
	if t.ReadOnly {
		if diags = append(diags, checkReadOnly(t, plan.Steps)...); diags.HasErrors() {
			return nil, diags
		}
	}
	if diags = append(diags, checkOutputRefs(plan.Scopes)...); diags.HasErrors() {
		return nil, diags
	}
	if ds := plan.orderSteps(); ds.HasErrors() {
		return nil, ds
	}
	checked, ds := plan.typeCheck()
	if diags = append(diags, ds...); diags.HasErrors() {
		return nil, diags
	}
	diags = append(diags, e.validateSteps(ctx, plan.Steps)...)
	diags = append(diags, plan.checkScopes(checked)...)
	if diags.HasErrors() {
		return nil, sortDiags(diags)
	}
	return plan, sortDiags(diags)
}

// taskClosure lists the tasks a run of t takes part in: t and those its
// steps call, callers first.
func taskClosure(t *config.Task) []*config.Task {
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
	return tasks
}

// pluginFor returns the plugin a step of a file runs on (nil when its
// plugin block is missing, which the loader reports).
type pluginFor func(f *config.File, s *config.Step) *PluginInstance

// startPlugins starts every plugin the tasks use, concurrently.
func (e *Engine) startPlugins(ctx context.Context, tasks []*config.Task) (pluginFor, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	bound := map[*config.PluginDecl]*PluginInstance{} // written under mu
	starting := map[*config.PluginDecl]bool{}
	builtins := map[*config.File]*PluginInstance{}
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
				wg.Go(func() {
					p, ds := e.instance(ctx, d)
					mu.Lock()
					defer mu.Unlock()
					bound[d] = p
					diags = append(diags, ds...)
				})
			}
		}
	}
	wg.Wait()
	return func(f *config.File, s *config.Step) *PluginInstance {
		if s.Plugin == config.BuiltinPlugin {
			return builtins[f]
		}
		return bound[f.Plugin(s.Plugin)]
	}, diags
}

// expand adds sc and the scopes of the tasks it calls to the plan, binds
// their steps to actions (an instance per for_each key) and checks the
// argument names.
func (p *Plan) expand(sc *Scope, pluginOf pluginFor) hcl.Diagnostics {
	var diags hcl.Diagnostics
	p.Scopes = append(p.Scopes, sc)
	sc.leaves, sc.calls, sc.groups = map[string]*PlanStep{}, map[string]*Scope{}, map[string][]*PlanStep{}
	// What is known before the run, for for_each keys: params and
	// variables (a call's params worked out with steps unknown).
	kctx, _ := sc.Task.EvalContext(sc.Params, cty.DynamicVal)
	for _, s := range sc.Task.Steps {
		if s.Called != nil {
			c := &Scope{Task: s.Called, Prefix: sc.Prefix + s.Name + "/", Parent: sc, Call: s}
			c.Params, _ = callParams(c, kctx)
			sc.calls[s.Name] = c
			diags = append(diags, p.expand(c, pluginOf)...)
			continue
		}
		pl := pluginOf(sc.Task.File, s)
		if pl == nil {
			continue
		}
		a, ok := pl.Schema.Action(s.ActionName)
		if !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Unknown action",
				Detail: fmt.Sprintf("Plugin %s has no action %q.%s Its actions: %s.",
					pl.Label(), s.ActionName, config.Suggest(s.ActionName, pl.Schema.ActionNames()), strings.Join(pl.Schema.ActionNames(), ", ")),
				Subject: s.ActionRange.Ptr(),
			})
			continue
		}
		if s.ForEach != nil {
			diags = append(diags, p.expandForEach(sc, s, pl, a, kctx)...)
			continue
		}
		ps := &PlanStep{Step: s, Name: sc.Prefix + s.Name, Scope: sc, Plugin: pl, Action: a}
		diags = append(diags, checkArgNames(ps)...)
		sc.leaves[s.Name] = ps
		p.Steps = append(p.Steps, ps)
	}
	return diags
}

// expandForEach adds an instance of a for_each step per key known before
// the run, or one stand-in instance when the keys are not known yet.
func (p *Plan) expandForEach(sc *Scope, s *config.Step, pl *PluginInstance, a *protocol.Action, kctx *hcl.EvalContext) hcl.Diagnostics {
	keys, known, diags := forEachKeys(s, kctx, p.Params.IsWhollyKnown())
	var ks []cty.Value
	for _, k := range keys {
		ks = append(ks, cty.StringVal(k))
	}
	if !known && !diags.HasErrors() {
		ks = []cty.Value{cty.UnknownVal(cty.String)}
	}
	insts := []*PlanStep{}
	for _, k := range ks {
		ps := &PlanStep{Step: s, Name: instanceName(sc.Prefix, s.Name, k), Scope: sc, Plugin: pl, Action: a, Key: k}
		insts = append(insts, ps)
		p.Steps = append(p.Steps, ps)
	}
	if len(insts) > 0 {
		diags = append(diags, checkArgNames(insts[0])...)
	}
	sc.groups[s.Name] = insts
	return diags
}

// checkIgnoreError: a failure can be ignored only where it leaves
// nothing behind.
func checkIgnoreError(steps []*PlanStep) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, ps := range steps {
		if ps.Step.IgnoreError && ps.Action.HasUndo {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "ignore_error on a step that makes something",
				Detail: fmt.Sprintf("Step %q runs %s, which makes something it can undo: a failure of it may leave part of that behind, so it cannot be ignored. Remove ignore_error, or handle the failure with if on the steps after it.",
					ps.Name, actionName(ps)),
				Subject: ps.ActionRange.Ptr(),
			})
		}
	}
	return diags
}

// checkReadOnly: a task that says it changes nothing runs only actions
// that make nothing to undo.
func checkReadOnly(t *config.Task, steps []*PlanStep) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, ps := range steps {
		if ps.Action.HasUndo {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Step of a read-only task makes something",
				Detail: fmt.Sprintf("Task %s is read_only (%s:%d), so its runs are not journaled; step %q runs %s, which makes something it can undo. Remove read_only from the task, or the step.",
					t.Name, t.ReadOnlyRange.Filename, t.ReadOnlyRange.Start.Line, ps.Name, actionName(ps)),
				Subject: ps.ActionRange.Ptr(),
			})
		}
	}
	return diags
}

// checkOutputRefs: references to outputs, in steps and in task outputs,
// must name declared outputs.
func checkOutputRefs(scopes []*Scope) hcl.Diagnostics {
	var diags hcl.Diagnostics
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
	for _, sc := range scopes {
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
	return diags
}

// orderSteps works out each step's dependencies and puts the steps in an
// order that respects them; a cycle is the one error.
func (p *Plan) orderSteps() hcl.Diagnostics {
	names := make([]string, len(p.Steps))
	deps := map[string][]string{}
	for i, ps := range p.Steps {
		names[i] = ps.Name
		ps.Deps = ps.Scope.resolve(ps.Refs)
		for _, n := range ps.Scope.inherited() {
			ps.Deps = appendOnce(ps.Deps, n)
		}
		deps[ps.Name] = ps.Deps
	}
	sorted, cycle := order(names, deps)
	if cycle != nil {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Dependency cycle between steps",
			Detail:  fmt.Sprintf("These steps wait for each other: %s. Remove a reference or a depends_on to break the cycle.", formatCycle(cycle)),
			Subject: p.Step(cycle[0]).DeclRange.Ptr(),
		}}
	}
	byName := map[string]*PlanStep{}
	for _, ps := range p.Steps {
		byName[ps.Name] = ps
	}
	p.Steps = p.Steps[:0]
	for _, n := range sorted {
		p.Steps = append(p.Steps, byName[n])
	}
	return nil
}

// scopeCheck is what type-checking found out about a scope.
type scopeCheck struct {
	// ectx evaluates the scope's expressions with step outputs unknown.
	ectx *hcl.EvalContext
	// skipped: the if of a call around the scope is false, or not known
	// yet; ifKnown: every such if is known.
	skipped, ifKnown bool
}

// typeCheck evaluates the arguments of every step with step outputs
// unknown, scope by scope (callers first).
func (p *Plan) typeCheck() (map[*Scope]*scopeCheck, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	checked := map[*Scope]*scopeCheck{}
	for _, sc := range p.Scopes {
		c, ds := checkScope(sc, checked[sc.Parent])
		diags = append(diags, ds...)
		checked[sc] = c
	}
	for _, ps := range p.Steps {
		diags = append(diags, p.checkStep(ps, checked[ps.Scope])...)
	}
	return checked, diags
}

// checkScope works out a called scope's params, whether its call is
// skipped and its limit, then the scope's evaluation context. parent is
// nil for the task run.
func checkScope(sc *Scope, parent *scopeCheck) (*scopeCheck, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	c := &scopeCheck{ifKnown: true}
	if sc.Parent != nil {
		pctx := parent.ectx
		ps, ds := callParams(sc, pctx)
		diags = append(diags, ds...)
		sc.Params = ps
		c.skipped, c.ifKnown = parent.skipped, parent.ifKnown
		if sc.Call.If != nil {
			ds := checkBool(sc.Call.If, pctx, "if")
			diags = append(diags, ds...)
			if !ds.HasErrors() {
				v, _ := sc.Call.If.Value(pctx)
				v = lang.Unmarked(v)
				c.skipped = c.skipped || !v.IsKnown() || v.False()
				c.ifKnown = c.ifKnown && v.IsKnown()
			}
		}
		if sc.Call.Timeout != nil {
			tctx, _ := sc.Parent.Task.EvalContext(sc.Parent.Params, cty.NilVal)
			d, ds := evalLimit(sc.Call.Timeout, tctx, stepLabel(sc.Call.Name))
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
	c.ectx = ectx
	return c, diags
}

// checkStep evaluates a step's limit, commit, inputs and if.
func (p *Plan) checkStep(ps *PlanStep, sc *scopeCheck) hcl.Diagnostics {
	ectx, diags := eachContext(ps, sc.ectx)
	if diags.HasErrors() {
		return diags
	}
	tctx, _ := ps.Scope.Task.EvalContext(ps.Scope.Params, cty.NilVal)
	diags = append(diags, evalTimeout(ps, tctx)...)
	diags = append(diags, evalCommit(ps, tctx, p.Params.IsWhollyKnown())...)
	in, ds := evalInputs(ps, ectx)
	diags = append(diags, ds...)
	if ds.HasErrors() {
		return diags
	}
	ps.Inputs = lang.MarkAttrs(in, sensitiveNames(ps.Action.Inputs))
	diags = append(diags, runsVmflow(ps)...)
	ps.Skip, ps.IfKnown = sc.skipped, sc.ifKnown
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
	return diags
}

// validateSteps asks the plugins, concurrently, whether they accept the
// steps' inputs.
func (e *Engine) validateSteps(ctx context.Context, steps []*PlanStep) hcl.Diagnostics {
	var diags hcl.Diagnostics
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ps := range steps {
		if ps.Skip {
			// A step that will not run, or may not, is not asked: its
			// inputs may only make sense when its condition holds.
			continue
		}
		wg.Go(func() {
			ds := e.validateStep(ctx, ps)
			mu.Lock()
			diags = append(diags, ds...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return diags
}

// checkScopes checks each scope's preconditions, outputs and lock, and
// gathers the locks the run takes.
func (p *Plan) checkScopes(checked map[*Scope]*scopeCheck) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, sc := range p.Scopes {
		if sc.Params.IsWhollyKnown() {
			// With params unknown (vmflow validate, or a call whose
			// arguments come from steps) a precondition, which is about
			// values, cannot say anything yet.
			diags = append(diags, checkPreconditions(sc.Task, sc.Params)...)
		}
		// Outputs and the lock.
		for _, o := range sc.Task.Outputs {
			if _, ds := o.Value.Value(checked[sc].ectx); ds.HasErrors() {
				diags = append(diags, ds...)
			}
		}
		if sc.Task.Lock == nil {
			continue
		}
		lctx, _ := sc.Task.EvalContext(sc.Params, cty.NilVal)
		keys, ds := evalLock(sc.Task.Lock, lctx)
		diags = append(diags, ds...)
		if sc.Parent != nil && keys == nil && !ds.HasErrors() && !sc.Params.IsWhollyKnown() && p.Params.IsWhollyKnown() {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Lock not known before the run",
				Detail: fmt.Sprintf("Step %q calls task %s, whose lock depends on a param that comes from a step; the run takes its locks before any step runs. Pass that param a value known before the run.",
					sc.Name(), sc.Task.Name),
				Subject: sc.Task.Lock.Range().Ptr(),
			})
		}
		// A lock a caller holds already is taken once: re-entrant.
		for _, k := range keys {
			p.Locks = appendOnce(p.Locks, k+p.lockScope())
		}
	}
	return diags
}

// lockScope is what a lock key gets when the run's plugins name a host
// (their blocks' host): "@build1". A VM web on build1 and one on build2
// are different machines, so their runs neither wait for each other nor
// hold each other up, nor does one supersede the other's. Runs on no
// named host keep their keys as they are.
func (p *Plan) lockScope() string {
	hosts := p.Hosts()
	if len(hosts) == 0 {
		return ""
	}
	var names []string
	for _, h := range hosts {
		names = appendOnce(names, h)
	}
	sort.Strings(names)
	return "@" + strings.Join(names, ",")
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
