package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/lang"
)

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
