package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/builtin"
	"github.com/vmflow/vmflow/core/event"
	"github.com/vmflow/vmflow/core/journal"
)

// A step that runs past its timeout is cancelled and fails with a message
// naming the step and the limit; the steps completed before it are
// undone. The limit is the step's own (a duration or seconds), else the
// action's default.
func TestStepTimeout(t *testing.T) {
	for _, c := range []struct{ name, attr, action, want string }{
		{"duration", `timeout = "200ms"`, "do", `Step "slow" timed out after 200ms`},
		{"seconds", `timeout = 0.2`, "do", `Step "slow" timed out after 200ms`},
		{"action default", ``, "limited", `Step "slow" timed out after 300ms`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, rec := setup(t, header+`
task "t" {
  step "first" {
    action = r.do
    name = "first"
  }
  step "slow" {
    action = r.`+c.action+`
    name = "slow"
    wait_ms = 30000
    `+c.attr+`
    depends_on = [step.first]
  }
}`)
			plan := mustPrepare(t, e, "t", nil)
			start := time.Now()
			res := e.Run(context.Background(), plan, RunOptions{})
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("the run took %s", took)
			}
			if res.Status != journal.Failed || len(res.Diags) == 0 || !strings.Contains(res.Diags[0].Summary, c.want) {
				t.Fatalf("status %s, diags %v; want %q", res.Status, res.Diags, c.want)
			}
			if d := res.Diags[0].Detail; c.attr != "" && !strings.Contains(d, "the step's timeout (") || c.attr == "" && !strings.Contains(d, "the default of r.limited") {
				t.Fatalf("detail %q does not say where the limit comes from", d)
			}
			if want := []string{"run first", "cancelled slow", "undo first"}; !slices.Equal(rec.lines(), want) {
				t.Fatalf("log %v, want %v", rec.lines(), want)
			}
		})
	}
	// A step's own timeout lifts the action's default too.
	e, rec := setup(t, header+`
task "t" {
  step "slow" {
    action = r.limited
    name = "slow"
    wait_ms = 500
    timeout = "1m"
  }
}`)
	plan, _ := prepare(t, e, "t", nil)
	if res := e.Run(context.Background(), plan, RunOptions{}); res.Status != journal.Succeeded {
		t.Fatalf("status %s: %v (log %v)", res.Status, res.Diags, rec.lines())
	}
}

func TestInvalidTimeout(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{`"soon"`, `timeout must be a duration such as "30s", "10m" or "1h30m", or a number of seconds, not "soon"`},
		{`-1`, `greater than zero, not -1s`},
		{`"0s"`, `greater than zero, not 0s`},
		{`true`, `timeout must be a duration`},
		{`param.limit`, `timeout must be a duration such as "30s", "10m" or "1h30m", or a number of seconds, not "forever"`},
	} {
		e, _ := setup(t, header+`
task "t" {
  param "limit" {
    type = string
    default = "forever"
  }
  step "s" {
    action = r.do
    name = "s"
    timeout = `+c.value+`
  }
}`)
		_, diags := prepare(t, e, "t", map[string]cty.Value{"limit": cty.StringVal("forever")})
		if !diags.HasErrors() || diags[0].Summary != "Invalid timeout" || !strings.Contains(diags[0].Detail, c.want) || diags[0].Subject.Start.Line != 12 {
			t.Errorf("timeout = %s: %v, want %q at line 12", c.value, diags, c.want)
		}
	}
}

// wantCommitted wants the journal st to name committed as the run's
// commit point ("" for none) and pending as what it still needs.
func wantCommitted(t *testing.T, st *journal.State, committed, pending string) {
	t.Helper()
	if st.Committed != committed || Pending(st) != pending {
		t.Fatalf("journal: committed %q, pending %q; want %q, %q", st.Committed, Pending(st), committed, pending)
	}
}

// undoRefused wants resume --undo of the run st refused with a message
// that says want.
func undoRefused(t *testing.T, st *journal.State, want string) {
	t.Helper()
	if err := CheckResumable(st, true); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("--undo: %v, want a refusal saying %q", err, want)
	}
}

