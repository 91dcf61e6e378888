package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/engine"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/core/lang"
)

// cmdTask runs a task, or prints its plan. args are the task's name and
// its arguments; t is the task when the command is the task's own
// (vmflow TASK …), nil when the name is to be looked up (vmflow run TASK …).
func (a *app) cmdTask(c *cli.Context, t *config.Task, args []string, planOnly bool) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageErr("name a task: vmflow %s TASK [ARGS…] (vmflow list shows them)", c.Command.Name)
	}
	loaded := a.proj // where the task commands, t's among them, came from
	proj, err := a.project(c, nil)
	if err != nil {
		return err
	}
	if t == nil || proj != loaded {
		t = proj.Task(args[0])
	}
	if t == nil {
		return usageErr("no task named %q in %s.%s", args[0], displayFile(proj), config.Suggest(args[0], proj.RunnableNames()))
	}
	if t.Internal {
		return internalTaskErr(proj, t)
	}
	ta, err := parseTaskArgs(t, args[1:])
	if err != nil {
		return err
	}
	if ta.help {
		fmt.Fprint(a.stdout, taskHelp(t))
		return nil
	}
	if len(ta.vars) > 0 {
		// The variables may change the tasks: t is taken from the
		// task file loaded with them.
		if proj, err = a.project(c, ta.vars); err != nil {
			return err
		}
		t = proj.Task(args[0])
	}
	if err := a.requireVars(); err != nil {
		return err
	}
	raw, err := t.SortArgs(ta.positional, ta.named)
	if err != nil {
		return usageErr("%v", err)
	}
	// What the command line gave is read (and checked) once, before
	// anything is asked: a bad value is an error before the first question.
	given, err := t.ParseArgs(raw)
	if err != nil {
		return usageErr("%v", err)
	}
	asJSON := c.Bool("json") || ta.json
	runArgs := args[1:]
	if !planOnly && !asJSON && !c.Bool("yes") && !ta.yes {
		answers, err := a.wizard(t, given)
		if err != nil {
			return err
		}
		if len(answers) > 0 {
			for _, an := range answers {
				given[an.param.Name] = an.value
				runArgs = append(runArgs, "--"+an.param.Name+"="+an.raw)
			}
			fmt.Fprintf(a.stderr, "Running: %s\n", commandLine(config.MaskVarArgs(a.args, proj.SensitiveVars()), answers))
		}
	}
	params, err := t.BindValues(given)
	if err != nil {
		return usageErr("%v", err)
	}
	opts := runOpts{
		json:          asJSON,
		verbose:       c.Bool("verbose") || ta.verbose,
		keepOnFailure: c.Bool("keep-on-failure") || ta.keepOnFailure,
		parallelism:   c.Int("parallelism"),
		args:          runArgs,
	}
	if ta.parallelism > 0 {
		opts.parallelism = ta.parallelism
	}
	return a.execute(c, proj, t, params, opts, planOnly, nil)
}

type runOpts struct {
	json, verbose, keepOnFailure bool
	parallelism                  int
	args                         []string
}

type resumeInfo struct {
	id   string
	done map[string]engine.Completed
	// rollback, for vmflow resume --undo: roll the run back instead.
	rollback *engine.Rollback
}

