package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/core/lang"
)

// A step that calls a task is expanded into the caller's plan: the called
// task's steps become steps of the same run, named by their path
// (vm/define), each evaluated in the scope of its own task. See
// docs/design.md.

// Scope is one task's view of a run: the task run, or a task one of its
// steps calls (and so on down).
type Scope struct {
	Task *config.Task
	// Prefix is "" for the task run, "vm/" inside the task that step vm
	// calls, "vm/disk/" one call further down.
	Prefix string
	Parent *Scope
	// Call is the step of Parent that calls Task (nil for the task run).
	Call *config.Step
	// Params as known before the run: values that come from steps are
	// unknown.
	Params cty.Value
	// Timeout is the call step's own limit for every step inside it
	// together; 0: none.
	Timeout time.Duration

	leaves map[string]*PlanStep   // the task's action steps, by name
	groups map[string][]*PlanStep // the instances of its for_each steps, by name
	calls  map[string]*Scope      // the task's call steps, by name
}

// Name is the call step's path ("vm", "vm/disk"); "" for the task run.
func (sc *Scope) Name() string { return strings.TrimSuffix(sc.Prefix, "/") }

// Leaves lists the full names of the action steps inside a scope, those
// of nested calls included, in file order.
func (sc *Scope) Leaves() []string {
	var out []string
	for _, s := range sc.Task.Steps {
		if ps := sc.leaves[s.Name]; ps != nil {
			out = append(out, ps.Name)
		} else if g, ok := sc.groups[s.Name]; ok {
			for _, ps := range g {
				out = append(out, ps.Name)
			}
		} else if c := sc.calls[s.Name]; c != nil {
			out = append(out, c.Leaves()...)
		}
	}
	return out
}

// resolve maps a step's references, in this scope, to the planned steps
// they wait for: a call stands for every step inside it.
func (sc *Scope) resolve(refs []config.StepRef) []string {
	var out []string
	for _, r := range refs {
		if ps := sc.leaves[r.Step]; ps != nil {
			out = appendOnce(out, ps.Name)
		} else if g, ok := sc.groups[r.Step]; ok {
			for _, ps := range g {
				if r.Key == "" || !ps.Key.IsKnown() || ps.Key.AsString() == r.Key {
					out = appendOnce(out, ps.Name)
				}
			}
		} else if c := sc.calls[r.Step]; c != nil {
			// Its outputs may read its params as well as its steps (a
			// task without steps has only those): what the call waits
			// for comes first.
			for _, n := range c.inherited() {
				out = appendOnce(out, n)
			}
			for _, n := range c.Leaves() {
				out = appendOnce(out, n)
			}
		}
	}
	return out
}

// inherited lists what every step inside a scope waits for: what its
// call step, and the calls around it, wait for.
func (sc *Scope) inherited() []string {
	if sc.Parent == nil {
		return nil
	}
	out := sc.Parent.resolve(sc.Call.Refs)
	for _, n := range sc.Parent.inherited() {
		out = appendOnce(out, n)
	}
	return out
}

// outputType is the object type step.<call> has: one attribute per
// output of the called task, of any type.
func outputType(t *config.Task) cty.Type {
	attrs := map[string]cty.Type{}
	for _, o := range t.Outputs {
		attrs[o.Name] = cty.DynamicPseudoType
	}
	return cty.Object(attrs)
}

// callParams evaluates a call step's arguments, in its caller's context,
// into the called task's params: converted to their types, defaults
// filled, options checked.
func callParams(sc *Scope, ectx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	vals := map[string]cty.Value{}
	for _, p := range sc.Task.Params {
		a := sc.Call.Arg(p.Name)
		if a == nil {
			if p.Default == cty.NilVal {
				vals[p.Name] = cty.UnknownVal(p.Type) // reported when the file loaded
			} else {
				vals[p.Name] = p.Default
			}
			continue
		}
		v, ds := a.Expr.Value(ectx)
		diags = append(diags, ds...)
		if ds.HasErrors() {
			vals[p.Name] = cty.UnknownVal(p.Type)
			continue
		}
		cv, err := convert.Convert(v, p.Type)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid value for param",
				Detail:  fmt.Sprintf("Step %q calls task %s: param %q: %v.", sc.Name(), sc.Task.Name, p.Name, err),
				Subject: a.Expr.Range().Ptr(),
			})
			vals[p.Name] = cty.UnknownVal(p.Type)
			continue
		}
		if cv.IsKnown() && cv.IsNull() {
			if p.Default == cty.NilVal {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Missing param",
					Detail:  fmt.Sprintf("Step %q calls task %s: param %q has no default, and the value given is null.", sc.Name(), sc.Task.Name, p.Name),
					Subject: a.Expr.Range().Ptr(),
				})
				cv = cty.UnknownVal(p.Type)
			} else {
				cv = p.Default
			}
		}
		if err := p.CheckOptions(cv); err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid value for param",
				Detail:  fmt.Sprintf("Step %q calls task %s: param %q: %v", sc.Name(), sc.Task.Name, p.Name, err),
				Subject: a.Expr.Range().Ptr(),
			})
		}
		vals[p.Name] = cv
	}
	return objectOf(vals), diags
}

