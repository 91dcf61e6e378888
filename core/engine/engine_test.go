package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/host"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/core/sdk"
)

// recorder is an in-process plugin whose actions log what ran and what
// was undone, in order.
type recorder struct {
	mu  sync.Mutex
	log []string
	// running counts concurrent runs; peak is the most seen at once.
	running, peak int
	// failing and undoFailing name the steps (by their name input) whose
	// Run, or Undo, fails for as long as they are listed.
	failing, undoFailing map[string]bool
}

// setFailing makes the Run (undo false) or Undo (undo true) of the do
// steps named name fail, or succeed again.
func (r *recorder) setFailing(name string, undo, fail bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := &r.failing
	if undo {
		m = &r.undoFailing
	}
	if *m == nil {
		*m = map[string]bool{}
	}
	(*m)[name] = fail
}

func (r *recorder) fails(name string, undo bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if undo {
		return r.undoFailing[name]
	}
	return r.failing[name]
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, s)
}

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

func (r *recorder) plugin() *sdk.Plugin {
	p := r.basePlugin()
	tty := *p.Actions[0]
	tty.Name, tty.Interactive = "tty", true
	// limited is do with a default timeout of its own.
	limited := *p.Actions[0]
	limited.Name, limited.Timeout = "limited", 300*time.Millisecond
	// final is do without an undo (a deletion, say).
	final := *p.Actions[0]
	final.Name, final.Undo = "final", nil
	p.Actions = append(p.Actions, &tty, r.claimAction(), &limited, &final)
	return p
}

// claimAction claims "thing NAME" and then fails when asked to (as a
// step interrupted half-way would leave it). Its undo logs whether it
// undoes an interrupted Run, and what its claims say.
func (r *recorder) claimAction() *sdk.Action {
	return &sdk.Action{
		Name:    "claim",
		Inputs:  []sdk.Attr{sdk.String("name", "").Required(), sdk.Bool("fail", "").Default(false)},
		Outputs: []sdk.Attr{sdk.String("name", "")},
		Run: func(ctx context.Context, q *sdk.Request) error {
			name := q.String("name")
			r.add(fmt.Sprintf("claim %s (claimed before: %v)", name, q.Claimed("thing "+name, nil)))
			if err := q.Claim("thing "+name, nil); err != nil {
				return err
			}
			if q.Bool("fail") || r.fails(name, false) {
				return errors.New("asked to fail")
			}
			return q.Set("name", name)
		},
		Undo: func(ctx context.Context, q *sdk.Request) error {
			name := q.String("name")
			r.add(fmt.Sprintf("undo claim %s (interrupted: %v, claimed: %v)", name, q.Interrupted(), q.Claimed("thing "+name, nil)))
			return nil
		},
	}
}

func (r *recorder) basePlugin() *sdk.Plugin {
	return &sdk.Plugin{
		Name: "rec", Version: "1",
		Actions: []*sdk.Action{{
			Name: "do",
			Inputs: []sdk.Attr{
				sdk.String("name", "").Required(),
				sdk.Bool("fail", "").Default(false),
				sdk.Number("wait_ms", "").Default(0),
				sdk.Number("size", ""),
			},
			Outputs: []sdk.Attr{sdk.String("name", ""), sdk.Number("order", "")},
			Validate: func(ctx context.Context, q *sdk.Request) error {
				if q.IsSet("size") && q.Known("size") && q.Int("size") < 0 {
					return sdk.ArgError("size", "cannot be negative")
				}
				return nil
			},
			Run: func(ctx context.Context, q *sdk.Request) error {
				r.mu.Lock()
				r.running++
				r.peak = max(r.peak, r.running)
				r.mu.Unlock()
				defer func() {
					r.mu.Lock()
					r.running--
					r.mu.Unlock()
				}()
				if ms := q.Int("wait_ms"); ms > 0 {
					select {
					case <-time.After(time.Duration(ms) * time.Millisecond):
					case <-ctx.Done():
						r.add("cancelled " + q.String("name"))
						return ctx.Err()
					}
				}
				if q.IsSet("size") && q.Int("size") > 1000 {
					// A refusal found only when it runs (as a disk that
					// cannot shrink): it changes nothing.
					r.add("refused " + q.String("name"))
					return sdk.ArgError("size", "is more than there is room for")
				}
				r.add("run " + q.String("name"))
				if q.Bool("fail") || r.fails(q.String("name"), false) {
					return errors.New("asked to fail")
				}
				if err := q.Set("order", len(r.lines())); err != nil {
					return err
				}
				return q.Set("name", q.String("name"))
			},
			Undo: func(ctx context.Context, q *sdk.Request) error {
				if r.fails(q.String("name"), true) {
					r.add("undo failed " + q.String("name"))
					return errors.New("undo asked to fail")
				}
				r.add("undo " + q.OutputString("name"))
				return nil
			},
		}},
	}
}

