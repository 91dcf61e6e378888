package engine

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/lang"
)

// evalInputs evaluates a step's arguments and converts them to the action's
// input types, filling defaults. The defaults are filled here, though the
// SDK fills them again on the plugin's side (protocol ApplyDefaults): the
// plan prints them, the journal records them (a resume and an undo must
// see what the step ran with), and a plugin not built on the SDK gets no
// defaults but these.
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
