package conformance

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/vmflow/vmflow/core/host"
	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// TestSchemasAreTheContract: every hypervisor plugin, started as vmflow
// starts it, declares exactly the contract of plugins/hypervisor, and so
// the same schema as every other: the same actions in the same order,
// with the same inputs and outputs (names, types, required, defaults,
// sensitive), and the same undo and interactive flags. Only the
// descriptions may differ. A task file written against one backend then
// runs on another; a change to one plugin's contract fails here.
func TestSchemasAreTheContract(t *testing.T) {
	contract, err := sdk.InProcess(&sdk.Plugin{Name: "hypervisor", Version: "contract", Actions: hypervisor.Declared()})
	if err != nil {
		t.Fatal(err)
	}
	want, err := contract.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantLines := schemaLines(t, want)

	plugins := []string{}
	for _, tg := range targets {
		if !slices.Contains(plugins, tg.plugin) {
			plugins = append(plugins, tg.plugin)
		}
	}
	if len(plugins) < 2 {
		t.Fatalf("the targets name %d hypervisor plugin(s); the contract is for several", len(plugins))
	}
	got := map[string][]string{}
	for _, name := range plugins {
		p, err := host.Start(context.Background(), filepath.Join(binDir, "vmflow-plugin-"+name), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Kill)
		got[name] = schemaLines(t, p.Schema)
		diffLines(t, name, "the hypervisor contract", got[name], wantLines)
	}
	for i, a := range plugins {
		for _, b := range plugins[i+1:] {
			diffLines(t, a, b, got[a], got[b])
		}
	}
}

// schemaLines writes a schema's actions down without their descriptions,
// one line per action and per attribute.
func schemaLines(t *testing.T, s *protocol.Schema) []string {
	t.Helper()
	var out []string
	for _, a := range s.Actions {
		out = append(out, fmt.Sprintf("action %s has_undo=%v interactive=%v", a.Name, a.HasUndo, a.Interactive))
		for _, dir := range []struct {
			kind  string
			attrs protocol.Attributes
		}{{"input", a.Inputs}, {"output", a.Outputs}} {
			for _, at := range dir.attrs {
				ty, err := ctyjson.MarshalType(at.Type)
				if err != nil {
					t.Fatalf("%s.%s: %v", a.Name, at.Name, err)
				}
				def := "none"
				if at.Default != cty.NilVal {
					def = at.Default.GoString()
				}
				out = append(out, fmt.Sprintf("%s %s %s: type=%s required=%v sensitive=%v default=%s", a.Name, dir.kind, at.Name, ty, at.Required, at.Sensitive, def))
			}
		}
	}
	return out
}

// diffLines reports where two schemas written by schemaLines differ.
func diffLines(t *testing.T, aName, bName string, a, b []string) {
	t.Helper()
	var onlyA, onlyB []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			onlyA = append(onlyA, l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			onlyB = append(onlyB, l)
		}
	}
	switch {
	case len(onlyA) > 0 || len(onlyB) > 0:
		t.Errorf("%s and %s declare different schemas (descriptions aside):\nonly in %s:\n  %s\nonly in %s:\n  %s",
			aName, bName, aName, orNothing(onlyA), bName, orNothing(onlyB))
	case !slices.Equal(a, b):
		t.Errorf("%s and %s declare the same actions and attributes in a different order", aName, bName)
	}
}

func orNothing(ls []string) string {
	if len(ls) == 0 {
		return "(nothing)"
	}
	return strings.Join(ls, "\n  ")
}
