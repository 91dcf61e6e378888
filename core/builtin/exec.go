package builtin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmflow/vmflow/core/sdk"
)

// MaxCapture bounds how much of stdout and of stderr becomes an output;
// the rest is still streamed to the log.
const MaxCapture = 1 << 20

// execAction runs a local command. env is the environment commands start
// with (the process environment and the task file's .env).
func execAction(env map[string]string) *sdk.Action {
	cmdInputs := []sdk.Attr{
		sdk.StringList("argv", "The command and its arguments. With shell = true, argv[0] is a shell script and the rest are its $1, $2, …").Required(),
		sdk.Bool("shell", "Run argv[0] with /bin/sh -c. Off by default: argv runs as it is, no quoting pitfalls.").Default(false),
		sdk.String("dir", "Working directory, relative to the task file. Default: the task file's directory."),
		sdk.StringMap("env", "Extra environment variables."),
		sdk.String("stdin", "Text fed to the command's standard input."),
		sdk.Bool("allow_failure", "Do not fail the step on a non-zero exit code; read it from exit_code.").Default(false),
		sdk.StringList("undo", "A command (same shell, dir and env) that reverses this one, run when a later step fails."),
	}
	run := func(ctx context.Context, r *sdk.Request) error {
		res, err := runCommand(ctx, r, r.Strings("argv"), env)
		if err != nil {
			return err
		}
		if err := r.Set("stdout", res.stdout); err != nil {
			return err
		}
		if err := r.Set("stderr", res.stderr); err != nil {
			return err
		}
		if err := r.Set("exit_code", res.code); err != nil {
			return err
		}
		if res.code != 0 && !r.Bool("allow_failure") {
			msg := fmt.Sprintf("%s exited with status %d", r.Strings("argv")[0], res.code)
			if tail := lastLines(res.stderr, 5); tail != "" {
				msg += ":\n" + tail
			}
			return errors.New(msg)
		}
		return nil
	}
	return &sdk.Action{
		Name:        "exec",
		Description: "Runs a local command. Its stdout, stderr and exit code are outputs; a non-zero exit fails the step unless allow_failure is set.",
		Inputs:      cmdInputs,
		Outputs: []sdk.Attr{
			sdk.String("stdout", "Standard output (at most 1 MiB)."),
			sdk.String("stderr", "Standard error (at most 1 MiB)."),
			sdk.Number("exit_code", "The exit status."),
		},
		Validate: func(ctx context.Context, r *sdk.Request) error {
			return checkArgv(r, env, r.Known("shell") && !r.Bool("shell"))
		},
		Run: run,
		Undo: func(ctx context.Context, r *sdk.Request) error {
			undo := r.Strings("undo")
			if len(undo) == 0 {
				return nil
			}
			res, err := runCommand(ctx, r, undo, env)
			if err != nil {
				return err
			}
			if res.code != 0 {
				return fmt.Errorf("undo command %s exited with status %d: %s", undo[0], res.code, lastLines(res.stderr, 5))
			}
			return nil
		},
	}
}

// command prepares argv as exec and terminal run it: found on the PATH
// of base plus the step's env, in the step's dir (relative to the task
// file), with that environment.
func command(ctx context.Context, r *sdk.Request, argv []string, base map[string]string) (*exec.Cmd, error) {
	env := map[string]string{}
	for k, v := range base {
		env[k] = v
	}
	for k, v := range r.StringMap("env") {
		env[k] = v
	}
	path := argv[0]
	if !strings.ContainsRune(path, '/') {
		p, err := lookPath(path, env)
		if err != nil {
			return nil, sdk.ArgError("argv", "command %q not found in PATH", path)
		}
		path = p
	}
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Dir = r.Env.WorkDir
	if d := r.String("dir"); d != "" {
		if !filepath.IsAbs(d) {
			d = filepath.Join(r.Env.WorkDir, d)
		}
		cmd.Dir = d
	}
	cmd.Env = envList(env)
	return cmd, nil
}

type result struct {
	stdout, stderr string
	code           int
}

func runCommand(ctx context.Context, r *sdk.Request, argv []string, base map[string]string) (*result, error) {
	if len(argv) == 0 {
		return nil, sdk.ArgError("argv", "must name a command")
	}
	if r.Bool("shell") {
		argv = append([]string{"/bin/sh", "-c", argv[0], "vmflow"}, argv[1:]...)
	}
	cmd, err := command(ctx, r, argv, base)
	if err != nil {
		return nil, err
	}
	if r.IsSet("stdin") {
		cmd.Stdin = strings.NewReader(r.String("stdin"))
	}
	// On cancel, ask nicely first.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	// If vmflow dies (even by SIGKILL), the command dies with it, so a
	// resumed run never races a leftover. The death signal follows the
	// thread that started the command, so hold this goroutine on its
	// thread until the command has been waited for.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	var wg sync.WaitGroup
	var out, errb capture
	wg.Add(2)
	go func() { defer wg.Done(); stream(r, stdoutPipe, &out, "stdout") }()
	go func() { defer wg.Done(); stream(r, stderrPipe, &errb, "stderr") }()
	wg.Wait()
	err = cmd.Wait()
	res := &result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.code = 128 + int(ws.Signal())
		}
	default:
		return nil, err
	}
	return res, nil
}

// stream copies a pipe into the capture and logs each line.
func stream(r *sdk.Request, rd io.Reader, c *capture, name string) {
	br := bufio.NewReader(rd)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			c.write(line)
			r.Logger().Info(strings.TrimRight(line, "\n"), "stream", name)
		}
		if err != nil {
			return
		}
	}
}

type capture struct {
	b         strings.Builder
	truncated bool
}

func (c *capture) write(s string) {
	if c.b.Len()+len(s) > MaxCapture {
		c.truncated = true
		return
	}
	c.b.WriteString(s)
}

func (c *capture) String() string {
	if c.truncated {
		return c.b.String() + "\n… (truncated at 1 MiB; the whole output is in the run's log)\n"
	}
	return c.b.String()
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// lookPath finds a command in the PATH of env.
func lookPath(name string, env map[string]string) (string, error) {
	for _, dir := range filepath.SplitList(env["PATH"]) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// checkArgv validates the argv input of exec and terminal, once it is
// known: it must name a command; with onPath, a command given without a
// directory must be found in the PATH of env.
func checkArgv(r *sdk.Request, env map[string]string, onPath bool) error {
	if !r.Known("argv") {
		return nil
	}
	argv := r.Strings("argv")
	if len(argv) == 0 || argv[0] == "" {
		return sdk.ArgError("argv", "must name a command")
	}
	if onPath && !strings.ContainsRune(argv[0], '/') {
		if _, err := lookPath(argv[0], env); err != nil {
			return sdk.ArgError("argv", "command %q not found in PATH", argv[0])
		}
	}
	return nil
}