// runScope evaluates scopes during a run, from the steps' states as they
// are now. Make one with newRunScope for each evaluation: it remembers
// what it worked out.
type runScope struct {
	plan   *Plan
	states map[string]*stepState
	// callParamsOf and values remember each call's params and outputs.
	callParamsOf map[*Scope]cty.Value
	values       map[*Scope]cty.Value
}

func newRunScope(plan *Plan, states map[string]*stepState) runScope {
	return runScope{plan: plan, states: states, callParamsOf: map[*Scope]cty.Value{}, values: map[*Scope]cty.Value{}}
}

// params are a scope's params now: the task run's own, or its call's
// arguments evaluated with what the steps they refer to have produced.
func (rs runScope) params(sc *Scope) (cty.Value, hcl.Diagnostics) {
	if sc.Parent == nil {
		return rs.plan.Params, nil
	}
	if v, ok := rs.callParamsOf[sc]; ok {
		return v, nil
	}
	ectx, diags := rs.callerContext(sc)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	v, diags := callParams(sc, ectx)
	if !diags.HasErrors() {
		rs.callParamsOf[sc] = v
	}
	return v, diags
}

// callerContext is the context a call step's own expressions (its
// arguments, its if) are evaluated in: its caller's, knowing only the
// steps the call refers to, which are all done before it (so working
// them out never comes back to this call).
func (rs runScope) callerContext(sc *Scope) (*hcl.EvalContext, hcl.Diagnostics) {
	params, diags := rs.params(sc.Parent)
	if diags.HasErrors() {
		return nil, diags
	}
	only := map[string]bool{}
	for _, r := range sc.Call.Refs {
		only[r.Step] = true
	}
	return sc.Parent.Task.EvalContext(params, rs.steps(sc.Parent, only))
}

// context is the evaluation context of a scope now.
func (rs runScope) context(sc *Scope) (*hcl.EvalContext, hcl.Diagnostics) {
	params, diags := rs.params(sc)
	if diags.HasErrors() {
		return nil, diags
	}
	return sc.Task.EvalContext(params, rs.steps(sc, nil))
}

// steps is a scope's step.* object as known now: outputs of completed
// steps, null outputs for skipped ones, a call's outputs once every step
// inside it is done, unknowns for the rest. With only set, the steps not
// in it read as unknown.
func (rs runScope) steps(sc *Scope, only map[string]bool) cty.Value {
	m := make(map[string]cty.Value, len(sc.Task.Steps))
	for _, s := range sc.Task.Steps {
		ps, c := sc.leaves[s.Name], sc.calls[s.Name]
		if g, ok := sc.groups[s.Name]; ok {
			m[s.Name] = groupValue(g, func(ps *PlanStep) cty.Value {
				if only == nil || only[s.Name] {
					return rs.leafValue(ps)
				}
				return cty.UnknownVal(ps.Action.Outputs.ObjectType())
			})
			continue
		}
		switch {
		case ps != nil && (only == nil || only[s.Name]):
			m[s.Name] = rs.leafValue(ps)
		case ps != nil:
			m[s.Name] = cty.UnknownVal(ps.Action.Outputs.ObjectType())
		case c != nil && (only == nil || only[s.Name]):
			m[s.Name] = rs.callValue(c)
		case c != nil:
			m[s.Name] = cty.UnknownVal(outputType(c.Task))
		}
	}
	return objectOf(m)
}

func (rs runScope) leafValue(ps *PlanStep) cty.Value {
	st := rs.states[ps.Name]
	switch {
	case st.status == journal.Succeeded && st.outputs != cty.NilVal:
		return st.outputs
	case st.status == journal.Skipped:
		// Every output of a skipped step reads as null, so
		// coalesce(step.x.out, fallback) works.
		nulls := map[string]cty.Value{}
		for _, o := range ps.Action.Outputs {
			nulls[o.Name] = cty.NullVal(o.Type)
		}
		return objectOf(nulls)
	}
	return cty.UnknownVal(ps.Action.Outputs.ObjectType())
}

