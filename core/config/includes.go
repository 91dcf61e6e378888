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
	name := b.Labels[0]
	if !validTaskName(name) {
		l.diags = append(l.diags, badName("include", name, b.LabelRanges[0]))
		return nil
	}
	content, diags := b.Body.Content(includeSchema)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	inc := &Include{Name: name, DeclRange: b.DefRange}
	pa := content.Attributes["path"]
	if d := l.checkRefs(pa.Expr, f, nil, "an include's path", "var"); d.HasErrors() {
		l.diags = append(l.diags, d...)
		return nil
	}
	pv, diags := pa.Expr.Value(f.varContext())
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	if !pv.IsWhollyKnown() {
		l.diags = append(l.diags, unknownInclude("path", pa.Expr.Range()))
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
		if d := l.checkRefs(va.Expr, f, nil, "an include's vars", "var"); d.HasErrors() {
			l.diags = append(l.diags, d...)
			return nil
		}
		vv, diags := va.Expr.Value(f.varContext())
		l.diags = append(l.diags, diags...)
		if diags.HasErrors() {
			return nil
		}
		if !vv.IsWhollyKnown() {
			l.diags = append(l.diags, unknownInclude("vars", va.Expr.Range()))
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
