package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/urfave/cli/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/builtin"
	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/engine"
	"github.com/vmflow/vmflow/core/event"
	"github.com/vmflow/vmflow/core/host"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/core/lang"
	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
)

func (a *app) builtinCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:   "list",
			Usage:  "list the tasks of the task file, with their params (starts no plugin)",
			Action: a.cmdList,
		},
		{
			Name:            "run",
			Usage:           "run a task: vmflow run TASK [ARGS…] (every task is also a command of its own)",
			ArgsUsage:       "TASK [ARGS…]",
			SkipFlagParsing: true,
			Action: func(c *cli.Context) error {
				return a.cmdTask(c, c.Args().Slice(), false)
			},
		},
		{
			Name:            "plan",
			Usage:           "check a task and print its steps in order with their arguments; runs nothing",
			ArgsUsage:       "TASK [ARGS…]",
			SkipFlagParsing: true,
			Action: func(c *cli.Context) error {
				return a.cmdTask(c, c.Args().Slice(), true)
			},
		},
		{
			Name:   "vars",
			Usage:  "list the task files' variables with their values, where each comes from, and their descriptions (--json)",
			Action: a.cmdVars,
		},
		{
			Name:   "init",
			Usage:  "write a tasks.hcl that includes the default lifecycle, with examples of tasks of your own",
			Action: a.cmdInit,
		},
		{
			Name:      "lock",
			Usage:     "write .vmflow.lock.hcl: the version and sha256 of every plugin the task files use (or of those named), which tasks then must match",
			ArgsUsage: "[SOURCE…]",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "platform", Usage: "also record the hashes of binaries built for another platform: --platform linux_arm64=DIR (DIR/vmflow-plugin-SOURCE)"},
			},
			Action: a.cmdLock,
		},
		{
			Name:   "validate",
			Usage:  "check every task against its plugins' schemas; runs nothing",
			Action: a.cmdValidate,
		},
		{
			Name:      "plugins",
			Usage:     "list the plugins on the plugin path with their actions and arguments",
			ArgsUsage: "[NAME…]",
			Action:    a.cmdPlugins,
		},
		{
			Name:  "runs",
			Usage: "list recorded runs, newest first",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "limit", Value: 20, Usage: "show at most this many runs (0: all)"},
			},
			Action: a.cmdRuns,
		},
		{
			Name:      "resume",
			Usage:     "continue an interrupted or failed run after its last completed step (--undo: undo what it did instead)",
			ArgsUsage: "RUN (an id, a unique prefix, or last)",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "force", Usage: "resume even though the task file changed since the run started"},
				&cli.BoolFlag{Name: "undo", Usage: "roll the run back instead: undo the step it was interrupted in, then its completed steps, in reverse"},
			},
			Action: a.cmdResume,
		},
		{
			Name:      "output",
			Usage:     "print one output of a succeeded run, in clear even when it is sensitive",
			ArgsUsage: "RUN NAME (RUN: an id, a unique prefix, or last)",
			Action:    a.cmdOutput,
		},
		{
			Name:      "completion",
			Usage:     "print a shell completion script: vmflow completion bash|zsh|fish",
			ArgsUsage: "bash|zsh|fish",
			Action:    a.cmdCompletion,
		},
		{
			Name:            "__complete",
			Hidden:          true,
			SkipFlagParsing: true,
			Action:          a.cmdComplete,
		},
		{
			Name:  "version",
			Usage: "print vmflow's version",
			Action: func(c *cli.Context) error {
				if c.Bool("json") {
					return a.printJSON(versionJSON{version, protocol.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH})
				}
				fmt.Fprintf(a.stdout, "vmflow %s (plugin protocol %d, %s %s/%s)\n", version, protocol.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			},
		},
	}
}

func (a *app) taskCommand(t *config.Task) *cli.Command {
	return &cli.Command{
		Name:            t.Name,
		Usage:           t.Description,
		ArgsUsage:       t.Usage(),
		Category:        "tasks",
		SkipFlagParsing: true,
		// Every argument is the task's: no "help"/"h" subcommand takes a
		// VM named h (vmflow create h).
		HideHelp: true,
		// vmflow help TASK shows what TASK --help shows: its params. The
		// text goes through text/template, so it is quoted as one string.
		CustomHelpTemplate: "{{" + strconv.Quote(taskHelp(t)) + "}}",
		Action: func(c *cli.Context) error {
			return a.cmdTask(c, append([]string{t.Name}, c.Args().Slice()...), false)
		},
	}
}

