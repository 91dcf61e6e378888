package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vmflow/vmflow/core/event"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/core/lang"
	"github.com/vmflow/vmflow/core/protocol"
)

// DefaultParallelism bounds how many steps run at once.
const DefaultParallelism = 4

// Completed is a step a previous attempt of the run completed.
type Completed struct {
	Inputs, Outputs cty.Value
}

// RunOptions tune Run.
type RunOptions struct {
	RunID         string
	Journal       *journal.Run // nil: not journaled
	Parallelism   int
	KeepOnFailure bool
	Events        event.Sink
	// Done lists the steps a resumed run already completed; they are not
	// run again and their outputs feed later steps.
	Done map[string]Completed
	// UndoContext governs the undos after a failure; cancelling it (a
	// second Ctrl-C) abandons them. nil means context.Background().
	UndoContext context.Context
}

// Result is what a run did.
type Result struct {
	RunID string
	// Status: succeeded, failed or cancelled.
	Status string
	// Outputs are the task's outputs (succeeded runs only).
	Outputs map[string]cty.Value
	// Diags say why steps failed, placed at the step or argument.
	Diags hcl.Diagnostics
	// Completed lists the steps that completed, in order; Undone and
	// UndoFailed the steps whose undo ran; UndoSkipped those whose undo
	// did not run because the undo of a step that depends on them failed.
	Completed, Undone, UndoFailed, UndoSkipped []string
	// JournalLost counts the journal records that could not be written
	// (a full disk): the run is then left interrupted, as a killed vmflow
	// leaves it, for resume or resume --undo to finish.
	JournalLost int
	// Committed names the commit step that completed, when one did: then
	// nothing was undone, and the run can only be finished (resumed).
	Committed string
}

// Err summarises a failed result.
func (r *Result) Err() error {
	if r.Status == journal.Succeeded {
		return nil
	}
	var parts []string
	for _, d := range r.Diags {
		if d.Severity == hcl.DiagError {
			parts = append(parts, d.Summary)
		}
	}
	if len(parts) == 0 {
		return errors.New(r.Status)
	}
	return fmt.Errorf("%s: %s", r.Status, strings.Join(parts, "; "))
}

type stepState struct {
	status  string
	inputs  cty.Value
	outputs cty.Value
}

type stepResult struct {
	ps      *PlanStep
	status  string
	inputs  cty.Value
	outputs cty.Value
	diags   hcl.Diagnostics
	elapsed time.Duration
	// called: the action's Run was called (it may have changed things
	// even though it did not complete).
	called bool
	// refused: the plugin refused the step's inputs (every error names an
	// argument), which by the plugin contract means it changed nothing.
	refused bool
}

