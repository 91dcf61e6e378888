package engine

import (
	"fmt"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/core/lang"
)

// ResumeRequest is what vmflow resume was asked: which run, whether to
// roll it back instead, whether a changed task file is fine, and the
// --var flags given with it.
type ResumeRequest struct {
	// Run names the run: an id, a unique prefix, or "last".
	Run   string
	Undo  bool
	Force bool
	// Vars are name=value strings.
	Vars []string
}

// Resumption is a recorded run that can go on: resumed after its last
// completed step, or (Undo) rolled back.
type Resumption struct {
	ID    string
	State *journal.State
	Undo  bool
	force bool
	// Overrides are the variables the run started with; the task file is
	// loaded again with them.
	Overrides map[string]cty.Value
	// Done are the steps a resume skips; Rollback is what a rollback
	// undoes (only with Undo).
	Done     map[string]Completed
	Rollback *Rollback
}

// NotResumableError says why a run cannot be resumed or rolled back as
// asked; vmflow reports it as a usage error.
type NotResumableError struct{ Err error }

func (e *NotResumableError) Error() string { return e.Err.Error() }
func (e *NotResumableError) Unwrap() error { return e.Err }

func notResumable(format string, args ...any) error {
	return &NotResumableError{Err: fmt.Errorf(format, args...)}
}

// PlanResume decides whether the run req names can be resumed (or rolled
// back), before its task file is loaded again. It returns a
// *NotResumableError saying why not, a *RunningError when the run is
// still running, or the store's error when the journal cannot be read.
func PlanResume(store *journal.Store, req ResumeRequest) (*Resumption, error) {
	id, err := store.Resolve(req.Run)
	if err != nil {
		return nil, &NotResumableError{Err: err}
	}
	st, err := store.Load(id)
	if err != nil {
		return nil, err
	}
	if st.Sealed != nil {
		return nil, notResumable("run %s holds sensitive values sealed with a key that cannot open them here: %v. Resume it where it ran, or with %s naming the key file it was sealed with. Nothing was run", id, st.Sealed, journal.KeyEnv)
	}
	// A resumed run keeps the values it started with: its completed steps
	// used them, and its undos must see them. A --var that says the same
	// (a habit, an alias) is fine; another value is refused, not ignored.
	var was []string
	for _, kv := range req.Vars {
		name, raw, _ := strings.Cut(kv, "=")
		v, ok := st.Header.Vars[name]
		if ok {
			if pv, err := config.ParseValue(raw, v.Value.Type()); err == nil && pv.Equals(lang.Unmarked(v.Value)).True() {
				continue
			}
			was = append(was, fmt.Sprintf("%s=%s", name, lang.FormatValue(v.Value)))
		} else {
			was = append(was, fmt.Sprintf("no variable %s", name))
		}
	}
	if len(was) > 0 {
		return nil, notResumable("resume takes no other --var: run %s goes on with the values it started with (%s), which its completed steps used. For other values, undo it (vmflow resume %s --undo) and run the task again",
			id, strings.Join(was, ", "), id)
	}
	if err := CheckResumable(st, req.Undo); err != nil {
		if _, running := err.(*RunningError); running {
			return nil, err
		}
		return nil, &NotResumableError{Err: err}
	}
	r := &Resumption{ID: id, State: st, Undo: req.Undo, force: req.Force, Overrides: map[string]cty.Value{}}
	for k, v := range st.Header.Vars {
		r.Overrides[k] = v.Value
	}
	if req.Undo {
		r.Rollback = RollbackState(st)
	} else {
		r.Done = ResumeState(st)
	}
	return r, nil
}

// Task finishes the decision once the run's task file is loaded again:
// the files must not have changed since the run started (unless forced),
// and the task must still be there.
func (r *Resumption) Task(proj *config.Project) (*config.Task, error) {
	if err := CheckUnchanged(r.State); err != nil && !r.force {
		return nil, &NotResumableError{Err: err}
	}
	t := proj.Task(r.State.Header.Task)
	if t == nil {
		return nil, notResumable("task %s is no longer in %s", r.State.Header.Task, r.State.Header.File)
	}
	return t, nil
}
