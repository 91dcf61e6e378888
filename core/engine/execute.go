package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/vmflow/vmflow/core/claims"
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
}

// LockError is returned when another run holds a lock the task needs.
type LockError struct{ *lock.HeldError }

// Execute runs a plan for real: it takes the task's locks, opens the
// journal, runs, and releases everything.
func (e *Engine) Execute(ctx context.Context, plan *Plan, opts ExecOptions) (*Result, error) {
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
	sum, err := FileSum(plan.Task.File.Path)
	if err != nil {
		return nil, err
	}
	vars := map[string]journal.Value{}
	if vv := plan.Task.File.VarValues; vv.Type().IsObjectType() {
		for k, v := range vv.AsValueMap() {
			vars[k] = journal.Value{Value: v}
		}
	}
	var jr *journal.Run
	if opts.Resumes != "" {
		jr, err = journal.New(e.StateDir).Reopen(opts.Resumes)
		opts.RunID = opts.Resumes
	} else {
		jr, err = journal.New(e.StateDir).Create(journal.Header{
			ID: id, Task: plan.Task.Name, File: plan.Task.File.Path, FileSum: sum,
			Args: opts.Args, Params: journal.Value{Value: plan.Params}, Vars: vars,
			PID: os.Getpid(), Start: time.Now(),
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
	res := e.Run(ctx, plan, opts.RunOptions)
	// The plugins' claims of this run (core/claims) let a step run again
	// after an interruption; once the run cannot be resumed any more (it
	// succeeded, or its completed steps were undone) they go.
	if res.Status == journal.Succeeded || !opts.KeepOnFailure {
		if err := claims.RemoveRun(e.StateDir, opts.RunID); err != nil {
			e.Logger.Warn("cannot remove the run's claims", "run", opts.RunID, "error", err)
		}
	}
	return res, nil
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