// Run runs a prepared plan: every step whose dependencies are done starts,
// up to Parallelism at once. When a step fails, or ctx is cancelled, no
// new step starts, running ones are cancelled, and the undos of completed
// steps run in reverse order of completion (unless KeepOnFailure).
func (e *Engine) Run(ctx context.Context, plan *Plan, opts RunOptions) *Result {
	if opts.Parallelism <= 0 {
		opts.Parallelism = DefaultParallelism
	}
	emit := runEmitter(plan, opts)
	start := time.Now()

	states := make(map[string]*stepState, len(plan.Steps))
	var completed, attempted []string
	committed := "" // the commit step that committed the run
	for _, ps := range plan.Steps {
		st := &stepState{status: "pending"}
		if d, ok := opts.Done[ps.Name]; ok {
			st.status, st.inputs, st.outputs = journal.Succeeded, d.Inputs, d.Outputs
			completed = append(completed, ps.Name)
			if ps.Commit && committed == "" {
				committed = ps.Name
			}
			emit(event.Event{Kind: event.StepDone, Step: ps.Name, Action: actionName(ps), Message: "completed by the earlier attempt", Outputs: e.outputsJSON(ps, d.Outputs)})
		}
		states[ps.Name] = st
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan stepResult)
	running := 0
	res := &Result{RunID: opts.RunID, Status: journal.Succeeded}
	stopped := false

	ready := func(ps *PlanStep) bool {
		if states[ps.Name].status != "pending" {
			return false
		}
		for _, d := range ps.Deps {
			if s := states[d].status; s != journal.Succeeded && s != journal.Skipped {
				return false
			}
		}
		return true
	}
	exclusive := false // an interactive step runs alone
	// When the first step inside each call started, for the call's timeout.
	callStarted := map[*Scope]time.Time{}
	for {
		if !stopped && runCtx.Err() == nil && !exclusive {
			for _, ps := range plan.Steps {
				if running >= opts.Parallelism || exclusive {
					break
				}
				if !ready(ps) {
					continue
				}
				if ps.Action.Interactive {
					if running > 0 {
						continue // it waits until it can have the terminal alone
					}
					exclusive = true
				}
				states[ps.Name].status = journal.Running
				running++
				now := time.Now()
				var calls []*Scope // those starting now, outermost first
				for c := ps.Scope; c.Parent != nil; c = c.Parent {
					if _, ok := callStarted[c]; !ok {
						callStarted[c] = now
						calls = append([]*Scope{c}, calls...)
					}
				}
				for _, c := range calls {
					emit(event.Event{Kind: event.CallStarted, Step: c.Name(), Action: "task " + c.Task.Name})
				}
				sc := newRunScope(plan, states).stepContext(ps, callStarted)
				go func() { results <- e.runStep(runCtx, plan, ps, sc, opts, emit) }()
			}
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		if r.ps.Action.Interactive {
			exclusive = false
		}
		st := states[r.ps.Name]
		st.status, st.inputs, st.outputs = r.status, r.inputs, r.outputs
		if r.called && r.status != journal.Succeeded {
			attempted = append(attempted, r.ps.Name)
			if pivot(r.ps) && committed == "" && !r.refused {
				// It may have done what cannot be undone.
				committed = r.ps.Name
			}
		}
		switch r.status {
		case journal.Succeeded:
			completed = append(completed, r.ps.Name)
			if r.ps.Commit && committed == "" {
				committed = r.ps.Name
			}
		case journal.Skipped:
		case journal.Cancelled:
			// Reported through events; the cause is the failure or signal
			// that stopped the run.
			if !stopped {
				stopped = true
				cancel()
			}
		default:
			res.Diags = append(res.Diags, r.diags...)
			if !stopped {
				stopped = true
				cancel()
			}
		}
	}

	res.Status = runStatus(ctx, plan, states, res)
	res.Completed = completed
	if res.Status == journal.Succeeded {
		res.Outputs, res.Diags = e.taskOutputs(plan, states)
		if res.Diags.HasErrors() {
			res.Status = journal.Failed
		}
	}
	switch {
	case res.Status == journal.Succeeded:
	case committed != "":
		// Past its commit point a run only goes forward: undoing would
		// take back what the commit step made the truth.
		res.Committed = committed
	case !opts.KeepOnFailure:
		e.undo(plan, states, undoOrder(plan, attempted, completed), opts, emit, res)
	}

	errText := ""
	if err := res.Err(); err != nil {
		errText = err.Error()
	}
	if res.Committed != "" {
		errText += fmt.Sprintf(" (committed at step %s: vmflow resume finishes the run)", res.Committed)
	}
	errText = e.end(opts, res, errText)
	emit(doneEvent(plan, res, time.Since(start), errText))
	return res
}

// runStatus is how a run that has stopped starting steps ended, before
// its task outputs are evaluated.
func runStatus(ctx context.Context, plan *Plan, states map[string]*stepState, res *Result) string {
	switch {
	case len(res.Diags) > 0:
		return journal.Failed
	case ctx.Err() != nil:
		return journal.Cancelled
	}
	for _, ps := range plan.Steps {
		if states[ps.Name].status != journal.Succeeded && states[ps.Name].status != journal.Skipped {
			return journal.Failed // should not happen: a step never ran
		}
	}
	return res.Status
}

// undoOrder is the order a failed run undoes in: the steps that were cut
// off first, later ones of the plan first (their plugins undo what the
// steps' claims show), then the completed steps, last completed first.
func undoOrder(plan *Plan, attempted, completed []string) []undoItem {
	var order []undoItem
	for i := len(plan.Steps) - 1; i >= 0; i-- {
		if slices.Contains(attempted, plan.Steps[i].Name) {
			order = append(order, undoItem{name: plan.Steps[i].Name, interrupted: true})
		}
	}
	for i := len(completed) - 1; i >= 0; i-- {
		order = append(order, undoItem{name: completed[i]})
	}
	return order
}

// doneEvent is the run's last event: its status, and the task's outputs
// when it succeeded (sensitive ones masked).
func doneEvent(plan *Plan, res *Result, elapsed time.Duration, errText string) event.Event {
	done := event.Event{Kind: event.RunDone, Status: res.Status, ElapsedMS: elapsed.Milliseconds(), Error: errText}
	if res.Status == journal.Succeeded && len(res.Outputs) > 0 {
		done.Outputs = map[string]any{}
		for _, o := range plan.Task.Outputs {
			if o.Sensitive {
				done.Outputs[o.Name] = "(sensitive)"
			} else {
				done.Outputs[o.Name] = lang.PlainValue(res.Outputs[o.Name])
			}
		}
	}
	return done
}

// runEmitter returns the function a run reports its events through
// (stamped with the time, run and task), having reported that it started.
func runEmitter(plan *Plan, opts RunOptions) func(event.Event) {
	sink := opts.Events
	if sink == nil {
		sink = event.Discard
	}
	red := plan.Redactor()
	for _, d := range opts.Done {
		red.Add(d.Inputs)
		red.Add(d.Outputs)
	}
	emit := func(ev event.Event) {
		// No secret of the run leaves in free text: a plugin's log line,
		// an error, a progress label.
		ev.Message, ev.Error, ev.Label = red.Redact(ev.Message), red.Redact(ev.Error), red.Redact(ev.Label)
		for i, f := range ev.Fields {
			ev.Fields[i] = red.Redact(f)
		}
		ev.Time = time.Now()
		ev.Run, ev.Task = opts.RunID, plan.Task.Name
		sink.Emit(ev)
	}
	names := make([]string, len(plan.Steps))
	for i, s := range plan.Steps {
		names[i] = s.Name
	}
	emit(event.Event{Kind: event.RunStarted, Steps: names, Plugins: plan.Plugins(), Hosts: plan.Hosts()})
	return emit
}

func actionName(ps *PlanStep) string { return ps.Plugin.Name + "." + ps.ActionName }

func (e *Engine) runStep(ctx context.Context, plan *Plan, ps *PlanStep, sc stepContext, opts RunOptions, emit func(event.Event)) stepResult {
	r := stepResult{ps: ps}
	red := plan.Redactor()
	fail := func(d *hcl.Diagnostic) stepResult {
		d.Summary, d.Detail = red.Redact(d.Summary), red.Redact(d.Detail)
		r.status = journal.Failed
		if ctx.Err() != nil {
			r.status = journal.Cancelled
		}
		r.diags = append(r.diags, d)
		// Status tells a step that failed (its error is in the run's
		// diagnostics) from one cancelled because another failed.
		emit(event.Event{Kind: event.StepFailed, Step: ps.Name, Action: actionName(ps), Status: r.status, Error: d.Summary + ": " + d.Detail, ElapsedMS: r.elapsed.Milliseconds()})
		if opts.Journal != nil {
			_ = opts.Journal.Append(journal.Record{Step: ps.Name, Action: actionName(ps), Status: r.status, Error: d.Summary + ": " + d.Detail, Refused: r.refused})
		}
		return r
	}
	skip := func(why string) stepResult {
		r.status = journal.Skipped
		emit(event.Event{Kind: event.StepSkipped, Step: ps.Name, Action: actionName(ps), Message: why})
		if opts.Journal != nil {
			_ = opts.Journal.Append(journal.Record{Step: ps.Name, Action: actionName(ps), Status: journal.Skipped})
		}
		return r
	}
	// A failure of the action itself (not of the step's own expressions,
	// nor a cancellation) may be ignored: the step then reads as skipped.
	actionFailed := func(d *hcl.Diagnostic) stepResult {
		if !ps.Step.IgnoreError || ctx.Err() != nil {
			return fail(d)
		}
		// The step's name is said already: its error and where it came
		// from are what is new.
		why := strings.TrimPrefix(strings.TrimPrefix(d.Summary, fmt.Sprintf("Step %q failed", ps.Name)), ": ")
		if d.Detail != "" {
			why = strings.TrimPrefix(why+": "+d.Detail, ": ")
		}
		return skip("failed, ignored (ignore_error): " + red.Redact(why))
	}
	if sc.diags.HasErrors() {
		return fail(sc.diags[0])
	}
	if sc.skippedBy != "" {
		return skip(fmt.Sprintf("if of step %s is false", sc.skippedBy))
	}
	ectx := sc.ectx
	if ps.If != nil {
		v, diags := ps.If.Value(ectx)
		if diags.HasErrors() {
			return fail(diags[0])
		}
		v = lang.Unmarked(v)
		if v.IsNull() || !v.IsKnown() || v.Type() != cty.Bool || v.False() {
			return skip("if is false")
		}
	}
	in, diags := evalInputs(ps, ectx)
	if diags.HasErrors() {
		return fail(diags[0])
	}
	// What the plugin declares sensitive is, whatever it was computed
	// from; and so is what is computed from it.
	in = lang.MarkAttrs(in, sensitiveNames(ps.Action.Inputs))
	red.Add(in)
	if ps.Step.Timeout != nil && !ps.TimeoutSet {
		// A timeout from a called task's param that a step produced is
		// known only now.
		d, diags := evalLimit(ps.Step.Timeout, ectx, stepLabel(ps.Name))
		if diags.HasErrors() {
			return fail(diags[0])
		}
		if d > 0 {
			ps.Timeout, ps.TimeoutSet = d, true
		}
	}
	if !in.IsWhollyKnown() {
		return fail(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Step %q has inputs that are not known", ps.Name),
			Detail: "An argument depends on a value no earlier step produced.", Subject: ps.DeclRange.Ptr()})
	}
	r.inputs = in
	if opts.Journal != nil {
		v := journal.Value{Value: in}
		if err := opts.Journal.Append(journal.Record{Step: ps.Name, Action: actionName(ps), Status: journal.Running, Inputs: &v, Commit: pivot(ps)}); err != nil {
			return fail(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot write the run journal", Detail: err.Error()})
		}
	}
	emit(event.Event{Kind: event.StepStarted, Step: ps.Name, Action: actionName(ps), Interactive: ps.Action.Interactive})
	logger := e.Logger.Named(ps.Plugin.Name).With("step", ps.Name)
	start := time.Now()
	sctx, cancel, timedOut := withTimeout(ctx, ps.Timeout)
	defer cancel()
	limit := ps.Timeout
	callCtx, callCancel, callTimedOut := withDeadline(sctx, sc.deadline)
	defer callCancel()
	if !sc.deadline.IsZero() && (limit <= 0 || time.Until(sc.deadline) < limit) {
		limit = max(time.Until(sc.deadline), time.Millisecond)
	}
	last := &lastReport{}
	r.called = true
	out, pds, err := ps.Plugin.Run(callCtx, protocol.RunRequest{Action: ps.ActionName, Inputs: in, RunID: opts.RunID, Step: ps.Name, Timeout: limit}, last.tee(e.pluginEmitter(ps, red, e.pluginLogger().Named(ps.Plugin.Name).With("step", ps.Name), emit)))
	r.elapsed = time.Since(start)
	if timedOut() {
		// Whatever the plugin answered once cancelled, the cause is the
		// limit.
		return actionFailed(timeoutDiag(ps, false, last.String()))
	}
	if callTimedOut() {
		return fail(callTimeoutDiag(ps, sc.deadlineBy, last.String()))
	}
	if err != nil {
		if ctx.Err() != nil && isCancel(err) {
			return fail(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Step %q was cancelled", ps.Name),
				Detail: "The run was stopped while the step ran.", Subject: ps.DeclRange.Ptr()})
		}
		return actionFailed(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Step %q failed", ps.Name),
			Detail: fmt.Sprintf("plugin %s: %v", ps.Plugin.Label(), ps.Plugin.callError(err)), Subject: ps.DeclRange.Ptr()})
	}
	if pds.HasErrors() {
		ds := pluginDiags(pds, ps.argRange, ps.DeclRange, fmt.Sprintf("plugin %s", ps.Plugin.Label()))
		for _, d := range ds {
			d.Summary = fmt.Sprintf("Step %q failed: %s", ps.Name, d.Summary)
		}
		r.refused = refusedInputs(pds)
		if r = actionFailed(ds[0]); r.status != journal.Skipped {
			r.diags = append(r.diags, ds[1:]...)
		}
		return r
	}
	out = red.MarkLeaks(lang.MarkAttrs(out, sensitiveNames(ps.Action.Outputs)))
	red.Add(out)
	r.status, r.outputs = journal.Succeeded, out
	if opts.Journal != nil {
		v := journal.Value{Value: out}
		if err := opts.Journal.Append(journal.Record{Step: ps.Name, Action: actionName(ps), Status: journal.Succeeded, Outputs: &v, Commit: ps.Commit}); err != nil {
			logger.Error("cannot write the run journal", "error", err)
		}
	}
	emit(event.Event{Kind: event.StepDone, Step: ps.Name, Action: actionName(ps), ElapsedMS: r.elapsed.Milliseconds(), Outputs: e.outputsJSON(ps, out)})
	return r
}

