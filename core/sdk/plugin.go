// Package sdk is what a vmflow plugin author imports: declare actions with
// typed inputs and outputs, implement Run (and optionally Undo and
// Validate), and call Serve from main.
//
//	func main() {
//		sdk.Serve(&sdk.Plugin{
//			Name: "hello", Version: "0.1.0",
//			Actions: []*sdk.Action{{
//				Name:    "greet",
//				Inputs:  []sdk.Attr{sdk.String("name", "who to greet").Required()},
//				Outputs: []sdk.Attr{sdk.String("message", "the greeting")},
//				Run: func(ctx context.Context, r *sdk.Request) error {
//					return r.Set("message", "hello, "+r.String("name"))
//				},
//			}},
//		})
//	}
//
// vmflow starts the binary (named vmflow-plugin-<name>) when a task uses it,
// and stops it when the run ends.
package sdk

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/protocol"
)

// Plugin declares a plugin: its name, version, config and actions.
type Plugin struct {
	Name        string
	Version     string
	Description string
	// Config declares the attributes of the plugin block's config = {…}.
	Config []Attr
	// Configure receives the config once, before any action runs. Use
	// r.String("uri") and friends, and r.Env for the state directory.
	Configure func(ctx context.Context, r *Request) error
	Actions   []*Action
}

// Action declares one action.
type Action struct {
	Name        string
	Description string
	Inputs      []Attr
	Outputs     []Attr
	// Validate checks inputs before anything runs. Inputs that depend on
	// earlier steps are not known yet: check them with r.Known. Optional.
	Validate func(ctx context.Context, r *Request) error
	// Run does the work and records outputs with r.Set. Honour ctx: it is
	// cancelled when the user presses Ctrl-C or the run fails elsewhere.
	Run func(ctx context.Context, r *Request) error
	// Undo reverses a completed Run; it sees the same inputs and, through
	// r.Output, what Run recorded. Optional.
	Undo func(ctx context.Context, r *Request) error
	// Plan says what Run would do with these inputs, in the plugin's own
	// terms (the commands it stands for, what it would create); vmflow plan
	// prints the lines under the step. Inputs may be unknown, as in
	// Validate. Optional.
	Plan func(ctx context.Context, r *Request) ([]string, error)
	// Interactive marks an action that talks to the user's terminal
	// (/dev/tty), such as a console: vmflow runs it alone and stops
	// drawing its status meanwhile.
	Interactive bool
	// Timeout is how long a step of this action may run (and its undo
	// take) unless the step sets timeout itself; vmflow then cancels it
	// and the step fails. 0: no limit. Declare one for every action that
	// waits on something outside vmflow: seconds for an API call, an hour
	// for a build.
	Timeout time.Duration
}

