package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/builtin"
	"github.com/vmflow/vmflow/core/claims"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/internal/fsx"
)

// What a recorded run still needs from the user (Pending).
const (
	// PendingInterrupted: vmflow was killed (or crashed) during the run.
	PendingInterrupted = "interrupted"
	// PendingUndo: some undos failed, or did not run because one failed.
	PendingUndo = "undo_failed"
	// PendingCommitted: the run failed after its commit point.
	PendingCommitted = "committed"
)

// Pending says why a recorded run must be finished (resumed) or rolled
// back before its task runs again on the same locks; "" when it need not.
func Pending(st *journal.State) string {
	switch st.Status {
	case journal.Interrupted:
		return PendingInterrupted
	case journal.Failed, journal.Cancelled:
		if len(st.UndoFailed()) > 0 {
			return PendingUndo
		}
		if st.Committed != "" {
			return PendingCommitted
		}
	}
	return ""
}

// unfinished reports whether a recorded run can still be resumed or
// rolled back, so that its claims and temporary files must stay.
func unfinished(st *journal.State) bool {
	switch st.Status {
	case journal.Running, journal.Interrupted:
		return true
	case journal.Failed, journal.Cancelled:
		// Pending, or kept on failure (--keep-on-failure) with completed
		// steps nobody undid.
		return Pending(st) != "" || len(st.Completed) > 0 && !st.Undoing()
	}
	return false
}

// finished reports whether a run that just ended can no longer be
// resumed or rolled back.
func (r *Result) finished(keepOnFailure bool) bool {
	switch {
	case r.Status == journal.Succeeded || r.Status == journal.RolledBack && len(r.UndoFailed)+len(r.UndoSkipped) == 0:
		return true
	case r.Committed != "" || len(r.UndoFailed)+len(r.UndoSkipped) > 0:
		return false
	case keepOnFailure && len(r.Completed) > 0:
		return false
	}
	return true
}

// CheckResumable decides whether a recorded run can be resumed (undo
// false) or rolled back (undo true), and says why not.
func CheckResumable(st *journal.State, undo bool) error {
	id, task, args := st.Header.ID, st.Header.Task, strings.Join(st.Header.Args, " ")
	again := strings.TrimSpace("vmflow " + task + " " + args)
	switch st.Status {
	case journal.Succeeded:
		return fmt.Errorf("run %s succeeded; there is nothing to resume", id)
	case journal.Running:
		return &RunningError{ID: id, PID: st.Header.PID}
	case journal.RolledBack:
		return fmt.Errorf("run %s was rolled back already; start the task again instead: %s", id, again)
	case journal.Superseded:
		return fmt.Errorf("run %s was superseded (%s): there is nothing left to resume or undo; start the task again instead: %s", id, st.Error, again)
	}
	if undo {
		if st.Committed != "" {
			return fmt.Errorf("run %s cannot be undone: it passed its commit point (step %s), after which the run only goes forward "+
				"(undoing would take back what that step made the truth, with what came before it already gone). `vmflow resume %s` finishes it", id, st.Committed, id)
		}
		return nil
	}
	for _, name := range st.Order {
		if s := st.Steps[name].Status; s == journal.Undone || s == journal.UndoFailed {
			if Pending(st) != "" || st.Status == journal.Interrupted {
				return fmt.Errorf("run %s was being undone (step %s was undone); `vmflow resume %s --undo` finishes undoing it", id, name, id)
			}
			return fmt.Errorf("run %s was rolled back (step %s was undone); start the task again instead: %s", id, name, again)
		}
	}
	return nil
}

// RunningError: the run is still running.
type RunningError struct {
	ID  string
	PID int
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("run %s is still running (pid %d)", e.ID, e.PID)
}

// cleanUpBeforeTheEnd removes the claims and temporary files of a
// journaled run that cannot be resumed any more (it succeeded, or its
// steps were undone): a claim lets a step run again after an
// interruption, a temporary file feeds the steps after it. It runs just
// before the journal records the run's end, so that a vmflow killed in
// between leaves a run that resumes to its end without them, rather than
// an ended run with them left over.
func (e *Engine) cleanUpBeforeTheEnd(opts RunOptions, res *Result) {
	if res.finished(opts.KeepOnFailure) {
		e.cleanUp(opts.RunID)
	}
}

