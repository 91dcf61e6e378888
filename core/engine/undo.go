package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/claims"
	"github.com/vmflow/vmflow/core/event"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/core/protocol"
)

// undoItem is a step to undo. interrupted: its Run never completed (it
// failed, was cancelled or timed out, or vmflow was killed during it), so
// its plugin undoes what the step's claims show, with no outputs.
type undoItem struct {
	name        string
	interrupted bool
}

// undo runs the undos of order, first to last. When an undo fails, the
// steps it depends on (directly or through others) are not undone: what
// the failed step made may still need them (a VM still defined needs its
// machine record, its disks); their undo is skipped, to be tried again by
// vmflow resume --undo once the failed one succeeds.
func (e *Engine) undo(plan *Plan, states map[string]*stepState, order []undoItem, opts RunOptions, emit func(event.Event), res *Result) {
	ctx := opts.UndoContext
	if ctx == nil {
		ctx = context.Background()
	}
	blockedBy := map[string]string{} // step → the step whose undo failed
	block := func(name string) {
		for _, dep := range plan.dependencies(name) {
			if _, ok := blockedBy[dep]; !ok {
				blockedBy[dep] = name
			}
		}
	}
	for _, it := range order {
		ps := plan.Step(it.name)
		st := states[ps.Name]
		if !ps.Action.HasUndo {
			continue
		}
		if it.interrupted && !e.hasClaims(ps, opts.RunID) {
			// The step's attempts claimed nothing: they changed nothing
			// that the plugin could find again, so there is nothing to
			// undo (core/sdk would not call its Undo either).
			continue
		}
		if by, ok := blockedBy[ps.Name]; ok {
			msg := fmt.Sprintf("not undone: the undo of step %q failed, and it depends on this step", by)
			emit(event.Event{Kind: event.UndoSkipped, Step: ps.Name, Action: actionName(ps), Error: msg})
			res.UndoSkipped = append(res.UndoSkipped, ps.Name)
			block(ps.Name)
			continue
		}
		if ctx.Err() != nil {
			emit(event.Event{Kind: event.UndoFailed, Step: ps.Name, Action: actionName(ps), Error: "undo abandoned (interrupted again)"})
			res.UndoFailed = append(res.UndoFailed, ps.Name)
			block(ps.Name)
			if opts.Journal != nil {
				_ = opts.Journal.Append(journal.Record{Step: ps.Name, Action: actionName(ps), Status: journal.UndoFailed, Error: "undo abandoned (interrupted again)"})
			}
			continue
		}
		emit(event.Event{Kind: event.UndoStarted, Step: ps.Name, Action: actionName(ps)})
		start := time.Now()
		outputs := st.outputs
		if it.interrupted || outputs == cty.NilVal {
			outputs = cty.NullVal(ps.Action.Outputs.ObjectType())
		}
		uctx, cancel, timedOut := withTimeout(ctx, ps.Timeout)
		last := &lastReport{}
		pds, err := ps.Plugin.Undo(uctx, protocol.UndoRequest{Action: ps.ActionName, Inputs: st.inputs, Outputs: outputs, RunID: opts.RunID, Step: ps.Name, Timeout: ps.Timeout}, last.tee(e.pluginEmitter(ps, plan.Redactor(), e.pluginLogger().Named(ps.Plugin.Name).With("step", ps.Name, "undo", true), emit)))
		cancel()
		var d *hcl.Diagnostic
		switch {
		case timedOut():
			d = timeoutDiag(ps, true, last.String())
		case err != nil:
			err = ps.Plugin.callError(err)
		default:
			err = pds.Err()
		}
		if err != nil && d == nil {
			d = &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Undo of step %q failed", ps.Name),
				Detail: fmt.Sprintf("plugin %s: %v", ps.Plugin.Label(), err), Subject: ps.DeclRange.Ptr()}
		}
		rec := journal.Record{Step: ps.Name, Action: actionName(ps), Status: journal.Undone}
		if d != nil {
			d.Detail += fmt.Sprintf("\nWhat step %q made may still exist: `vmflow resume %s --undo` tries its undo again.", ps.Name, opts.RunID)
			d.Summary, d.Detail = plan.Redactor().Redact(d.Summary), plan.Redactor().Redact(d.Detail)
			rec.Status, rec.Error = journal.UndoFailed, d.Summary+": "+d.Detail
			res.UndoFailed = append(res.UndoFailed, ps.Name)
			res.Diags = append(res.Diags, d)
			emit(event.Event{Kind: event.UndoFailed, Step: ps.Name, Action: actionName(ps), Error: d.Summary + ": " + d.Detail, ElapsedMS: time.Since(start).Milliseconds()})
			block(ps.Name)
		} else {
			res.Undone = append(res.Undone, ps.Name)
			emit(event.Event{Kind: event.UndoDone, Step: ps.Name, Action: actionName(ps), ElapsedMS: time.Since(start).Milliseconds()})
		}
		if opts.Journal != nil {
			_ = opts.Journal.Append(rec)
		}
	}
}

