package plugintest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/protocol"
)

// Harness drives a configured plugin the way vmflow runs a step: Validate,
// then Run (or Undo), each limited by the step's timeout. The plugins'
// tests and the conformance suite share it, so that they call the plugins
// alike.
type Harness struct {
	T      *testing.T
	Conn   protocol.Conn
	Schema *protocol.Schema
	// RunID names the run of each Try and Undo; nil: the run "".
	RunID func() string
	// Explain, when set, explains the error of a failed call (the
	// conformance suite's plugin process: gone, or what it said).
	Explain func(error) error
	// Logs are the messages the last call logged.
	Logs []string
}

func (h *Harness) runID() string {
	if h.RunID == nil {
		return ""
	}
	return h.RunID()
}

func (h *Harness) explain(err error) error {
	if err == nil || h.Explain == nil {
		return err
	}
	return h.Explain(err)
}

func (h *Harness) emit(e protocol.Event) {
	if e.Kind == protocol.EventLog {
		h.Logs = append(h.Logs, e.Message)
	}
}

// Inputs is Inputs for the harness's plugin.
func (h *Harness) Inputs(action string, args map[string]any) cty.Value {
	h.T.Helper()
	return Inputs(h.T, h.Schema, action, args)
}

// Try validates and runs an action as a step named after it; the error
// carries the diagnostics.
func (h *Harness) Try(action string, args map[string]any) (cty.Value, error) {
	h.T.Helper()
	return h.Attempt(h.runID(), action, action, args)
}

// Attempt validates and runs an action as step step of run runID: called
// twice with the same run and step, it is a step run again after vmflow
// was killed during its first attempt.
func (h *Harness) Attempt(runID, step, action string, args map[string]any) (cty.Value, error) {
	h.T.Helper()
	h.Logs = nil
	in := h.Inputs(action, args)
	diags, err := h.Conn.Validate(context.Background(), action, in)
	if err != nil {
		return cty.NilVal, h.explain(err)
	}
	if diags.HasErrors() {
		return cty.NilVal, diags.Err()
	}
	return h.RunFor(runID, step, action, in, Timeout(h.T, h.Schema, action, args))
}

// RunOnly runs an action without validating it first, limited by the
// action's default timeout.
func (h *Harness) RunOnly(runID, step, action string, in cty.Value) (cty.Value, error) {
	h.T.Helper()
	return h.RunFor(runID, step, action, in, Timeout(h.T, h.Schema, action, nil))
}

// RunFor runs an action without validating it first, limited by limit.
func (h *Harness) RunFor(runID, step, action string, in cty.Value, limit time.Duration) (cty.Value, error) {
	h.T.Helper()
	h.Logs = nil
	ctx, cancel := Context(limit)
	defer cancel()
	out, diags, err := h.Conn.Run(ctx, protocol.RunRequest{Action: action, Inputs: in, RunID: runID, Step: step, Timeout: limit}, h.emit)
	if err != nil {
		return cty.NilVal, h.explain(err)
	}
	return out, diags.Err()
}

// Run is Try that must succeed.
func (h *Harness) Run(action string, args map[string]any) cty.Value {
	h.T.Helper()
	out, err := h.Try(action, args)
	if err != nil {
		h.T.Fatalf("%s %v: %v", action, args, err)
	}
	return out
}

// Fails runs an action that must fail with an error containing want.
func (h *Harness) Fails(action string, args map[string]any, want string) {
	h.T.Helper()
	if _, err := h.Try(action, args); err == nil || !strings.Contains(err.Error(), want) {
		h.T.Fatalf("%s %v: error %v, want one containing %q", action, args, err, want)
	}
}

// MustAttempt is Attempt that must succeed.
func (h *Harness) MustAttempt(runID, step, action string, args map[string]any) cty.Value {
	h.T.Helper()
	out, err := h.Attempt(runID, step, action, args)
	if err != nil {
		h.T.Fatalf("%s (run %s, step %s): %v", action, runID, step, err)
	}
	return out
}

// AttemptFails is Attempt that must fail with an error containing want.
func (h *Harness) AttemptFails(runID, step, action string, args map[string]any, want string) {
	h.T.Helper()
	if _, err := h.Attempt(runID, step, action, args); err == nil || !strings.Contains(err.Error(), want) {
		h.T.Fatalf("%s (run %s, step %s): error %v, want one containing %q", action, runID, step, err, want)
	}
}

// Undo undoes an action run by Try; it must succeed.
func (h *Harness) Undo(action string, args map[string]any, outputs cty.Value) {
	h.T.Helper()
	h.UndoStep(h.runID(), action, action, args, outputs)
}

// UndoStep undoes step step of run runID; outputs null is the undo of an
// interrupted Run (vmflow resume --undo). It must succeed.
func (h *Harness) UndoStep(runID, step, action string, args map[string]any, outputs cty.Value) {
	h.T.Helper()
	h.Logs = nil
	limit := Timeout(h.T, h.Schema, action, args)
	ctx, cancel := Context(limit)
	defer cancel()
	diags, err := h.Conn.Undo(ctx, protocol.UndoRequest{Action: action, Inputs: h.Inputs(action, args), Outputs: outputs, RunID: runID, Step: step, Timeout: limit}, h.emit)
	if err != nil || diags.HasErrors() {
		h.T.Fatalf("undo %s: %v %v", action, h.explain(err), diags.Err())
	}
}

// Retried runs an action twice as step step of run runID, as a step is run
// again after vmflow was killed during its first attempt: the retry must
// report the change the first attempt made (its output attr is true).
// Each of others, another run, must then not report it as its own.
func (h *Harness) Retried(runID, step, action string, args map[string]any, attr string, others ...string) {
	h.T.Helper()
	h.MustAttempt(runID, step, action, args)
	if o := h.MustAttempt(runID, step, action, args); !o.GetAttr(attr).True() {
		h.T.Fatalf("%s (run %s, step %s) again: %s is false; the retry must report the change of the interrupted attempt", action, runID, step, attr)
	}
	for _, other := range others {
		if o := h.MustAttempt(other, step, action, args); o.GetAttr(attr).True() {
			h.T.Fatalf("%s (run %s, step %s): %s is true; another run must not report a change it did not make", action, other, step, attr)
		}
	}
}