// writeTaskFile writes src to dir/tasks.hcl and returns its path.
func writeTaskFile(t *testing.T, dir, src string) string {
	t.Helper()
	path := filepath.Join(dir, "tasks.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// setup loads a task file (written to a temp dir) and returns an engine
// whose "rec" source is the recorder, in process.
func setup(t *testing.T, src string) (*Engine, *recorder) {
	t.Helper()
	dir := t.TempDir()
	path := writeTaskFile(t, dir, src)
	proj, diags := config.Load(path, config.Options{Environ: []string{"PATH=" + os.Getenv("PATH")}})
	if diags.HasErrors() {
		t.Fatalf("load: %v", diags)
	}
	rec := &recorder{}
	e := New(proj, host.NewFinder("", dir, nil), host.NewManager(nil), filepath.Join(dir, "state"), nil)
	e.InProcess = map[string]*sdk.Plugin{"rec": rec.plugin()}
	t.Cleanup(e.Plugins.Close)
	return e, rec
}

func prepare(t *testing.T, e *Engine, task string, params map[string]cty.Value) (*Plan, hcl.Diagnostics) {
	t.Helper()
	tk := e.Project.Task(task)
	if tk == nil {
		t.Fatalf("no task %s", task)
	}
	pv := cty.EmptyObjectVal
	if len(params) > 0 {
		pv = cty.ObjectVal(params)
	}
	return e.Prepare(context.Background(), tk, pv)
}

// mustPrepare is prepare that must succeed (warnings are let through).
func mustPrepare(t *testing.T, e *Engine, task string, params map[string]cty.Value) *Plan {
	t.Helper()
	plan, diags := prepare(t, e, task, params)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return plan
}

// execute is e.Execute that must return no error and end with status want.
func execute(t *testing.T, e *Engine, plan *Plan, opts ExecOptions, want string) *Result {
	t.Helper()
	res, err := e.Execute(context.Background(), plan, opts)
	if err != nil || res.Status != want {
		t.Fatalf("%v %+v", err, res)
	}
	return res
}

// run is e.Run that must end with status want.
func run(t *testing.T, e *Engine, plan *Plan, opts RunOptions, want string) *Result {
	t.Helper()
	res := e.Run(context.Background(), plan, opts)
	if res.Status != want {
		t.Fatalf("status %s, want %s: %v", res.Status, want, res.Diags)
	}
	return res
}

// stepNames lists the plan's steps in the order they are planned.
func stepNames(plan *Plan) []string {
	var names []string
	for _, s := range plan.Steps {
		names = append(names, s.Name)
	}
	return names
}

// loadRun reads back the journal of run id.
func loadRun(t *testing.T, e *Engine, id string) *journal.State {
	t.Helper()
	st, err := journal.New(e.StateDir).Load(id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

const header = `plugin "r" { source = "rec" }
variable "nothing" { default = "" }
`

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
	plan := mustPrepare(t, e, "t", nil)
	got := stepNames(plan)
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
