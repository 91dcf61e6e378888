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

// ParseValue turns a command-line string into a value of type ty. Strings
// are taken as they are; numbers and bools are parsed; a list or set of
// primitives may be written comma-separated ("a,b,c"); anything else is
// written as an HCL expression (["a", "b"], { k = "v" }).
func ParseValue(raw string, ty cty.Type) (cty.Value, error) {
	switch {
	case ty == cty.String:
		return cty.StringVal(raw), nil
	case ty.IsPrimitiveType():
		v, err := convert.Convert(cty.StringVal(strings.TrimSpace(raw)), ty)
		if err != nil {
			return cty.NilVal, fmt.Errorf("%s is required, got %q", typeName(ty), raw)
		}
		return v, nil
	case (ty.IsListType() || ty.IsSetType()) && ty.ElementType().IsPrimitiveType() && !strings.HasPrefix(strings.TrimSpace(raw), "["):
		var elems []cty.Value
		for _, part := range strings.Split(raw, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			ev, err := ParseValue(part, ty.ElementType())
			if err != nil {
				return cty.NilVal, err
			}
			elems = append(elems, ev)
		}
		if len(elems) == 0 {
			if ty.IsListType() {
				return cty.ListValEmpty(ty.ElementType()), nil
			}
			return cty.SetValEmpty(ty.ElementType()), nil
		}
		if ty.IsListType() {
			return cty.ListVal(elems), nil
		}
		return cty.SetVal(elems), nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), "<value>", hcl.InitialPos)
	if diags.HasErrors() {
		if ty == cty.DynamicPseudoType {
			return cty.StringVal(raw), nil
		}
		return cty.NilVal, fmt.Errorf("not a valid %s: %s", typeName(ty), diags[0].Summary)
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		if ty == cty.DynamicPseudoType {
			return cty.StringVal(raw), nil
		}
		return cty.NilVal, fmt.Errorf("not a valid %s: %s", typeName(ty), diags[0].Summary)
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s is required: %v", typeName(ty), err)
	}
	return cv, nil
}

// FormatArg writes a value the way ParseValue reads it back for the value's
// type: strings as they are, numbers and bools plainly, a list or set of
// primitives comma-separated when no element gets in the way (a comma,
// surrounding spaces, an empty string, a leading '['), anything else as an
// HCL expression. vmflow prints command lines with it.
func FormatArg(v cty.Value) string {
	if v.ContainsMarked() || v.IsNull() || !v.IsWhollyKnown() {
		return lang.FormatValue(v)
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return v.AsString()
	case ty.IsPrimitiveType():
		return lang.FormatValue(v)
	case (ty.IsListType() || ty.IsSetType()) && ty.ElementType().IsPrimitiveType():
		var parts []string
		plain := true
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			s := FormatArg(ev)
			if s == "" || strings.Contains(s, ",") || strings.TrimSpace(s) != s {
				plain = false
			}
			parts = append(parts, s)
		}
		joined := strings.Join(parts, ",")
		if plain && !strings.HasPrefix(joined, "[") {
			return joined
		}
	}
	return lang.FormatValue(v)
}

func typeName(ty cty.Type) string {
	switch ty {
	case cty.String:
		return "a string"
	case cty.Number:
		return "a number"
	case cty.Bool:
		return "a bool (true or false)"
	}
	return typeexpr.TypeString(ty)
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"}, {Name: "options"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var validationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "condition", Required: true},
		{Name: "error_message", Required: true},
	},
}

// decodeType reads a type = … attribute; absent means any.
func (l *loader) decodeType(attrs hcl.Attributes) cty.Type {
	a, ok := attrs["type"]
	if !ok {
		return cty.DynamicPseudoType
	}
	ty, diags := typeexpr.TypeConstraint(a.Expr)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return cty.DynamicPseudoType
	}
	return ty
}

// constString evaluates a literal string attribute (descriptions).
func (l *loader) constString(attrs hcl.Attributes, name string, ctx *hcl.EvalContext) string {
	a, ok := attrs[name]
	if !ok {
		return ""
	}
	v, diags := a.Expr.Value(ctx)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return ""
	}
	if !v.IsWhollyKnown() {
		return "" // it uses a variable whose value is deferred
	}
	v = lang.Unmarked(v)
	if v.IsNull() || v.Type() != cty.String {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: fmt.Sprintf("Invalid %s", name),
			Detail: fmt.Sprintf("%s must be a string.", name), Subject: a.Expr.Range().Ptr(),
		})
		return ""
	}
	return v.AsString()
}

