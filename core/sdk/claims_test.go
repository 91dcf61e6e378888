package sdk

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/protocol"
)

// A plugin whose "make" action claims a thing before making it, the way
// the guide tells authors to: a thing that exists is refused unless this
// run's step claimed it.
type thingStore struct {
	things  map[string]bool
	undone  []string
	claimed []bool
}

func claimingPlugin(st *thingStore) *Plugin {
	return &Plugin{
		Name: "claimer", Version: "1",
		Actions: []*Action{{
			Name:    "make",
			Inputs:  []Attr{String("name", "").Required(), Bool("fail", "").Default(false)},
			Outputs: []Attr{String("name", "")},
			Run: func(ctx context.Context, r *Request) error {
				name := r.String("name")
				var data struct{ Attempt int }
				claimed := r.Claimed("thing "+name, &data)
				st.claimed = append(st.claimed, claimed)
				if st.things[name] {
					if !claimed {
						return ArgError("name", "%s already exists", name)
					}
					delete(st.things, name) // our own leftover
				}
				if err := r.Claim("thing "+name, struct{ Attempt int }{data.Attempt + 1}); err != nil {
					return err
				}
				st.things[name] = true
				if r.Bool("fail") {
					return context.Canceled // stands for being killed half-way
				}
				return r.Set("name", name)
			},
			Undo: func(ctx context.Context, r *Request) error {
				name := r.OutputString("name")
				if r.Interrupted() {
					name = r.String("name")
					if !r.Claimed("thing "+name, nil) {
						return nil
					}
				}
				st.undone = append(st.undone, name)
				delete(st.things, name)
				return nil
			},
		}, {
			Name:   "plain",
			Inputs: []Attr{String("name", "")},
			Run:    func(ctx context.Context, r *Request) error { return nil },
			Undo: func(ctx context.Context, r *Request) error {
				st.undone = append(st.undone, "plain")
				return nil
			},
		}},
	}
}

func startClaimer(t *testing.T, st *thingStore, state string) protocol.Conn {
	t.Helper()
	p, err := InProcess(claimingPlugin(st))
	if err != nil {
		t.Fatal(err)
	}
	if ds, err := p.Configure(context.Background(), cty.EmptyObjectVal, protocol.Env{StateDir: state}); err != nil || ds.HasErrors() {
		t.Fatal(err, ds)
	}
	return p
}

func run(t *testing.T, p protocol.Conn, runID, step, name string, fail bool) protocol.Diagnostics {
	t.Helper()
	_, ds, err := p.Run(context.Background(), protocol.RunRequest{
		Action: "make", RunID: runID, Step: step,
		Inputs: cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name), "fail": cty.BoolVal(fail)}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestClaimsLetTheSameRunAndStepRetry(t *testing.T) {
	st := &thingStore{things: map[string]bool{}}
	p := startClaimer(t, st, t.TempDir())

	// The first attempt makes the thing and is "killed".
	if ds := run(t, p, "run-1", "var", "demo", true); !ds.HasErrors() {
		t.Fatal("the first attempt should fail")
	}
	// Another run, or another step of this run, is refused: not theirs.
	for _, c := range []struct{ run, step string }{{"run-2", "var"}, {"run-1", "other"}} {
		ds := run(t, p, c.run, c.step, "demo", false)
		if !ds.HasErrors() || !strings.Contains(ds.Err().Error(), "demo already exists") {
			t.Fatalf("%s/%s: %v", c.run, c.step, ds.Err())
		}
	}
	// The same run and step again: its own leftover, made again.
	if ds := run(t, p, "run-1", "var", "demo", false); ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	if !st.things["demo"] {
		t.Fatal("the retry did not make the thing")
	}
	want := []bool{false, false, false, true}
	for i := range want {
		if st.claimed[i] != want[i] {
			t.Fatalf("Claimed answers %v, want %v", st.claimed, want)
		}
	}
}

func TestClaimsNeedARun(t *testing.T) {
	// Outside a run nothing runs again: claims are not kept.
	state := t.TempDir()
	r := &Request{Env: Env{StateDir: state}, plugin: "x"}
	if err := r.Claim("k", nil); err != nil {
		t.Fatalf("Claim outside a run: %v", err)
	}
	if r.Claimed("k", nil) {
		t.Fatal("Claimed outside a run")
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Fatalf("a claim outside a run was kept: %v", ents)
	}
	r = &Request{RunID: "r", Step: "s", plugin: "x"}
	if err := r.Claim("k", nil); err == nil || !strings.Contains(err.Error(), "no state directory") {
		t.Fatalf("Claim without a state dir: %v", err)
	}
}

func TestUndoOfAnInterruptedStepGoesOnlyToActionsThatClaimed(t *testing.T) {
	st := &thingStore{things: map[string]bool{}}
	p := startClaimer(t, st, t.TempDir())
	if ds := run(t, p, "run-1", "var", "demo", true); !ds.HasErrors() {
		t.Fatal("the first attempt should fail")
	}
	undo := func(action, step string) {
		t.Helper()
		ds, err := p.Undo(context.Background(), protocol.UndoRequest{
			Action: action, RunID: "run-1", Step: step,
			Inputs:  cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("demo"), "fail": cty.False}),
			Outputs: cty.NullVal(cty.Object(map[string]cty.Type{"name": cty.String})),
		}, nil)
		if err != nil || ds.HasErrors() {
			t.Fatal(err, ds)
		}
	}
	// plain claimed nothing: its undo, which knows nothing of claims, is
	// not called for a Run that never completed.
	_, _, _ = p.Run(context.Background(), protocol.RunRequest{Action: "plain", RunID: "run-1", Step: "p",
		Inputs: cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("x")})}, nil)
	pIn := cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("x")})
	if ds, err := p.Undo(context.Background(), protocol.UndoRequest{Action: "plain", RunID: "run-1", Step: "p", Inputs: pIn, Outputs: cty.NullVal(cty.EmptyObject)}, nil); err != nil || ds.HasErrors() {
		t.Fatal(err, ds)
	}
	if len(st.undone) != 0 {
		t.Fatalf("an undo without claims ran: %v", st.undone)
	}
	// A completed Run's undo is called as always (outputs are there).
	if ds, err := p.Undo(context.Background(), protocol.UndoRequest{Action: "plain", RunID: "run-1", Step: "p", Inputs: pIn, Outputs: cty.EmptyObjectVal}, nil); err != nil || ds.HasErrors() {
		t.Fatal(err, ds)
	}
	// make claimed: its undo runs, knows the Run was interrupted, and
	// removes the leftover.
	undo("make", "var")
	if want := []string{"plain", "demo"}; strings.Join(st.undone, ",") != strings.Join(want, ",") || st.things["demo"] {
		t.Fatalf("undone %v, things %v", st.undone, st.things)
	}
}
