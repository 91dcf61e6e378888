package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/vmflow/vmflow/core/engine"
	"github.com/vmflow/vmflow/core/event"
	"github.com/vmflow/vmflow/core/lang"
)

// emitPlan prints the plan as one plan event.
func (a *app) emitPlan(plan *engine.Plan) {
	src := a.exprSource
	out := planJSON{Time: time.Now(), Kind: event.Plan, Task: plan.Task.Name, Locks: append([]string{}, plan.Locks...), Steps: []planStepJSON{}}
	for _, ps := range plan.Steps {
		js := planStepJSON{Name: ps.Name, Plugin: ps.Plugin.Name, Source: ps.Plugin.Label(), Action: ps.Plugin.Name + "." + ps.ActionName,
			HasUndo: ps.Action.HasUndo, After: append([]string{}, ps.Deps...), TimeoutMS: ps.Timeout.Milliseconds(), Commit: ps.Commit,
			Args: []planArgJSON{}, Would: append([]string{}, ps.Would...)}
		if ps.If != nil {
			js.If = &planIfJSON{Expr: src(ps.If.Range())}
			if ps.IfKnown || !ps.Skip {
				runs := !ps.Skip
				js.If.Runs = &runs
			}
		}
		for _, arg := range ps.Args {
			attr, _ := ps.Action.Inputs.Get(arg.Name)
			v := ps.Inputs.GetAttr(arg.Name)
			ja := planArgJSON{Name: arg.Name}
			switch {
			case attr.Sensitive:
				ja.Value, ja.Sensitive = "(sensitive)", true
			case !v.IsWhollyKnown():
				ja.Unknown = src(arg.Expr.Range())
			default:
				ja.Value = lang.PlainValue(v)
			}
			js.Args = append(js.Args, ja)
		}
		out.Steps = append(out.Steps, js)
	}
	a.jsonMu.Lock()
	defer a.jsonMu.Unlock()
	_ = json.NewEncoder(a.stdout).Encode(out)
}

// printPlan shows what a run would do, in order.
func (a *app) printPlan(plan *engine.Plan) {
	w := a.stdout
	fmt.Fprintf(w, "Task %s: %d step(s)", plan.Task.Name, len(plan.Steps))
	if len(plan.Locks) > 0 {
		fmt.Fprintf(w, ", lock %s", strings.Join(plan.Locks, ", "))
	}
	fmt.Fprintln(w)
	src := a.exprSource
	for i, ps := range plan.Steps {
		undo := ""
		if ps.Action.HasUndo {
			undo = ", has undo"
		}
		fmt.Fprintf(w, "\n%d. %s  (%s.%s, plugin %s%s)\n", i+1, ps.Name, ps.Plugin.Name, ps.ActionName, ps.Plugin.Label(), undo)
		if len(ps.Deps) > 0 {
			fmt.Fprintf(w, "   after: %s\n", strings.Join(ps.Deps, ", "))
		}
		if ps.Timeout > 0 {
			from := "the action's default"
			if ps.TimeoutSet {
				from = "timeout = " + src(ps.Step.Timeout.Range())
			}
			fmt.Fprintf(w, "   timeout: %s  (%s)\n", lang.FormatDuration(ps.Timeout), from)
		}
		if ps.Commit {
			fmt.Fprintln(w, "   commit: once it completed, the run only goes forward")
		}
		if ps.If != nil {
			verdict := "runs"
			switch {
			case !ps.IfKnown:
				verdict = "decided during the run"
			case ps.Skip:
				verdict = "false: skipped"
			}
			fmt.Fprintf(w, "   if: %s  (%s)\n", src(ps.If.Range()), verdict)
		}
		for _, arg := range ps.Args {
			attr, _ := ps.Action.Inputs.Get(arg.Name)
			v := ps.Inputs.GetAttr(arg.Name)
			var shown string
			switch {
			case attr.Sensitive:
				shown = "(sensitive)"
			case !v.IsWhollyKnown():
				shown = src(arg.Expr.Range()) + "  (known during the run)"
			default:
				shown = lang.FormatValue(v)
			}
			fmt.Fprintf(w, "   %s = %s\n", arg.Name, shown)
		}
		for _, line := range ps.Would {
			fmt.Fprintf(w, "   would: %s\n", line)
		}
	}
	fmt.Fprintln(w, "\nNothing was run.")
}

// exprSource is an expression's text as the task file has it.
func (a *app) exprSource(r hcl.Range) string {
	if f := a.proj.Sources[r.Filename]; f != nil {
		return string(r.SliceBytes(f.Bytes))
	}
	return "(expression)"
}
