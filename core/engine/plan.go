package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/lang"
	"github.com/vmflow/vmflow/core/protocol"
)

// Plan is a task bound to its plugins and checked: ready to run.
type Plan struct {
	Task   *config.Task
	Params cty.Value
	// Root is the task's scope; Scopes are it and those of the tasks its
	// steps call, callers first.
	Root   *Scope
	Scopes []*Scope
	// Steps in an order that respects every dependency.
	Steps []*PlanStep
	// Locks are the evaluated lock keys.
	Locks []string

	// red masks the run's secrets in free text (logs, errors).
	red     *lang.Redactor
	redOnce sync.Once
}

// Redactor is what masks the plan's secrets in free text: the strings in
// the sensitive parts of its variables, params and step inputs, and those
// the run adds as steps produce them.
func (p *Plan) Redactor() *lang.Redactor {
	p.redOnce.Do(func() {
		p.red = &lang.Redactor{}
		for _, sc := range p.Scopes {
			p.red.Add(sc.Task.File.VarValues)
			p.red.Add(sc.Params)
		}
		for _, ps := range p.Steps {
			p.red.Add(ps.Inputs)
		}
	})
	return p.red
}

// sensitiveNames lists the attributes a plugin declares sensitive.
func sensitiveNames(as protocol.Attributes) []string {
	var out []string
	for _, a := range as {
		if a.Sensitive {
			out = append(out, a.Name)
		}
	}
	return out
}

// Plugins maps the local names of the plugins the run uses (not the
// built-in actions) to their source and version: hypervisor →
// "proxmox-stub 0.1.0".
func (p *Plan) Plugins() map[string]string {
	out := map[string]string{}
	for _, ps := range p.Steps {
		if ps.Plugin == nil || ps.Plugin.Name == config.BuiltinPlugin {
			continue
		}
		src := ps.Plugin.Source
		if src == "" {
			src = ps.Plugin.Name
		}
		out[ps.Plugin.Name] = strings.TrimSpace(src + " " + ps.Plugin.Schema.Version)
	}
	return out
}

// Hosts maps the local names of the plugins the run uses that name a
// host (the plugin block's host) to it: hypervisor → "build1".
func (p *Plan) Hosts() map[string]string {
	out := map[string]string{}
	for _, ps := range p.Steps {
		if ps.Plugin != nil && ps.Plugin.Host != "" {
			out[ps.Plugin.Name] = ps.Plugin.Host
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Step returns the planned step of that name.
func (p *Plan) Step(name string) *PlanStep {
	for _, s := range p.Steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// PlanStep is a step bound to its action.
type PlanStep struct {
	*config.Step
	// Name is the step's path in the run: its name, or for a step of a
	// called task, the call's path and its name (vm/define).
	Name string
	// Scope is the task the step belongs to.
	Scope  *Scope
	Plugin *PluginInstance
	Action *protocol.Action
	// Deps are the steps this one waits for.
	Deps []string
	// Inputs as known before the run: values that come from earlier steps
	// are unknown.
	Inputs cty.Value
	// Skip is set when the step's if is false, or not known before the
	// run (IfKnown tells which); the plugin does not validate it then.
	Skip, IfKnown bool
	// Would is what the plugin says Run would do (filled by Describe).
	Would []string
	// Timeout limits the step's Run, and its undo: the step's own timeout
	// (TimeoutSet) or the action's default; 0 means none.
	Timeout    time.Duration
	TimeoutSet bool
	// Commit: the step is a commit point (commit = true, or an
	// expression of variables and params that is true for this run).
	Commit bool
	// Key is the instance's key for a step with for_each (unknown for
	// vmflow validate's stand-in instance); cty.NilVal otherwise.
	Key cty.Value
}

// Preview asks each plugin what its steps would do (its Plan call), for
// vmflow plan, and keeps the answers in the steps' Would. (A plugin's
// Describe is another call: it returns its schema.)
func (e *Engine) Preview(ctx context.Context, plan *Plan) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, ps := range plan.Steps {
		if ps.Skip {
			continue
		}
		lines, pds, err := ps.Plugin.Plan(ctx, ps.ActionName, ps.Inputs)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Plugin could not describe the step",
				Detail: fmt.Sprintf("step %q: plugin %s: %v", ps.Name, ps.Plugin.Label(), ps.Plugin.callError(err)), Subject: ps.ActionRange.Ptr()})
			continue
		}
		diags = append(diags, pluginDiags(pds, ps.argRange, ps.DeclRange, fmt.Sprintf("plugin %s for step %q", ps.Plugin.Label(), ps.Name))...)
		ps.Would = lines
	}
	return diags
}