func (l *loader) constBool(attrs hcl.Attributes, name string) bool {
	a, ok := attrs[name]
	if !ok {
		return false
	}
	v, diags := a.Expr.Value(nil)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return false
	}
	if v.IsNull() || v.Type() != cty.Bool {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: fmt.Sprintf("Invalid %s", name),
			Detail: fmt.Sprintf("%s must be true or false.", name), Subject: a.Expr.Range().Ptr(),
		})
		return false
	}
	return v.True()
}

type varValue struct {
	val    cty.Value
	origin string // where the value came from, for messages
}

func (l *loader) decodeVariables(f *File, blocks []*hcl.Block, includeVars map[string]cty.Value) {
	vals := map[string]cty.Value{}
	seen := map[string]*Variable{}
	for _, b := range blocks {
		name := b.Labels[0]
		if !hclsyntax.ValidIdentifier(name) {
			l.diags = append(l.diags, badName("variable", name, b.LabelRanges[0]))
			continue
		}
		if prev, ok := seen[name]; ok {
			l.diags = append(l.diags, duplicate("variable", name, b.DefRange, prev.DeclRange))
			continue
		}
		content, diags := b.Body.Content(variableSchema)
		l.diags = append(l.diags, diags...)
		v := &Variable{Name: name, DeclRange: b.DefRange, Default: cty.NilVal}
		seen[name] = v
		v.Type = l.decodeType(content.Attributes)
		v.Description = l.constString(content.Attributes, "description", nil)
		v.Sensitive = l.constBool(content.Attributes, "sensitive")
		if a, ok := content.Attributes["default"]; ok {
			dv, diags := a.Expr.Value(&hcl.EvalContext{Functions: f.Funcs})
			l.diags = append(l.diags, diags...)
			if !diags.HasErrors() {
				cv, err := convert.Convert(dv, v.Type)
				if err != nil {
					l.diags = append(l.diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Invalid default value for variable",
						Detail: fmt.Sprintf("The default of %q does not fit its type: %v.", name, err), Subject: a.Expr.Range().Ptr(),
					})
				} else {
					v.Default = cv
				}
			}
		}
		if a, ok := content.Attributes["options"]; ok {
			v.Options = l.decodeVarOptions(f, v, a)
		}
		for _, vb := range content.Blocks {
			vc, diags := vb.Body.Content(validationSchema)
			l.diags = append(l.diags, diags...)
			if diags.HasErrors() {
				continue
			}
			val := &Validation{Condition: vc.Attributes["condition"].Expr, ErrorMessage: vc.Attributes["error_message"].Expr, DeclRange: vb.DefRange}
			// A validation may also read the variables declared before
			// this one in the same file (host must be a name of hosts):
			// their values are settled by now. Not a sensitive one: its
			// value could end up in the message.
			for _, tr := range append(val.Condition.Variables(), val.ErrorMessage.Variables()...) {
				ref := ""
				if tr.RootName() == "var" && len(tr) >= 2 {
					ref = attrName(tr[1])
				}
				if ref == name {
					continue
				}
				if prev, ok := seen[ref]; ok && ref != "" && !prev.Sensitive {
					continue
				}
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid validation condition",
					Detail:  fmt.Sprintf("A validation of variable %q can only refer to var.%s and to variables declared before it in the same file that are not sensitive.", name, name),
					Subject: tr.SourceRange().Ptr(),
				})
			}
			v.Validations = append(v.Validations, val)
		}
		f.Variables = append(f.Variables, v)

		vv, ok := l.variableValue(v, includeVars)
		if !ok {
			continue
		}
		v.Origin = vv.origin
		if strings.HasPrefix(v.Origin, "--var ") {
			v.Origin = "--var" // without the value, which may be sensitive
		}
		vals[name] = vv.val
		if v.Sensitive {
			// The mark goes wherever the value goes: every expression
			// computed from it is sensitive too.
			vals[name] = vv.val.Mark(lang.Sensitive)
		}
		if !l.checkVarOption(v, vv) {
			continue
		}
		l.validate(f, v, lang.Unmarked(vv.val), vv.origin, vals)
	}
	if len(vals) == 0 {
		f.VarValues = cty.EmptyObjectVal
	} else {
		f.VarValues = cty.ObjectVal(vals)
	}
}

