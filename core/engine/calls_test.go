package engine

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/journal"
)

// provision is a task the tests call: two steps, an output, a lock.
const provision = `
task "provision" {
  internal = true
  param "name" { type = string }
  param "size" {
    type    = number
    default = 1
  }
  lock = param.name
  step "disk" {
    action = r.do
    name   = "${param.name}-disk-${param.size}"
  }
  step "define" {
    action = r.do
    name   = "${param.name}-define"
    depends_on = [step.disk]
  }
  output "disk" { value = step.disk.name }
}
`

// A step that calls a task runs the task's steps as part of the run,
// named by their path, after what the call waits for; the steps after
// the call read the called task's outputs.
func TestTaskCall(t *testing.T) {
	e, rec := setup(t, header+provision+`
task "create" {
  param "vm" { type = string }
  lock = param.vm
  step "prepare" {
    action = r.do
    name   = "prepare"
  }
  step "vm" {
    task = "provision"
    name = param.vm
    size = step.prepare.order + 1
  }
  step "after" {
    action = r.do
    name   = "after ${step.vm.disk}"
  }
  output "disk" { value = step.vm.disk }
}`)
	plan := mustPrepare(t, e, "create", map[string]cty.Value{"vm": cty.StringVal("a")})
	names := stepNames(plan)
	if !slices.Equal(names, []string{"prepare", "vm/disk", "vm/define", "after"}) || !slices.Equal(plan.Locks, []string{"a"}) {
		t.Fatalf("plan: steps %v, locks %v (the called task's lock on the same VM is taken once)", names, plan.Locks)
	}
	res := execute(t, e, plan, ExecOptions{}, journal.Succeeded)
	want := []string{"run prepare", "run a-disk-2", "run a-define", "run after a-disk-2"}
	if !slices.Equal(rec.lines(), want) || res.Outputs["disk"].AsString() != "a-disk-2" {
		t.Fatalf("log %v, outputs %v", rec.lines(), res.Outputs)
	}
	st := loadRun(t, e, res.RunID)
	if !slices.Equal(st.Completed, []string{"prepare", "vm/disk", "vm/define", "after"}) {
		t.Fatalf("journal: %v", st.Completed)
	}
}

// A failure after a call undoes the called task's steps with the rest,
// in reverse order; resume --undo and resume know them by their path.
func TestTaskCallUndoAndResume(t *testing.T) {
	e, rec := setup(t, header+provision+`
task "create" {
  param "vm" { type = string }
  step "vm" {
    task = "provision"
    name = param.vm
  }
  step "after" {
    action = r.do
    name   = "after"
    depends_on = [step.vm]
  }
}`)
	plan := mustPrepare(t, e, "create", map[string]cty.Value{"vm": cty.StringVal("b")})
	rec.setFailing("after", false, true)
	res := execute(t, e, plan, ExecOptions{}, journal.Failed)
	want := []string{"run b-disk-1", "run b-define", "run after", "undo b-define", "undo b-disk-1"}
	if !slices.Equal(rec.lines(), want) || !slices.Equal(res.Undone, []string{"vm/define", "vm/disk"}) {
		t.Fatalf("log %v, undone %v", rec.lines(), res.Undone)
	}

	// Kept on failure, then resumed: the called steps are not run again.
	plan, _ = prepare(t, e, "create", map[string]cty.Value{"vm": cty.StringVal("b")})
	res, err := e.Execute(context.Background(), plan, ExecOptions{RunOptions: RunOptions{KeepOnFailure: true}})
	if err != nil || res.Status != journal.Failed || len(res.Undone) != 0 {
		t.Fatalf("%v %+v", err, res)
	}
	rec.setFailing("after", false, false)
	st := loadRun(t, e, res.RunID)
	before := len(rec.lines())
	res, err = e.Execute(context.Background(), plan, ExecOptions{Resumes: res.RunID, RunOptions: RunOptions{Done: ResumeState(st)}})
	if err != nil || res.Status != journal.Succeeded || !slices.Equal(rec.lines()[before:], []string{"run after"}) {
		t.Fatalf("resume: %v %+v, log %v", err, res, rec.lines()[before:])
	}
}