// InProcess returns p as a protocol.Conn that runs in the calling
// process; vmflow uses it for its built-in actions, tests use it too.
func InProcess(p *Plugin) (protocol.Conn, error) {
	s := &server{p: p}
	if _, err := s.Describe(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

type server struct {
	p      *Plugin
	schema *protocol.Schema
	env    Env
}

func (s *server) Describe(context.Context) (*protocol.Schema, error) {
	if s.schema != nil {
		return s.schema, nil
	}
	schema := &protocol.Schema{Name: s.p.Name, Version: s.p.Version, Description: s.p.Description, Config: toAttributes(s.p.Config)}
	for _, a := range s.p.Actions {
		if a.Run == nil {
			return nil, fmt.Errorf("plugin %s: action %s has no Run", s.p.Name, a.Name)
		}
		schema.Actions = append(schema.Actions, protocol.Action{
			Name: a.Name, Description: a.Description,
			Inputs: toAttributes(a.Inputs), Outputs: toAttributes(a.Outputs),
			HasUndo: a.Undo != nil, Interactive: a.Interactive, Timeout: a.Timeout,
		})
	}
	if err := schema.Check(); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", s.p.Name, err)
	}
	s.schema = schema
	return schema, nil
}

func (s *server) find(name string) (*Action, *protocol.Action, error) {
	for i, a := range s.p.Actions {
		if a.Name == name {
			return a, &s.schema.Actions[i], nil
		}
	}
	return nil, nil, fmt.Errorf("plugin %s has no action %q", s.p.Name, name)
}

// call runs fn, turning its error and any panic into diagnostics.
func call(fn func() error) (diags protocol.Diagnostics) {
	defer func() {
		if p := recover(); p != nil {
			diags = protocol.Diagnostics{{Severity: protocol.Error, Summary: fmt.Sprintf("plugin panicked: %v", p), Detail: string(debug.Stack())}}
		}
	}()
	return toDiagnostics(fn())
}

func (s *server) Configure(ctx context.Context, config cty.Value, env Env) (protocol.Diagnostics, error) {
	s.env = env
	cfg, err := s.schema.Config.ApplyDefaults(config)
	if err != nil {
		return toDiagnostics(err), nil
	}
	if s.p.Configure == nil {
		return nil, nil
	}
	r := &Request{Env: env, inputs: cfg}
	return call(func() error { return s.p.Configure(ctx, r) }), nil
}

func (s *server) request(a *protocol.Action, inputs cty.Value, runID, step string, emit func(protocol.Event)) *Request {
	return &Request{RunID: runID, Step: step, Env: s.env, action: a, inputs: inputs, emit: emit, plugin: s.p.Name}
}

func (s *server) Validate(ctx context.Context, action string, inputs cty.Value) (protocol.Diagnostics, error) {
	a, pa, err := s.find(action)
	if err != nil {
		return nil, err
	}
	if a.Validate == nil {
		return nil, nil
	}
	r := s.request(pa, inputs, "", "", nil)
	return call(func() error { return a.Validate(ctx, r) }), nil
}

func (s *server) Plan(ctx context.Context, action string, inputs cty.Value) ([]string, protocol.Diagnostics, error) {
	a, pa, err := s.find(action)
	if err != nil {
		return nil, nil, err
	}
	if a.Plan == nil {
		return nil, nil, nil
	}
	r := s.request(pa, inputs, "", "", nil)
	var lines []string
	diags := call(func() error {
		var err error
		lines, err = a.Plan(ctx, r)
		return err
	})
	return lines, diags, nil
}

func (s *server) Run(ctx context.Context, req protocol.RunRequest, emit func(protocol.Event)) (cty.Value, protocol.Diagnostics, error) {
	a, pa, err := s.find(req.Action)
	if err != nil {
		return cty.NilVal, nil, err
	}
	// vmflow's engine sent the inputs with their defaults filled
	// already; this is kept on purpose: the SDK serves any caller of the
	// protocol (an older vmflow, a test harness, a host of another
	// kind), and an undo's inputs come from a journal that may predate a
	// default the action has since gained.
	in, err := pa.Inputs.ApplyDefaults(req.Inputs)
	if err != nil {
		return cty.NilVal, toDiagnostics(err), nil
	}
	r := s.request(pa, in, req.RunID, req.Step, emit)
	r.timeout, r.start = req.Timeout, time.Now()
	if diags := call(func() error { return a.Run(ctx, r) }); diags.HasErrors() {
		return cty.NilVal, diags, nil
	}
	return r.outputValue(), nil, nil
}

func (s *server) Undo(ctx context.Context, req protocol.UndoRequest, emit func(protocol.Event)) (protocol.Diagnostics, error) {
	a, pa, err := s.find(req.Action)
	if err != nil {
		return nil, err
	}
	if a.Undo == nil {
		return nil, nil
	}
	in, err := pa.Inputs.ApplyDefaults(req.Inputs)
	if err != nil {
		return toDiagnostics(err), nil
	}
	r := s.request(pa, in, req.RunID, req.Step, emit)
	r.outputs = req.Outputs
	r.timeout, r.start = req.Timeout, time.Now()
	if req.Outputs == cty.NilVal || req.Outputs.IsNull() {
		// The step's Run never completed: vmflow was killed during it, and
		// vmflow resume --undo rolls the run back. Only an action that
		// claimed something in that attempt can know what it left; one
		// that claimed nothing is not asked.
		if !r.hasClaims() {
			return nil, nil
		}
		r.interrupted = true
	}
	return call(func() error { return a.Undo(ctx, r) }), nil
}
