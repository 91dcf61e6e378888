package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/core/lock"
)

// ExecOptions are RunOptions plus what a journaled run records.
type ExecOptions struct {
	RunOptions
	// Args are the command-line arguments, for display in vmflow runs.
	Args []string
	// Resumes is the run this one continues, in the same journal.
	Resumes string
	// OnStart is called once the lock is held and the journal exists.
	OnStart func(runID, runDir string)
	// Rollback, with Resumes, rolls the run back instead of continuing
	// it (vmflow resume --undo): see RollbackState.
	Rollback *Rollback
}

// InterruptedError is returned, before anything runs, when an earlier run
// of the same task on the same locks is pending (see Pending): it was
// interrupted (vmflow was killed), some of its undos failed, or it failed
// past its commit point. Starting over could trip on what it half-made,
// or undo it under the user's feet.
type InterruptedError struct {
	Run *journal.State
}

func (e *InterruptedError) Error() string {
	h := e.Run.Header
	what := h.Task
	if len(h.Locks) > 0 {
		what += " " + strings.Join(h.Locks, ", ")
	}
	switch {
	case Pending(e.Run) == PendingUndo:
		return fmt.Sprintf("run %s of %s failed and some of its undos failed (%s); `vmflow resume %s --undo` tries them again. Nothing was run", h.ID, what, strings.Join(e.Run.UndoFailed(), ", "), h.ID)
	case Pending(e.Run) == PendingCommitted:
		return fmt.Sprintf("run %s of %s failed after its commit point (step %s), so it was not undone; `vmflow resume %s` finishes it. Nothing was run", h.ID, what, e.Run.Committed, h.ID)
	case e.Run.Undoing():
		return fmt.Sprintf("run %s of %s was interrupted (vmflow was killed) while its steps were being undone; `vmflow resume %s --undo` finishes undoing them. Then run the task again", h.ID, what, h.ID)
	case e.Run.Committed != "":
		return fmt.Sprintf("run %s of %s was interrupted (vmflow was killed) after its commit point (step %s); `vmflow resume %s` finishes it. Nothing was run", h.ID, what, e.Run.Committed, h.ID)
	}
	return fmt.Sprintf("run %s of %s was interrupted (vmflow was killed); `vmflow resume %s` finishes it, or `vmflow resume %s --undo` undoes what it did. Nothing was run", h.ID, what, h.ID, h.ID)
}

// interruptedRun finds a pending run (see Pending) of the plan's task
// that holds one of its locks; nil when there is none.
func (e *Engine) interruptedRun(plan *Plan) (*journal.State, error) {
	if len(plan.Locks) == 0 {
		return nil, nil
	}
	runs, err := journal.New(e.StateDir).List()
	if err != nil {
		return nil, err
	}
	for _, st := range runs { // newest first
		if Pending(st) == "" || st.Header.Task != plan.Task.Name {
			continue
		}
		for _, k := range st.Header.Locks {
			if slices.Contains(plan.Locks, k) {
				return st, nil
			}
		}
	}
	return nil, nil
}

// journals is the runs store, with the key that seals sensitive values.
func (e *Engine) journals() *journal.Store {
	s := journal.New(e.StateDir)
	s.Key = e.Key
	return s
}

// LockError is returned when another run holds a lock the task needs.
type LockError struct{ *lock.HeldError }

