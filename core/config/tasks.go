package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

var taskSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "description"}, {Name: "lock"}, {Name: "wizard"}, {Name: "supersedes"}, {Name: "internal"}, {Name: "read_only"}, {Name: "params"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "param", LabelNames: []string{"name"}},
		{Type: "step", LabelNames: []string{"name"}},
		{Type: "output", LabelNames: []string{"name"}},
		{Type: "precondition"},
		{Type: "locals"},
	},
}

var outputSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "value", Required: true}, {Name: "description"}, {Name: "sensitive"}},
}

func (l *loader) decodeTask(f *File, b *hcl.Block) *Task {
	name, content, _ := l.blockContent("task", b, validTaskName, taskSchema)
	if content == nil {
		return nil
	}
	t := &Task{LocalName: name, Name: name, File: f, DeclRange: b.DefRange}
	if f.Namespace != "" {
		t.Name = f.Namespace + "." + name
	}
	t.Description = l.constString(content.Attributes, "description", f.varContext())
	t.Wizard = l.constBool(content.Attributes, "wizard")
	t.Supersedes = l.constBool(content.Attributes, "supersedes")
	t.Internal = l.constBool(content.Attributes, "internal")
	t.ReadOnly = l.constBool(content.Attributes, "read_only")
	if a, ok := content.Attributes["read_only"]; ok {
		t.ReadOnlyRange = a.Range
		if t.ReadOnly && t.Supersedes {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Read-only task supersedes runs",
				Detail:  fmt.Sprintf("Task %s changes nothing (read_only = true), so it cannot take the place of runs that did: remove supersedes or read_only.", t.Name),
				Subject: a.Range.Ptr(),
			})
		}
	}

	// Shared params come first, in the order listed, then the task's own.
	if a, ok := content.Attributes["params"]; ok {
		l.useSharedParams(f, t, a)
	}
	var steps, outputs, locals []*hcl.Block
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "locals":
			locals = append(locals, blk)
		case "param":
			if p := l.decodeParam(f, t, blk); p != nil {
				l.addParam(t, p, blk.DefRange)
			}
		case "step":
			steps = append(steps, blk)
		case "output":
			outputs = append(outputs, blk)
		case "precondition":
			pc, diags := blk.Body.Content(validationSchema)
			l.diags = append(l.diags, diags...)
			if diags.HasErrors() {
				continue
			}
			v := &Validation{Condition: pc.Attributes["condition"].Expr, ErrorMessage: pc.Attributes["error_message"].Expr, DeclRange: blk.DefRange}
			t.Preconditions = append(t.Preconditions, v)
		}
	}
	l.checkApplies(f, t)
	l.decodeTaskLocals(f, t, locals)
	for _, pc := range t.Preconditions {
		l.diags = append(l.diags, l.checkRefs(pc.Condition, f, t, "a precondition", "var", "param")...)
		l.diags = append(l.diags, l.checkRefs(pc.ErrorMessage, f, t, "a precondition", "var", "param")...)
	}
	if a, ok := content.Attributes["lock"]; ok {
		t.Lock = a.Expr
		l.diags = append(l.diags, l.checkRefs(a.Expr, f, t, "a task's lock", "var", "param")...)
	}
	for _, blk := range steps {
		if s := l.decodeStep(f, t, blk); s != nil {
			if prev := t.Step(s.Name); prev != nil {
				l.diags = append(l.diags, duplicate("step", s.Name, blk.DefRange, prev.DeclRange))
				continue
			}
			t.Steps = append(t.Steps, s)
		}
	}
	// References are checked once every step of the task is known.
	for _, s := range t.Steps {
		l.checkStepRefs(f, t, s)
	}
	t.Outputs = decodeUnique(l, "output", outputs,
		func(b *hcl.Block) *Output { return l.decodeOutput(f, t, b) },
		func(o *Output) (string, hcl.Range) { return o.Name, o.DeclRange })
	return t
}

func (l *loader) decodeOutput(f *File, t *Task, b *hcl.Block) *Output {
	name, content, diags := l.blockContent("output", b, hclsyntax.ValidIdentifier, outputSchema)
	if content == nil || diags.HasErrors() {
		return nil
	}
	o := &Output{Name: name, Value: content.Attributes["value"].Expr, DeclRange: b.DefRange}
	o.Description = l.constString(content.Attributes, "description", f.varContext())
	o.Sensitive = l.constBool(content.Attributes, "sensitive")
	l.diags = append(l.diags, l.checkRefs(o.Value, f, t, "an output", "var", "param", "step")...)
	for _, r := range stepRefs(o.Value) {
		if t.Step(r.Step) != nil {
			o.Refs = append(o.Refs, r)
		}
	}
	return o
}
