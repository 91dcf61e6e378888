package engine

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/lang"
	"github.com/vmflow/vmflow/core/protocol"
)

// errTimedOut is the cause of a step's context when its timeout expired.
var errTimedOut = errors.New("step timed out")

// evalTimeout sets the step's limit: its own timeout (a duration string
// such as "90s" or "1h30m", or a number of seconds), else the action's
// default. ectx knows params and variables; with params not known yet
// (vmflow validate) only the type is checked.
func evalTimeout(ps *PlanStep, ectx *hcl.EvalContext) hcl.Diagnostics {
	ps.Timeout, ps.TimeoutSet = ps.Action.Timeout, false
	if ps.Step.Timeout == nil {
		return nil
	}
	d, diags := evalLimit(ps.Step.Timeout, ectx, stepLabel(ps.Name))
	if d > 0 {
		ps.Timeout, ps.TimeoutSet = d, true
	}
	return diags
}

// evalLimit evaluates a timeout expression of what (`Step "x"`, `Plugin
// "y"`: its errors start so); 0 while it is not known.
func evalLimit(e hcl.Expression, ectx *hcl.EvalContext, what string) (time.Duration, hcl.Diagnostics) {
	v, diags := e.Value(ectx)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return 0, diags
	}
	d, err := ParseTimeout(v)
	if err != nil {
		return 0, hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Invalid timeout",
			Detail:  fmt.Sprintf("%s: %s", what, err),
			Subject: e.Range().Ptr(),
		}}
	}
	return d, nil
}

// ParseTimeout reads a timeout value: a duration string ("10m", "1h30m",
// "45s") or a number of seconds. It must be positive.
func ParseTimeout(v cty.Value) (time.Duration, error) {
	const hint = `timeout must be a duration such as "30s", "10m" or "1h30m", or a number of seconds`
	v = lang.Unmarked(v)
	if v.IsNull() {
		return 0, errors.New(hint + "; it is null")
	}
	var d time.Duration
	switch v.Type() {
	case cty.String:
		s := strings.TrimSpace(v.AsString())
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%s, not %q", hint, v.AsString())
		}
	case cty.Number:
		secs, _ := v.AsBigFloat().Float64()
		if v.AsBigFloat().Cmp(big.NewFloat(float64(1<<62)/1e9)) > 0 {
			return 0, fmt.Errorf("a timeout of %s seconds is too long", v.AsBigFloat().Text('f', -1))
		}
		d = time.Duration(secs * float64(time.Second))
	default:
		return 0, errors.New(hint)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s greater than zero, not %s", hint, d)
	}
	return d, nil
}

// withTimeout gives a step's call its limit; timedOut tells afterwards
// whether the limit (rather than the run) ended it.
func withTimeout(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc, func() bool) {
	if limit <= 0 {
		return ctx, func() {}, func() bool { return false }
	}
	sctx, cancel := context.WithTimeoutCause(ctx, limit, errTimedOut)
	return sctx, cancel, func() bool {
		return ctx.Err() == nil && errors.Is(context.Cause(sctx), errTimedOut)
	}
}

// withDeadline gives a step's call the deadline of the calls around it
// (none when zero); timedOut tells afterwards whether it ended the call.
func withDeadline(ctx context.Context, at time.Time) (context.Context, context.CancelFunc, func() bool) {
	if at.IsZero() {
		return ctx, func() {}, func() bool { return false }
	}
	dctx, cancel := context.WithDeadlineCause(ctx, at, errCallTimedOut)
	return dctx, cancel, func() bool {
		return ctx.Err() == nil && errors.Is(context.Cause(dctx), errCallTimedOut)
	}
}

var errCallTimedOut = errors.New("the call around the step timed out")