// hasClaims reports whether the step's attempts in this run claimed
// anything (core/claims), which is what an interrupted step's undo works
// from.
func (e *Engine) hasClaims(ps *PlanStep, runID string) bool {
	if runID == "" || e.StateDir == "" {
		return false
	}
	return claims.Any(claims.Dir(e.StateDir, ps.Plugin.Schema.Name, runID, ps.Name))
}

// dependencies lists every step name depends on, directly or through
// other steps.
func (p *Plan) dependencies(name string) []string {
	var out []string
	seen := map[string]bool{name: true}
	var walk func(string)
	walk = func(n string) {
		ps := p.Step(n)
		if ps == nil {
			return
		}
		for _, d := range ps.Deps {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
				walk(d)
			}
		}
	}
	walk(name)
	return out
}

// rollback undoes an unfinished run (vmflow resume --undo): first the
// steps whose Run never completed, then the completed steps in reverse
// order of completion; steps whose undo failed before are undone again.
// The run ends rolled back only when every undo succeeded.
func (e *Engine) rollback(plan *Plan, opts RunOptions, rb *Rollback) *Result {
	emit := runEmitter(plan, opts)
	start := time.Now()
	states := map[string]*stepState{}
	var order []undoItem
	// Interrupted steps first; among them, later steps of the plan first.
	for i := len(plan.Steps) - 1; i >= 0; i-- {
		ps := plan.Steps[i]
		in, ok := rb.Interrupted[ps.Name]
		if !ok {
			continue
		}
		states[ps.Name] = &stepState{status: journal.Running, inputs: in}
		order = append(order, undoItem{name: ps.Name, interrupted: true})
		emit(event.Event{Kind: event.StepFailed, Step: ps.Name, Action: actionName(ps), Error: "interrupted: its run did not complete"})
	}
	for _, name := range rb.Order {
		d := rb.Done[name]
		states[name] = &stepState{status: journal.Succeeded, inputs: d.Inputs, outputs: d.Outputs}
		emit(event.Event{Kind: event.StepDone, Step: name, Action: actionName(plan.Step(name)), Message: "completed by the earlier attempt", Outputs: e.outputsJSON(plan.Step(name), d.Outputs)})
	}
	for i := len(rb.Order) - 1; i >= 0; i-- {
		order = append(order, undoItem{name: rb.Order[i]})
	}
	res := &Result{RunID: opts.RunID, Status: journal.RolledBack, Completed: rb.Order}
	e.undo(plan, states, order, opts, emit, res)
	errText := ""
	if len(res.UndoFailed) > 0 || len(res.UndoSkipped) > 0 {
		res.Status = journal.Failed
		errText = res.Err().Error()
	}
	errText = e.end(opts, res, errText)
	emit(event.Event{Kind: event.RunDone, Status: res.Status, ElapsedMS: time.Since(start).Milliseconds(), Error: errText})
	return res
}
