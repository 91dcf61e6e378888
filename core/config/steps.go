package config

import (
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

func (l *loader) decodeStep(f *File, t *Task, b *hcl.Block) *Step {
	name := b.Labels[0]
	if !hclsyntax.ValidIdentifier(name) {
		l.diags = append(l.diags, badName("step", name, b.LabelRanges[0]))
		return nil
	}
	attrs, diags := b.Body.JustAttributes()
	l.diags = append(l.diags, diags...)
	s := &Step{Name: name, DeclRange: b.DefRange}
	for _, a := range attrs {
		switch a.Name {
		case ArgAction:
			tr, d := hcl.AbsTraversalForExpr(a.Expr)
			if d.HasErrors() || len(tr) != 2 || attrName(tr[1]) == "" {
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid action",
					Detail:  "action must name a plugin and one of its actions, without quotes: action = hypervisor.define, or action = builtin.exec.",
					Subject: a.Expr.Range().Ptr(),
				})
				continue
			}
			s.Plugin, s.ActionName, s.ActionRange = tr.RootName(), attrName(tr[1]), a.Expr.Range()
			if s.Plugin != BuiltinPlugin && f.Plugin(s.Plugin) == nil {
				names := f.PluginNames()
				d := &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Unknown plugin",
					Detail: fmt.Sprintf("No plugin block named %q in this file. Declare it with plugin %q { source = \"…\" }, or use builtin.exec.%s",
						s.Plugin, s.Plugin, Suggest(s.Plugin, names)),
					Subject: tr[0].SourceRange().Ptr(),
				}
				l.diags = append(l.diags, d)
				l.missing = append(l.missing, missingRef{file: f, kind: "plugin", name: s.Plugin, diag: d, typo: Suggest(s.Plugin, names) != ""})
			}
		case ArgDependsOn:
			l.eachRef(a, "step", "Invalid depends_on",
				"depends_on must be a list of steps: depends_on = [step.disks].",
				"Each element of depends_on must be a step: step.<name>.",
				func(name string, e hcl.Expression) {
					s.DependsOn = append(s.DependsOn, StepRef{Step: name, Range: e.Range()})
				})
		case ArgIf:
			s.If = a.Expr
		case ArgTimeout:
			s.Timeout = a.Expr
			l.diags = append(l.diags, l.checkRefs(a.Expr, f, t, "a step's timeout", "var", "param")...)
		case ArgCommit:
			if len(a.Expr.Variables()) == 0 {
				s.Commit = l.constBool(attrs, ArgCommit)
				continue
			}
			// A shared task can leave it to its caller whether its step
			// is a commit point: known before the run, like a lock.
			s.CommitIf = a.Expr
			l.diags = append(l.diags, l.checkRefs(a.Expr, f, t, "a step's commit", "var", "param")...)
		case ArgForEach:
			s.ForEach = a.Expr
		case ArgIgnoreError:
			s.IgnoreError = l.constBool(attrs, ArgIgnoreError)
		case ArgTask:
			v, d := a.Expr.Value(nil)
			if d.HasErrors() || v.Type() != cty.String || v.IsNull() || v.AsString() == "" {
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid task",
					Detail:  "task must name the task to call, in quotes: task = \"provision\", or task = \"team.create\" for a task of an included file.",
					Subject: a.Expr.Range().Ptr(),
				})
				continue
			}
			s.Call, s.CallRange = v.AsString(), a.Expr.Range()
		default:
			s.Args = append(s.Args, a)
		}
	}
	switch {
	case hasAttr(attrs, ArgAction) && hasAttr(attrs, ArgTask):
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Both action and task",
			Detail:  fmt.Sprintf("Step %q runs an action (action = …) or calls a task (task = \"…\"), not both.", name),
			Subject: attrs[ArgTask].Range.Ptr(),
		})
	case !hasAttr(attrs, ArgAction) && !hasAttr(attrs, ArgTask):
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Missing action",
			Detail:  fmt.Sprintf("Step %q needs action = <plugin>.<action> (for example action = builtin.exec), or task = \"<task>\" to call a task.", name),
			Subject: b.DefRange.Ptr(),
		})
	case hasAttr(attrs, ArgTask) && hasAttr(attrs, ArgForEach):
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "for_each on a task call",
			Detail:  fmt.Sprintf("Step %q calls a task: for_each works on steps that run an action; put it on the steps of the called task.", name),
			Subject: attrs[ArgForEach].Range.Ptr(),
		})
	case hasAttr(attrs, ArgTask) && hasAttr(attrs, ArgIgnoreError):
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "ignore_error on a task call",
			Detail:  fmt.Sprintf("Step %q calls a task: put ignore_error on the step of that task whose failure may be ignored.", name),
			Subject: attrs[ArgIgnoreError].Range.Ptr(),
		})
	case hasAttr(attrs, ArgTask) && hasAttr(attrs, ArgCommit):
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Commit on a task call",
			Detail:  fmt.Sprintf("Step %q calls a task: mark the step of that task after which its change is the truth with commit = true instead.", name),
			Subject: attrs[ArgCommit].Range.Ptr(),
		})
	}
	sort.Slice(s.Args, func(i, j int) bool { return s.Args[i].Range.Start.Byte < s.Args[j].Range.Start.Byte })
	return s
}

