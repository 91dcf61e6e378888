package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/lang"
)

// varInfo is one variable as vmflow vars shows it.
type varInfo struct {
	Name        string `json:"name"`
	File        string `json:"file"`
	Type        string `json:"type"`
	Value       any    `json:"value"`
	From        string `json:"from"`
	Description string `json:"description,omitempty"`
	Sensitive   bool   `json:"sensitive,omitempty"`
	// Options are the values it accepts (JSON values), when it names them.
	Options []any  `json:"options,omitempty"`
	options string // as the table shows them
}

// cmdVars lists the task files' variables, their values and where each
// value comes from (the default, --var, the environment, .env, …).
func (a *app) cmdVars(c *cli.Context) error {
	proj, err := a.project(c, nil)
	if err != nil {
		return err
	}
	var out []varInfo
	for _, f := range proj.Files {
		for _, v := range f.Variables {
			vi := varInfo{Name: v.Name, File: config.DisplayPath(f.Path), Type: typeLabel(v.Type), From: v.Origin, Description: v.Description, Sensitive: v.Sensitive}
			var shown []string
			for _, o := range v.Options {
				vi.Options = append(vi.Options, lang.PlainValue(o))
				shown = append(shown, lang.FormatValue(o))
			}
			vi.options = strings.Join(shown, ", ")
			val := cty.NilVal
			if f.VarValues.Type().IsObjectType() && f.VarValues.Type().HasAttribute(v.Name) {
				val = f.VarValues.GetAttr(v.Name)
			}
			switch {
			case v.Sensitive:
				vi.Value = "(sensitive)"
			case val == cty.NilVal || !val.IsWhollyKnown():
				vi.Value = nil
				vi.From = "not set"
			case c.Bool("json"):
				vi.Value = lang.PlainValue(val)
			default:
				vi.Value = lang.FormatValue(val)
			}
			out = append(out, vi)
		}
	}
	if c.Bool("json") {
		if out == nil {
			out = []varInfo{}
		}
		return a.printJSON(out)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tVALUE\tFROM\tDESCRIPTION")
	for _, vi := range out {
		val := "(not set)"
		if vi.Value != nil {
			val = fmt.Sprint(vi.Value)
		}
		name := vi.Name
		if vi.File != config.DisplayPath(proj.Root.Path) {
			name += " (" + vi.File + ")"
		}
		desc := vi.Description
		if vi.options != "" {
			desc = strings.TrimSpace(desc + " (one of " + vi.options + ")")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, val, vi.From, desc)
	}
	return tw.Flush()
}
