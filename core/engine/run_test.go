package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vmflow/vmflow/core/event"
	"github.com/vmflow/vmflow/core/journal"
)

func TestRunFeedsOutputsAndRunsIndependentStepsTogether(t *testing.T) {
	e, rec := setup(t, header+`
task "t" {
  step "a" {
    action = r.do
    name = "a"
    wait_ms = 200
  }
  step "b" {
    action = r.do
    name = "b"
    wait_ms = 200
  }
  step "c" {
    action = r.do
    name = upper("${step.a.name}+${step.b.name}")
  }
  output "c" { value = step.c.name }
}`)
	plan, diags := prepare(t, e, "t", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	res := e.Run(context.Background(), plan, RunOptions{Parallelism: 4})
	if res.Status != journal.Succeeded {
		t.Fatalf("status %s: %v", res.Status, res.Diags)
	}
	if got := res.Outputs["c"].AsString(); got != "A+B" {
		t.Fatalf("output c = %q", got)
	}
	if rec.peak != 2 {
		t.Fatalf("a and b ran %d at a time, want 2", rec.peak)
	}
	if l := rec.lines(); l[2] != "run A+B" {
		t.Fatalf("log = %v", l)
	}
}

func TestParallelismBoundsConcurrency(t *testing.T) {
	var steps strings.Builder
	for i := range 6 {
		fmt.Fprintf(&steps, "step \"s%d\" {\n action = r.do\n name = \"%d\"\n wait_ms = 30\n}\n", i, i)
	}
	e, rec := setup(t, header+"task \"t\" {\n"+steps.String()+"}\n")
	plan, diags := prepare(t, e, "t", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if res := e.Run(context.Background(), plan, RunOptions{Parallelism: 2}); res.Status != journal.Succeeded {
		t.Fatal(res.Diags)
	}
	if rec.peak != 2 {
		t.Fatalf("peak concurrency %d, want 2", rec.peak)
	}
}

// An interactive step (a console) has the terminal to itself: nothing
// else runs meanwhile, though the steps around it run concurrently.
func TestInteractiveStepRunsAlone(t *testing.T) {
	e, rec := setup(t, header+`
task "t" {
  step "a" {
    action = r.do
    name = "a"
    wait_ms = 100
  }
  step "console" {
    action = r.tty
    name = "console"
    wait_ms = 100
  }
  step "b" {
    action = r.do
    name = "b"
    wait_ms = 100
  }
  step "c" {
    action = r.do
    name = "c"
    wait_ms = 100
  }
}`)
	plan, _ := prepare(t, e, "t", nil)
	var during []string
	var mu sync.Mutex
	running := map[string]bool{}
	sink := event.Func(func(ev event.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Kind {
		case event.StepStarted:
			if running["console"] || (ev.Step == "console" && len(running) > 0) {
				during = append(during, ev.Step)
			}
			running[ev.Step] = true
		case event.StepDone:
			delete(running, ev.Step)
		}
	})
	if res := e.Run(context.Background(), plan, RunOptions{Events: sink}); res.Status != journal.Succeeded {
		t.Fatal(res.Diags)
	}
	if len(during) > 0 {
		t.Fatalf("steps overlapped the interactive one: %v", during)
	}
	if rec.peak < 2 {
		t.Fatalf("the other steps did not run concurrently (peak %d)", rec.peak)
	}
}

func TestFailureUndoesInReverseCompletionOrder(t *testing.T) {
	e, rec := setup(t, header+`
task "t" {
  step "one" {
    action = r.do
    name = "one"
  }
  step "two" {
    action = r.do
    name = "two"
    depends_on = [step.one]
  }
  step "three" {
    action = r.do
    name = "three"
    fail = true
    depends_on = [step.two]
  }
  step "never" {
    action = r.do
    name = "never"
    depends_on = [step.three]
  }
}`)
	plan, _ := prepare(t, e, "t", nil)
	rec2 := &event.Recorder{}
	res := e.Run(context.Background(), plan, RunOptions{Events: rec2})
	if res.Status != journal.Failed {
		t.Fatalf("status %s", res.Status)
	}
	want := []string{"run one", "run two", "run three", "undo two", "undo one"}
	if got := rec.lines(); !slices.Equal(got, want) {
		t.Fatalf("log = %v, want %v", got, want)
	}
	if !slices.Equal(res.Undone, []string{"two", "one"}) {
		t.Fatalf("undone = %v", res.Undone)
	}
	if len(res.Diags) != 1 || res.Diags[0].Subject.Start.Line != 14 || !strings.Contains(res.Diags[0].Summary, `Step "three" failed: asked to fail`) {
		t.Fatalf("diags = %v", res.Diags)
	}
	var kinds []event.Kind
	for _, ev := range rec2.Events() {
		kinds = append(kinds, ev.Kind)
	}
	if kinds[0] != event.RunStarted || kinds[len(kinds)-1] != event.RunDone || !slices.Contains(kinds, event.UndoDone) {
		t.Fatalf("events = %v", kinds)
	}
}

func TestKeepOnFailureSkipsUndo(t *testing.T) {
	e, rec := setup(t, header+`
task "t" {
  step "one" {
    action = r.do
    name = "one"
  }
  step "two" {
    action = r.do
    name = "two"
    fail = true
    depends_on = [step.one]
  }
}`)
	plan, _ := prepare(t, e, "t", nil)
	res := e.Run(context.Background(), plan, RunOptions{KeepOnFailure: true})
	if res.Status != journal.Failed || len(res.Undone) != 0 {
		t.Fatalf("status %s, undone %v", res.Status, res.Undone)
	}
	if got := rec.lines(); !slices.Equal(got, []string{"run one", "run two"}) {
		t.Fatalf("log = %v", got)
	}
}

func TestCancelStopsRunningStepsThenUndoes(t *testing.T) {
	e, rec := setup(t, header+`
task "t" {
  step "fast" {
    action = r.do
    name = "fast"
  }
  step "slow" {
    action = r.do
    name = "slow"
    wait_ms = 10000
    depends_on = [step.fast]
  }
}`)
	plan, _ := prepare(t, e, "t", nil)
	ctx, cancel := context.WithCancel(context.Background())
	sink := event.Func(func(ev event.Event) {
		if ev.Kind == event.StepStarted && ev.Step == "slow" {
			cancel()
		}
	})
	res := e.Run(ctx, plan, RunOptions{Events: sink})
	if res.Status != journal.Cancelled {
		t.Fatalf("status %s", res.Status)
	}
	want := []string{"run fast", "cancelled slow", "undo fast"}
	if got := rec.lines(); !slices.Equal(got, want) {
		t.Fatalf("log = %v, want %v", got, want)
	}
}

// ignore_error: the action's failure does not fail the run; the step reads
// as skipped (its outputs null) and the steps after it run. A step whose
// action makes something cannot ignore its failure.
func TestIgnoreError(t *testing.T) {
	e, rec := setup(t, header+`
task "t" {
  step "probe" {
    action       = builtin.record_read
    collection   = "machines"
    name         = "nosuch"
    ignore_error = true
  }
  step "after" {
    action = r.do
    name   = "after ${coalesce(step.probe.path, "nothing")}"
  }
}
task "makes" {
  step "x" {
    action       = r.do
    name         = "x"
    ignore_error = true
  }
}`)
	plan, diags := prepare(t, e, "t", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	res, err := e.Execute(context.Background(), plan, ExecOptions{})
	if err != nil || res.Status != journal.Succeeded {
		t.Fatalf("%v %+v", err, res)
	}
	if want := []string{"run after nothing"}; !slices.Equal(rec.lines(), want) {
		t.Fatalf("log %v, want %v", rec.lines(), want)
	}
	st, _ := journal.New(e.StateDir).Load(res.RunID)
	if st.Steps["probe"].Status != journal.Skipped {
		t.Fatalf("probe: %+v", st.Steps["probe"])
	}

	_, diags = prepare(t, e, "makes", nil)
	if !diags.HasErrors() || !strings.Contains(diags.Error(), `ignore_error on a step that makes something`) {
		t.Fatalf("ignore_error on a step with an undo: %v", diags)
	}
}
