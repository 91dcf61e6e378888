// Package event defines what a run reports while it runs: one stream of
// events that the terminal renderer, the --json output and the log all read.
package event

import (
	"sync"
	"time"
)

// Kind names an event.
type Kind string

const (
	RunStarted   Kind = "run_started"
	StepStarted  Kind = "step_started"
	StepLog      Kind = "log"
	StepProgress Kind = "progress"
	StepDone     Kind = "step_done"
	StepFailed   Kind = "step_failed"
	StepSkipped  Kind = "step_skipped"
	UndoStarted  Kind = "undo_started"
	UndoDone     Kind = "undo_done"
	UndoFailed   Kind = "undo_failed"
	// UndoSkipped: the step's undo did not run because the undo of a step
	// that depends on it failed.
	UndoSkipped Kind = "undo_skipped"
	RunDone     Kind = "run_done"
	// CallStarted: the first step of a task a step calls is about to
	// start; Step is the call's path (vm), Action "task NAME".
	CallStarted Kind = "call_started"

	// What the command line prints with --json besides a run's events.
	// Error: what stopped a command, or one error diagnostic (Message is
	// its summary, Detail the rest, File/Line/Column where it points);
	// Warning: a warning diagnostic. Plan: what `vmflow plan` would run.
	// Validated: `vmflow validate` found every task valid.
	Error     Kind = "error"
	Warning   Kind = "warning"
	Plan      Kind = "plan"
	Validated Kind = "validated"
)

// Event is one thing that happened in a run. Fields that do not apply to
// a kind are empty.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   Kind      `json:"event"`
	Run    string    `json:"run,omitempty"`
	Task   string    `json:"task,omitempty"`
	Step   string    `json:"step,omitempty"`
	Action string    `json:"action,omitempty"`
	// Interactive: a step_started whose action uses the terminal.
	Interactive bool `json:"interactive,omitempty"`
	// Log
	Level   string   `json:"level,omitempty"`
	Message string   `json:"message,omitempty"`
	Fields  []string `json:"fields,omitempty"`
	// Progress
	Current int64  `json:"current,omitempty"`
	Total   int64  `json:"total,omitempty"`
	Label   string `json:"label,omitempty"`
	// Step and run results
	ElapsedMS int64          `json:"elapsed_ms,omitempty"`
	Outputs   map[string]any `json:"outputs,omitempty"`
	Error     string         `json:"error,omitempty"`
	// RunDone: succeeded, failed, cancelled
	Status string `json:"status,omitempty"`
	// RunStarted: the steps in plan order, and the plugins the run uses
	// (local name → source and version: hypervisor → "proxmox-stub
	// 0.1.0"), so the output says which backend runs it.
	Steps   []string          `json:"steps,omitempty"`
	Plugins map[string]string `json:"plugins,omitempty"`
	// Hosts: where the plugins that name one (the plugin block's host)
	// work, by local name: hypervisor → "build1".
	Hosts map[string]string `json:"hosts,omitempty"`
	// Error and Warning: the diagnostic's detail and where it points;
	// ExitCode on the error that ends a command.
	Detail   string `json:"detail,omitempty"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	ExitCode int    `json:"exit_code,omitempty"`
}

// Elapsed returns the event's elapsed time.
func (e Event) Elapsed() time.Duration { return time.Duration(e.ElapsedMS) * time.Millisecond }

// Sink receives events. Emit is called from many goroutines; a Sink
// serialises what it needs to.
type Sink interface {
	Emit(Event)
}

// Func adapts a function to a Sink.
type Func func(Event)

// Emit calls f.
func (f Func) Emit(e Event) { f(e) }

// Discard drops every event.
var Discard Sink = Func(func(Event) {})

// Tee sends each event to every sink, in order.
func Tee(sinks ...Sink) Sink {
	return Func(func(e Event) {
		for _, s := range sinks {
			s.Emit(e)
		}
	})
}

// Recorder keeps every event; for tests.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Emit records e.
func (r *Recorder) Emit(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns a copy of what was recorded.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