func typeLabel(ty cty.Type) string { return typeexpr.TypeString(ty) }

func formatDefault(v cty.Value) string { return lang.FormatValue(v) }

// ---- list ----

func (a *app) cmdList(c *cli.Context) error {
	proj, err := a.project(c, nil)
	if err != nil {
		return err
	}
	commands := map[string]bool{}
	for _, cmd := range a.builtinCommands() {
		commands[cmd.Name] = true
	}
	tasks := summarize(proj, commands)
	if a.listCache != "" {
		writeListCache(a.listCache, proj, a.cacheKey, tasks)
	}
	if a.usingBuiltin && !c.Bool("json") {
		fmt.Fprintln(a.stderr, builtinNote)
	}
	return printList(a.stdout, tasks, c.Bool("json"))
}

// ---- run and plan ----

func (a *app) cmdTask(c *cli.Context, args []string, planOnly bool) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageErr("name a task: vmflow %s TASK [ARGS…] (vmflow list shows them)", c.Command.Name)
	}
	proj, err := a.project(c, nil)
	if err != nil {
		return err
	}
	t := proj.Task(args[0])
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
	// What the command line gave is checked before anything is asked.
	for _, p := range t.Params {
		if rs, ok := raw[p.Name]; ok {
			if _, err := t.ParseParam(p, rs); err != nil {
				return usageErr("%v", err)
			}
		}
	}
	asJSON := c.Bool("json") || ta.json
	runArgs := args[1:]
	if !planOnly && !asJSON && !c.Bool("yes") && !ta.yes {
		answers, err := a.wizard(t, raw)
		if err != nil {
			return err
		}
		if len(answers) > 0 {
			for _, an := range answers {
				raw[an.param.Name] = []string{an.raw}
				runArgs = append(runArgs, "--"+an.param.Name+"="+an.raw)
			}
			fmt.Fprintf(a.stderr, "Running: %s\n", commandLine(config.MaskVarArgs(a.args, proj.SensitiveVars()), answers))
		}
	}
	params, err := t.Bind(raw)
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
		ds := eng.Describe(runCtx, plan)
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

// emitPlan prints the plan as one plan event.
func (a *app) emitPlan(plan *engine.Plan) {
	src := func(r hcl.Range) string {
		if f := a.proj.Sources[r.Filename]; f != nil {
			return string(r.SliceBytes(f.Bytes))
		}
		return "(expression)"
	}
	out := planJSON{Time: time.Now(), Kind: event.Plan, Task: plan.Task.Name, Locks: append([]string{}, plan.Locks...), Steps: []planStepJSON{}}
	for _, ps := range plan.Steps {
		js := planStepJSON{Name: ps.Name, Plugin: ps.Plugin.Name, Source: ps.Plugin.Label(), Action: ps.Plugin.Name + "." + ps.ActionName,
			HasUndo: ps.Action.HasUndo, After: append([]string{}, ps.Deps...), TimeoutMS: ps.Timeout.Milliseconds(), Commit: ps.Commit,
			Args: []planArgJSON{}, Would: append([]string{}, ps.Would...)}
		if ps.If != nil {
			js.If = &planIfJSON{Expr: src(ps.If.Range())}
			if ps.IfKnown || !ps.Skip {
				runs := !ps.Skip
				js.If.Runs = &runs
			}
		}
		for _, arg := range ps.Args {
			attr, _ := ps.Action.Inputs.Get(arg.Name)
			v := ps.Inputs.GetAttr(arg.Name)
			ja := planArgJSON{Name: arg.Name}
			switch {
			case attr.Sensitive:
				ja.Value, ja.Sensitive = "(sensitive)", true
			case !v.IsWhollyKnown():
				ja.Unknown = src(arg.Expr.Range())
			default:
				ja.Value = lang.PlainValue(v)
			}
			js.Args = append(js.Args, ja)
		}
		out.Steps = append(out.Steps, js)
	}
	a.jsonMu.Lock()
	defer a.jsonMu.Unlock()
	_ = json.NewEncoder(a.stdout).Encode(out)
}

