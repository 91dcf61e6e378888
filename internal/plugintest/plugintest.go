// Package plugintest helps tests call plugin actions the way vmflow does.
package plugintest

import (
	"context"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/vmflow/vmflow/core/protocol"
)

// Inputs builds an action's input object from Go values (converted to
// each input's declared type), with the defaults filled in, as the engine
// hands it to the plugin. An unknown action or input fails the test.
// "timeout" is the step's timeout, not an input (see Timeout).
func Inputs(t testing.TB, schema *protocol.Schema, action string, args map[string]any) cty.Value {
	t.Helper()
	a, ok := schema.Action(action)
	if !ok {
		t.Fatalf("plugin %s has no action %s", schema.Name, action)
	}
	vals := map[string]cty.Value{}
	for k, v := range args {
		if k == "timeout" {
			continue
		}
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

// Timeout is the limit vmflow would put on a step of action with these
// args: args["timeout"] (seconds as a number, or a duration string) as a
// step's timeout = …, else the action's default.
func Timeout(t testing.TB, schema *protocol.Schema, action string, args map[string]any) time.Duration {
	t.Helper()
	a, ok := schema.Action(action)
	if !ok {
		t.Fatalf("plugin %s has no action %s", schema.Name, action)
	}
	switch v := args["timeout"].(type) {
	case nil:
		return a.Timeout
	case string:
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("timeout %q: %v", v, err)
		}
		return d
	case int:
		return time.Duration(v) * time.Second
	case float64:
		return time.Duration(v * float64(time.Second))
	default:
		t.Fatalf("timeout %v: give seconds or a duration string", v)
	}
	return 0
}

// Context is the context vmflow runs a step in, limited by its timeout.
func Context(limit time.Duration) (context.Context, context.CancelFunc) {
	if limit <= 0 {
		return context.WithCancel(context.Background())
	}
	return context.WithTimeout(context.Background(), limit)
}