// callValue is what step.<call> reads: the called task's outputs once
// every step inside the call is done (nulls when all were skipped); for a
// task without steps, once its params are known.
func (rs runScope) callValue(sc *Scope) cty.Value {
	if v, ok := rs.values[sc]; ok {
		return v
	}
	v := rs.workOutCallValue(sc)
	rs.values[sc] = v
	return v
}

func (rs runScope) workOutCallValue(sc *Scope) cty.Value {
	leaves := sc.Leaves()
	skipped := len(leaves) > 0
	if len(leaves) == 0 {
		// A task without steps (outputs worked out from its params):
		// skipped only by the if of its call or of one around it.
		name, diags := rs.callSkipped(sc)
		if diags.HasErrors() {
			return cty.UnknownVal(outputType(sc.Task))
		}
		skipped = name != ""
	}
	for _, n := range leaves {
		switch rs.states[n].status {
		case journal.Succeeded:
			skipped = false
		case journal.Skipped:
		default:
			return cty.UnknownVal(outputType(sc.Task))
		}
	}
	m := map[string]cty.Value{}
	if skipped {
		for _, o := range sc.Task.Outputs {
			m[o.Name] = cty.NullVal(cty.DynamicPseudoType)
		}
		return objectOf(m)
	}
	ectx, diags := rs.context(sc)
	for _, o := range sc.Task.Outputs {
		if diags.HasErrors() {
			m[o.Name] = cty.DynamicVal
			continue
		}
		v, ds := o.Value.Value(ectx)
		if ds.HasErrors() {
			v = cty.DynamicVal
		}
		m[o.Name] = v
	}
	return objectOf(m)
}

// callSkipped reports, for a step about to run, whether the if of a call
// around it is false (naming that call), evaluated now in the caller's
// scope.
func (rs runScope) callSkipped(sc *Scope) (string, hcl.Diagnostics) {
	var chain []*Scope
	for c := sc; c.Parent != nil; c = c.Parent {
		chain = append([]*Scope{c}, chain...)
	}
	for _, c := range chain {
		if c.Call.If == nil {
			continue
		}
		ectx, diags := rs.callerContext(c)
		if diags.HasErrors() {
			return "", diags
		}
		v, diags := c.Call.If.Value(ectx)
		if diags.HasErrors() {
			return "", diags
		}
		v = lang.Unmarked(v)
		if v.IsNull() || !v.IsKnown() || v.Type() != cty.Bool || v.False() {
			return c.Name(), nil
		}
	}
	return "", nil
}

// callDeadline is when the tightest timeout of the calls around a step
// runs out, given when each call's first step started; the call it
// belongs to is returned too (nil: no call limits the step). A call's
// timeout not known before the run (from a step's output) is worked out
// now.
func (rs runScope) callDeadline(sc *Scope, started map[*Scope]time.Time) (time.Time, *Scope, hcl.Diagnostics) {
	var at time.Time
	var by *Scope
	for c := sc; c.Parent != nil; c = c.Parent {
		if c.Timeout <= 0 && c.Call.Timeout != nil {
			ectx, diags := rs.callerContext(c)
			if diags.HasErrors() {
				return at, by, diags
			}
			d, diags := evalLimit(c.Call.Timeout, ectx, stepLabel(c.Name()))
			if diags.HasErrors() {
				return at, by, diags
			}
			c.Timeout = d
		}
		if c.Timeout <= 0 {
			continue
		}
		d := started[c].Add(c.Timeout)
		if by == nil || d.Before(at) {
			at, by = d, c
		}
	}
	return at, by, nil
}

// stepContext is what a step about to run is evaluated in, worked out
// when it starts (the run's states change meanwhile).
type stepContext struct {
	ectx *hcl.EvalContext
	// skippedBy names a call around the step whose if is false.
	skippedBy string
	diags     hcl.Diagnostics
	// deadline is when the tightest timeout of the calls around the step
	// runs out (zero: none), and deadlineBy that call.
	deadline   time.Time
	deadlineBy *Scope
}

func (rs runScope) stepContext(ps *PlanStep, started map[*Scope]time.Time) stepContext {
	var sc stepContext
	if sc.skippedBy, sc.diags = rs.callSkipped(ps.Scope); sc.diags.HasErrors() || sc.skippedBy != "" {
		return sc
	}
	if sc.ectx, sc.diags = rs.context(ps.Scope); sc.diags.HasErrors() {
		return sc
	}
	if sc.ectx, sc.diags = eachContext(ps, sc.ectx); sc.diags.HasErrors() {
		return sc
	}
	sc.deadline, sc.deadlineBy, sc.diags = rs.callDeadline(ps.Scope, started)
	return sc
}
