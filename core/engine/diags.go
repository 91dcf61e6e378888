package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/protocol"
)

func suggestAttr(name string, attrs protocol.Attributes) string {
	return config.Suggest(name, attrs.Names())
}

// pluginDiags turns a plugin's diagnostics into HCL diagnostics, placing
// each at the argument its path names.
func pluginDiags(ds protocol.Diagnostics, argRange func(name string) hcl.Range, whole hcl.Range, who string) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range ds {
		sev := hcl.DiagError
		if d.Severity == protocol.Warning {
			sev = hcl.DiagWarning
		}
		rng := whole
		summary := d.Summary
		if len(d.Path) > 0 {
			if ga, ok := d.Path[0].(cty.GetAttrStep); ok {
				rng = argRange(ga.Name)
			}
			summary = fmt.Sprintf("Invalid %s: %s", protocol.FormatPath(d.Path), d.Summary)
		}
		detail := d.Detail
		if detail != "" {
			detail += "\n\n"
		}
		detail += "Reported by " + who + "."
		out = append(out, &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail, Subject: rng.Ptr()})
	}
	return out
}

// argRange is where an argument is written, or the step block when unset.
func (ps *PlanStep) argRange(name string) hcl.Range {
	if a := ps.Arg(name); a != nil {
		return a.Expr.Range()
	}
	return ps.DeclRange
}

func argList(as protocol.Attributes) string {
	if len(as) == 0 {
		return "none"
	}
	return strings.Join(as.Names(), ", ")
}

func unknownCallOutput(c *Scope, r config.StepRef) *hcl.Diagnostic {
	names := make([]string, len(c.Task.Outputs))
	for i, o := range c.Task.Outputs {
		names[i] = o.Name
	}
	list := strings.Join(names, ", ")
	if list == "" {
		list = "none"
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Reference to unknown output",
		Detail: fmt.Sprintf("Step %q calls task %s, which has no output %q.%s Its outputs: %s.",
			r.Step, c.Task.Name, r.Output, config.Suggest(r.Output, names), list),
		Subject: r.Range.Ptr(),
	}
}

func unknownOutput(dep *PlanStep, r config.StepRef) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Reference to unknown output",
		Detail: fmt.Sprintf("Step %q (%s.%s) has no output %q.%s Its outputs: %s.",
			dep.Name, dep.Plugin.Name, dep.ActionName, r.Output, suggestAttr(r.Output, dep.Action.Outputs), argList(dep.Action.Outputs)),
		Subject: r.Range.Ptr(),
	}
}

// dedupe drops repeated diagnostics (several steps sharing a broken plugin).
func dedupe(diags hcl.Diagnostics) hcl.Diagnostics {
	seen := map[string]bool{}
	var out hcl.Diagnostics
	for _, d := range diags {
		k := d.Summary + "\x00" + d.Detail
		if d.Subject != nil {
			k += d.Subject.String()
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}

// sortDiags orders diagnostics by file position, so output is stable
// whatever order concurrent checks finished in.
func sortDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a != nil && b == nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return dedupe(diags)
}