// printPlan shows what a run would do, in order.
func (a *app) printPlan(plan *engine.Plan) {
	w := a.stdout
	fmt.Fprintf(w, "Task %s: %d step(s)", plan.Task.Name, len(plan.Steps))
	if len(plan.Locks) > 0 {
		fmt.Fprintf(w, ", lock %s", strings.Join(plan.Locks, ", "))
	}
	fmt.Fprintln(w)
	src := func(r hcl.Range) string {
		if f := a.proj.Sources[r.Filename]; f != nil {
			return string(r.SliceBytes(f.Bytes))
		}
		return "(expression)"
	}
	for i, ps := range plan.Steps {
		undo := ""
		if ps.Action.HasUndo {
			undo = ", has undo"
		}
		fmt.Fprintf(w, "\n%d. %s  (%s.%s, plugin %s%s)\n", i+1, ps.Name, ps.Plugin.Name, ps.ActionName, ps.Plugin.Label(), undo)
		if len(ps.Deps) > 0 {
			fmt.Fprintf(w, "   after: %s\n", strings.Join(ps.Deps, ", "))
		}
		if ps.Timeout > 0 {
			from := "the action's default"
			if ps.TimeoutSet {
				from = "timeout = " + src(ps.Step.Timeout.Range())
			}
			fmt.Fprintf(w, "   timeout: %s  (%s)\n", lang.FormatDuration(ps.Timeout), from)
		}
		if ps.Commit {
			fmt.Fprintln(w, "   commit: once it completed, the run only goes forward")
		}
		if ps.If != nil {
			verdict := "runs"
			switch {
			case !ps.IfKnown:
				verdict = "decided during the run"
			case ps.Skip:
				verdict = "false: skipped"
			}
			fmt.Fprintf(w, "   if: %s  (%s)\n", src(ps.If.Range()), verdict)
		}
		for _, arg := range ps.Args {
			attr, _ := ps.Action.Inputs.Get(arg.Name)
			v := ps.Inputs.GetAttr(arg.Name)
			var shown string
			switch {
			case attr.Sensitive:
				shown = "(sensitive)"
			case !v.IsWhollyKnown():
				shown = src(arg.Expr.Range()) + "  (known during the run)"
			default:
				shown = lang.FormatValue(v)
			}
			fmt.Fprintf(w, "   %s = %s\n", arg.Name, shown)
		}
		for _, line := range ps.Would {
			fmt.Fprintf(w, "   would: %s\n", line)
		}
	}
	fmt.Fprintln(w, "\nNothing was run.")
}

// ---- validate ----

func (a *app) cmdValidate(c *cli.Context) error {
	proj, err := a.project(c, nil)
	if err != nil {
		return err
	}
	if err := a.requireVars(); err != nil {
		return err
	}
	eng, mgr, err := a.newEngine(c, proj, a.logs(c.Bool("verbose"), a.stderr), nil)
	if err != nil {
		return err
	}
	defer mgr.Close()
	var all hcl.Diagnostics
	for _, t := range proj.Tasks {
		_, diags := eng.Prepare(context.Background(), t, t.UnknownParams())
		all = append(all, diags...)
	}
	if err := a.printDiags(all); err != nil {
		return err
	}
	if c.Bool("json") {
		a.jsonMu.Lock()
		defer a.jsonMu.Unlock()
		return json.NewEncoder(a.stdout).Encode(validatedJSON{Time: time.Now(), Kind: event.Validated, File: displayFile(proj), Tasks: len(proj.Tasks)})
	}
	fmt.Fprintf(a.stdout, "%s: %d task(s) valid.\n", displayFile(proj), len(proj.Tasks))
	return nil
}

// ---- plugins ----