// callTimeoutDiag says that the steps of a call ran out of the call's
// time, while this step of it ran.
func callTimeoutDiag(ps *PlanStep, call *Scope, lastReport string) *hcl.Diagnostic {
	detail := fmt.Sprintf("The steps of task %s, which step %q calls, took longer together than the call's timeout of %s (%s); step %q was cancelled.",
		call.Task.Name, call.Name(), lang.FormatDuration(call.Timeout), call.Call.Timeout.Range(), ps.Name)
	if lastReport != "" {
		detail += "\nIts last report: " + lastReport
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: fmt.Sprintf("Step %q timed out after %s", call.Name(), lang.FormatDuration(call.Timeout)),
		Detail: detail, Subject: call.Call.DeclRange.Ptr(),
	}
}

// timeoutDiag says that a step (or its undo) ran out of time, where the
// limit comes from, and what the step last reported.
func timeoutDiag(ps *PlanStep, undo bool, lastReport string) *hcl.Diagnostic {
	what, verb := fmt.Sprintf("Step %q", ps.Name), "ran"
	if undo {
		what, verb = fmt.Sprintf("Undo of step %q", ps.Name), "took"
	}
	detail := fmt.Sprintf("It %s longer than its timeout of %s and was cancelled.", verb, lang.FormatDuration(ps.Timeout))
	if ps.TimeoutSet {
		detail += fmt.Sprintf(" The limit is the step's timeout (%s).", ps.Step.Timeout.Range())
	} else {
		detail += fmt.Sprintf(" The limit is the default of %s; set timeout = \"…\" on the step for another.", actionName(ps))
	}
	if lastReport != "" {
		detail += "\nIts last report: " + lastReport
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: fmt.Sprintf("%s timed out after %s", what, lang.FormatDuration(ps.Timeout)),
		Detail: detail, Subject: ps.DeclRange.Ptr(),
	}
}

// DefaultConfigureTimeout is how long a plugin may take to be configured
// (to connect to what it drives, say) when its plugin block sets no
// timeout. A plugin stuck there would otherwise hold the run, before any
// step, for as long as it stays stuck.
const DefaultConfigureTimeout = 2 * time.Minute

// configureLimit reads a plugin block's timeout.
func configureLimit(d *config.PluginDecl, vctx *hcl.EvalContext) (time.Duration, hcl.Diagnostics) {
	if d.Timeout == nil {
		return DefaultConfigureTimeout, nil
	}
	limit, diags := evalLimit(d.Timeout, vctx, fmt.Sprintf("Plugin %q", d.Name))
	if limit == 0 && !diags.HasErrors() { // not known before the run: vars always are
		limit = DefaultConfigureTimeout
	}
	return limit, diags
}

// configureWithin runs configure with limit: past it, the call is
// cancelled and its error says so (the plugin's own reply, if it ever
// comes, is not waited for).
func configureWithin(ctx context.Context, limit time.Duration, configure func(context.Context) (protocol.Diagnostics, error)) (protocol.Diagnostics, error) {
	return within(ctx, limit, configure, func() error {
		return fmt.Errorf("it did not finish configuring within %s (it may be waiting on what it drives; a timeout in its plugin block gives it longer)", limit)
	})
}

// within runs call with limit (none when zero): past it, the call is
// cancelled, its reply is not waited for (a plugin stuck outside vmflow
// may never give one), and timedOut is the error.
func within[T any](ctx context.Context, limit time.Duration, call func(context.Context) (T, error), timedOut func() error) (T, error) {
	var zero T
	if limit <= 0 {
		return call(ctx)
	}
	cctx, cancel := context.WithTimeoutCause(ctx, limit, errTimedOut)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := call(cctx)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		if errors.Is(context.Cause(cctx), errTimedOut) && r.err != nil {
			return zero, timedOut()
		}
		return r.v, r.err
	case <-cctx.Done():
		if errors.Is(context.Cause(cctx), errTimedOut) {
			return zero, timedOut()
		}
		return zero, context.Cause(cctx)
	}
}

// stepLabel names a step as a timeout's error does.
func stepLabel(name string) string { return fmt.Sprintf("Step %q", name) }