func hasAttr(attrs hcl.Attributes, name string) bool {
	_, ok := attrs[name]
	return ok
}

// checkStepRefs checks the step references of a step's arguments, its
// condition and its depends_on, and records them.
func (l *loader) checkStepRefs(f *File, t *Task, s *Step) {
	seen := map[StepRef]bool{}
	record := func(r StepRef) {
		k := StepRef{Step: r.Step, Key: r.Key, Output: r.Output}
		if !seen[k] {
			seen[k] = true
			s.Refs = append(s.Refs, r)
		}
	}
	exprs := make([]hcl.Expression, 0, len(s.Args)+2)
	for _, a := range s.Args {
		exprs = append(exprs, a.Expr)
	}
	if s.If != nil {
		exprs = append(exprs, s.If)
	}
	allowed := []string{"var", "param", "step"}
	if s.ForEach != nil {
		l.diags = append(l.diags, l.checkRefs(s.ForEach, f, t, "a step's for_each", allowed...)...)
		allowed = append(allowed, "each")
		exprs = append(exprs, s.ForEach)
	}
	for i, e := range exprs {
		if s.ForEach == nil || i < len(exprs)-1 {
			l.diags = append(l.diags, l.checkRefs(e, f, t, "a step", allowed...)...)
		}
		for _, r := range stepRefs(e) {
			if r.Step == s.Name {
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Self-referencing step",
					Detail: fmt.Sprintf("Step %q cannot use its own outputs.", s.Name), Subject: r.Range.Ptr(),
				})
				continue
			}
			if t.Step(r.Step) != nil {
				record(r)
			}
		}
	}
	for _, r := range s.DependsOn {
		if r.Step == s.Name {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Self-referencing step",
				Detail: fmt.Sprintf("Step %q cannot depend on itself.", s.Name), Subject: r.Range.Ptr(),
			})
			continue
		}
		if t.Step(r.Step) == nil {
			l.diags = append(l.diags, unknownStep(t, r))
			continue
		}
		record(r)
	}
}

// stepRefs lists the step.<name>[.<output>] references in an expression.
func stepRefs(e hcl.Expression) []StepRef {
	var out []StepRef
	for _, tr := range e.Variables() {
		if tr.RootName() != "step" || len(tr) < 2 {
			continue
		}
		r := StepRef{Step: attrName(tr[1]), Range: tr.SourceRange()}
		rest := tr[2:]
		if len(rest) > 0 {
			if ix, ok := rest[0].(hcl.TraverseIndex); ok {
				// An instance of a for_each step: step.copy["kernel"].
				if ix.Key.Type() == cty.String && ix.Key.IsKnown() {
					r.Key = ix.Key.AsString()
				}
				rest = rest[1:]
			}
		}
		if len(rest) > 0 {
			r.Output = attrName(rest[0])
		}
		out = append(out, r)
	}
	return out
}

func unknownStep(t *Task, r StepRef) *hcl.Diagnostic {
	names := make([]string, len(t.Steps))
	for i, s := range t.Steps {
		names[i] = s.Name
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Reference to undeclared step",
		Detail:  fmt.Sprintf("Task %q has no step named %q.%s", t.Name, r.Step, Suggest(r.Step, names)),
		Subject: r.Range.Ptr(),
	}
}
