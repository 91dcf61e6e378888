package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// MaxCallDepth bounds how deep task calls may nest (go-task's
// MaximumTaskCall does the same for its loops; here cycles are refused
// outright, and this limit catches a chain that is merely too long).
const MaxCallDepth = 20

// FindCalled finds the task a step of a task in file f calls: a task of
// the same file first (its local name), then a task by its qualified
// name (team.create).
func (p *Project) FindCalled(f *File, name string) *Task {
	if f.Namespace != "" {
		if t := p.Task(f.Namespace + "." + name); t != nil {
			return t
		}
	}
	return p.Task(name)
}

// resolveCalls binds every task-call step to the task it calls and
// checks the call as far as can be known before any plugin runs: the
// task exists, every argument is one of its params, every required param
// is given, and no chain of calls comes back to where it started.
func (l *loader) resolveCalls() {
	for _, t := range l.proj.Tasks {
		for _, s := range t.Steps {
			if s.Call == "" {
				continue
			}
			callee := l.proj.FindCalled(t.File, s.Call)
			if callee == nil {
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Unknown task",
					Detail: fmt.Sprintf("Step %q calls task %q, which no task file declares.%s",
						s.Name, s.Call, Suggest(s.Call, l.proj.TaskNames())),
					Subject: s.CallRange.Ptr(),
				})
				continue
			}
			s.Called = callee
			for _, a := range s.Args {
				if callee.Param(a.Name) == nil {
					var names []string
					for _, p := range callee.Params {
						names = append(names, p.Name)
					}
					l.diags = append(l.diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Unknown param",
						Detail: fmt.Sprintf("Task %s has no param %q.%s Its params: %s.",
							callee.Name, a.Name, Suggest(a.Name, names), callee.paramNames()),
						Subject: a.NameRange.Ptr(),
					})
				}
			}
			for _, p := range callee.Params {
				if p.Required() && s.Arg(p.Name) == nil {
					l.diags = append(l.diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Missing param",
						Detail:  fmt.Sprintf("Step %q calls task %s, whose param %q has no default: give it, as %s = …", s.Name, callee.Name, p.Name, p.Name),
						Subject: s.DeclRange.Ptr(),
					})
				}
			}
		}
	}
	// Cycles, and chains too deep: a walk from each task.
	reported := map[*Step]bool{}
	cycles := map[string]bool{} // each cycle once, by its tasks
	var walk func(t *Task, path []*Task)
	walk = func(t *Task, path []*Task) {
		for _, s := range t.Steps {
			c := s.Called
			if c == nil {
				continue
			}
			for i, p := range path {
				if p == c {
					chain := make([]string, 0, len(path)-i+1)
					for _, q := range path[i:] {
						chain = append(chain, q.Name)
					}
					members := slices.Clone(chain)
					slices.Sort(members)
					key := strings.Join(members, " ")
					if !reported[s] && !cycles[key] {
						reported[s], cycles[key] = true, true
						chain = append(chain, c.Name)
						l.diags = append(l.diags, &hcl.Diagnostic{
							Severity: hcl.DiagError, Summary: "Task calls form a cycle",
							Detail:  fmt.Sprintf("Step %q of task %s calls task %s, which leads back to it: %s.", s.Name, t.Name, c.Name, strings.Join(chain, " → ")),
							Subject: s.CallRange.Ptr(),
						})
					}
					return
				}
			}
			if len(path) >= MaxCallDepth {
				if !reported[s] {
					reported[s] = true
					l.diags = append(l.diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Task calls nest too deep",
						Detail:  fmt.Sprintf("Calls from task %s nest more than %d deep here.", path[0].Name, MaxCallDepth),
						Subject: s.CallRange.Ptr(),
					})
				}
				return
			}
			walk(c, append(path, c))
		}
	}
	for _, t := range l.proj.Tasks {
		walk(t, []*Task{t})
	}
}
