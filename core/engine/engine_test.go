package engine

import (
	"slices"
	"testing"
)

func TestOrderRespectsDependencies(t *testing.T) {
	e, _ := setup(t, header+`
task "t" {
  step "c" {
    action = r.do
    name = "${step.a.name}${step.b.name}"
  }
  step "b" {
    action = r.do
    name = "b"
    depends_on = [step.a]
  }
  step "a" {
    action = r.do
    name = "a"
  }
  step "d" {
    action = r.do
    name = "d"
  }
}`)
	plan, diags := prepare(t, e, "t", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var got []string
	for _, s := range plan.Steps {
		got = append(got, s.Name)
	}
	// a and d have no dependencies (declaration order: a before d), then b,
	// then c which needs both.
	if want := []string{"a", "d", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	if !slices.Equal(plan.Step("c").Deps, []string{"a", "b"}) {
		t.Fatalf("deps of c = %v", plan.Step("c").Deps)
	}
}

func TestPrepareErrors(t *testing.T) {
	cases := []struct {
		name, body, summary string
		line                int
	}{
		{"unknown action", `step "a" {
    action = r.dont
  }`, "Unknown action", 6},
		{"unknown argument", `step "a" {
    action = r.do
    name = "a"
    nmae = "b"
  }`, "Unsupported argument", 8},
		{"missing argument", `step "a" {
    action = r.do
  }`, "Missing required argument", 5},
		{"wrong type", `step "a" {
    action = r.do
    name = "a"
    fail = "perhaps"
  }`, "Invalid value for argument", 8},
		{"plugin validation", `step "a" {
    action = r.do
    name = "a"
    size = -3
  }`, "Invalid size: cannot be negative", 8},
		{"unknown output", `step "a" {
    action = r.do
    name = "a"
  }
  step "b" {
    action = r.do
    name = step.a.nam
  }`, "Reference to unknown output", 11},
		{"cycle", `step "a" {
    action = r.do
    name = step.b.name
  }
  step "b" {
    action = r.do
    name = step.a.name
  }`, "Dependency cycle between steps", 5},
		{"if not bool", `step "a" {
    action = r.do
    name = "a"
    if = "yes"
  }`, "Invalid if", 8},
		{"precondition", `precondition {
    condition     = var.nothing != ""
    error_message = "give the thing a name"
  }
  step "a" {
    action = r.do
    name = "a"
  }`, "Precondition failed", 6},
		{"bad lock", `lock = 42 == 42
  step "a" {
    action = r.do
    name = "a"
  }`, "Invalid lock", 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, rec := setup(t, header+"\ntask \"t\" {\n  "+c.body+"\n}\n")
			_, diags := prepare(t, e, "t", nil)
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			d := diags[0]
			if d.Summary != c.summary {
				t.Fatalf("summary = %q (%s), want %q", d.Summary, d.Detail, c.summary)
			}
			if d.Subject == nil || d.Subject.Start.Line != c.line {
				t.Fatalf("subject = %v, want line %d", d.Subject, c.line)
			}
			if got := rec.lines(); len(got) != 0 {
				t.Fatalf("something ran: %v", got)
			}
		})
	}
}
