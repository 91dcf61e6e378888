package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
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
