package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/vmflow/vmflow/core/lang"
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

var paramSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "options"}, {Name: "prompt"}, {Name: "complete"}, {Name: "applies"}, {Name: "ask"},
	},
}

var outputSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "value", Required: true}, {Name: "description"}, {Name: "sensitive"}},
}

func (l *loader) decodeTask(f *File, b *hcl.Block) *Task {
	name := b.Labels[0]
	if !validTaskName(name) {
		l.diags = append(l.diags, badName("task", name, b.LabelRanges[0]))
		return nil
	}
	content, diags := b.Body.Content(taskSchema)
	l.diags = append(l.diags, diags...)
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
	seenOut := map[string]*Output{}
	for _, blk := range outputs {
		o := l.decodeOutput(f, t, blk)
		if o == nil {
			continue
		}
		if prev, ok := seenOut[o.Name]; ok {
			l.diags = append(l.diags, duplicate("output", o.Name, blk.DefRange, prev.DeclRange))
			continue
		}
		seenOut[o.Name] = o
		t.Outputs = append(t.Outputs, o)
	}
	return t
}

// decodeParam reads a param block, of task t or (t without a name) a
// shared one at file level; nil after an error in its name.
func (l *loader) decodeParam(f *File, t *Task, b *hcl.Block) *Param {
	name := b.Labels[0]
	if !hclsyntax.ValidIdentifier(name) {
		l.diags = append(l.diags, badName("param", name, b.LabelRanges[0]))
		return nil
	}
	content, diags := b.Body.Content(paramSchema)
	l.diags = append(l.diags, diags...)
	p := &Param{Name: name, DeclRange: b.DefRange, Default: cty.NilVal}
	// A param is a string unless it says otherwise; type = any takes
	// any value (a called task's param given a record or a step's
	// outputs).
	p.Type = cty.String
	if _, ok := content.Attributes["type"]; ok {
		p.Type = l.decodeType(content.Attributes)
	}
	p.Description = l.constString(content.Attributes, "description", f.varContext())
	p.Prompt = l.constString(content.Attributes, "prompt", f.varContext())
	if _, ok := content.Attributes["ask"]; ok {
		p.NotAsked = !l.constBool(content.Attributes, "ask")
	}
	p.Complete = l.constString(content.Attributes, "complete", f.varContext())
	if a, ok := content.Attributes["complete"]; ok && p.Complete != "" {
		if err := CheckComplete(p.Complete); err != nil {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid complete for param",
				Detail: err.Error(), Subject: a.Expr.Range().Ptr(),
			})
			p.Complete = ""
		}
	}
	if a, ok := content.Attributes["options"]; ok {
		p.Options = l.decodeOptions(f, t, p, a)
	}
	if a, ok := content.Attributes["applies"]; ok {
		p.Applies = a.Expr
		if t.Name == "" {
			// A shared param serves tasks whose other params differ.
			if d := l.checkRefs(a.Expr, f, t, "a shared param's applies (var.* only)", "var"); d.HasErrors() {
				l.diags = append(l.diags, d...)
				p.Applies = nil
			}
		}
		// A task's own param's is checked once all its params are known
		// (checkApplies).
	}

	if a, ok := content.Attributes["default"]; ok {
		if d := l.checkRefs(a.Expr, f, t, "a param's default", "var"); d.HasErrors() {
			l.diags = append(l.diags, d...)
		} else if dv, diags := a.Expr.Value(f.varContext()); diags.HasErrors() {
			l.diags = append(l.diags, diags...)
		} else if cv, err := convert.Convert(dv, p.Type); err != nil {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid default value for param",
				Detail: fmt.Sprintf("The default of %q does not fit its type: %v.", name, err), Subject: a.Expr.Range().Ptr(),
			})
		} else if err := p.CheckOptions(cv); err != nil {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Default value not among the options",
				Detail:  fmt.Sprintf("The default of %q: %v.", name, err),
				Subject: a.Expr.Range().Ptr(),
			})
		} else {
			p.Default = cv
		}
	}
	return p
}

// checkApplies checks the applies of t's own params: only what is known
// before the run, variables and the task's params (one declared later
// counts with the value the command line gave, else its default: the
// wizard's source question is not asked when --image is given).
func (l *loader) checkApplies(f *File, t *Task) {
	for _, p := range t.Params {
		if p.Applies == nil || p.Shared {
			continue
		}
		if d := l.checkRefs(p.Applies, f, t, "a param's applies (var.* and the task's params)", "var", "param"); d.HasErrors() {
			l.diags = append(l.diags, d...)
			p.Applies = nil
		}
	}
}

