package main

import (
	"encoding/json"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/vmflow/vmflow/core/event"
)

// With --json, stdout carries only JSON: a run's events and every error
// and warning as events, one per line, and the documents of list, vars,
// runs and plugins; docs/json.md describes them, docs/events.schema.json
// is their schema. Human text still goes to stderr, as without --json.

// wantsJSON reports whether the command line asks for JSON: --json
// anywhere before "--" (a task's arguments take it too).
func wantsJSON(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "-json", "--json=true", "-json=true":
			return true
		}
	}
	return false
}

// emitJSON prints one event as a JSON line on stdout.
func (a *app) emitJSON(e event.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	a.jsonMu.Lock()
	defer a.jsonMu.Unlock()
	if e.Kind == event.Error {
		a.jsonErrored = true
	}
	_ = json.NewEncoder(a.stdout).Encode(e)
}

// printJSON prints a document (list, vars, runs, plugins) on stdout.
func (a *app) printJSON(v any) error {
	a.jsonMu.Lock()
	defer a.jsonMu.Unlock()
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// diagEvents prints diagnostics as error and warning events.
func (a *app) diagEvents(diags hcl.Diagnostics) {
	for _, d := range diags {
		e := event.Event{Kind: event.Error, Message: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			e.Kind = event.Warning
		}
		if s := d.Subject; s != nil {
			e.File, e.Line, e.Column = s.Filename, s.Start.Line, s.Start.Column
		}
		a.emitJSON(e)
	}
}

// errorEvent prints the error that ends a command, unless an error event
// already said what went wrong.
func (a *app) errorEvent(err error, code int) {
	if a.jsonErrored {
		return
	}
	a.emitJSON(event.Event{Kind: event.Error, Message: err.Error(), ExitCode: code})
}

// planJSON is `vmflow plan --json`: one plan event.
type planJSON struct {
	Time  time.Time      `json:"time"`
	Kind  event.Kind     `json:"event"`
	Task  string         `json:"task"`
	Locks []string       `json:"locks"`
	Steps []planStepJSON `json:"steps"`
}

type planStepJSON struct {
	Name      string        `json:"name"`
	Plugin    string        `json:"plugin"`
	Source    string        `json:"source"`
	Action    string        `json:"action"`
	HasUndo   bool          `json:"has_undo"`
	After     []string      `json:"after"`
	TimeoutMS int64         `json:"timeout_ms,omitempty"`
	Commit    bool          `json:"commit,omitempty"`
	If        *planIfJSON   `json:"if,omitempty"`
	Args      []planArgJSON `json:"args"`
	Would     []string      `json:"would"`
}

// planIfJSON is a step's condition: its source, and whether it runs
// (null: decided during the run).
type planIfJSON struct {
	Expr string `json:"expr"`
	Runs *bool  `json:"runs"`
}

// planArgJSON is one argument: its value, or the expression it is
// computed from when that is known only during the run.
type planArgJSON struct {
	Name      string `json:"name"`
	Value     any    `json:"value"`
	Sensitive bool   `json:"sensitive,omitempty"`
	Unknown   string `json:"unknown,omitempty"`
}

// validatedJSON is `vmflow validate --json` when every task is valid.
type validatedJSON struct {
	Time  time.Time  `json:"time"`
	Kind  event.Kind `json:"event"`
	File  string     `json:"file"`
	Tasks int        `json:"tasks"`
}

// versionJSON is `vmflow version --json`.
type versionJSON struct {
	Version  string `json:"version"`
	Protocol int    `json:"protocol"`
	Go       string `json:"go"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
}

// writtenJSON is what `vmflow init --json` and `vmflow lock --json` print.
type writtenJSON struct {
	TaskFile string       `json:"task_file,omitempty"`
	LockFile string       `json:"lock_file,omitempty"`
	Locked   []lockedJSON `json:"locked"`
}

type lockedJSON struct {
	Source    string   `json:"source"`
	Version   string   `json:"version"`
	Protocol  int      `json:"protocol"`
	Platforms []string `json:"platforms"`
	Hash      string   `json:"hash"`
	Path      string   `json:"path"`
}