// Execute runs a plan for real: it takes the task's locks, opens the
// journal, runs, and releases everything.
func (e *Engine) Execute(ctx context.Context, plan *Plan, opts ExecOptions) (*Result, error) {
	// What is recorded and shown of the command line (vmflow runs, the
	// lock holder) has no sensitive --var value.
	if e.Project != nil {
		opts.Args = config.MaskVarArgs(opts.Args, e.Project.SensitiveVars())
	}
	id := opts.RunID
	if id == "" {
		id = journal.NewID(time.Now())
		opts.RunID = id
	}
	if len(plan.Locks) > 0 {
		locks, err := lock.Acquire(filepath.Join(e.StateDir, "locks"), plan.Locks, lock.Holder{
			Run: id, Task: plan.Task.Name, PID: os.Getpid(), Since: time.Now(),
			Command: strings.Join(append([]string{plan.Task.Name}, opts.Args...), " "),
		})
		if err != nil {
			if he, ok := err.(*lock.HeldError); ok {
				return nil, &LockError{he}
			}
			return nil, err
		}
		defer locks.Release()
	}
	if plan.Task.ReadOnly {
		// It changes nothing: nothing to journal, resume or undo, and
		// no earlier run stands in its way.
		return e.Run(ctx, plan, opts.RunOptions), nil
	}
	// What runs that ended without cleaning up left behind goes first.
	e.sweep()
	// Holding the locks, nobody can resume that run meanwhile.
	if opts.Resumes == "" {
		st, err := e.interruptedRun(plan)
		if err != nil {
			return nil, fmt.Errorf("reading the earlier runs: %w", err)
		}
		if st != nil {
			return nil, &InterruptedError{Run: st}
		}
	}
	// Resume loads the run's file again and finds the task by its name:
	// that is the root file (team.create is a task of the root's
	// project, not of team's file loaded on its own).
	root := plan.Task.File
	if e.Project != nil && e.Project.Root != nil {
		root = e.Project.Root
	}
	// The sums of what was loaded, to tell on resume whether a file
	// changed since.
	files := map[string]string{root.Path: root.Sum}
	if e.Project != nil {
		for _, f := range e.Project.Files {
			files[f.Path] = f.Sum
		}
	}
	vars := map[string]journal.Value{}
	if vv := plan.Task.File.VarValues; vv.Type().IsObjectType() {
		for k, v := range vv.AsValueMap() {
			vars[k] = journal.Value{Value: v}
		}
	}
	var jr *journal.Run
	var err error
	if opts.Resumes != "" {
		jr, err = e.journals().Reopen(opts.Resumes)
		opts.RunID = opts.Resumes
	} else {
		jr, err = e.journals().Create(journal.Header{
			ID: id, Task: plan.Task.Name, File: root.Path, FileSum: root.Sum, Files: files, Plugins: plan.Plugins(), Hosts: plan.Hosts(),
			Args: opts.Args, Params: journal.Value{Value: plan.Params}, Vars: vars,
			Locks: plan.Locks, PID: os.Getpid(), Start: time.Now(),
		})
	}
	if err != nil {
		return nil, fmt.Errorf("creating the run journal: %w", err)
	}
	defer jr.Close()
	opts.Journal = jr
	if opts.OnStart != nil {
		opts.OnStart(id, jr.Dir())
	}
	var res *Result
	if opts.Rollback != nil {
		res = e.rollback(plan, opts.RunOptions, opts.Rollback)
	} else {
		res = e.Run(ctx, plan, opts.RunOptions)
	}
	if res.Status == journal.Succeeded && plan.Task.Supersedes {
		if err := e.supersede(plan, opts.RunID); err != nil {
			e.Logger.Warn("cannot mark the runs this one supersedes", "error", err)
		}
	}
	return res, nil
}

// CheckUnchanged refuses to resume a run whose task files changed since
// it started (resuming could mix two versions of its tasks), naming the
// file: the root, a file it includes, or the lifecycle vmflow ships
// (which changes with vmflow).
func CheckUnchanged(st *journal.State) error {
	sums := st.Header.Files
	if len(sums) == 0 {
		sums = map[string]string{st.Header.File: st.Header.FileSum} // an older journal
	}
	paths := make([]string, 0, len(sums))
	for p := range sums {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		sum, err := FileSum(p)
		if err != nil {
			return fmt.Errorf("%s, a task file of run %s, cannot be read (%v); resuming could mix two versions of task %s. Use --force to resume anyway", p, st.Header.ID, err, st.Header.Task)
		}
		if sum != sums[p] {
			return fmt.Errorf("%s changed since run %s started; resuming could mix two versions of task %s. Use --force to resume anyway", p, st.Header.ID, st.Header.Task)
		}
	}
	return nil
}