// addParam appends p to t's params: a name once, required ones first.
func (l *loader) addParam(t *Task, p *Param, at hcl.Range) {
	name := p.Name
	if prev := t.Param(name); prev != nil {
		d := duplicate("param", name, at, prev.DeclRange)
		if prev.Shared {
			d.Detail = fmt.Sprintf("Task %s takes the shared param %q already (params = [param.%s], declared at %s): drop one, or give this one another name.", t.Name, name, name, prev.DeclRange)
		}
		l.diags = append(l.diags, d)
		return
	}
	if len(t.Params) > 0 {
		last := t.Params[len(t.Params)-1]
		if !last.Required() && p.Required() {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Required param after an optional one",
				Detail: fmt.Sprintf("Params are positional in declared order, so %q (required) cannot follow %q (which has a default). Declare required params first.",
					name, last.Name),
				Subject: at.Ptr(),
			})
		}
	}
	t.Params = append(t.Params, p)
}

// decodeOptions reads a param's options = [...]: a non-empty list of
// distinct values of the param's type (of its element type, for a list or
// set param). It returns nil after an error, so the param accepts any value
// and no second error follows from the first.
func (l *loader) decodeOptions(f *File, t *Task, p *Param, a *hcl.Attribute) []cty.Value {
	bad := func(subject hcl.Range, format string, args ...any) []cty.Value {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Invalid options for param",
			Detail: fmt.Sprintf(format, args...), Subject: subject.Ptr(),
		})
		return nil
	}
	elemType := p.Type
	if p.Type.IsListType() || p.Type.IsSetType() {
		elemType = p.Type.ElementType()
	}
	if !elemType.IsPrimitiveType() {
		return bad(a.Expr.Range(), "Param %q is of type %s: options need a param of type string, number or bool, or a list or set of one of them.",
			p.Name, typeexpr.TypeString(p.Type))
	}
	if d := l.checkRefs(a.Expr, f, t, "a param's options", "var"); d.HasErrors() {
		l.diags = append(l.diags, d...)
		return nil
	}
	v, diags := a.Expr.Value(f.varContext())
	if diags.HasErrors() {
		l.diags = append(l.diags, diags...)
		return nil
	}
	if !v.IsWhollyKnown() {
		return nil // it uses a variable whose value is deferred
	}
	ty := v.Type()
	if v.IsNull() || !(ty.IsListType() || ty.IsSetType() || ty.IsTupleType()) {
		return bad(a.Expr.Range(), "options must be a list of the values %q accepts, for example options = [\"nat\", \"bridge\"].", p.Name)
	}
	if v.LengthInt() == 0 {
		return bad(a.Expr.Range(), "options of %q is empty: list at least one value, or drop options to accept any.", p.Name)
	}
	// Point at the element itself when the list is written out.
	elemExprs, _ := hcl.ExprList(a.Expr)
	var out []cty.Value
	i := 0
	for it := v.ElementIterator(); it.Next(); i++ {
		_, ev := it.Element()
		at := a.Expr.Range()
		if i < len(elemExprs) && len(elemExprs) == v.LengthInt() {
			at = elemExprs[i].Range()
		}
		if ev.IsNull() {
			return bad(at, "Option %d of %q is null.", i+1, p.Name)
		}
		cv, err := convert.Convert(ev, elemType)
		if err != nil {
			return bad(at, "Option %s of %q is not %s, the type of its values.", lang.FormatValue(ev), p.Name, typeName(elemType))
		}
		for _, prev := range out {
			if prev.Equals(cv).True() {
				return bad(at, "Option %s of %q is listed twice.", lang.FormatValue(cv), p.Name)
			}
		}
		out = append(out, cv)
	}
	return out
}

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
			exprs, d := hcl.ExprList(a.Expr)
			if d.HasErrors() {
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid depends_on",
					Detail: "depends_on must be a list of steps: depends_on = [step.disks].", Subject: a.Expr.Range().Ptr(),
				})
				continue
			}
			for _, e := range exprs {
				tr, d := hcl.AbsTraversalForExpr(e)
				if d.HasErrors() || len(tr) != 2 || tr.RootName() != "step" || attrName(tr[1]) == "" {
					l.diags = append(l.diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Invalid depends_on",
						Detail: "Each element of depends_on must be a step: step.<name>.", Subject: e.Range().Ptr(),
					})
					continue
				}
				s.DependsOn = append(s.DependsOn, StepRef{Step: attrName(tr[1]), Range: e.Range()})
			}
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

func (l *loader) decodeOutput(f *File, t *Task, b *hcl.Block) *Output {
	name := b.Labels[0]
	if !hclsyntax.ValidIdentifier(name) {
		l.diags = append(l.diags, badName("output", name, b.LabelRanges[0]))
		return nil
	}
	content, diags := b.Body.Content(outputSchema)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
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
