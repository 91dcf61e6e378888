// Package plugintest helps tests call plugin actions the way vmflow does.
package plugintest

import (
	"testing"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/vmflow/vmflow/core/protocol"
)

// Inputs builds an action's input object from Go values (converted to
// each input's declared type), with the defaults filled in, as the engine
// hands it to the plugin. An unknown action or input fails the test.
func Inputs(t testing.TB, schema *protocol.Schema, action string, args map[string]any) cty.Value {
	t.Helper()
	a, ok := schema.Action(action)
	if !ok {
		t.Fatalf("plugin %s has no action %s", schema.Name, action)
	}
	vals := map[string]cty.Value{}
	for k, v := range args {
		at, ok := a.Inputs.Get(k)
		if !ok {
			t.Fatalf("%s.%s has no input %s", schema.Name, action, k)
		}
		if cv, ok := v.(cty.Value); ok {
			vals[k] = cv
			continue
		}
		cv, err := gocty.ToCtyValue(v, at.Type)
		if err != nil {
			t.Fatalf("%s.%s: %v", action, k, err)
		}
		vals[k] = cv
	}
	in, err := a.Inputs.ApplyDefaults(cty.ObjectVal(vals))
	if err != nil {
		t.Fatal(err)
	}
	return in
}