// FileSum is the checksum of a task file, to tell whether it changed
// between a run and its resume.
func FileSum(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// ResumeState turns a journal into what Run needs to continue it: the
// completed steps, with their inputs and outputs.
func ResumeState(st *journal.State) map[string]Completed {
	done := map[string]Completed{}
	for name, rec := range st.Steps {
		if rec.Status != journal.Succeeded || rec.Outputs == nil {
			continue
		}
		c := Completed{Outputs: rec.Outputs.Value, Inputs: cty.NilVal}
		if rec.Inputs != nil {
			c.Inputs = rec.Inputs.Value
		}
		done[name] = c
	}
	return done
}

// CheckResume makes sure what an earlier attempt recorded still fits the
// plan: every completed step still exists and its outputs still have the
// types its action declares now.
func CheckResume(plan *Plan, done map[string]Completed) (map[string]Completed, error) {
	out := make(map[string]Completed, len(done))
	for name, c := range done {
		ps := plan.Step(name)
		if ps == nil {
			return nil, fmt.Errorf("step %q completed in the earlier attempt but is no longer in task %s", name, plan.Task.Name)
		}
		ov, err := convert.Convert(c.Outputs, ps.Action.Outputs.ObjectType())
		if err != nil {
			return nil, fmt.Errorf("step %q: the outputs recorded by the earlier attempt no longer fit %s: %v", name, actionName(ps), err)
		}
		iv := c.Inputs
		if iv != cty.NilVal {
			if iv, err = convert.Convert(iv, ps.Action.Inputs.ObjectType()); err != nil {
				iv = ps.Inputs
			}
		}
		out[name] = Completed{Inputs: iv, Outputs: ov}
	}
	return out, nil
}

// Rollback is what rolling an interrupted run back needs from its
// journal (vmflow resume --undo).
type Rollback struct {
	// Done are the completed steps, undone in reverse of Order, the order
	// they completed in.
	Done  map[string]Completed
	Order []string
	// Interrupted are the steps whose Run never completed (vmflow was
	// killed during them), with their inputs: they are undone first, with
	// no outputs, so that their plugins undo what their claims show.
	Interrupted map[string]cty.Value
}

// RollbackState reads what a rollback needs from a journal: the steps
// that completed and were not undone yet (an earlier undo that failed is
// tried again), and the steps whose Run never completed.
func RollbackState(st *journal.State) *Rollback {
	rb := &Rollback{Done: map[string]Completed{}, Interrupted: map[string]cty.Value{}}
	for _, name := range st.CompletionOrder {
		rec := st.Steps[name]
		if rec.Status != journal.Succeeded && rec.Status != journal.UndoFailed || rec.Outputs == nil {
			continue
		}
		c := Completed{Outputs: rec.Outputs.Value, Inputs: cty.NilVal}
		if rec.Inputs != nil {
			c.Inputs = rec.Inputs.Value
		}
		rb.Done[name] = c
		rb.Order = append(rb.Order, name)
	}
	for name, rec := range st.Steps {
		if rec.Inputs == nil || slices.Contains(rb.Order, name) {
			continue
		}
		switch rec.Status {
		case journal.Running, journal.Failed, journal.Cancelled, journal.UndoFailed:
			// Cut off, failed part-way, or an undo of such a step that
			// failed: its claims say what is left.
			rb.Interrupted[name] = rec.Inputs.Value
		}
	}
	return rb
}

// CheckRollback makes sure what the journal recorded still fits the plan,
// as CheckResume does for a resume.
func CheckRollback(plan *Plan, rb *Rollback) (*Rollback, error) {
	done, err := CheckResume(plan, rb.Done)
	if err != nil {
		return nil, err
	}
	out := &Rollback{Done: done, Interrupted: map[string]cty.Value{}}
	for _, name := range rb.Order {
		if _, ok := done[name]; ok {
			out.Order = append(out.Order, name)
		}
	}
	for name := range done { // completed, yet not in the order: last
		if !slices.Contains(out.Order, name) {
			out.Order = append(out.Order, name)
		}
	}
	for name, in := range rb.Interrupted {
		ps := plan.Step(name)
		if ps == nil {
			return nil, fmt.Errorf("step %q was interrupted in the earlier attempt but is no longer in task %s", name, plan.Task.Name)
		}
		if pivot(ps) {
			return nil, fmt.Errorf("the run cannot be undone: it was cut off in step %s, its commit point, which cannot be undone (what it did stays); `vmflow resume` finishes the run", name)
		}
		iv, err := convert.Convert(in, ps.Action.Inputs.ObjectType())
		if err != nil {
			return nil, fmt.Errorf("step %q: the inputs recorded by the earlier attempt no longer fit %s: %v", name, actionName(ps), err)
		}
		out.Interrupted[name] = iv
	}
	return out, nil
}