// lastReport keeps the last log message or progress label a step's
// plugin sent, for the message when the step times out.
type lastReport struct {
	mu  sync.Mutex
	msg string
}

func (l *lastReport) tee(next func(protocol.Event)) func(protocol.Event) {
	return func(pe protocol.Event) {
		l.mu.Lock()
		switch {
		case pe.Kind == protocol.EventLog && pe.Message != "":
			l.msg = pe.Message
		case pe.Kind == protocol.EventProgress && pe.Label != "":
			l.msg = pe.Label
		}
		l.mu.Unlock()
		next(pe)
	}
}

func (l *lastReport) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msg
}

// pivot reports whether a step is a commit step that cannot be undone:
// once it has started, whatever it did stays, so the run is committed
// (the journal says so from its start, for a run cut off during it).
func pivot(ps *PlanStep) bool { return ps.Commit && !ps.Action.HasUndo }

// refusedInputs reports whether a plugin's errors all name an argument:
// the plugin contract says an action that refuses its inputs changes
// nothing, so a commit step refused that way has not committed the run.
func refusedInputs(pds protocol.Diagnostics) bool {
	n := 0
	for _, d := range pds {
		if d.Severity != protocol.Error {
			continue
		}
		if len(d.Path) == 0 {
			return false
		}
		n++
	}
	return n > 0
}