// A step that failed part-way is undone from its claims, before the
// completed steps, as after vmflow was killed during it; one that
// claimed nothing is not asked.
func TestFailedStepIsUndoneFromItsClaims(t *testing.T) {
	e, rec := setup(t, header+`
task "t" {
  step "one" {
    action = r.do
    name = "one"
  }
  step "half" {
    action = r.claim
    name = "half"
    fail = true
    depends_on = [step.one]
  }
  step "nothing" {
    action = r.do
    name = "nothing"
    fail = true
    depends_on = [step.one]
  }
}`)
	plan, _ := prepare(t, e, "t", nil)
	res, err := e.Execute(context.Background(), plan, ExecOptions{RunOptions: RunOptions{Parallelism: 1}})
	if err != nil {
		t.Fatal(err)
	}
	got := rec.lines()
	want := "undo claim half (interrupted: true, claimed: true)"
	if !slices.Contains(got, want) || slices.Index(got, want) > slices.Index(got, "undo one") || got[len(got)-1] != "undo one" {
		t.Fatalf("log %v: want %q before the undo of one", got, want)
	}
	if !slices.Contains(res.Undone, "half") || slices.Contains(res.Undone, "nothing") {
		t.Fatalf("undone %v", res.Undone)
	}
	if hasClaims(e, res.RunID, "half") {
		t.Fatal("the undone run's claims are left")
	}
}

// Once a commit step completed, a failure undoes nothing: the run fails,
// stays resumable, blocks a rerun of its task, refuses --undo, and a
// resume finishes it.
func TestCommitPoint(t *testing.T) {
	e, rec := setup(t, header+`
task "t" {
  param "vm" { type = string }
  lock = param.vm
  step "prepare" {
    action = r.claim
    name = "prepare"
  }
  step "save" {
    action = r.do
    name = "save"
    commit = true
    depends_on = [step.prepare]
  }
  step "cleanup" {
    action = r.do
    name = "cleanup"
    depends_on = [step.save]
  }
}`)
	params := map[string]cty.Value{"vm": cty.StringVal("demo")}
	plan, _ := prepare(t, e, "t", params)
	rec.setFailing("cleanup", false, true)
	res := execute(t, e, plan, ExecOptions{}, journal.Failed)
	if res.Committed != "save" || len(res.Undone)+len(res.UndoFailed) != 0 {
		t.Fatalf("result %+v", res)
	}
	if want := []string{"claim prepare (claimed before: false)", "run save", "run cleanup"}; !slices.Equal(rec.lines(), want) {
		t.Fatalf("log %v, want %v (no undo)", rec.lines(), want)
	}
	st := loadRun(t, e, res.RunID)
	wantCommitted(t, st, "save", PendingCommitted)
	if !strings.Contains(st.Error, "committed at step save") {
		t.Fatalf("journal error %q", st.Error)
	}
	if !hasClaims(e, res.RunID, "prepare") {
		t.Fatal("the claims of a run that can be resumed are gone")
	}
	undoRefused(t, st, "cannot be undone: it passed its commit point (step save)")
	rerunRefused(t, e, plan, "failed after its commit point (step save)")
	if err := CheckResumable(st, false); err != nil {
		t.Fatal(err)
	}
	rec.setFailing("cleanup", false, false)
	done, _ := CheckResume(plan, ResumeState(st))
	execute(t, e, plan, ExecOptions{Resumes: res.RunID, RunOptions: RunOptions{Done: done}}, journal.Succeeded)
	// Only cleanup ran again: save, completed before, is not redone.
	if got := rec.lines(); got[len(got)-1] != "run cleanup" || strings.Count(strings.Join(got, ","), "run save") != 1 {
		t.Fatalf("log %v", got)
	}
}

