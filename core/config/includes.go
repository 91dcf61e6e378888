package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

var includeSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "path", Required: true},
		{Name: "vars"},
		{Name: "optional"},
		{Name: "flatten"},
	},
}

func (l *loader) decodeInclude(f *File, b *hcl.Block) *Include {
	name, content, diags := l.blockContent("include", b, validTaskName, includeSchema)
	if content == nil || diags.HasErrors() {
		return nil
	}
	inc := &Include{Name: name, DeclRange: b.DefRange}
	pa := content.Attributes["path"]
	pv, ok := l.includeValue(pa, f, "path")
	if !ok {
		return nil
	}
	if pv.IsNull() || pv.Type() != cty.String {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Invalid include path",
			Detail: "path must be a string: the task file to include, relative to this one.", Subject: pa.Expr.Range().Ptr(),
		})
		return nil
	}
	p := pv.AsString()
	if name, ok := strings.CutPrefix(p, BuiltinPrefix); ok {
		err := fmt.Errorf("vmflow ships no task file %q", name)
		bp := ""
		if l.opts.Builtin != nil {
			bp, err = l.opts.Builtin(name)
		}
		if err != nil {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Built-in task file not available",
				Detail: fmt.Sprintf("%s: %v.", p, err), Subject: pa.Expr.Range().Ptr(),
			})
			return nil
		}
		p = bp
		inc.Shipped = true
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(f.Dir, p)
	}
	inc.Path = filepath.Clean(p)
	inc.Flatten = l.constBool(content.Attributes, "flatten")
	inc.Optional = l.constBool(content.Attributes, "optional")
	if va, ok := content.Attributes["vars"]; ok {
		vv, ok := l.includeValue(va, f, "vars")
		if !ok {
			return nil
		}
		if vv.IsNull() || !(vv.Type().IsObjectType() || vv.Type().IsMapType()) {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid include vars",
				Detail: "vars must be an object: { name = value, … }.", Subject: va.Expr.Range().Ptr(),
			})
			return nil
		}
		inc.Vars = vv.AsValueMap()
	}
	return inc
}

func unknownInclude(attr string, r hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Include " + attr + " not known",
		Detail:  fmt.Sprintf("The include's %s uses a variable that has no value, so vmflow cannot tell which tasks it brings. Give the variable a value.", attr),
		Subject: r.Ptr(),
	}
}

// includeValue evaluates an include's attribute (what: path or vars), which
// may refer to variables only and must be known before the run; ok is
// false, with the diagnostics added, when it cannot be used.
func (l *loader) includeValue(a *hcl.Attribute, f *File, what string) (v cty.Value, ok bool) {
	if d := l.checkRefs(a.Expr, f, nil, "an include's "+what, "var"); d.HasErrors() {
		l.diags = append(l.diags, d...)
		return cty.NilVal, false
	}
	v, diags := a.Expr.Value(f.varContext())
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	if !v.IsWhollyKnown() {
		l.diags = append(l.diags, unknownInclude(what, a.Expr.Range()))
		return cty.NilVal, false
	}
	return v, true
}
