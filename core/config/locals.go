package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// decodeLocals reads a file's locals blocks: named values worked out once,
// when the file loads, from variables, functions and other locals, and
// usable wherever the file's expressions are (local.NAME).
func (l *loader) decodeLocals(f *File, blocks []*hcl.Block) {
	f.LocalValues = cty.EmptyObjectVal
	attrs := map[string]*hcl.Attribute{}
	for _, b := range blocks {
		as, diags := b.Body.JustAttributes()
		l.diags = append(l.diags, diags...)
		for _, a := range as {
			if !hclsyntax.ValidIdentifier(a.Name) {
				l.diags = append(l.diags, badName("local", a.Name, a.NameRange))
				continue
			}
			if prev, ok := attrs[a.Name]; ok {
				l.diags = append(l.diags, duplicate("local", a.Name, a.Range, prev.Range))
				continue
			}
			attrs[a.Name] = a
		}
	}
	// Each local may use variables and other locals: check the references,
	// then work them out in the order they need.
	bad := map[string]bool{}
	for _, name := range sortedKeys(attrs) {
		a := attrs[name]
		for _, tr := range a.Expr.Variables() {
			rng := tr.SourceRange()
			switch root := tr.RootName(); {
			case root == "var":
				if v := attrName(tr[1]); len(tr) > 1 && !f.declaresVar(v) && !f.VarValues.Type().HasAttribute(v) {
					d := &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Reference to undeclared variable",
						Detail:  fmt.Sprintf("No variable %q is declared in this file.", v),
						Subject: rng.Ptr(),
					}
					l.diags = append(l.diags, d)
					l.missing = append(l.missing, missingRef{file: f, kind: "variable", name: v, diag: d})
					bad[name] = true
				}
			case root == "local":
				if len(tr) < 2 || attrs[attrName(tr[1])] == nil {
					ref := ""
					if len(tr) > 1 {
						ref = attrName(tr[1])
					}
					l.diags = append(l.diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Reference to undeclared local",
						Detail:  fmt.Sprintf("No local %q is declared in this file.%s", ref, Suggest(ref, sortedKeys(attrs))),
						Subject: rng.Ptr(),
					})
					bad[name] = true
				}
			default:
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: fmt.Sprintf("%s.* is not allowed in a local", root),
					Detail:  "A file's locals are worked out when the file loads, from var.* and other local.* values (and functions); params and steps are not known then.",
					Subject: rng.Ptr(),
				})
				bad[name] = true
			}
		}
	}
	var names []string
	for _, name := range sortedKeys(attrs) {
		if !bad[name] {
			names = append(names, name)
		}
	}
	deps := localDeps(attrs)
	ordered, stuck := orderLocals(names, deps)
	vals := map[string]cty.Value{}
	for _, name := range ordered {
		a := attrs[name]
		for _, dep := range deps[name] {
			if bad[dep] {
				bad[name] = true // reported where dep is
			}
		}
		if bad[name] {
			continue
		}
		ectx := f.varContext()
		ectx.Variables["local"] = objectOfValues(vals)
		v, diags := a.Expr.Value(ectx)
		l.diags = append(l.diags, diags...)
		if diags.HasErrors() {
			bad[name] = true
			continue
		}
		vals[name] = v
	}
	if len(stuck) > 0 {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Locals refer to each other",
			Detail:  fmt.Sprintf("These locals need each other to be worked out: %s.", strings.Join(stuck, ", ")),
			Subject: attrs[stuck[0]].Range.Ptr(),
		})
	}
	f.LocalNames = sortedKeys(attrs)
	f.LocalValues = objectOfValues(vals)
}

func (f *File) declaresLocal(name string) bool {
	for _, n := range f.LocalNames {
		if n == name {
			return true
		}
	}
	return false
}