// When an undo fails, the steps it depends on are not undone (what it
// made may still need them); steps it does not depend on are. A rollback
// (resume --undo) tries the failed undo again, then the skipped ones, and
// only then is the run rolled back.
func TestFailedUndoKeepsWhatItDependsOn(t *testing.T) {
	e, rec := setup(t, header+`
task "t" {
  param "vm" { type = string }
  lock = param.vm
  step "record" {
    action = r.do
    name = "record"
  }
  step "other" {
    action = r.do
    name = "other"
  }
  step "define" {
    action = r.do
    name = step.record.name == "record" ? "define" : "x"
  }
  step "start" {
    action = r.do
    name = "start"
    depends_on = [step.define, step.other]
  }
}`)
	plan, _ := prepare(t, e, "t", map[string]cty.Value{"vm": cty.StringVal("demo")})
	rec.setFailing("start", false, true)
	rec.setFailing("define", true, true)
	events := &event.Recorder{}
	res, err := e.Execute(context.Background(), plan, ExecOptions{RunOptions: RunOptions{Parallelism: 1, Events: events}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.UndoFailed, []string{"define"}) || !slices.Equal(res.UndoSkipped, []string{"record"}) || !slices.Equal(res.Undone, []string{"other"}) {
		t.Fatalf("undone %v, failed %v, skipped %v", res.Undone, res.UndoFailed, res.UndoSkipped)
	}
	if slices.Contains(rec.lines(), "undo record") {
		t.Fatalf("record was undone although define, which uses it, was not: %v", rec.lines())
	}
	skipped := false
	for _, ev := range events.Events() {
		if ev.Kind == event.UndoSkipped && ev.Step == "record" && strings.Contains(ev.Error, `the undo of step "define" failed`) {
			skipped = true
		}
	}
	if !skipped {
		t.Fatal("no undo_skipped event for record")
	}
	st := loadRun(t, e, res.RunID)
	if Pending(st) != PendingUndo {
		t.Fatalf("pending %q", Pending(st))
	}
	rerunRefused(t, e, plan, "some of its undos failed (define)")
	// Still failing: the rollback fails again and keeps record.
	rb, err := CheckRollback(plan, RollbackState(st))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rb.Order, []string{"record", "define"}) {
		t.Fatalf("rollback order %v", rb.Order)
	}
	res, err = e.Execute(context.Background(), plan, ExecOptions{Resumes: res.RunID, Rollback: rb})
	if err != nil || res.Status != journal.Failed || !slices.Equal(res.UndoFailed, []string{"define"}) {
		t.Fatalf("rollback while the undo still fails: %v %+v", err, res)
	}
	// Once it works, everything left is undone.
	rec.setFailing("define", true, false)
	st = loadRun(t, e, res.RunID)
	rb, _ = CheckRollback(plan, RollbackState(st))
	res, err = e.Execute(context.Background(), plan, ExecOptions{Resumes: res.RunID, Rollback: rb})
	if err != nil || res.Status != journal.RolledBack || !slices.Equal(res.Undone, []string{"define", "record"}) {
		t.Fatalf("rollback: %v %+v", err, res)
	}
	st = loadRun(t, e, res.RunID)
	if st.Status != journal.RolledBack || Pending(st) != "" {
		t.Fatalf("journal %s, pending %q", st.Status, Pending(st))
	}
}