// A call whose if is false skips every step of the called task, and its
// outputs read as null; the call's timeout bounds its steps together.
func TestTaskCallIfAndTimeout(t *testing.T) {
	e, rec := setup(t, header+provision+`
task "maybe" {
  param "go" { type = bool }
  step "vm" {
    task = "provision"
    name = "c"
    if   = param.go
  }
  step "after" {
    action = r.do
    name   = coalesce(step.vm.disk, "no disk")
  }
}
task "slow" {
  param "name" { type = string }
  step "one" {
    action  = r.do
    name    = param.name
    wait_ms = 300
  }
  step "two" {
    action  = r.do
    name    = "two"
    wait_ms = 300
    depends_on = [step.one]
  }
}
task "bounded" {
  step "first" {
    action = r.do
    name   = "first"
  }
  step "s" {
    task    = "slow"
    name    = "one"
    timeout = "450ms"
    depends_on = [step.first]
  }
}`)
	plan := mustPrepare(t, e, "maybe", map[string]cty.Value{"go": cty.False})
	if res, err := e.Execute(context.Background(), plan, ExecOptions{}); err != nil || res.Status != journal.Succeeded || !slices.Equal(rec.lines(), []string{"run no disk"}) {
		t.Fatalf("%v %+v, log %v", err, res, rec.lines())
	}

	plan = mustPrepare(t, e, "bounded", nil)
	res := execute(t, e, plan, ExecOptions{}, journal.Failed)
	msg := res.Err().Error()
	if !strings.Contains(msg, `Step "s" timed out after 450ms`) || !slices.Equal(res.Undone, []string{"s/one", "first"}) {
		t.Fatalf("error %q, undone %v, log %v", msg, res.Undone, rec.lines())
	}
	if !strings.Contains(res.Diags[0].Detail, `step "s/two" was cancelled`) {
		t.Fatalf("detail: %s", res.Diags[0].Detail)
	}
}

// A call's arguments are type-checked before anything runs, against the
// called task's params, at the argument's place.
func TestTaskCallArgumentTypes(t *testing.T) {
	e, rec := setup(t, header+provision+`
task "bad" {
  step "vm" {
    task = "provision"
    name = "d"
    size = "big"
  }
}`)
	_, diags := prepare(t, e, "bad", nil)
	if !diags.HasErrors() || !strings.Contains(diags.Error(), `Step "vm" calls task provision: param "size": a number is required`) || diags[0].Subject.Start.Line != 28 {
		t.Fatalf("diags: %v", diags)
	}
	if len(rec.lines()) != 0 {
		t.Fatalf("something ran: %v", rec.lines())
	}
}

// A timeout that comes from a called task's param, which a step
// produces, is known only when the step runs, and holds then.
func TestTaskCallTimeoutFromAStep(t *testing.T) {
	e, _ := setup(t, header+`
task "waits" {
  param "limit" { type = string }
  step "w" {
    action  = r.do
    name    = "w"
    wait_ms = 2000
    timeout = param.limit
  }
}
task "t" {
  step "limit" {
    action = r.do
    name   = "150ms"
  }
  step "call" {
    task  = "waits"
    limit = step.limit.name
  }
}
task "mid" {
  param "limit" { type = string }
  step "call" {
    task    = "waits"
    limit   = "1h"
    timeout = param.limit
  }
}
task "t2" {
  step "limit" {
    action = r.do
    name   = "150ms"
  }
  step "outer" {
    task  = "mid"
    limit = step.limit.name
  }
}`)
	for _, c := range []struct{ task, want string }{
		{"t", `Step "call/w" timed out after 150ms`},
		// The same for a call's own timeout, from its caller's param that a
		// step produced.
		{"t2", `Step "outer/call" timed out after 150ms`},
	} {
		res := execute(t, e, mustPrepare(t, e, c.task, nil), ExecOptions{}, journal.Failed)
		if !strings.Contains(res.Err().Error(), c.want) {
			t.Fatalf("%s: %+v", c.task, res)
		}
	}
}

