package engine

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/journal"
)

// writeJournal records a run's journal by hand: h, then recs; a record
// without a step ends the run. The journal is closed, so a run with no
// end reads as interrupted.
func writeJournal(t *testing.T, store *journal.Store, h journal.Header, recs ...journal.Record) {
	t.Helper()
	r, err := store.Create(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := r.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeRun is writeJournal for a run of task t of file, with the argument
// demo and the variable size = 2.
func writeRun(t *testing.T, store *journal.Store, id, file string, recs ...journal.Record) {
	t.Helper()
	sum, err := FileSum(file)
	if err != nil {
		t.Fatal(err)
	}
	writeJournal(t, store, journal.Header{ID: id, Task: "t", File: file, Files: map[string]string{file: sum},
		Args: []string{"demo"}, Vars: map[string]journal.Value{"size": {Value: cty.NumberIntVal(2)}}}, recs...)
}

func TestPlanResume(t *testing.T) {
	dir := t.TempDir()
	file := writeTaskFile(t, dir, `variable "size" { default = 1 }
task "t" {}
`)
	store := journal.New(filepath.Join(dir, "state"))
	out := &journal.Value{Value: cty.EmptyObjectVal}
	in := &journal.Value{Value: cty.EmptyObjectVal}
	writeRun(t, store, "1-interrupted", file,
		journal.Record{Step: "a", Status: journal.Running, Inputs: in},
		journal.Record{Step: "a", Status: journal.Succeeded, Inputs: in, Outputs: out},
		journal.Record{Step: "b", Status: journal.Running, Inputs: in})
	writeRun(t, store, "2-succeeded", file, journal.Record{Status: journal.Succeeded})
	writeRun(t, store, "3-rolledback", file, journal.Record{Status: journal.RolledBack})
	writeRun(t, store, "4-superseded", file, journal.Record{Status: journal.Superseded, Error: "by run 9"})
	writeRun(t, store, "5-committed", file,
		journal.Record{Step: "a", Status: journal.Succeeded, Inputs: in, Outputs: out, Commit: true},
		journal.Record{Status: journal.Failed})

	notResumable := func(req ResumeRequest, want string) {
		t.Helper()
		_, err := PlanResume(store, req)
		var nr *NotResumableError
		if !errors.As(err, &nr) || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want a refusal saying %q", req, err, want)
		}
	}
	notResumable(ResumeRequest{Run: "7"}, `"7"`)
	notResumable(ResumeRequest{Run: "2-succeeded"}, "run 2-succeeded succeeded; there is nothing to resume")
	notResumable(ResumeRequest{Run: "3-rolledback"}, "was rolled back already; start the task again instead: vmflow t demo")
	notResumable(ResumeRequest{Run: "4-superseded", Undo: true}, "was superseded (by run 9)")
	notResumable(ResumeRequest{Run: "5-committed", Undo: true}, "cannot be undone: it passed its commit point (step a)")
	notResumable(ResumeRequest{Run: "1-interrupted", Vars: []string{"size=3", "other=x"}}, "(size=2, no variable other)")

	// Resumed: the completed step is skipped, with the values it ran with.
	rs, err := PlanResume(store, ResumeRequest{Run: "1-interrupted", Vars: []string{"size=2"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rs.Done["a"]; rs.ID != "1-interrupted" || len(rs.Done) != 1 || !ok || rs.Rollback != nil {
		t.Fatalf("resume: %+v", rs)
	}
	if v := rs.Overrides["size"]; !v.RawEquals(cty.NumberIntVal(2)) {
		t.Fatalf("overrides: %#v", rs.Overrides)
	}
	proj, diags := config.Load(file, config.Options{Overrides: rs.Overrides})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if task, err := rs.Task(proj); err != nil || task.Name != "t" {
		t.Fatalf("task: %v %v", task, err)
	}

	// Rolled back: the completed step and the interrupted one.
	rs, err = PlanResume(store, ResumeRequest{Run: "1-interrupted", Undo: true})
	if err != nil {
		t.Fatal(err)
	}
	if rs.Done != nil || len(rs.Rollback.Done) != 1 || len(rs.Rollback.Interrupted) != 1 {
		t.Fatalf("undo: %+v %+v", rs, rs.Rollback)
	}

	// The task file changed: refused, unless forced.
	writeTaskFile(t, dir, `variable "size" { default = 1 }
task "t" { description = "changed" }
`)
	if _, err := rs.Task(proj); err == nil || !strings.Contains(err.Error(), "changed since run 1-interrupted started") {
		t.Fatalf("changed file: %v", err)
	}
	rs, _ = PlanResume(store, ResumeRequest{Run: "1-interrupted", Force: true})
	if _, err := rs.Task(proj); err != nil {
		t.Fatalf("forced: %v", err)
	}
	// The task is gone.
	other, _ := config.Load(file, config.Options{})
	other.Tasks = nil
	if _, err := rs.Task(other); err == nil || !strings.Contains(err.Error(), "task t is no longer in") {
		t.Fatalf("task gone: %v", err)
	}
}
