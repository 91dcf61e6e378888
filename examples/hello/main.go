// Command vmflow-plugin-hello is the smallest useful vmflow plugin: one
// action with a typed input, a typed output, a log line and an undo.
package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/vmflow/vmflow/core/sdk"
)

func main() {
	sdk.Serve(&sdk.Plugin{
		Name:    "hello",
		Version: "0.1.0",
		Actions: []*sdk.Action{{
			Name:        "greet",
			Description: "Builds a greeting.",
			Inputs: []sdk.Attr{
				sdk.String("name", "Who to greet.").Required(),
				sdk.Number("times", "How many times.").Default(1),
			},
			Outputs: []sdk.Attr{sdk.String("message", "The greeting.")},
			// Checked before anything runs (times may come from a step).
			Validate: func(ctx context.Context, r *sdk.Request) error {
				if r.Known("times") && r.Int("times") < 1 {
					return sdk.ArgError("times", "must be at least 1")
				}
				return nil
			},
			Run: func(ctx context.Context, r *sdk.Request) error {
				msg := strings.Repeat(fmt.Sprintf("hello, %s! ", r.String("name")), int(r.Int("times")))
				r.Log("greeting %s", r.String("name"))
				return r.Set("message", strings.TrimSpace(msg))
			},
			Undo: func(ctx context.Context, r *sdk.Request) error {
				r.Log("taking back: %s", r.OutputString("message"))
				return nil
			},
		}},
	})
}
