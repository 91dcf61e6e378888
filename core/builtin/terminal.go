package builtin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/vmflow/vmflow/core/sdk"
)

// terminalAction runs a local command on the user's terminal: ssh into a
// VM, an editor. vmflow runs it alone and stops drawing meanwhile.
func terminalAction(env map[string]string) *sdk.Action {
	return &sdk.Action{
		Name:        "terminal",
		Description: "Runs a local command attached to your terminal (ssh, an editor) and waits for it. Its exit code is an output; a non-zero exit fails the step unless allow_failure is set.",
		Inputs: []sdk.Attr{
			sdk.StringList("argv", "The command and its arguments.").Required(),
			sdk.String("dir", "Working directory, relative to the task file. Default: the task file's directory."),
			sdk.StringMap("env", "Extra environment variables."),
			sdk.Bool("allow_failure", "Do not fail the step on a non-zero exit code.").Default(false),
		},
		Outputs: []sdk.Attr{
			sdk.Number("exit_code", "The exit status."),
		},
		Interactive: true,
		Validate: func(ctx context.Context, r *sdk.Request) error {
			return checkArgv(r, env, true)
		},
		Run: func(ctx context.Context, r *sdk.Request) error {
			argv := r.Strings("argv")
			cmd, err := command(ctx, r, argv, env)
			if err != nil {
				return err
			}
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			err = cmd.Run()
			code := 0
			var ee *exec.ExitError
			switch {
			case err == nil:
			case errors.As(err, &ee):
				code = ee.ExitCode()
			default:
				return fmt.Errorf("running %s: %w", argv[0], err)
			}
			if err := r.Set("exit_code", code); err != nil {
				return err
			}
			if code != 0 && !r.Bool("allow_failure") {
				return fmt.Errorf("%s exited with status %d", argv[0], code)
			}
			return nil
		},
	}
}