func (a *app) cmdPlugins(c *cli.Context) error {
	taskDir := ""
	if path, err := a.findTaskFile(c.String("file")); err == nil {
		if abs, err := absDir(path); err == nil {
			taskDir = abs
		}
	}
	finder := a.finder(taskDir)
	found := finder.All()
	trust, diags := host.NewTrust(taskDir, finder)
	if diags.HasErrors() {
		return a.printDiags(diags)
	}
	want := map[string]bool{}
	for _, n := range c.Args().Slice() {
		want[n] = true
	}
	logger := a.logs(c.Bool("verbose"), a.stderr).plugins
	var list []*described
	for _, f := range found {
		if len(want) == 0 || want[f.Name] {
			list = append(list, &described{f: f})
		}
	}
	var wg sync.WaitGroup
	for _, d := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A binary the lock refuses is never executed, not even to
			// ask what it is.
			sum, err := trust.Check(d.f.Name, d.f.Path)
			if err != nil {
				d.err, d.refused = err, true
				return
			}
			p, err := host.StartChecked(context.Background(), d.f.Path, sum, logger)
			var ce *host.ChecksumError
			if errors.As(err, &ce) {
				d.err, d.refused = trust.Mismatch(d.f.Name, d.f.Path), true
				return
			}
			if err != nil {
				d.err = err
				return
			}
			d.schema = p.Schema
			p.Kill()
		}()
	}
	wg.Wait()
	if len(want) == 0 || want["builtin"] {
		impl, _ := sdk.InProcess(builtin.New(nil))
		s, _ := impl.Describe(context.Background())
		list = append(list, &described{f: host.Found{Name: "builtin", Path: "(built into vmflow)"}, schema: s})
	}
	for n := range want {
		ok := false
		for _, d := range list {
			ok = ok || d.f.Name == n
		}
		if !ok {
			return usageErr("no plugin %q on the plugin path (vmflow plugins lists them)", n)
		}
	}
	if c.Bool("json") {
		return a.pluginsJSON(list)
	}
	failed := false
	for i, d := range list {
		if i > 0 {
			fmt.Fprintln(a.stdout)
		}
		if d.refused {
			// Not a failure of the listing, unless it was asked for.
			failed = failed || want[d.f.Name]
			fmt.Fprintf(a.stdout, "%s  %s  (%s)\n  not run: %v\n", d.f.Name, d.f.Path, d.f.Dir.Reason, d.err)
			continue
		}
		if d.err != nil {
			failed = true
			fmt.Fprintf(a.stdout, "%s  %s  (%s)\n  error: %v\n", d.f.Name, d.f.Path, d.f.Dir.Reason, d.err)
			continue
		}
		where := d.f.Path
		if d.f.Dir.Reason != "" {
			where += " (" + d.f.Dir.Reason + ")"
		}
		fmt.Fprintf(a.stdout, "%s %s  %s\n", d.f.Name, d.schema.Version, where)
		if d.schema.Description != "" {
			fmt.Fprintf(a.stdout, "  %s\n", d.schema.Description)
		}
		for _, s := range d.f.Shadows {
			fmt.Fprintf(a.stdout, "  (shadows %s)\n", s)
		}
		if len(d.schema.Config) > 0 {
			fmt.Fprintln(a.stdout, "  config:")
			a.printAttrs(d.schema.Config, "    ")
		}
		for _, act := range d.schema.Actions {
			undo := ""
			if act.HasUndo {
				undo = "  [undo]"
			}
			if act.Timeout > 0 {
				undo += "  [timeout " + lang.FormatDuration(act.Timeout) + "]"
			}
			fmt.Fprintf(a.stdout, "  %s.%s%s\n", d.f.Name, act.Name, undo)
			if act.Description != "" {
				fmt.Fprintf(a.stdout, "    %s\n", act.Description)
			}
			if len(act.Inputs) > 0 {
				fmt.Fprintln(a.stdout, "    arguments:")
				a.printAttrs(act.Inputs, "      ")
			}
			if len(act.Outputs) > 0 {
				fmt.Fprintln(a.stdout, "    outputs:")
				a.printAttrs(act.Outputs, "      ")
			}
		}
	}
	if failed {
		return &exitError{code: exitFailed, err: errors.New("some plugins failed to start"), printed: true}
	}
	return nil
}

// described is a plugin found on the path and what it said about itself.
type described struct {
	f      host.Found
	schema *protocol.Schema
	err    error
	// refused: the lock file (or its absence) does not let it run.
	refused bool
}

func (a *app) printAttrs(attrs protocol.Attributes, indent string) {
	tw := tabwriter.NewWriter(a.stdout, 0, 2, 2, ' ', 0)
	for _, at := range attrs {
		flags := ""
		switch {
		case at.Required:
			flags = "required"
		case at.Default != cty.NilVal:
			flags = "default " + lang.FormatValue(at.Default)
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\n", indent, at.Name, typeLabel(at.Type), flags, at.Description)
	}
	tw.Flush()
}

type jsonAttr struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Required    bool   `json:"required,omitempty"`
	Default     any    `json:"default,omitempty"`
	Description string `json:"description,omitempty"`
}

