package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmflow/vmflow/core/event"
	"github.com/vmflow/vmflow/core/journal"
)

// renderer shows a run's events: live on a terminal, line by line on a
// pipe, or as JSON lines with --json.
type renderer interface {
	event.Sink
	// LogWriter is where vmflow's own log goes while the run shows.
	LogWriter() io.Writer
	// Signal tells the user what a Ctrl-C does.
	Signal(n int)
	Close()
}

func (a *app) newRenderer(jsonOut, verbose bool) renderer {
	switch {
	case jsonOut:
		return &jsonRenderer{a: a, log: a.stderr}
	case a.isTTY:
		return newTTYRenderer(a.stderr, verbose)
	}
	return &plainRenderer{out: a.stderr, verbose: verbose, shown: map[string]shownProgress{}}
}

func signalText(n int) string {
	switch n {
	case 1:
		return "Interrupted: stopping, then undoing completed steps (Ctrl-C again to skip the undos)."
	case 2:
		return "Interrupted again: abandoning the undos (Ctrl-C once more to exit at once)."
	}
	return "Exiting."
}

// ---- JSON ----

type jsonRenderer struct {
	a   *app
	log io.Writer
}

func (r *jsonRenderer) Emit(e event.Event)   { r.a.emitJSON(e) }
func (r *jsonRenderer) LogWriter() io.Writer { return r.log }
func (r *jsonRenderer) Signal(n int)         { fmt.Fprintln(r.log, signalText(n)) }
func (r *jsonRenderer) Close()               {}

// ---- plain lines ----

// plainRenderer writes one line per event, Packer style:
//
//	==> disks: hypervisor.volume_create
//	    disks: copying 50%
//	==> disks: done in 1.2s
type plainRenderer struct {
	mu      sync.Mutex
	out     io.Writer
	verbose bool
	shown   map[string]shownProgress // by step: its last progress line
}

// shownProgress is the last progress line of a step that was shown.
type shownProgress struct {
	pct int64 // -1: no total
	at  time.Time
}

// progressGap is how far apart a step's progress lines are at the least,
// in time and in percent. The first line says the work has begun; after
// it, a transfer over in a blink shows no more lines, and a long one
// about ten.
const (
	progressGap    = time.Second
	progressPoints = 10
)

// showProgress reports whether a progress event earns a line, and notes
// it if it does.
func (r *plainRenderer) showProgress(e event.Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	pct := percent(e)
	if last, seen := r.shown[e.Step]; seen && (pct-last.pct < progressPoints || at.Sub(last.at) < progressGap) {
		return false
	}
	r.shown[e.Step] = shownProgress{pct: pct, at: at}
	return true
}

func (r *plainRenderer) printf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.out, format, args...)
}

func (r *plainRenderer) Emit(e event.Event) {
	if line := describe(e, r.verbose); line != "" {
		if e.Kind == event.StepProgress && !r.showProgress(e) {
			return
		}
		r.printf("%s\n", line)
	}
}

func (r *plainRenderer) LogWriter() io.Writer {
	return writerFunc(func(b []byte) { r.printf("%s", b) })
}
func (r *plainRenderer) Signal(n int) { r.printf("%s\n", signalText(n)) }
func (r *plainRenderer) Close()       {}

type writerFunc func([]byte)

func (f writerFunc) Write(b []byte) (int, error) { f(b); return len(b), nil }

func percent(e event.Event) int64 {
	if e.Total <= 0 {
		return -1
	}
	return e.Current * 100 / e.Total
}

func progressText(e event.Event) string {
	label := e.Label
	if label == "" {
		label = "progress"
	}
	if e.Total > 0 {
		return fmt.Sprintf("%s %d%% (%d/%d)", label, percent(e), e.Current, e.Total)
	}
	if e.Current > 0 {
		return fmt.Sprintf("%s %d", label, e.Current)
	}
	return label
}