// A task with supersedes = true that succeeds marks the unfinished runs
// on its locks superseded: they no longer block their task, cannot be
// resumed, and their claims and temporary files go.
func TestSupersede(t *testing.T) {
	e, _ := setup(t, header+claimTask+`
task "purge" {
  param "vm" { type = string }
  lock = param.vm
  supersedes = true
  step "gone" {
    action = r.do
    name = "gone"
  }
}`)
	demo := cty.ObjectVal(map[string]cty.Value{"vm": cty.StringVal("demo")})
	id := interrupt(t, e, "t", []string{"demo"}, demo)
	web := interrupt(t, e, "t", []string{"web"}, cty.ObjectVal(map[string]cty.Value{"vm": cty.StringVal("web")}))
	leaveClaim(t, e, id, "two")
	if err := os.MkdirAll(filepath.Join(builtin.TempDir(e.StateDir, id), "extract-1"), 0o700); err != nil {
		t.Fatal(err)
	}
	plan, _ := prepare(t, e, "purge", map[string]cty.Value{"vm": cty.StringVal("demo")})
	res := execute(t, e, plan, ExecOptions{}, journal.Succeeded)
	st := loadRun(t, e, id)
	if st.Status != journal.Superseded || !strings.Contains(st.Error, "by run "+res.RunID+" of purge demo") {
		t.Fatalf("the interrupted run: %s %q", st.Status, st.Error)
	}
	undoRefused(t, st, "was superseded")
	if hasClaims(e, id, "two") {
		t.Fatal("the superseded run's claims are left")
	}
	if _, err := os.Stat(builtin.TempDir(e.StateDir, id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the superseded run's temporary directory: %v", err)
	}
	if st := loadRun(t, e, web); st.Status != journal.Interrupted {
		t.Fatalf("a run on another lock became %s", st.Status)
	}
	// The task again after purge.
	tp, _ := prepare(t, e, "t", map[string]cty.Value{"vm": cty.StringVal("demo")})
	execute(t, e, tp, ExecOptions{}, journal.Succeeded)
}

// What a run that ended without cleaning up left (vmflow killed after
// its journal said it succeeded) goes at the next run; what an unfinished
// run keeps stays.
func TestSweepRemovesWhatFinishedRunsLeft(t *testing.T) {
	e, _ := setup(t, header+claimTask)
	plan, _ := prepare(t, e, "t", map[string]cty.Value{"vm": cty.StringVal("demo")})
	res := execute(t, e, plan, ExecOptions{}, journal.Succeeded)
	// As if killed right after the journal's last record.
	leaveClaim(t, e, res.RunID, "one")
	if err := os.MkdirAll(builtin.TempDir(e.StateDir, res.RunID), 0o700); err != nil {
		t.Fatal(err)
	}
	open := interrupt(t, e, "t", []string{"web"}, cty.ObjectVal(map[string]cty.Value{"vm": cty.StringVal("web")}))
	leaveClaim(t, e, open, "two")
	other, _ := prepare(t, e, "other", map[string]cty.Value{"vm": cty.StringVal("x")})
	if _, err := e.Execute(context.Background(), other, ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	if hasClaims(e, res.RunID, "one") {
		t.Fatal("the finished run's claims are left")
	}
	if _, err := os.Stat(builtin.TempDir(e.StateDir, res.RunID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the finished run's temporary directory: %v", err)
	}
	if !hasClaims(e, open, "two") {
		t.Fatal("the interrupted run's claims went")
	}
}

// A commit step that cannot be undone commits the run as soon as it
// starts: when it fails (or the run is cut off during it), what it did
// may stay, so nothing before it is undone and --undo is refused.
func TestCommitStepWithoutUndo(t *testing.T) {
	e, rec := setup(t, header+`
task "t" {
  param "vm" { type = string }
  lock = param.vm
  step "prepare" {
    action = r.do
    name = "prepare"
  }
  step "remove_old" {
    action = r.final
    name = "remove_old"
    commit = true
    depends_on = [step.prepare]
  }
}`)
	plan, _ := prepare(t, e, "t", map[string]cty.Value{"vm": cty.StringVal("demo")})
	rec.setFailing("remove_old", false, true)
	res := execute(t, e, plan, ExecOptions{}, journal.Failed)
	if res.Committed != "remove_old" || len(res.Undone) != 0 || slices.Contains(rec.lines(), "undo prepare") {
		t.Fatalf("result %+v, log %v", res, rec.lines())
	}
	st := loadRun(t, e, res.RunID)
	wantCommitted(t, st, "remove_old", PendingCommitted)
	undoRefused(t, st, "passed its commit point (step remove_old)")
	// Cut off during it (vmflow killed): the journal says so from the
	// step's start, and a rollback is refused.
	in := &journal.Value{Value: cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("remove_old")})}
	id := journalRun(t, e, "t", []string{"other"}, plan.Params,
		journal.Record{Step: "remove_old", Action: "r.final", Status: journal.Running, Inputs: in, Commit: true})
	st = loadRun(t, e, id)
	undoRefused(t, st, "passed its commit point (step remove_old)")
	if _, err := CheckRollback(plan, RollbackState(st)); err == nil || !strings.Contains(err.Error(), "cut off in step remove_old, its commit point, which cannot be undone") {
		t.Fatalf("CheckRollback: %v", err)
	}
}

// A commit step without undo that refuses its inputs (an argument error,
// which by the plugin contract changes nothing) has not committed the
// run: the steps before it are undone, and the run holds nothing up.
func TestRefusedCommitStep(t *testing.T) {
	e, rec := setup(t, header+`
task "t" {
  param "size" { type = number }
  lock = "vm"
  step "prepare" {
    action = r.do
    name = "prepare"
  }
  step "resize" {
    action = r.final
    name = "resize"
    size = param.size
    commit = true
    depends_on = [step.prepare]
  }
}`)
	plan, _ := prepare(t, e, "t", map[string]cty.Value{"size": cty.NumberIntVal(2000)})
	res := execute(t, e, plan, ExecOptions{}, journal.Failed)
	if res.Committed != "" || !slices.Equal(res.Undone, []string{"prepare"}) || !slices.Equal(rec.lines(), []string{"run prepare", "refused resize", "undo prepare"}) {
		t.Fatalf("result %+v, log %v", res, rec.lines())
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "is more than there is room for") {
		t.Fatalf("error: %v", err)
	}
	st := loadRun(t, e, res.RunID)
	wantCommitted(t, st, "", "")
	// Nothing holds up the task with a size that fits.
	plan, _ = prepare(t, e, "t", map[string]cty.Value{"size": cty.NumberIntVal(10)})
	execute(t, e, plan, ExecOptions{}, journal.Succeeded)
}
