package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/claims"
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
	plan := mustPrepare(t, e, "t", nil)
	res := run(t, e, plan, RunOptions{Parallelism: 4}, journal.Succeeded)
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
	plan := mustPrepare(t, e, "t", nil)
	run(t, e, plan, RunOptions{Parallelism: 2}, journal.Succeeded)
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
	run(t, e, plan, RunOptions{Events: sink}, journal.Succeeded)
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
	res := run(t, e, plan, RunOptions{Events: rec2}, journal.Failed)
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
	plan := mustPrepare(t, e, "t", nil)
	res := execute(t, e, plan, ExecOptions{}, journal.Succeeded)
	if want := []string{"run after nothing"}; !slices.Equal(rec.lines(), want) {
		t.Fatalf("log %v, want %v", rec.lines(), want)
	}
	st := loadRun(t, e, res.RunID)
	if st.Steps["probe"].Status != journal.Skipped {
		t.Fatalf("probe: %+v", st.Steps["probe"])
	}

	_, diags := prepare(t, e, "makes", nil)
	if !diags.HasErrors() || !strings.Contains(diags.Error(), `ignore_error on a step that makes something`) {
		t.Fatalf("ignore_error on a step with an undo: %v", diags)
	}
}

func TestResumeSkipsCompletedSteps(t *testing.T) {
	e, rec := setup(t, header+`
task "t" {
  step "one" {
    action = r.do
    name = "one"
  }
  step "two" {
    action = r.do
    name = "${step.one.name}-two"
  }
}`)
	plan, _ := prepare(t, e, "t", nil)
	done := map[string]Completed{"one": {
		Inputs:  cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("one"), "fail": cty.False, "wait_ms": cty.Zero, "size": cty.NullVal(cty.Number)}),
		Outputs: cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("earlier"), "order": cty.NumberIntVal(1)}),
	}}
	done, err := CheckResume(plan, done)
	if err != nil {
		t.Fatal(err)
	}
	run(t, e, plan, RunOptions{Done: done}, journal.Succeeded)
	if got := rec.lines(); !slices.Equal(got, []string{"run earlier-two"}) {
		t.Fatalf("log = %v", got)
	}
}

func TestExecuteJournalsAndLocks(t *testing.T) {
	e, _ := setup(t, header+`
task "t" {
  param "vm" { type = string }
  lock = param.vm
  step "one" {
    action = r.do
    name = param.vm
  }
}`)
	plan := mustPrepare(t, e, "t", map[string]cty.Value{"vm": cty.StringVal("demo")})
	// Hold the lock as another run would.
	other, _ := prepare(t, e, "t", map[string]cty.Value{"vm": cty.StringVal("demo")})
	started := make(chan struct{})
	release := make(chan struct{})
	go func() {
		_, _ = e.Execute(context.Background(), other, ExecOptions{OnStart: func(string, string) {
			close(started)
			<-release
		}})
	}()
	<-started
	_, err := e.Execute(context.Background(), plan, ExecOptions{})
	var le *LockError
	if !errors.As(err, &le) || le.Key != "demo" {
		t.Fatalf("err = %v, want a lock error on demo", err)
	}
	close(release)

	// Once released, the run goes ahead and its journal reads back.
	var res *Result
	for range 100 {
		if res, err = e.Execute(context.Background(), plan, ExecOptions{Args: []string{"demo"}}); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || res.Status != journal.Succeeded {
		t.Fatalf("err %v, res %+v", err, res)
	}
	st := loadRun(t, e, res.RunID)
	if st.Status != journal.Succeeded || st.Header.Task != "t" || st.Steps["one"].Status != journal.Succeeded {
		t.Fatalf("journal state %+v", st)
	}
	if got := st.Steps["one"].Outputs.GetAttr("name").AsString(); got != "demo" {
		t.Fatalf("journaled output name = %q", got)
	}
}

// A run's claims stay while it can be resumed (a failure kept with
// --keep-on-failure) and go once it cannot: it succeeded, or it was
// rolled back.
func TestClaimsGoWhenTheRunCannotBeResumed(t *testing.T) {
	e, _ := setup(t, header+`
task "t" {
  param "fail" { type = bool }
  step "one" {
    action = r.claim
    name = "one"
  }
  step "two" {
    action = r.claim
    name = "two"
    fail = param.fail
    depends_on = [step.one]
  }
}`)
	for _, c := range []struct {
		fail, keep, kept bool
	}{{false, false, false}, {true, true, true}, {true, false, false}} {
		plan := mustPrepare(t, e, "t", map[string]cty.Value{"fail": cty.BoolVal(c.fail)})
		res, err := e.Execute(context.Background(), plan, ExecOptions{RunOptions: RunOptions{KeepOnFailure: c.keep}})
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []string{"one", "two"} {
			if got := hasClaims(e, res.RunID, step); got != c.kept {
				t.Errorf("fail=%v keep=%v (%s): step %s's claims kept: %v, want %v", c.fail, c.keep, res.Status, step, got, c.kept)
			}
		}
	}
}

// journalRun writes the journal of a run of task, with locks and params,
// as recs tell it, and returns the run's id.
func journalRun(t *testing.T, e *Engine, task string, locks []string, params cty.Value, recs ...journal.Record) string {
	t.Helper()
	id := journal.NewID(time.Now())
	path := e.Project.Task(task).File.Path
	sum, err := FileSum(path)
	if err != nil {
		t.Fatal(err)
	}
	writeJournal(t, journal.New(e.StateDir), journal.Header{ID: id, Task: task, File: path, FileSum: sum, Params: journal.Value{Value: params}, Locks: locks, Start: time.Now()}, recs...)
	return id
}

// interrupt writes the journal a run killed during its step "two" leaves:
// "one" completed, "two" running, nobody holding it.
func interrupt(t *testing.T, e *Engine, task string, locks []string, params cty.Value) string {
	t.Helper()
	in := func(name string) *journal.Value {
		return &journal.Value{Value: cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name), "fail": cty.False})}
	}
	out := &journal.Value{Value: cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("one")})}
	return journalRun(t, e, task, locks, params,
		journal.Record{Step: "one", Action: "r.claim", Status: journal.Running, Inputs: in("one")},
		journal.Record{Step: "one", Action: "r.claim", Status: journal.Succeeded, Outputs: out},
		journal.Record{Step: "two", Action: "r.claim", Status: journal.Running, Inputs: in("two")})
}