func seconds(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	if d < time.Second {
		return d.String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// describe renders an event as one line ("" for none).
func describe(e event.Event, verbose bool) string {
	switch e.Kind {
	case event.RunStarted:
		line := fmt.Sprintf("Run %s: task %s, %d step(s)", e.Run, e.Task, len(e.Steps))
		if len(e.Plugins) > 0 {
			line += " on " + pluginList(e.Plugins, e.Hosts, true)
		}
		return line
	case event.StepStarted, event.CallStarted:
		return fmt.Sprintf("==> %s: %s", e.Step, e.Action)
	case event.StepLog:
		if !verbose && (e.Level == "debug" || e.Level == "trace") {
			return ""
		}
		prefix := ""
		if e.Level == "warn" || e.Level == "error" {
			prefix = strings.ToUpper(e.Level) + ": "
		}
		msg := e.Message
		if verbose && len(e.Fields) > 0 {
			msg += " " + strings.Join(pairs(e.Fields), " ")
		}
		return fmt.Sprintf("    %s: %s%s", e.Step, prefix, msg)
	case event.StepProgress:
		return fmt.Sprintf("    %s: %s", e.Step, progressText(e))
	case event.StepDone:
		if e.Message != "" {
			return fmt.Sprintf("==> %s: %s", e.Step, e.Message)
		}
		return fmt.Sprintf("==> %s: done in %s", e.Step, seconds(e.ElapsedMS))
	case event.StepFailed:
		if e.Status == journal.Failed {
			// The error follows once, in full, with the run's
			// diagnostics.
			return fmt.Sprintf("==> %s: FAILED", e.Step)
		}
		// Cancelled: the run stopped (another step failed, or Ctrl-C),
		// which the lines around it say.
		return fmt.Sprintf("==> %s: cancelled", e.Step)
	case event.StepSkipped:
		return fmt.Sprintf("==> %s: skipped (%s)", e.Step, e.Message)
	case event.UndoStarted:
		return fmt.Sprintf("<== %s: undoing", e.Step)
	case event.UndoDone:
		return fmt.Sprintf("<== %s: undone in %s", e.Step, seconds(e.ElapsedMS))
	case event.UndoFailed:
		return fmt.Sprintf("<== %s: UNDO FAILED: %s", e.Step, firstLine(e.Error))
	case event.UndoSkipped:
		return fmt.Sprintf("<== %s: kept, %s", e.Step, e.Error)
	case event.RunDone:
		switch e.Status {
		case journal.Succeeded:
			return fmt.Sprintf("Task %s succeeded in %s (run %s).", e.Task, seconds(e.ElapsedMS), e.Run)
		case journal.Cancelled:
			return fmt.Sprintf("Task %s interrupted after %s (run %s).", e.Task, seconds(e.ElapsedMS), e.Run)
		case journal.RolledBack:
			return fmt.Sprintf("Task %s rolled back in %s (run %s).", e.Task, seconds(e.ElapsedMS), e.Run)
		}
		return fmt.Sprintf("Task %s failed after %s (run %s).", e.Task, seconds(e.ElapsedMS), e.Run)
	}
	return ""
}

func pairs(fields []string) []string {
	var out []string
	for i := 0; i+1 < len(fields); i += 2 {
		out = append(out, fields[i]+"="+fields[i+1])
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// ---- terminal ----

// ttyRenderer prints finished lines as they come and keeps, below them, a
// live status line per running step with its elapsed time and progress.
type ttyRenderer struct {
	mu      sync.Mutex
	out     io.Writer
	verbose bool
	active  []*activeStep
	drawn   int
	stop    chan struct{}
	closed  bool
	// paused while an interactive step has the terminal
	paused bool
}

type activeStep struct {
	name, action string
	start        time.Time
	progress     string
	undo         bool
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func newTTYRenderer(out io.Writer, verbose bool) *ttyRenderer {
	r := &ttyRenderer{out: out, verbose: verbose, stop: make(chan struct{})}
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				r.mu.Lock()
				r.redraw()
				r.mu.Unlock()
			}
		}
	}()
	return r
}

// clear erases the status area; the caller holds mu.
func (r *ttyRenderer) clear() {
	for i := 0; i < r.drawn; i++ {
		fmt.Fprint(r.out, "\x1b[1A\x1b[2K")
	}
	r.drawn = 0
}

// redraw repaints the status area; the caller holds mu.
func (r *ttyRenderer) redraw() {
	if r.closed || r.paused {
		return
	}
	r.clear()
	frame := spinner[int(time.Now().UnixMilli()/100)%len(spinner)]
	for _, s := range r.active {
		verb := s.action
		if s.undo {
			verb = "undoing " + s.action
		}
		line := fmt.Sprintf("%s %s  %s  %s", frame, s.name, verb, time.Since(s.start).Round(100*time.Millisecond))
		if s.progress != "" {
			line += "  " + s.progress
		}
		fmt.Fprintf(r.out, "\x1b[2m%s\x1b[0m\n", line)
		r.drawn++
	}
}

// println prints a permanent line above the status area.
func (r *ttyRenderer) println(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clear()
	fmt.Fprintln(r.out, line)
	r.redraw()
}

func (r *ttyRenderer) find(step string) int {
	for i, s := range r.active {
		if s.name == step {
			return i
		}
	}
	return -1
}

func (r *ttyRenderer) remove(step string) {
	if i := r.find(step); i >= 0 {
		r.active = append(r.active[:i], r.active[i+1:]...)
	}
}

func (r *ttyRenderer) Emit(e event.Event) {
	const green, red, yellow, reset = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[0m"
	switch e.Kind {
	case event.StepStarted, event.UndoStarted:
		if e.Interactive {
			r.mu.Lock()
			r.clear()
			fmt.Fprintf(r.out, "==> %s: %s has the terminal\n", e.Step, e.Action)
			r.paused = true
			r.mu.Unlock()
			return
		}
		r.mu.Lock()
		r.active = append(r.active, &activeStep{name: e.Step, action: e.Action, start: e.Time, undo: e.Kind == event.UndoStarted})
		r.redraw()
		r.mu.Unlock()
	case event.StepProgress:
		r.mu.Lock()
		if i := r.find(e.Step); i >= 0 {
			r.active[i].progress = progressText(e)
		}
		r.mu.Unlock()
	case event.StepDone:
		r.mu.Lock()
		r.remove(e.Step)
		r.paused = false
		r.mu.Unlock()
		if e.Message != "" {
			r.println(fmt.Sprintf("%s✓%s %s  %s", green, reset, e.Step, e.Message))
		} else {
			r.println(fmt.Sprintf("%s✓%s %s  %s  %s", green, reset, e.Step, e.Action, seconds(e.ElapsedMS)))
		}
	case event.StepFailed:
		r.mu.Lock()
		r.remove(e.Step)
		r.paused = false
		r.mu.Unlock()
		what := "failed" // the error follows once, with the diagnostics
		if e.Status != journal.Failed {
			what = "cancelled"
		}
		r.println(fmt.Sprintf("%s✗%s %s  %s  %s", red, reset, e.Step, e.Action, what))
	case event.StepSkipped:
		r.println(fmt.Sprintf("- %s  skipped (%s)", e.Step, e.Message))
	case event.UndoDone:
		r.mu.Lock()
		r.remove(e.Step)
		r.mu.Unlock()
		r.println(fmt.Sprintf("%s↩%s %s  undone  %s", yellow, reset, e.Step, seconds(e.ElapsedMS)))
	case event.UndoFailed:
		r.mu.Lock()
		r.remove(e.Step)
		r.mu.Unlock()
		r.println(fmt.Sprintf("%s✗%s %s  undo failed: %s", red, reset, e.Step, firstLine(e.Error)))
	case event.UndoSkipped:
		r.println(fmt.Sprintf("%s-%s %s  kept: %s", yellow, reset, e.Step, e.Error))
	default:
		if line := describe(e, r.verbose); line != "" {
			r.println(line)
		}
	}
}

func (r *ttyRenderer) LogWriter() io.Writer {
	return writerFunc(func(b []byte) { r.println(strings.TrimRight(string(b), "\n")) })
}

func (r *ttyRenderer) Signal(n int) { r.println(signalText(n)) }

func (r *ttyRenderer) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.clear()
	r.closed = true
	close(r.stop)
}

// pluginList says which plugins a run uses: "hypervisor: proxmox-stub
// 0.1.0 (host build1), nix: nix 0.1.0", or with versions false their
// sources alone, each once, with the host after an @
// ("proxmox-stub@build1, nix").
func pluginList(plugins, hosts map[string]string, versions bool) string {
	names := make([]string, 0, len(plugins))
	for n := range plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		if versions {
			part := n + ": " + plugins[n]
			if h := hosts[n]; h != "" {
				part += " (host " + h + ")"
			}
			parts = append(parts, part)
			continue
		}
		src, _, _ := strings.Cut(plugins[n], " ")
		if h := hosts[n]; h != "" {
			src += "@" + h
		}
		if !slices.Contains(parts, src) {
			parts = append(parts, src)
		}
	}
	return strings.Join(parts, ", ")
}
