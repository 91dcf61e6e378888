package config

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/vmflow/vmflow/core/lang"
)

var paramSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "options"}, {Name: "prompt"}, {Name: "complete"}, {Name: "applies"}, {Name: "ask"},
	},
}

// decodeParam reads a param block, of task t or (t without a name) a
// shared one at file level; nil after an error in its name.
func (l *loader) decodeParam(f *File, t *Task, b *hcl.Block) *Param {
	name, content, _ := l.blockContent("param", b, hclsyntax.ValidIdentifier, paramSchema)
	if content == nil {
		return nil
	}
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
			// A complete made of a variable whose value was refused
			// (--var host=) says nothing more: that error is the one.
			if !l.variableRefused() {
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid complete for param",
					Detail: err.Error(), Subject: a.Expr.Range().Ptr(),
				})
			}
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

// variableRefused reports whether a variable's value was refused already
// (its type or a validation).
func (l *loader) variableRefused() bool {
	for _, d := range l.diags {
		if d.Severity == hcl.DiagError && strings.HasPrefix(d.Summary, "Invalid value for variable") {
			return true
		}
	}
	return false
}
