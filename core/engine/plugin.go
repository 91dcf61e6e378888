package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/host"
	"github.com/vmflow/vmflow/core/lang"
	"github.com/vmflow/vmflow/core/protocol"
)

// PluginInstance is the plugin a plugin block names, started and
// configured for a run (not to be confused with sdk.Plugin, which a
// plugin declares, or protocol.Conn, the calls vmflow makes to it).
type PluginInstance struct {
	// Name is the local name (hypervisor); Source what it resolved to
	// (libvirt); Path the binary ("" for builtin).
	Name, Source, Path string
	// Host is where its resources live, as the plugin block's host says
	// ("" without one): shown, never sent to the plugin.
	Host   string
	Schema *protocol.Schema

	mu     sync.Mutex
	impl   protocol.Conn
	proc   *host.Process
	config cty.Value
	// limit bounds each of its answers before the steps run (Configure,
	// Validate, Plan): its plugin block's timeout; none for builtin.
	limit time.Duration
	// restart starts the plugin again after a crash.
	restart func(ctx context.Context, config cty.Value) (*host.Process, error)
}

// client returns the plugin to call. A plugin process that crashed, or
// that the watchdog killed as hung, is started and configured again
// first, so that undos of the steps it completed still run.
func (p *PluginInstance) client(ctx context.Context) (protocol.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil && p.proc.Gone() && p.restart != nil {
		proc, err := p.restart(ctx, p.config)
		if err != nil {
			return nil, fmt.Errorf("restarting plugin %s after its crash: %w", p.Label(), err)
		}
		p.proc, p.impl = proc, proc.Conn
	}
	return p.impl, nil
}

// Validate asks the plugin to check a step's inputs.
func (p *PluginInstance) Validate(ctx context.Context, action string, in cty.Value) (protocol.Diagnostics, error) {
	c, err := p.client(ctx)
	if err != nil {
		return nil, err
	}
	return within(ctx, p.limit, func(ctx context.Context) (protocol.Diagnostics, error) {
		return c.Validate(ctx, action, lang.Unmarked(in))
	}, p.noAnswer)
}

// Plan asks the plugin what an action would do.
func (p *PluginInstance) Plan(ctx context.Context, action string, in cty.Value) ([]string, protocol.Diagnostics, error) {
	c, err := p.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	type plan struct {
		lines []string
		diags protocol.Diagnostics
	}
	r, err := within(ctx, p.limit, func(ctx context.Context) (plan, error) {
		lines, ds, err := c.Plan(ctx, action, lang.Unmarked(in))
		return plan{lines, ds}, err
	}, p.noAnswer)
	return r.lines, r.diags, err
}

// noAnswer is the error of a call before the steps that ran past limit.
func (p *PluginInstance) noAnswer() error {
	return fmt.Errorf("it did not answer within %s (its plugin block's timeout bounds each of its answers before the steps run)", p.limit)
}

// Run runs an action.
func (p *PluginInstance) Run(ctx context.Context, req protocol.RunRequest, emit func(protocol.Event)) (cty.Value, protocol.Diagnostics, error) {
	c, err := p.client(ctx)
	if err != nil {
		return cty.NilVal, nil, err
	}
	// Marks do not cross to a plugin: it gets the plain value.
	req.Inputs = lang.Unmarked(req.Inputs)
	return c.Run(ctx, req, emit)
}

// Undo undoes an action.
func (p *PluginInstance) Undo(ctx context.Context, req protocol.UndoRequest, emit func(protocol.Event)) (protocol.Diagnostics, error) {
	c, err := p.client(ctx)
	if err != nil {
		return nil, err
	}
	req.Inputs, req.Outputs = lang.Unmarked(req.Inputs), lang.Unmarked(req.Outputs)
	return c.Undo(ctx, req, emit)
}

// Label names the plugin for messages: hypervisor (libvirt 0.3.0).
func (p *PluginInstance) Label() string {
	if p.Name == p.Source || p.Source == "" {
		return fmt.Sprintf("%s (%s)", p.Name, p.Schema.Version)
	}
	return fmt.Sprintf("%s (%s %s)", p.Name, p.Source, p.Schema.Version)
}

// callError explains a failed call, naming the plugin.
func (p *PluginInstance) callError(err error) error {
	if p.proc != nil {
		err = p.proc.CallError(err)
	}
	return err
}