type jsonAction struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	HasUndo     bool       `json:"has_undo"`
	TimeoutSecs float64    `json:"timeout_seconds,omitempty"`
	Inputs      []jsonAttr `json:"inputs"`
	Outputs     []jsonAttr `json:"outputs"`
}

type jsonPlugin struct {
	Name    string       `json:"name"`
	Path    string       `json:"path"`
	Version string       `json:"version,omitempty"`
	Error   string       `json:"error,omitempty"`
	Actions []jsonAction `json:"actions,omitempty"`
}

func attrsJSON(as protocol.Attributes) []jsonAttr {
	out := []jsonAttr{}
	for _, at := range as {
		j := jsonAttr{Name: at.Name, Type: typeLabel(at.Type), Required: at.Required, Description: at.Description}
		if at.Default != cty.NilVal {
			j.Default = lang.PlainValue(at.Default)
		}
		out = append(out, j)
	}
	return out
}

func (a *app) pluginsJSON(list []*described) error {
	out := []jsonPlugin{}
	for _, d := range list {
		jp := jsonPlugin{Name: d.f.Name, Path: d.f.Path}
		if d.err != nil {
			jp.Error = d.err.Error()
		} else {
			jp.Version = d.schema.Version
			for _, act := range d.schema.Actions {
				jp.Actions = append(jp.Actions, jsonAction{act.Name, act.Description, act.HasUndo, act.Timeout.Seconds(), attrsJSON(act.Inputs), attrsJSON(act.Outputs)})
			}
		}
		out = append(out, jp)
	}
	return a.printJSON(out)
}

// ---- runs and resume ----

func (a *app) cmdRuns(c *cli.Context) error {
	sd, err := a.stateDir(c)
	if err != nil {
		return err
	}
	runs, err := journal.New(sd).List()
	if err != nil {
		return err
	}
	if n := c.Int("limit"); n > 0 && len(runs) > n {
		runs = runs[:n]
	}
	if c.Bool("json") {
		type jrun struct {
			ID     string    `json:"id"`
			Task   string    `json:"task"`
			Status string    `json:"status"`
			Start  time.Time `json:"start"`
			End    time.Time `json:"end,omitzero"`
			Args   []string  `json:"args"`
			Error  string    `json:"error,omitempty"`
			// Plugins: local name → source and version.
			Plugins map[string]string `json:"plugins,omitempty"`
			// Hosts: local name → the host its plugin block names.
			Hosts map[string]string `json:"hosts,omitempty"`
		}
		out := []jrun{}
		for _, r := range runs {
			out = append(out, jrun{r.Header.ID, r.Header.Task, r.Status, r.Header.Start, r.End, r.Header.Args, r.Error, r.Header.Plugins, r.Header.Hosts})
		}
		return a.printJSON(out)
	}
	if len(runs) == 0 {
		fmt.Fprintf(a.stdout, "No runs recorded in %s.\n", sd)
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tTASK\tSTATUS\tSTARTED\tTOOK\tON\tARGS")
	for _, r := range runs {
		took := "-"
		if !r.End.IsZero() {
			took = r.End.Sub(r.Header.Start).Round(time.Millisecond).String()
		}
		on := pluginList(r.Header.Plugins, r.Header.Hosts, false)
		if on == "" {
			on = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Header.ID, r.Header.Task, r.Status,
			r.Header.Start.Local().Format("2006-01-02 15:04:05"), took, on, strings.Join(r.Header.Args, " "))
	}
	return tw.Flush()
}

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

func absDir(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return filepath.Dir(abs), nil
}

// internalTaskErr refuses to run an internal task by its name.
func internalTaskErr(proj *config.Project, t *config.Task) error {
	by := "steps of other tasks"
	if callers := proj.Callers(t); len(callers) > 0 {
		by = "steps of " + strings.Join(callers, ", ")
	}
	return usageErr("task %s is internal (%s:%d): it runs only when %s call it (task = %q), not on its own", t.Name, t.DeclRange.Filename, t.DeclRange.Start.Line, by, t.Name)
}