// rerunRefused runs plan and wants it refused with an InterruptedError
// (an unfinished run in the way) whose message says want.
func rerunRefused(t *testing.T, e *Engine, plan *Plan, want string) *InterruptedError {
	t.Helper()
	_, err := e.Execute(context.Background(), plan, ExecOptions{})
	var ie *InterruptedError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), want) {
		t.Fatalf("a rerun: %v, want an InterruptedError saying %q", err, want)
	}
	return ie
}

// leaveClaim writes the claim r.claim makes for step of run id ("thing
// STEP"), as a run killed during the step leaves it.
func leaveClaim(t *testing.T, e *Engine, id, step string) {
	t.Helper()
	if err := claims.Write(claims.Dir(e.StateDir, "rec", id, step), "thing "+step, nil); err != nil {
		t.Fatal(err)
	}
}

// hasClaims says whether step of run id holds claims.
func hasClaims(e *Engine, id, step string) bool {
	return claims.Any(claims.Dir(e.StateDir, "rec", id, step))
}

const claimTask = `
task "t" {
  param "vm" { type = string }
  lock = param.vm
  step "one" {
    action = r.claim
    name = "one"
  }
  step "two" {
    action = r.claim
    name = "two"
    depends_on = [step.one]
  }
}
task "other" {
  param "vm" { type = string }
  lock = param.vm
  step "one" {
    action = r.claim
    name = "x"
  }
}`

// A new run of a task is refused, before anything runs, while a run of
// the same task on the same lock is interrupted; on another lock, or
// another task, it goes ahead.
func TestInterruptedRunBlocksARerun(t *testing.T) {
	e, rec := setup(t, header+claimTask)
	demo := cty.ObjectVal(map[string]cty.Value{"vm": cty.StringVal("demo")})
	id := interrupt(t, e, "t", []string{"demo"}, demo)
	plan, _ := prepare(t, e, "t", map[string]cty.Value{"vm": cty.StringVal("demo")})
	want := fmt.Sprintf("run %s of t demo was interrupted (vmflow was killed); `vmflow resume %s` finishes it, or `vmflow resume %s --undo`", id, id, id)
	if ie := rerunRefused(t, e, plan, want); ie.Run.Header.ID != id {
		t.Fatalf("refused for run %s, want the interrupted run %s", ie.Run.Header.ID, id)
	}
	if len(rec.lines()) != 0 {
		t.Fatalf("steps ran: %v", rec.lines())
	}
	for _, c := range []struct{ task, vm string }{{"t", "web"}, {"other", "demo"}} {
		p, _ := prepare(t, e, c.task, map[string]cty.Value{"vm": cty.StringVal(c.vm)})
		if res, err := e.Execute(context.Background(), p, ExecOptions{}); err != nil || res.Status != journal.Succeeded {
			t.Fatalf("%s %s: %v %v", c.task, c.vm, err, res)
		}
	}
	// Resumed, it is no longer in the way.
	st := loadRun(t, e, id)
	done, _ := CheckResume(plan, ResumeState(st))
	execute(t, e, plan, ExecOptions{Resumes: id, RunOptions: RunOptions{Done: done}}, journal.Succeeded)
	execute(t, e, plan, ExecOptions{}, journal.Succeeded)
}

// resume --undo: the interrupted step is undone first, from its claims
// (no outputs), then the completed steps in reverse; the run ends rolled
// back, its claims gone, and no longer blocks a new run.
func TestRollbackOfAnInterruptedRun(t *testing.T) {
	e, rec := setup(t, header+claimTask)
	demo := cty.ObjectVal(map[string]cty.Value{"vm": cty.StringVal("demo")})
	id := interrupt(t, e, "t", []string{"demo"}, demo)
	// What the killed attempt of "two" had claimed.
	leaveClaim(t, e, id, "two")
	plan, _ := prepare(t, e, "t", map[string]cty.Value{"vm": cty.StringVal("demo")})
	st := loadRun(t, e, id)
	rb, err := CheckRollback(plan, RollbackState(st))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Execute(context.Background(), plan, ExecOptions{Resumes: id, Rollback: rb})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"undo claim two (interrupted: true, claimed: true)", "undo claim one (interrupted: false, claimed: false)"}
	if got := rec.lines(); !slices.Equal(got, want) {
		t.Fatalf("log = %v, want %v", got, want)
	}
	if res.Status != journal.RolledBack || !slices.Equal(res.Undone, []string{"two", "one"}) {
		t.Fatalf("result %+v", res)
	}
	st = loadRun(t, e, id)
	if st.Status != journal.RolledBack || st.Steps["two"].Status != journal.Undone || st.Steps["one"].Status != journal.Undone {
		t.Fatalf("journal: %s %+v", st.Status, st.Steps)
	}
	if hasClaims(e, id, "two") {
		t.Fatal("the rolled-back run's claims are left")
	}
	// A new run after the rollback.
	execute(t, e, plan, ExecOptions{}, journal.Succeeded)
}
