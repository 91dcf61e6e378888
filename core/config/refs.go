package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// checkRefs checks every reference in an expression: its root must be one
// of allowed, and the variable, param or step it names must exist. where
// describes the place for messages ("a plugin's source").
func (l *loader) checkRefs(e hcl.Expression, f *File, t *Task, where string, allowed ...string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	isAllowed := func(root string) bool {
		for _, a := range allowed {
			if a == root {
				return true
			}
		}
		return false
	}
	for _, tr := range e.Variables() {
		root := tr.RootName()
		rng := tr.SourceRange()
		switch {
		case root == "local":
			// A file's locals are known everywhere in it, a task's in
			// the task.
			name := ""
			if len(tr) > 1 {
				name = attrName(tr[1])
			}
			if !f.declaresLocal(name) && (t == nil || !slices.Contains(t.LocalNames, name)) {
				names := slices.Clone(f.LocalNames)
				where := "this file"
				if t != nil {
					names = append(names, t.LocalNames...)
					where = "this file or task " + t.Name
				}
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Reference to undeclared local",
					Detail:  fmt.Sprintf("No local %q is declared in %s (locals { %s = … }).%s", name, where, name, Suggest(name, names)),
					Subject: rng.Ptr(),
				})
			}
			continue
		case root == "each":
			switch {
			case !isAllowed(root):
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "each.* outside for_each",
					Detail:  fmt.Sprintf("each.key and each.value are known in the arguments and the if of a step with for_each, not in %s.", where),
					Subject: rng.Ptr(),
				})
			case len(tr) < 2 || (attrName(tr[1]) != "key" && attrName(tr[1]) != "value"):
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid each reference",
					Detail: "A step with for_each knows each.key and each.value.", Subject: rng.Ptr(),
				})
			}
			continue
		case root != "var" && root != "param" && root != "step":
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Unknown reference",
				Detail: fmt.Sprintf("%q is not something an expression can refer to. In %s you can use %s.",
					root, where, strings.Join(dotted(allowed), ", ")),
				Subject: rng.Ptr(),
			})
			continue
		case !isAllowed(root):
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: fmt.Sprintf("%s.* is not allowed here", root),
				Detail:  fmt.Sprintf("In %s you can use %s.", where, strings.Join(dotted(allowed), ", ")),
				Subject: rng.Ptr(),
			})
			continue
		case len(tr) < 2 || attrName(tr[1]) == "":
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Incomplete reference",
				Detail: fmt.Sprintf("Name what %s.* you mean, for example %s.name.", root, root), Subject: rng.Ptr(),
			})
			continue
		}
		name := attrName(tr[1])
		switch root {
		case "var":
			if !f.VarValues.Type().HasAttribute(name) && !f.declaresVar(name) {
				names := make([]string, len(f.Variables))
				for i, v := range f.Variables {
					names[i] = v.Name
				}
				d := &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Reference to undeclared variable",
					Detail:  fmt.Sprintf("No variable %q is declared in this file.%s", name, Suggest(name, names)),
					Subject: rng.Ptr(),
				}
				diags = append(diags, d)
				l.missing = append(l.missing, missingRef{file: f, kind: "variable", name: name, diag: d, typo: Suggest(name, names) != ""})
			}
		case "param":
			if t.Param(name) == nil {
				names := make([]string, len(t.Params))
				for i, p := range t.Params {
					names[i] = p.Name
				}
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Reference to undeclared param",
					Detail:  fmt.Sprintf("Task %q has no param %q.%s", t.Name, name, Suggest(name, names)),
					Subject: rng.Ptr(),
				})
			}
		case "step":
			if target := t.Step(name); target == nil {
				diags = append(diags, unknownStep(t, StepRef{Step: name, Range: rng}))
			} else if target.ForEach != nil {
				// step.copy (every instance, by key) or step.copy["k"].out.
				if len(tr) >= 3 {
					if _, ok := tr[2].(hcl.TraverseIndex); !ok {
						diags = append(diags, &hcl.Diagnostic{
							Severity: hcl.DiagError, Summary: "Reference to a for_each step",
							Detail:  fmt.Sprintf("Step %q has one instance per key of its for_each: name one, step.%s[\"KEY\"].<output>, or use them all, [for k, s in step.%s : s.<output>].", name, name, name),
							Subject: rng.Ptr(),
						})
					}
				}
			} else if len(tr) < 3 || attrName(tr[2]) == "" {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Incomplete step reference",
					Detail:  fmt.Sprintf("Name an output of the step: step.%s.<output>. To order steps without using an output, write depends_on = [step.%s].", name, name),
					Subject: rng.Ptr(),
				})
			}
		}
	}
	return diags
}

func (f *File) declaresVar(name string) bool {
	for _, v := range f.Variables {
		if v.Name == name {
			return true
		}
	}
	return false
}

func dotted(roots []string) []string {
	out := make([]string, len(roots))
	for i, r := range roots {
		out[i] = r + ".*"
	}
	return out
}