// end closes a run's journal with its last record, after cleaning up
// what a finished run leaves; it returns the run's error text. When some
// records could not be written (the disk filled up) and the run is not
// finished (an undo failed, it passed its commit point, or it was kept
// on failure), the journal no longer tells what is left to do, and a
// last record would make the run look settled: it ends instead as a
// killed vmflow leaves it, with no last record and its claims and
// temporary files kept. It then reads as interrupted, holds up its task,
// and resume or resume --undo finish it from what was recorded and from
// the plugins' claims.
func (e *Engine) end(opts RunOptions, res *Result, errText string) string {
	if opts.Journal == nil {
		return errText
	}
	if n := opts.Journal.Lost(); n > 0 && !res.finished(opts.KeepOnFailure) {
		res.JournalLost = n
		return errText + fmt.Sprintf(" (%d journal record(s) could not be written: the run is left interrupted)", n)
	}
	e.cleanUpBeforeTheEnd(opts, res)
	last := journal.Record{Status: res.Status, Error: errText}
	if res.Status == journal.Succeeded && len(res.Outputs) > 0 {
		// For vmflow output RUN NAME; sensitive ones sealed.
		last.Outputs = &journal.Value{Value: cty.ObjectVal(res.Outputs)}
	}
	if err := opts.Journal.Append(last); err != nil {
		res.JournalLost = opts.Journal.Lost()
	}
	return errText
}

// cleanUp removes what a run that can no longer be resumed leaves behind:
// its plugins' claims and its temporary directory.
func (e *Engine) cleanUp(runID string) {
	if err := claims.RemoveRun(e.StateDir, runID); err != nil {
		e.Logger.Warn("cannot remove the run's claims", "run", runID, "error", err)
	}
	if err := os.RemoveAll(builtin.TempDir(e.StateDir, runID)); err != nil {
		e.Logger.Warn("cannot remove the run's temporary directory", "run", runID, "error", err)
	}
}

// sweep removes the claims and temporary directories of runs that can no
// longer be resumed: what a vmflow killed at the very end of a run, after
// its journal said so but before it cleaned up, left behind.
func (e *Engine) sweep() {
	store := journal.New(e.StateDir)
	seen := map[string]bool{}
	var ids []string
	add := func(dir string) {
		names, _ := fsx.SubDirs(dir)
		for _, id := range names {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	add(filepath.Join(e.StateDir, "tmp"))
	plugins, _ := fsx.SubDirs(claims.Root(e.StateDir))
	for _, p := range plugins {
		add(filepath.Join(claims.Root(e.StateDir), p))
	}
	for _, id := range ids {
		st, err := store.Load(id)
		if err != nil {
			continue // not a run of this state directory's journal: leave it
		}
		if !unfinished(st) {
			e.cleanUp(id)
		}
	}
}

// supersede marks the unfinished runs that held one of the plan's locks
// superseded by run id (a run of a task with supersedes = true that just
// succeeded: what they were about is gone), and cleans up after them.
func (e *Engine) supersede(plan *Plan, id string) error {
	if len(plan.Locks) == 0 {
		return nil
	}
	store := journal.New(e.StateDir)
	runs, err := store.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, st := range runs {
		if st.Header.ID == id || !unfinished(st) || st.Status == journal.Running {
			continue
		}
		if !slices.ContainsFunc(st.Header.Locks, func(k string) bool { return slices.Contains(plan.Locks, k) }) {
			continue
		}
		msg := fmt.Sprintf("by run %s of %s %s", id, plan.Task.Name, strings.Join(plan.Locks, ", "))
		if err := store.Mark(st.Header.ID, journal.Record{Status: journal.Superseded, Error: msg}); err != nil {
			errs = append(errs, fmt.Errorf("marking run %s superseded: %w", st.Header.ID, err))
			continue
		}
		e.cleanUp(st.Header.ID)
	}
	return errors.Join(errs...)
}
