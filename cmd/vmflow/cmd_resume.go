package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/engine"
)

func (a *app) cmdResume(c *cli.Context) error {
	// The flags may also follow the run: vmflow resume last --undo.
	undo, force := c.Bool("undo"), c.Bool("force")
	var runArg []string
	for _, arg := range c.Args().Slice() {
		switch arg {
		case "--undo", "-undo":
			undo = true
		case "--force", "-force":
			force = true
		default:
			runArg = append(runArg, arg)
		}
	}
	if len(runArg) != 1 {
		return usageErr("name the run to resume: vmflow resume RUN [--undo] (see vmflow runs; `last` is the newest)")
	}
	store, err := a.journals(c)
	if err != nil {
		return err
	}
	rs, err := engine.PlanResume(store, engine.ResumeRequest{Run: runArg[0], Undo: undo, Force: force, Vars: c.StringSlice("var")})
	if err != nil {
		return resumeErr(err)
	}
	st := rs.State
	proj, diags := config.Load(st.Header.File, config.Options{Overrides: rs.Overrides, Environ: a.environ})
	a.proj, a.projErr, a.projFor = proj, diags, st.Header.File
	if diags.HasErrors() {
		return a.printDiags(diags)
	}
	t, err := rs.Task(proj)
	if err != nil {
		return resumeErr(err)
	}
	o := runOpts{
		json: c.Bool("json"), verbose: c.Bool("verbose"), keepOnFailure: c.Bool("keep-on-failure"),
		parallelism: c.Int("parallelism"), args: st.Header.Args,
	}
	if rs.Undo {
		rb := rs.Rollback
		fmt.Fprintf(a.stderr, "Undoing run %s (task %s): %d completed step(s), %d interrupted.\n", rs.ID, t.Name, len(rb.Done), len(rb.Interrupted))
		return a.execute(c, proj, t, st.Header.Params.Value, o, false, &resumeInfo{id: rs.ID, rollback: rb})
	}
	fmt.Fprintf(a.stderr, "Resuming run %s (task %s): %d of %d step(s) already done.\n", rs.ID, t.Name, len(rs.Done), t.StepCount())
	return a.execute(c, proj, t, st.Header.Params.Value, o, false, &resumeInfo{id: rs.ID, done: rs.Done})
}

// resumeErr gives the engine's refusal to resume a run its exit code: a
// run still running is locked, any other reason a usage error.
func resumeErr(err error) error {
	var re *engine.RunningError
	if errors.As(err, &re) {
		return &exitError{code: exitLocked, err: err}
	}
	var nr *engine.NotResumableError
	if errors.As(err, &nr) {
		return usageErr("%v", err)
	}
	return err
}