// A task's locals are worked out from its params: in the task run, and in
// a called task from the call's arguments, a step's output among them.
func TestTaskLocals(t *testing.T) {
	e, rec := setup(t, header+`
locals {
  prefix = "vm"
}
task "named" {
  param "name" { type = string }
  locals {
    full  = "${local.prefix}-${param.name}"
    disks = ["${local.full}-boot", "${local.full}-var"]
  }
  lock = local.full
  step "s" {
    action = r.do
    name   = join(",", local.disks)
  }
  output "full" { value = local.full }
}
task "unlocked" {
  param "name" { type = string }
  locals {
    full = "${local.prefix}-${param.name}"
  }
  step "s" {
    action = r.do
    name   = local.full
  }
  output "full" { value = local.full }
}
task "t2" {
  step "n" {
    action = r.do
    name   = "x"
  }
  step "call" {
    task = "unlocked"
    name = step.n.name
  }
  step "after" {
    action = r.do
    name   = "after ${step.call.full}"
  }
}
task "t" {
  step "n" {
    action = r.do
    name   = "x"
  }
  step "call" {
    task = "named"
    name = step.n.name
  }
  step "after" {
    action = r.do
    name   = "after ${step.call.full}"
  }
}`)
	plan := mustPrepare(t, e, "named", map[string]cty.Value{"name": cty.StringVal("a")})
	if !slices.Equal(plan.Locks, []string{"vm-a"}) {
		t.Fatalf("locks %v", plan.Locks)
	}
	if res, err := e.Execute(context.Background(), plan, ExecOptions{}); err != nil || res.Status != journal.Succeeded || res.Outputs["full"].AsString() != "vm-a" {
		t.Fatalf("%v %+v", err, res)
	}
	// Called with a param that comes from a step: the called task's lock
	// cannot be known before the run.
	_, diags := prepare(t, e, "t", nil)
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "Lock not known before the run") {
		t.Fatalf("diags: %v", diags)
	}
	execute(t, e, mustPrepare(t, e, "t2", nil), ExecOptions{}, journal.Succeeded)
	if !slices.Equal(rec.lines(), []string{"run vm-a-boot,vm-a-var", "run x", "run vm-x", "run after vm-x"}) {
		t.Fatalf("log %v", rec.lines())
	}
}

// A local command that runs vmflow is warned about, pointing to a call.
func TestRunningVmflowFromAStepIsWarnedAbout(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "vmflow")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e, _ := setup(t, header+`
task "t" {
  step "nested" {
    action = builtin.exec
    argv   = ["`+bin+`", "team.create", "web"]
  }
}`)
	_, diags := prepare(t, e, "t", nil)
	if diags.HasErrors() || len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || !strings.Contains(diags[0].Detail, `call it: task = "team.create"`) {
		t.Fatalf("diags: %v", diags)
	}
}

// A shared task can leave it to its caller whether its step is a commit
// point (commit = param.commit): one caller's failure after that step
// undoes nothing, another's undoes everything. A param of type any
// carries a whole object into the called task.
func TestCommitFromParam(t *testing.T) {
	e, rec := setup(t, header+`
task "remove" {
  internal = true
  param "vm" { type = any }
  param "final" {
    type    = bool
    default = false
  }
  step "gone" {
    action = r.do
    name   = "remove ${param.vm.name}"
    commit = param.final
  }
}
task "t" {
  param "vm" { type = string }
  param "commit" { type = bool }
  step "prepare" {
    action = r.do
    name   = "prepare"
  }
  step "old" {
    task   = "remove"
    vm     = { name = param.vm, size = 2 }
    final  = param.commit
    depends_on = [step.prepare]
  }
  step "after" {
    action = r.do
    name   = "after"
    depends_on = [step.old]
  }
}`)
	for _, commit := range []bool{true, false} {
		plan := mustPrepare(t, e, "t", map[string]cty.Value{"vm": cty.StringVal("a"), "commit": cty.BoolVal(commit)})
		rec.setFailing("after", false, true)
		res, err := e.Execute(context.Background(), plan, ExecOptions{})
		if err != nil || res.Status != journal.Failed {
			t.Fatalf("commit %v: %v %+v", commit, err, res)
		}
		if commit && (res.Committed != "old/gone" || len(res.Undone) != 0) {
			t.Errorf("commit = true: committed %q, undone %v; want committed at old/gone, nothing undone", res.Committed, res.Undone)
		}
		if !commit && (res.Committed != "" || !slices.Equal(res.Undone, []string{"old/gone", "prepare"})) {
			t.Errorf("commit = false: committed %q, undone %v; want everything undone", res.Committed, res.Undone)
		}
		if !slices.Contains(rec.lines(), "run remove a") {
			t.Errorf("log %v: the object param did not reach the called task", rec.lines())
		}
	}

	// commit from a step's output is not known before the run.
	e, _ = setup(t, header+`
task "remove" {
  internal = true
  param "final" { type = bool }
  step "gone" {
    action = r.do
    name   = "gone"
    commit = param.final
  }
}
task "t" {
  step "prepare" {
    action = r.do
    name   = "prepare"
  }
  step "old" {
    task   = "remove"
    final = step.prepare.order > 0
  }
}`)
	_, diags := prepare(t, e, "t", nil)
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "Commit not known before the run") {
		t.Fatalf("diags %v", diags)
	}
}

