package config

import (
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/lang"
)

var pluginSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "source", Required: true},
		{Name: "config"},
		{Name: "host"},
		{Name: "timeout"},
	},
}

func (l *loader) decodePlugin(f *File, b *hcl.Block) {
	name := b.Labels[0]
	if !hclsyntax.ValidIdentifier(name) {
		l.diags = append(l.diags, badName("plugin", name, b.LabelRanges[0]))
		return
	}
	if name == BuiltinPlugin {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Reserved plugin name",
			Detail:   fmt.Sprintf("%q names vmflow's built-in actions (builtin.exec); choose another name.", name),
			Subject:  b.LabelRanges[0].Ptr(),
		})
		return
	}
	if prev, ok := f.Plugins[name]; ok {
		l.diags = append(l.diags, duplicate("plugin", name, b.DefRange, prev.DeclRange))
		return
	}
	content, diags := b.Body.Content(pluginSchema)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return
	}
	d := &PluginDecl{Name: name, Source: content.Attributes["source"].Expr, File: f, DeclRange: b.DefRange}
	l.diags = append(l.diags, l.checkRefs(d.Source, f, nil, "a plugin's source", "var")...)
	if a, ok := content.Attributes["config"]; ok {
		d.Config = a.Expr
		l.diags = append(l.diags, l.checkRefs(d.Config, f, nil, "a plugin's config", "var")...)
	}
	if a, ok := content.Attributes["host"]; ok {
		d.Host = a.Expr
		l.diags = append(l.diags, l.checkRefs(d.Host, f, nil, "a plugin's host", "var")...)
	}
	if a, ok := content.Attributes["timeout"]; ok {
		d.Timeout = a.Expr
		l.diags = append(l.diags, l.checkRefs(d.Timeout, f, nil, "a plugin's timeout", "var")...)
	}
	f.Plugins[name] = d
}

// maxSourceChoices bounds how many combinations of variable options
// Sources tries.
const maxSourceChoices = 64

// Sources lists every source the plugin block can name: its source with
// the variables' values as they are first, then with each combination of
// the options of the variables it reads (a variable "backend" with
// options = ["libvirt", "proxmox-stub"] and source = var.backend names
// both), each once; only what evaluates to a string. A source that reads
// a local gives only its current value: a local is worked out once.
func (d *PluginDecl) Sources() []string {
	var out []string
	add := func(ctx *hcl.EvalContext) {
		v, diags := d.Source.Value(ctx)
		if diags.HasErrors() {
			return
		}
		v = lang.Unmarked(v)
		if v.IsKnown() && !v.IsNull() && v.Type() == cty.String && v.AsString() != "" && !slices.Contains(out, v.AsString()) {
			out = append(out, v.AsString())
		}
	}
	base := d.File.varContext()
	add(base)
	var names []string
	var choices [][]cty.Value
	for _, tr := range d.Source.Variables() {
		if tr.RootName() != "var" {
			if tr.RootName() == "local" {
				return out
			}
			continue
		}
		if len(tr) < 2 {
			continue
		}
		name := attrName(tr[1])
		if v := d.File.variable(name); v != nil && v.Options != nil && !slices.Contains(names, name) {
			names, choices = append(names, name), append(choices, v.Options)
		}
	}
	if len(names) == 0 || base.Variables["var"].IsNull() || !base.Variables["var"].Type().IsObjectType() {
		return out
	}
	idx := make([]int, len(names))
	for n := 0; n < maxSourceChoices; n++ {
		vals := base.Variables["var"].AsValueMap()
		for i, name := range names {
			vals[name] = choices[i][idx[i]]
		}
		ctx := &hcl.EvalContext{Variables: maps.Clone(base.Variables), Functions: base.Functions}
		ctx.Variables["var"] = cty.ObjectVal(vals)
		add(ctx)
		// The next combination, as an odometer turns.
		i := 0
		for ; i < len(idx); i++ {
			if idx[i]++; idx[i] < len(choices[i]) {
				break
			}
			idx[i] = 0
		}
		if i == len(idx) {
			break
		}
	}
	return out
}

// variable returns the variable a name stands for in this file: its own,
// else the one of the files that include it.
func (f *File) variable(name string) *Variable {
	return inherited(f, func(g *File) *Variable {
		return find(g.Variables, func(v *Variable) bool { return v.Name == name })
	})
}
