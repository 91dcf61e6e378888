package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/builtin"
	"github.com/vmflow/vmflow/core/host"
	"github.com/vmflow/vmflow/core/lang"
	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
)

func (a *app) cmdPlugins(c *cli.Context) error {
	taskDir := ""
	if path, err := a.findTaskFile(c.String("file")); err == nil {
		if abs, err := absDir(path); err == nil {
			taskDir = abs
		}
	}
	finder := a.finder(taskDir)
	found := finder.All()
	trust, diags := host.NewTrust(taskDir, finder)
	if diags.HasErrors() {
		return a.printDiags(diags)
	}
	want := map[string]bool{}
	for _, n := range c.Args().Slice() {
		want[n] = true
	}
	logger := a.logs(c.Bool("verbose"), a.stderr).plugins
	var list []*described
	for _, f := range found {
		if len(want) == 0 || want[f.Name] {
			list = append(list, &described{f: f})
		}
	}
	var wg sync.WaitGroup
	for _, d := range list {
		wg.Go(func() {
			// A binary the lock refuses is never executed, not even to
			// ask what it is.
			sum, err := trust.Check(d.f.Name, d.f.Path)
			if err != nil {
				d.err, d.refused = err, true
				return
			}
			p, err := host.StartChecked(context.Background(), d.f.Path, sum, logger)
			var ce *host.ChecksumError
			if errors.As(err, &ce) {
				d.err, d.refused = trust.Mismatch(d.f.Name, d.f.Path), true
				return
			}
			if err != nil {
				d.err = err
				return
			}
			d.schema = p.Schema
			p.Kill()
		})
	}
	wg.Wait()
	if len(want) == 0 || want["builtin"] {
		impl, _ := sdk.InProcess(builtin.New(nil))
		s, _ := impl.Describe(context.Background())
		list = append(list, &described{f: host.Found{Name: "builtin", Path: "(built into vmflow)"}, schema: s})
	}
	for n := range want {
		ok := false
		for _, d := range list {
			ok = ok || d.f.Name == n
		}
		if !ok {
			return usageErr("no plugin %q on the plugin path (vmflow plugins lists them)", n)
		}
	}
	if c.Bool("json") {
		return a.pluginsJSON(list)
	}
	failed := false
	for i, d := range list {
		if i > 0 {
			fmt.Fprintln(a.stdout)
		}
		if d.refused {
			// Not a failure of the listing, unless it was asked for.
			failed = failed || want[d.f.Name]
			fmt.Fprintf(a.stdout, "%s  %s  (%s)\n  not run: %v\n", d.f.Name, d.f.Path, d.f.Dir.Reason, d.err)
			continue
		}
		if d.err != nil {
			failed = true
			fmt.Fprintf(a.stdout, "%s  %s  (%s)\n  error: %v\n", d.f.Name, d.f.Path, d.f.Dir.Reason, d.err)
			continue
		}
		where := d.f.Path
		if d.f.Dir.Reason != "" {
			where += " (" + d.f.Dir.Reason + ")"
		}
		fmt.Fprintf(a.stdout, "%s %s  %s\n", d.f.Name, d.schema.Version, where)
		if d.schema.Description != "" {
			fmt.Fprintf(a.stdout, "  %s\n", d.schema.Description)
		}
		for _, s := range d.f.Shadows {
			fmt.Fprintf(a.stdout, "  (shadows %s)\n", s)
		}
		if len(d.schema.Config) > 0 {
			fmt.Fprintln(a.stdout, "  config:")
			a.printAttrs(d.schema.Config, "    ")
		}
		for _, act := range d.schema.Actions {
			undo := ""
			if act.HasUndo {
				undo = "  [undo]"
			}
			if act.Timeout > 0 {
				undo += "  [timeout " + lang.FormatDuration(act.Timeout) + "]"
			}
			fmt.Fprintf(a.stdout, "  %s.%s%s\n", d.f.Name, act.Name, undo)
			if act.Description != "" {
				fmt.Fprintf(a.stdout, "    %s\n", act.Description)
			}
			if len(act.Inputs) > 0 {
				fmt.Fprintln(a.stdout, "    arguments:")
				a.printAttrs(act.Inputs, "      ")
			}
			if len(act.Outputs) > 0 {
				fmt.Fprintln(a.stdout, "    outputs:")
				a.printAttrs(act.Outputs, "      ")
			}
		}
	}
	if failed {
		return &exitError{code: exitFailed, err: errors.New("some plugins failed to start"), printed: true}
	}
	return nil
}

// described is a plugin found on the path and what it said about itself.
type described struct {
	f      host.Found
	schema *protocol.Schema
	err    error
	// refused: the lock file (or its absence) does not let it run.
	refused bool
}

func (a *app) printAttrs(attrs protocol.Attributes, indent string) {
	tw := tabwriter.NewWriter(a.stdout, 0, 2, 2, ' ', 0)
	for _, at := range attrs {
		flags := ""
		switch {
		case at.Required:
			flags = "required"
		case at.Default != cty.NilVal:
			flags = "default " + lang.FormatValue(at.Default)
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\n", indent, at.Name, typeLabel(at.Type), flags, at.Description)
	}
	tw.Flush()
}

type jsonAttr struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Required    bool   `json:"required,omitempty"`
	Default     any    `json:"default,omitempty"`
	Description string `json:"description,omitempty"`
}

type jsonAction struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	HasUndo     bool       `json:"has_undo"`
	TimeoutSecs float64    `json:"timeout_seconds,omitempty"`
	Inputs      []jsonAttr `json:"inputs"`
	Outputs     []jsonAttr `json:"outputs"`
}

type jsonPlugin struct {
	Name    string       `json:"name"`
	Path    string       `json:"path"`
	Version string       `json:"version,omitempty"`
	Error   string       `json:"error,omitempty"`
	Actions []jsonAction `json:"actions,omitempty"`
}

func attrsJSON(as protocol.Attributes) []jsonAttr {
	out := []jsonAttr{}
	for _, at := range as {
		j := jsonAttr{Name: at.Name, Type: typeLabel(at.Type), Required: at.Required, Description: at.Description}
		if at.Default != cty.NilVal {
			j.Default = lang.PlainValue(at.Default)
		}
		out = append(out, j)
	}
	return out
}

func (a *app) pluginsJSON(list []*described) error {
	out := []jsonPlugin{}
	for _, d := range list {
		jp := jsonPlugin{Name: d.f.Name, Path: d.f.Path}
		if d.err != nil {
			jp.Error = d.err.Error()
		} else {
			jp.Version = d.schema.Version
			for _, act := range d.schema.Actions {
				jp.Actions = append(jp.Actions, jsonAction{act.Name, act.Description, act.HasUndo, act.Timeout.Seconds(), attrsJSON(act.Inputs), attrsJSON(act.Outputs)})
			}
		}
		out = append(out, jp)
	}
	return a.printJSON(out)
}

func absDir(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return filepath.Dir(abs), nil
}