// execute prepares a task and either prints the plan or runs it.
func (a *app) execute(c *cli.Context, proj *config.Project, t *config.Task, params cty.Value, o runOpts, planOnly bool, resume *resumeInfo) error {
	r := a.newRenderer(o.json, o.verbose)
	defer r.Close()
	lg := a.logs(o.verbose, r.LogWriter())
	early := a.takePrestarted(o.verbose || o.json, r.LogWriter())
	if early != nil {
		lg = early.lg
	}
	eng, mgr, err := a.newEngine(c, proj, lg, early)
	if err != nil {
		if early != nil {
			early.mgr.Close()
		}
		return err
	}
	defer mgr.Close()

	runCtx, undoCtx, stop := signalContexts(r.Signal)
	defer stop()

	plan, diags := eng.Prepare(runCtx, t, params)
	if diags.HasErrors() {
		r.Close()
		return a.printDiags(diags)
	}
	lg.redact(plan.Redactor())
	a.rememberPlugins(plan)
	_ = a.printDiags(diags) // warnings
	if planOnly {
		r.Close()
		ds := eng.Preview(runCtx, plan)
		if ds.HasErrors() {
			return a.printDiags(ds)
		}
		_ = a.printDiags(ds)
		if o.json {
			a.emitPlan(plan)
			return nil
		}
		a.printPlan(plan)
		return nil
	}
	ropts := engine.ExecOptions{
		RunOptions: engine.RunOptions{
			Parallelism: o.parallelism, KeepOnFailure: o.keepOnFailure,
			Events: r, UndoContext: undoCtx,
		},
		Args:    o.args,
		OnStart: func(id, dir string) { lg.toFile(filepath.Join(dir, "vmflow.log")) },
	}
	if resume != nil {
		if resume.rollback != nil {
			if ropts.Rollback, err = engine.CheckRollback(plan, resume.rollback); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
		} else if ropts.Done, err = engine.CheckResume(plan, resume.done); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		ropts.Resumes, ropts.RunID = resume.id, resume.id
	}
	res, err := eng.Execute(runCtx, plan, ropts)
	var le *engine.LockError
	if errors.As(err, &le) {
		r.Close()
		return &exitError{code: exitLocked, err: fmt.Errorf("task %s cannot start: %v.\nWait for that run to finish, or check it with `vmflow runs`", t.Name, le.HeldError)}
	}
	var ie *engine.InterruptedError
	if errors.As(err, &ie) {
		r.Close()
		return &exitError{code: exitUsage, err: fmt.Errorf("task %s cannot start: %v", t.Name, ie)}
	}
	if err != nil {
		return err
	}
	r.Close()
	if len(res.Diags) > 0 {
		_ = a.printDiags(res.Diags)
	}
	if res.JournalLost > 0 {
		next := fmt.Sprintf("`vmflow resume %s --undo` undoes what it did", res.RunID)
		if res.Committed != "" {
			next = fmt.Sprintf("`vmflow resume %s` finishes it", res.RunID)
		}
		return &exitError{code: exitFailed, err: fmt.Errorf("task %s failed (run %s) and could not write %d record(s) of its journal (is the disk full?), so the run is left interrupted, as a killed vmflow leaves it; once the cause is fixed, %s", t.Name, res.RunID, res.JournalLost, next), printed: o.json}
	}
	switch res.Status {
	case journal.Succeeded:
		if !o.json {
			a.printOutputs(t, res.Outputs)
		}
		return nil
	case journal.Cancelled:
		if res.Committed != "" {
			return &exitError{code: exitInterrupted, err: fmt.Errorf("run %s interrupted after its commit point (step %s), so nothing was undone; `vmflow resume %s` finishes it", res.RunID, res.Committed, res.RunID), printed: o.json}
		}
		return &exitError{code: exitInterrupted, err: fmt.Errorf("run %s interrupted", res.RunID), printed: o.json}
	case journal.RolledBack:
		if !o.json {
			fmt.Fprintf(a.stderr, "Run %s rolled back: %d step(s) undone; `vmflow %s` starts the task again.\n", res.RunID, len(res.Undone), strings.Join(append([]string{t.Name}, o.args...), " "))
		}
		return nil
	}
	var how string
	switch {
	case t.ReadOnly:
		how = "the task changes nothing, and its runs are not kept; fix the cause and run it again"
	case res.Committed != "":
		how = fmt.Sprintf("it had passed its commit point (step %s), so nothing was undone; fix the cause, then `vmflow resume %s` finishes it", res.Committed, res.RunID)
	case len(res.UndoFailed) > 0:
		how = fmt.Sprintf("some undos failed (see above)%s; once their cause is fixed, `vmflow resume %s --undo` tries them again", skippedNote(res), res.RunID)
	case len(res.Undone) > 0:
		how = "completed steps were undone; fix the cause and run the task again"
	case len(res.Completed) > 0:
		how = fmt.Sprintf("fix the cause, then `vmflow resume %s` continues after the last completed step", res.RunID)
	default:
		how = "nothing had changed; fix the cause and run the task again"
	}
	// The error itself is above (the diagnostics); what is left to say
	// is what became of the run.
	if !o.json {
		fmt.Fprintf(a.stderr, "Run %s: %s.\n", res.RunID, how)
	}
	return &exitError{code: exitFailed, err: fmt.Errorf("task %s failed (run %s): %s", t.Name, res.RunID, how), printed: true}
}

// skippedNote names the steps whose undo waits for a failed one.
func skippedNote(res *engine.Result) string {
	if len(res.UndoSkipped) == 0 {
		return ""
	}
	return fmt.Sprintf(", and %s, which they depend on, were kept", strings.Join(res.UndoSkipped, ", "))
}

func displayFile(p *config.Project) string {
	if p.Root == nil {
		return "the task file"
	}
	return p.Root.Path
}

func (a *app) printOutputs(t *config.Task, outs map[string]cty.Value) {
	if len(t.Outputs) == 0 {
		return
	}
	header := false
	for _, o := range t.Outputs {
		if ov, ok := outs[o.Name]; ok && ov.IsKnown() && ov.IsNull() {
			continue // nothing to say (a backend without a console log)
		}
		if !header {
			fmt.Fprintln(a.stdout, "Outputs:")
			header = true
		}
		v := "(sensitive)"
		if !o.Sensitive {
			v = lang.FormatValue(outs[o.Name])
		}
		fmt.Fprintf(a.stdout, "  %s = %s\n", o.Name, v)
	}
}

// internalTaskErr refuses to run an internal task by its name.
func internalTaskErr(proj *config.Project, t *config.Task) error {
	by := "steps of other tasks"
	if callers := proj.Callers(t); len(callers) > 0 {
		by = "steps of " + strings.Join(callers, ", ")
	}
	return usageErr("task %s is internal (%s:%d): it runs only when %s call it (task = %q), not on its own", t.Name, t.DeclRange.Filename, t.DeclRange.Start.Line, by, t.Name)
}
