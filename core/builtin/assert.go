package builtin

import (
	"context"
	"errors"

	"github.com/vmflow/vmflow/core/sdk"
)

// assertAction stops a run when a condition over earlier steps' outputs
// is false. A condition known before the run (it reads only params and
// variables) is checked then, so nothing runs at all.
func assertAction() *sdk.Action {
	check := func(r *sdk.Request) error {
		if !r.Known("condition") || !r.IsSet("condition") || r.Bool("condition") {
			return nil
		}
		msg := "assertion failed"
		if r.Known("message") && r.String("message") != "" {
			msg = r.String("message")
		}
		return errors.New(msg)
	}
	return &sdk.Action{
		Name:        "assert",
		Description: "Fails the run with message when condition is false (checked before the run when it depends on no step). Steps after it that depend on it never run; earlier steps are undone.",
		Inputs: []sdk.Attr{
			sdk.Bool("condition", "What must hold.").Required(),
			sdk.String("message", "The error when it does not: say what is wrong and what to do.").Required(),
		},
		Validate: func(ctx context.Context, r *sdk.Request) error {
			if err := check(r); err != nil {
				return sdk.ArgError("condition", "%v", err)
			}
			return nil
		},
		Run: func(ctx context.Context, r *sdk.Request) error { return check(r) },
	}
}