// variableValue picks a variable's value by precedence: resume overrides,
// the include's vars, --var, VMFLOW_VAR_<name> in the environment, the same
// in .env, then the default.
func (l *loader) variableValue(v *Variable, includeVars map[string]cty.Value) (varValue, bool) {
	fail := func(origin string, err error) (varValue, bool) {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid value for variable",
			Detail:   fmt.Sprintf("%s: variable %q: %v.", origin, v.Name, err),
			Subject:  v.DeclRange.Ptr(),
		})
		return varValue{}, false
	}
	conv := func(val cty.Value, origin string) (varValue, bool) {
		cv, err := convert.Convert(val, v.Type)
		if err != nil {
			return fail(origin, err)
		}
		return varValue{val: cv, origin: origin}, true
	}
	parse := func(raw, origin string) (varValue, bool) {
		cv, err := ParseValue(raw, v.Type)
		if err != nil {
			return fail(origin, err)
		}
		return varValue{val: cv, origin: origin}, true
	}
	if cv, ok := l.cliVars[v.Name]; ok {
		cv.used = true // declared, even where a higher source wins
	}
	if ov, ok := l.opts.Overrides[v.Name]; ok {
		return conv(ov, "the resumed run")
	}
	if iv, ok := includeVars[v.Name]; ok {
		return conv(iv, "the include's vars")
	}
	if cv, ok := l.cliVars[v.Name]; ok {
		return parse(cv.value, fmt.Sprintf("--var %s=%s", v.Name, cv.value))
	}
	key := VarEnvPrefix + v.Name
	if raw, ok := l.osEnv[key]; ok {
		return parse(raw, "environment variable "+key)
	}
	if raw, ok := l.dotEnv[key]; ok {
		return parse(raw, fmt.Sprintf("%s (%s)", l.envPath, key))
	}
	if v.Default != cty.NilVal {
		return varValue{val: v.Default, origin: "the default"}, true
	}
	missing := &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "No value for required variable",
		Detail: fmt.Sprintf("Variable %q has no default. Set it with --var %s=…, the environment variable %s, or a %s line in .env beside the task file.",
			v.Name, v.Name, key, key),
		Subject: v.DeclRange.Ptr(),
	}
	if l.opts.DeferMissingVars {
		l.proj.Deferred = append(l.proj.Deferred, missing)
		return varValue{val: cty.UnknownVal(v.Type), origin: "nowhere (not set)"}, true
	}
	l.diags = append(l.diags, missing)
	return varValue{}, false
}

// validate checks v's value against its validations; earlier holds the
// values of the variables declared before it (those a validation may
// read besides v).
func (l *loader) validate(f *File, v *Variable, val cty.Value, origin string, earlier map[string]cty.Value) {
	vv := varValue{val: val, origin: origin}
	known := map[string]cty.Value{}
	for n, ev := range earlier {
		if !ev.ContainsMarked() {
			known[n] = ev
		}
	}
	known[v.Name] = vv.val
	for _, val := range v.Validations {
		for _, tr := range val.Condition.Variables() {
			if len(tr) >= 2 {
				if ev, ok := known[attrName(tr[1])]; !ok || !ev.IsWhollyKnown() {
					return // an earlier variable failed, or is not known yet
				}
			}
		}
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(known)},
		Functions: f.Funcs,
	}
	if !vv.val.IsWhollyKnown() {
		return
	}
	for _, val := range v.Validations {
		res, diags := val.Condition.Value(ctx)
		if diags.HasErrors() {
			l.diags = append(l.diags, diags...)
			continue
		}
		if res.IsNull() || res.Type() != cty.Bool {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid validation condition",
				Detail: "The condition must be true or false.", Subject: val.Condition.Range().Ptr(),
			})
			continue
		}
		if res.True() {
			continue
		}
		msg, diags := val.ErrorMessage.Value(ctx)
		text := "The value is not valid."
		if !diags.HasErrors() && msg.Type() == cty.String && !msg.IsNull() {
			text = msg.AsString()
		}
		shown, origin := lang.Hidden, vv.origin
		if !v.Sensitive {
			shown = lang.FormatValue(vv.val)
		} else if strings.HasPrefix(origin, "--var ") {
			origin = "--var " + v.Name + "=" + lang.Hidden
		}
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid value for variable %q", v.Name),
			Detail:   fmt.Sprintf("%s\n\nThe value %s came from %s.", text, shown, origin),
			Subject:  val.Condition.Range().Ptr(),
		})
	}
}

// eachRef calls fn, in order, on each element of a's list of references
// root.NAME (params = [param.name], depends_on = [step.disks]). A value
// that is no list is reported with summary and listDetail, an element that
// is no such reference with summary and elemDetail.
func (l *loader) eachRef(a *hcl.Attribute, root, summary, listDetail, elemDetail string, fn func(name string, e hcl.Expression)) {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: summary,
			Detail: listDetail, Subject: a.Expr.Range().Ptr(),
		})
		return
	}
	for _, e := range exprs {
		tr, diags := hcl.AbsTraversalForExpr(e)
		if diags.HasErrors() || len(tr) != 2 || tr.RootName() != root || attrName(tr[1]) == "" {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: summary,
				Detail: elemDetail, Subject: e.Range().Ptr(),
			})
			continue
		}
		fn(attrName(tr[1]), e)
	}
}