func isCancel(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if s, ok := status.FromError(err); ok && (s.Code() == codes.Canceled || s.Code() == codes.DeadlineExceeded) {
		return true
	}
	return false
}

func (e *Engine) pluginLogger() hclog.Logger {
	if e.PluginLogger != nil {
		return e.PluginLogger
	}
	return e.Logger
}

// pluginEmitter forwards a plugin's log and progress events to the event
// stream and to vmflow's log, tagged with the step.
func (e *Engine) pluginEmitter(ps *PlanStep, red *lang.Redactor, logger hclog.Logger, emit func(event.Event)) func(protocol.Event) {
	return func(pe protocol.Event) {
		switch pe.Kind {
		case protocol.EventLog:
			args := make([]any, 0, len(pe.Fields))
			for _, f := range pe.Fields {
				args = append(args, red.Redact(f))
			}
			logger.Log(hclog.LevelFromString(pe.Level), red.Redact(pe.Message), args...)
			emit(event.Event{Kind: event.StepLog, Step: ps.Name, Action: actionName(ps), Level: pe.Level, Message: pe.Message, Fields: pe.Fields})
		case protocol.EventProgress:
			emit(event.Event{Kind: event.StepProgress, Step: ps.Name, Action: actionName(ps), Current: pe.Current, Total: pe.Total, Label: pe.Label})
		}
	}
}

func (e *Engine) taskOutputs(plan *Plan, states map[string]*stepState) (map[string]cty.Value, hcl.Diagnostics) {
	if len(plan.Task.Outputs) == 0 {
		return nil, nil
	}
	ectx, diags := newRunScope(plan, states).context(plan.Root)
	if diags.HasErrors() {
		return nil, diags
	}
	out := map[string]cty.Value{}
	for _, o := range plan.Task.Outputs {
		v, ds := o.Value.Value(ectx)
		diags = append(diags, ds...)
		out[o.Name] = v
	}
	return out, diags
}

// outputsJSON renders a step's outputs for events, hiding sensitive ones.
func (e *Engine) outputsJSON(ps *PlanStep, v cty.Value) map[string]any {
	if v == cty.NilVal || v.IsNull() || !v.Type().IsObjectType() {
		return nil
	}
	out := map[string]any{}
	for _, a := range ps.Action.Outputs {
		if a.Sensitive {
			out[a.Name] = "(sensitive)"
			continue
		}
		out[a.Name] = lang.PlainValue(v.GetAttr(a.Name))
	}
	return out
}
