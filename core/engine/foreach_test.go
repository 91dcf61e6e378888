package engine

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/journal"
)

// A step with for_each runs once per key, named NAME[KEY], each.value
// read when it starts (here from an earlier step); an instance whose if
// is false is skipped; later steps read one instance or all of them; a
// failure undoes the instances with the rest; resume knows them.
func TestForEach(t *testing.T) {
	e, rec := setup(t, header+`
task "t" {
  param "vm" { type = string }
  param "with_initrd" {
    type    = bool
    default = true
  }
  step "first" {
    action = r.do
    name   = "first"
  }
  step "copy" {
    for_each = { kernel = "${param.vm}-k-${step.first.name}", initrd = "${param.vm}-i", base = "" }
    action   = r.do
    if       = each.value != "" && (each.key != "initrd" || param.with_initrd)
    name     = "${each.key}=${each.value}"
  }
  step "after" {
    action = r.do
    name   = "after ${step.copy["kernel"].name} ${join(",", [for k, c in step.copy : k if c.name != null])}"
  }
  output "copies" { value = [for k, c in step.copy : c.name if c.name != null] }
}`)
	plan := mustPrepare(t, e, "t", map[string]cty.Value{"vm": cty.StringVal("a"), "with_initrd": cty.True})
	names := stepNames(plan)
	if !slices.Equal(names, []string{"first", "copy[base]", "copy[initrd]", "copy[kernel]", "after"}) {
		t.Fatalf("plan steps %v", names)
	}
	res := execute(t, e, plan, ExecOptions{}, journal.Succeeded)
	lines := rec.lines()
	for _, want := range []string{"run kernel=a-k-first", "run initrd=a-i", "run after kernel=a-k-first initrd,kernel"} {
		if !slices.Contains(lines, want) {
			t.Errorf("log %v lacks %q", lines, want)
		}
	}
	if slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "run base=") }) {
		t.Errorf("log %v: copy[base], whose if is false, ran", lines)
	}
	if got := res.Outputs["copies"].AsValueSlice(); len(got) != 2 {
		t.Errorf("outputs %v", res.Outputs)
	}

	// The last step fails: the instances are undone, newest first, with
	// the rest; kept instead, resume does not run them again.
	e2, rec2 := setup(t, header+`
task "t" {
  step "copy" {
    for_each = toset(["x", "y"])
    action   = r.do
    name     = "copy-${each.value}"
  }
  step "last" {
    action     = r.do
    name       = "last"
    depends_on = [step.copy]
  }
}`)
	plan, _ = prepare(t, e2, "t", nil)
	rec2.setFailing("last", false, true)
	res, err := e2.Execute(context.Background(), plan, ExecOptions{RunOptions: RunOptions{KeepOnFailure: true}})
	if err != nil || res.Status != journal.Failed || !slices.Equal(res.Completed, []string{"copy[x]", "copy[y]"}) && !slices.Equal(res.Completed, []string{"copy[y]", "copy[x]"}) {
		t.Fatalf("%v %+v", err, res)
	}
	st := loadRun(t, e2, res.RunID)
	rec2.setFailing("last", false, false)
	plan, _ = prepare(t, e2, "t", nil)
	done, err := CheckResume(plan, ResumeState(st))
	if err != nil {
		t.Fatal(err)
	}
	before := len(rec2.lines())
	execute(t, e2, plan, ExecOptions{Resumes: res.RunID, RunOptions: RunOptions{Done: done}}, journal.Succeeded)
	if got := rec2.lines()[before:]; !slices.Equal(got, []string{"run last"}) {
		t.Errorf("resume ran %v, want only the last step", got)
	}
}

// for_each keys must be known before the run; each.* belongs to a step
// with for_each; a for_each step is read by key.
func TestForEachErrors(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"keys from a step", `
task "t" {
  step "a" {
    action = r.do
    name   = "a"
  }
  step "b" {
    for_each = toset([step.a.name])
    action   = r.do
    name     = each.key
  }
}`, "its keys must be known before the run"},
		{"not a map", `
task "t" {
  step "b" {
    for_each = 3
    action   = r.do
    name     = "x"
  }
}`, "for_each is a map (or object), or a set or list of strings"},
		{"each elsewhere", `
task "t" {
  step "b" {
    action = r.do
    name   = each.key
  }
}`, "each.* outside for_each"},
		{"instance not named", `
task "t" {
  step "b" {
    for_each = toset(["x"])
    action   = r.do
    name     = each.key
  }
  step "c" {
    action = r.do
    name   = step.b.name
  }
}`, "has one instance per key of its for_each"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Caught when the file loads, or before the run.
			path := writeTaskFile(t, t.TempDir(), header+c.src)
			_, diags := config.Load(path, config.Options{})
			if !diags.HasErrors() {
				e, _ := setup(t, header+c.src)
				_, diags = prepare(t, e, "t", nil)
			}
			if !diags.HasErrors() || !strings.Contains(diags.Error(), c.want) {
				t.Fatalf("diags %v, want %q", diags, c.want)
			}
		})
	}
}