func attrName(t hcl.Traverser) string {
	switch t := t.(type) {
	case hcl.TraverseAttr:
		return t.Name
	case hcl.TraverseIndex:
		if t.Key.Type() == cty.String && t.Key.IsKnown() {
			return t.Key.AsString()
		}
	}
	return ""
}

// SensitiveVars lists the names of the project's sensitive variables.
func (p *Project) SensitiveVars() map[string]bool {
	out := map[string]bool{}
	for _, f := range p.Files {
		for _, v := range f.Variables {
			if v.Sensitive {
				out[v.Name] = true
			}
		}
	}
	return out
}

// MaskVarArgs returns a command line with the values of sensitive
// variables (--var NAME=VALUE, --var=NAME=VALUE) replaced by
// "(sensitive)", for what vmflow records and shows (vmflow runs, locks).
func MaskVarArgs(args []string, sensitive map[string]bool) []string {
	if len(sensitive) == 0 {
		return args
	}
	out := make([]string, len(args))
	copy(out, args)
	mask := func(kv string) string {
		name, _, ok := strings.Cut(kv, "=")
		if ok && sensitive[name] {
			return name + "=" + lang.Hidden
		}
		return kv
	}
	for i := 0; i < len(out); i++ {
		a := out[i]
		switch {
		case a == "--":
			return out
		case a == "--var" || a == "-var":
			if i+1 < len(out) {
				i++
				out[i] = mask(out[i])
			}
		case strings.HasPrefix(a, "--var="), strings.HasPrefix(a, "-var="):
			flag, kv, _ := strings.Cut(a, "=")
			out[i] = flag + "=" + mask(kv)
		}
	}
	return out
}

// decodeVarOptions reads a variable's options = [...]: a non-empty list
// of constants of its type, which must be a string, number or bool; its
// default, if any, one of them.
func (l *loader) decodeVarOptions(f *File, v *Variable, a *hcl.Attribute) []cty.Value {
	bad := func(format string, args ...any) []cty.Value {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Invalid options for variable",
			Detail: fmt.Sprintf(format, args...), Subject: a.Expr.Range().Ptr(),
		})
		return nil
	}
	if v.Type != cty.String && v.Type != cty.Number && v.Type != cty.Bool {
		return bad("Variable %q is of type %s: options need a variable of type string, number or bool.", v.Name, typeName(v.Type))
	}
	ov, diags := a.Expr.Value(&hcl.EvalContext{Functions: f.Funcs})
	if diags.HasErrors() {
		l.diags = append(l.diags, diags...)
		return nil
	}
	if ov.IsNull() || !ov.IsWhollyKnown() || !(ov.Type().IsListType() || ov.Type().IsTupleType() || ov.Type().IsSetType()) {
		return bad("options must be a list of the values %q accepts, for example options = [\"libvirt\", \"proxmox-stub\"].", v.Name)
	}
	if ov.LengthInt() == 0 {
		return bad("options of %q is empty: list at least one value, or drop options to accept any.", v.Name)
	}
	var opts []cty.Value
	for it := ov.ElementIterator(); it.Next(); {
		_, e := it.Element()
		ce, err := convert.Convert(e, v.Type)
		if err != nil || ce.IsNull() {
			return bad("options of %q: %s is not %s.", v.Name, lang.FormatValue(e), typeName(v.Type))
		}
		opts = append(opts, ce)
	}
	if v.Default != cty.NilVal && !isOption(opts, v.Default) {
		return bad("The default of %q, %s, is not one of its options: %s.", v.Name, lang.FormatValue(v.Default), formatOptions(opts))
	}
	return opts
}

// checkVarOption reports a value not among the variable's options, and
// where it came from; false when it is not.
func (l *loader) checkVarOption(v *Variable, vv varValue) bool {
	val := lang.Unmarked(vv.val)
	if v.Options == nil || !val.IsWhollyKnown() || isOption(v.Options, val) {
		return true
	}
	shown, origin := lang.Hidden, vv.origin
	if !v.Sensitive {
		shown = lang.FormatValue(val)
	} else if strings.HasPrefix(origin, "--var ") {
		origin = "--var " + v.Name + "=" + lang.Hidden
	}
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Invalid value for variable %q", v.Name),
		Detail:   fmt.Sprintf("%s must be one of its options: %s.\n\nThe value %s came from %s.", v.Name, formatOptions(v.Options), shown, origin),
		Subject:  v.DeclRange.Ptr(),
	})
	return false
}