// A commit point taken from a sensitive variable decides, unmasked, and
// is not shown: the step is the run's commit point.
func TestCommitFromSensitiveVariable(t *testing.T) {
	e, rec := setup(t, header+`
variable "final" {
  type      = bool
  default   = true
  sensitive = true
}
task "t" {
  step "gone" {
    action = r.do
    name   = "gone"
    commit = var.final
  }
  step "after" {
    action     = r.do
    name       = "after"
    depends_on = [step.gone]
  }
}`)
	e.Key = journal.NewKey(filepath.Join(t.TempDir(), "journal.key"))
	plan := mustPrepare(t, e, "t", nil)
	rec.setFailing("after", false, true)
	res, err := e.Execute(context.Background(), plan, ExecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Committed != "gone" || len(res.Undone) != 0 {
		t.Fatalf("%v: committed %q, undone %v; want committed at gone", err, res.Committed, res.Undone)
	}
}

// A task without steps works out its outputs from its params: a step that
// reads them waits for what the call's params wait for, and a call whose
// if is false reads as nulls.
func TestTaskCallWithoutSteps(t *testing.T) {
	e, rec := setup(t, header+`
task "shape" {
  internal = true
  param "n" { type = number }
  output "label" { value = "n=${param.n}" }
}
task "create" {
  step "first" {
    action = r.do
    name   = "first"
  }
  step "s" {
    task = "shape"
    n    = step.first.order + 10
  }
  step "after" {
    action = r.do
    name   = "after ${step.s.label}"
  }
  step "off" {
    task = "shape"
    if   = false
    n    = 1
  }
  output "label" { value = step.s.label }
  output "off" { value = step.off.label == null ? "skipped" : step.off.label }
}`)
	plan := mustPrepare(t, e, "create", nil)
	res := execute(t, e, plan, ExecOptions{}, journal.Succeeded)
	if want := []string{"run first", "run after n=11"}; !slices.Equal(rec.lines(), want) {
		t.Fatalf("log %v, want %v", rec.lines(), want)
	}
	if res.Outputs["label"].AsString() != "n=11" || res.Outputs["off"].AsString() != "skipped" {
		t.Fatalf("outputs %v", res.Outputs)
	}
}

// A plugin block that names a host scopes the run's locks to it: web on
// build1 and web on build2 are different machines. The run's hosts are
// journaled and reported with it.
func TestLocksScopedByHost(t *testing.T) {
	for _, tc := range []struct {
		host  string
		locks []string
		hosts map[string]string
	}{
		{`"build1"`, []string{"web@build1"}, map[string]string{"r": "build1"}},
		{`null`, []string{"web"}, nil},
	} {
		e, _ := setup(t, `plugin "r" {
  source = "rec"
  host   = `+tc.host+`
}
task "t" {
  param "vm" { type = string }
  lock = param.vm
  step "a" {
    action = r.do
    name   = param.vm
  }
}`)
		plan := mustPrepare(t, e, "t", map[string]cty.Value{"vm": cty.StringVal("web")})
		if !slices.Equal(plan.Locks, tc.locks) || !maps.Equal(plan.Hosts(), tc.hosts) {
			t.Errorf("host = %s: locks %v, hosts %v; want %v, %v", tc.host, plan.Locks, plan.Hosts(), tc.locks, tc.hosts)
		}
	}
}