func objectOfValues(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

// missingRef is a reference to a plugin, variable or shared param no file
// declares;
// typo: a declared name is close to it.
type missingRef struct {
	file       *File
	kind, name string
	diag       *hcl.Diagnostic
	typo       bool
}

// summarizeMissing turns the root file's references to undeclared plugins
// and variables into one message: a file run with -f that is meant to be
// included (its plugins and variables come from the file including it)
// says at once what it lacks. A name close to a declared one is more
// likely a typo, and keeps its own message with its suggestion.
func (l *loader) summarizeMissing(root *File) {
	var plugins, vars, params []string
	drop := map[*hcl.Diagnostic]bool{}
	var first *hcl.Diagnostic
	for _, m := range l.missing {
		if m.file != root || m.typo {
			continue
		}
		if first == nil {
			first = m.diag
		}
		drop[m.diag] = true
		switch {
		case m.kind == "plugin" && !slices.Contains(plugins, m.name):
			plugins = append(plugins, m.name)
		case m.kind == "variable" && !slices.Contains(vars, m.name):
			vars = append(vars, m.name)
		case m.kind == "param" && !slices.Contains(params, m.name):
			params = append(params, m.name)
		}
	}
	if first == nil {
		return
	}
	var uses, declare []string
	if len(plugins) > 0 {
		uses = append(uses, plural(len(plugins), "plugin", "plugins")+" "+strings.Join(plugins, ", "))
		declare = append(declare, fmt.Sprintf("plugin %q { source = \"…\" }", plugins[0]))
	}
	if len(vars) > 0 {
		uses = append(uses, plural(len(vars), "variable", "variables")+" "+strings.Join(vars, ", "))
		declare = append(declare, fmt.Sprintf("variable %q {}", vars[0]))
	}
	if len(params) > 0 {
		uses = append(uses, plural(len(params), "shared param", "shared params")+" "+strings.Join(params, ", "))
		declare = append(declare, fmt.Sprintf("param %q { … } outside any task", params[0]))
	}
	name := DisplayPath(root.Path)
	summary := &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Plugins or variables not declared",
		Detail: fmt.Sprintf("%s uses %s without declaring them. If it is meant to be included, run the task file that includes it (include \"NAME\" { path = %q }), which declares them; otherwise declare them here (%s).",
			name, andList(uses), filepath.Base(root.Path), strings.Join(declare, ", ")),
		Subject: first.Subject,
	}
	out := make(hcl.Diagnostics, 0, len(l.diags))
	placed := false
	for _, d := range l.diags {
		if drop[d] {
			if !placed {
				out = append(out, summary)
				placed = true
			}
			continue
		}
		out = append(out, d)
	}
	if !placed {
		out = append(out, summary)
	}
	l.diags = out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// decodeTaskLocals reads a task's locals blocks: named values of the task,
// from variables, params, functions, the file's locals and the task's
// other locals, worked out wherever the task's params are known (before
// the run, and for a called task, from its call's arguments).
func (l *loader) decodeTaskLocals(f *File, t *Task, blocks []*hcl.Block) {
	attrs := map[string]*hcl.Attribute{}
	for _, b := range blocks {
		as, diags := b.Body.JustAttributes()
		l.diags = append(l.diags, diags...)
		for _, a := range as {
			switch {
			case !hclsyntax.ValidIdentifier(a.Name):
				l.diags = append(l.diags, badName("local", a.Name, a.NameRange))
			case attrs[a.Name] != nil:
				l.diags = append(l.diags, duplicate("local", a.Name, a.Range, attrs[a.Name].Range))
			case f.declaresLocal(a.Name):
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Local shadows a file local",
					Detail:  fmt.Sprintf("The file declares a local %q already; give the task's local another name.", a.Name),
					Subject: a.NameRange.Ptr(),
				})
			default:
				attrs[a.Name] = a
			}
		}
	}
	t.LocalNames = sortedKeys(attrs)
	for _, name := range t.LocalNames {
		l.diags = append(l.diags, l.checkRefs(attrs[name].Expr, f, t, "a task's local", "var", "param")...)
	}
	ordered, stuck := orderLocals(t.LocalNames, localDeps(attrs))
	if len(stuck) > 0 {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Locals refer to each other",
			Detail:  fmt.Sprintf("These locals of task %s need each other to be worked out: %s.", t.Name, strings.Join(stuck, ", ")),
			Subject: attrs[stuck[0]].Range.Ptr(),
		})
		return
	}
	for _, name := range ordered {
		t.Locals = append(t.Locals, attrs[name])
	}
}

// localDeps maps each local to the others of attrs it refers to.
func localDeps(attrs map[string]*hcl.Attribute) map[string][]string {
	deps := map[string][]string{}
	for name, a := range attrs {
		for _, tr := range a.Expr.Variables() {
			if tr.RootName() == "local" && len(tr) > 1 && attrs[attrName(tr[1])] != nil {
				deps[name] = append(deps[name], attrName(tr[1]))
			}
		}
	}
	return deps
}

// orderLocals puts locals in an order in which each comes after those of
// names it uses; stuck are the ones that need each other (in the order
// of names).
func orderLocals(names []string, deps map[string][]string) (ordered, stuck []string) {
	in := map[string]bool{}
	for _, n := range names {
		in[n] = true
	}
	done := map[string]bool{}
	pending := names
	for len(pending) > 0 {
		var next []string
		for _, n := range pending {
			ready := true
			for _, d := range deps[n] {
				if in[d] && !done[d] {
					ready = false
				}
			}
			if ready {
				done[n] = true
				ordered = append(ordered, n)
			} else {
				next = append(next, n)
			}
		}
		if len(next) == len(pending) {
			return ordered, next
		}
		pending = next
	}
	return ordered, nil
}

// EvalContext is the context of the task's expressions: its file's
// (variables, locals, functions), its params and steps, and its own
// locals worked out from those params. params and steps may be
// cty.NilVal; with params not known yet, the locals that use them are
// unknown too.
func (t *Task) EvalContext(params, steps cty.Value) (*hcl.EvalContext, hcl.Diagnostics) {
	ectx := t.File.EvalContext(params, steps)
	if len(t.Locals) == 0 {
		return ectx, nil
	}
	vals := map[string]cty.Value{}
	if t.File.LocalValues != cty.NilVal {
		for k, v := range t.File.LocalValues.AsValueMap() {
			vals[k] = v
		}
	}
	if params == cty.NilVal {
		ectx.Variables["param"] = cty.DynamicVal
	}
	var diags hcl.Diagnostics
	for _, a := range t.Locals {
		ectx.Variables["local"] = objectOfValues(vals)
		v, ds := a.Expr.Value(ectx)
		diags = append(diags, ds...)
		if ds.HasErrors() {
			v = cty.DynamicVal
		}
		vals[a.Name] = v
	}
	ectx.Variables["local"] = objectOfValues(vals)
	if params == cty.NilVal {
		delete(ectx.Variables, "param")
	}
	return ectx, diags
}

// andList joins "a", "b", "c" as "a, b and c".
func andList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
