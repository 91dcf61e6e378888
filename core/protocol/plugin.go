package protocol

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"
)

// Severity of a diagnostic.
type Severity int

const (
	Error Severity = iota + 1
	Warning
)

// Diagnostic is a problem a plugin reports, optionally tied to an attribute
// path (the argument, or an element inside it). vmflow turns the path into
// the source range of that argument in the task file.
type Diagnostic struct {
	Severity Severity
	Summary  string
	Detail   string
	Path     cty.Path
}

// Diagnostics is a list of diagnostics.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Err folds the error diagnostics into one error, or nil.
func (ds Diagnostics) Err() error {
	var parts []string
	for _, d := range ds {
		if d.Severity != Error {
			continue
		}
		s := d.Summary
		if p := FormatPath(d.Path); p != "" {
			s = p + ": " + s
		}
		if d.Detail != "" {
			s += ": " + d.Detail
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(parts, "; "))
}

// FormatPath renders a cty path as HCL would write it: disks[0].size.
func FormatPath(p cty.Path) string {
	var b strings.Builder
	for _, s := range p {
		switch s := s.(type) {
		case cty.GetAttrStep:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.Name)
		case cty.IndexStep:
			switch {
			case s.Key.Type() == cty.String:
				fmt.Fprintf(&b, "[%q]", s.Key.AsString())
			case s.Key.Type() == cty.Number:
				fmt.Fprintf(&b, "[%s]", s.Key.AsBigFloat().Text('f', -1))
			default:
				b.WriteString("[?]")
			}
		}
	}
	return b.String()
}

// Env is what vmflow tells a plugin about where it runs.
type Env struct {
	StateDir string
	WorkDir  string
}

// RunRequest asks a plugin to run one action for one step.
type RunRequest struct {
	Action string
	Inputs cty.Value
	RunID  string
	Step   string
	// Timeout is the limit vmflow puts on the call (0: none); vmflow
	// cancels the call when it expires.
	Timeout time.Duration
}

// UndoRequest asks a plugin to undo what a completed Run did.
type UndoRequest struct {
	Action string
	Inputs cty.Value
	// Outputs are what Run returned; null when Run never completed (vmflow
	// was killed during it and vmflow resume --undo rolls the run back):
	// the plugin then undoes only what its claims for the step show.
	Outputs cty.Value
	RunID   string
	Step    string
	// Timeout is the limit vmflow puts on the call, as in RunRequest.
	Timeout time.Duration
}

// EventKind tells what a plugin event carries.
type EventKind int

const (
	EventLog EventKind = iota + 1
	EventProgress
)

// Event is a log line or a progress report from a running action.
type Event struct {
	Kind EventKind
	// Log
	Level   string
	Message string
	Fields  []string
	// Progress
	Current, Total int64
	Label          string
}

// Conn is what vmflow needs of a plugin, the calls it makes to one,
// whether the plugin runs out of process over gRPC or in process (the
// built-in actions). (sdk.Plugin is what a plugin's author declares;
// engine.PluginInstance a plugin block's configured plugin.)
type Conn interface {
	Describe(ctx context.Context) (*Schema, error)
	Configure(ctx context.Context, config cty.Value, env Env) (Diagnostics, error)
	Validate(ctx context.Context, action string, inputs cty.Value) (Diagnostics, error)
	// Plan describes, in the plugin's terms, what Run would do.
	Plan(ctx context.Context, action string, inputs cty.Value) ([]string, Diagnostics, error)
	// Run runs an action. emit receives log and progress events as they
	// happen. Diagnostics carry the action's own failure; error means the
	// call itself failed (the plugin crashed, the connection broke).
	Run(ctx context.Context, req RunRequest, emit func(Event)) (cty.Value, Diagnostics, error)
	Undo(ctx context.Context, req UndoRequest, emit func(Event)) (Diagnostics, error)
}
