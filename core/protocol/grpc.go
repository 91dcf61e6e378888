package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/zclconf/go-cty/cty"
	"google.golang.org/grpc"

	"github.com/vmflow/vmflow/core/protocol/pb"
)

// Version is the plugin protocol version this build speaks.
const Version = 1

// PluginKey is the name under which the plugin is dispensed.
const PluginKey = "vmflow"

// Handshake is shared by vmflow and every plugin. The magic cookie only
// stops a user from running a plugin binary by hand by mistake; it is not a
// security measure.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  Version,
	MagicCookieKey:   "VMFLOW_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "b6e2f4b1c0a24c9c9d3f7e6a1f5d8c27",
}

// LifelineEnv names the environment variable that tells a plugin which file
// descriptor is its lifeline: the read end of a pipe whose write end only
// vmflow holds. When vmflow dies, even by SIGKILL, the pipe reports EOF and
// the plugin exits.
const LifelineEnv = "VMFLOW_PLUGIN_LIFELINE_FD"

// ExeFDEnv names the file descriptor through which vmflow executed the
// plugin binary it had hashed (see host.StartChecked), open in the
// plugin; the SDK closes it.
const ExeFDEnv = "VMFLOW_PLUGIN_EXE_FD"

// LogLevelEnv tells a plugin the hclog level vmflow wants from it.
const LogLevelEnv = "VMFLOW_PLUGIN_LOG_LEVEL"

// PluginSets returns the versioned plugin sets for go-plugin, serving impl
// (nil on the host side).
func PluginSets(impl Conn) map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{
		Version: {PluginKey: &GRPCPlugin{Impl: impl}},
	}
}

// GRPCPlugin adapts a Conn to go-plugin's gRPC transport.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Conn
}

// GRPCServer registers the plugin service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a Conn that talks to the remote plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &GRPCClient{c: pb.NewPluginClient(c)}, nil
}

// ---- server side ----

type grpcServer struct {
	pb.UnimplementedPluginServer
	impl Conn

	callsMu sync.Mutex
	calls   map[string]context.CancelFunc

	once   sync.Once
	schema *Schema
	err    error
}

// track gives a call its own cancellable context, registered under its id
// for Cancel.
func (s *grpcServer) track(parent context.Context, id string) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	if id == "" {
		return ctx, cancel
	}
	s.callsMu.Lock()
	if s.calls == nil {
		s.calls = map[string]context.CancelFunc{}
	}
	s.calls[id] = cancel
	s.callsMu.Unlock()
	return ctx, func() {
		s.callsMu.Lock()
		delete(s.calls, id)
		s.callsMu.Unlock()
		cancel()
	}
}

func (s *grpcServer) Cancel(_ context.Context, req *pb.CancelRequest) (*pb.CancelResponse, error) {
	s.callsMu.Lock()
	cancel, ok := s.calls[req.CallId]
	s.callsMu.Unlock()
	if ok {
		cancel()
	}
	return &pb.CancelResponse{Found: ok}, nil
}

func (s *grpcServer) getSchema(ctx context.Context) (*Schema, error) {
	s.once.Do(func() { s.schema, s.err = s.impl.Describe(ctx) })
	return s.schema, s.err
}

func (s *grpcServer) action(ctx context.Context, name string) (*Action, error) {
	schema, err := s.getSchema(ctx)
	if err != nil {
		return nil, err
	}
	a, ok := schema.Action(name)
	if !ok {
		return nil, fmt.Errorf("plugin %s has no action %q", schema.Name, name)
	}
	return a, nil
}

// actionInputs finds an action and decodes the inputs a call sends it.
func (s *grpcServer) actionInputs(ctx context.Context, name string, raw *pb.DynamicValue) (*Action, cty.Value, error) {
	a, err := s.action(ctx, name)
	if err != nil {
		return nil, cty.NilVal, err
	}
	in, err := DecodeValue(raw, a.Inputs.ObjectType())
	if err != nil {
		return nil, cty.NilVal, fmt.Errorf("decoding inputs: %w", err)
	}
	return a, in, nil
}

func (s *grpcServer) Describe(ctx context.Context, _ *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	schema, err := s.getSchema(ctx)
	if err != nil {
		return nil, err
	}
	return SchemaToPB(schema)
}

func (s *grpcServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	schema, err := s.getSchema(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := DecodeValue(req.Config, schema.Config.ObjectType())
	if err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	diags, err := s.impl.Configure(ctx, cfg, Env{StateDir: req.StateDir, WorkDir: req.WorkDir})
	if err != nil {
		return nil, err
	}
	return &pb.ConfigureResponse{Diagnostics: DiagnosticsToPB(diags)}, nil
}

func (s *grpcServer) Validate(ctx context.Context, req *pb.ValidateRequest) (*pb.ValidateResponse, error) {
	_, in, err := s.actionInputs(ctx, req.Action, req.Inputs)
	if err != nil {
		return nil, err
	}
	diags, err := s.impl.Validate(ctx, req.Action, in)
	if err != nil {
		return nil, err
	}
	return &pb.ValidateResponse{Diagnostics: DiagnosticsToPB(diags)}, nil
}

func (s *grpcServer) Plan(ctx context.Context, req *pb.PlanRequest) (*pb.PlanResponse, error) {
	_, in, err := s.actionInputs(ctx, req.Action, req.Inputs)
	if err != nil {
		return nil, err
	}
	lines, diags, err := s.impl.Plan(ctx, req.Action, in)
	if err != nil {
		return nil, err
	}
	return &pb.PlanResponse{Lines: lines, Diagnostics: DiagnosticsToPB(diags)}, nil
}

type eventSender interface{ Send(*pb.Event) error }

// streamEmitter serialises events from any goroutine of the action onto
// the stream.
func streamEmitter(stream eventSender) (func(Event), *sync.Mutex) {
	var mu sync.Mutex
	return func(e Event) {
		var ev *pb.Event
		switch e.Kind {
		case EventLog:
			ev = &pb.Event{Event: &pb.Event_Log{Log: &pb.Log{Level: e.Level, Message: e.Message, Fields: e.Fields}}}
		case EventProgress:
			ev = &pb.Event{Event: &pb.Event_Progress{Progress: &pb.Progress{Current: e.Current, Total: e.Total, Label: e.Label}}}
		default:
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_ = stream.Send(ev)
	}, &mu
}

func (s *grpcServer) Run(req *pb.RunRequest, stream pb.Plugin_RunServer) error {
	ctx, done := s.track(stream.Context(), req.CallId)
	defer done()
	a, in, err := s.actionInputs(ctx, req.Action, req.Inputs)
	if err != nil {
		return err
	}
	emit, mu := streamEmitter(stream)
	out, diags, err := s.impl.Run(ctx, RunRequest{Action: req.Action, Inputs: in, RunID: req.RunId, Step: req.Step, Timeout: time.Duration(req.TimeoutMs) * time.Millisecond}, emit)
	if err != nil {
		return err
	}
	res := &pb.Result{Diagnostics: DiagnosticsToPB(diags)}
	if !diags.HasErrors() {
		if res.Outputs, err = EncodeValue(out, a.Outputs.ObjectType()); err != nil {
			return fmt.Errorf("encoding outputs of %s: %w", req.Action, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return stream.Send(&pb.Event{Event: &pb.Event_Result{Result: res}})
}

func (s *grpcServer) Undo(req *pb.UndoRequest, stream pb.Plugin_UndoServer) error {
	ctx, done := s.track(stream.Context(), req.CallId)
	defer done()
	a, in, err := s.actionInputs(ctx, req.Action, req.Inputs)
	if err != nil {
		return err
	}
	out, err := DecodeValue(req.Outputs, a.Outputs.ObjectType())
	if err != nil {
		return fmt.Errorf("decoding outputs: %w", err)
	}
	emit, mu := streamEmitter(stream)
	diags, err := s.impl.Undo(ctx, UndoRequest{Action: req.Action, Inputs: in, Outputs: out, RunID: req.RunId, Step: req.Step, Timeout: time.Duration(req.TimeoutMs) * time.Millisecond}, emit)
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	return stream.Send(&pb.Event{Event: &pb.Event_Result{Result: &pb.Result{Diagnostics: DiagnosticsToPB(diags)}}})
}

// ---- client side ----

// GRPCClient is the host's view of a plugin process.
type GRPCClient struct {
	c pb.PluginClient

	mu     sync.Mutex
	schema *Schema
}

var _ Conn = (*GRPCClient)(nil)

// unary is ctx for one unary call without its deadline, which gRPC would
// send on to the plugin: the plugin's timer could then end the call a
// moment before the caller's, with an error the caller cannot tell from
// any other. The caller's deadline (or its cancel) cancels the call
// instead, and has always passed by the time the call returns so.
// Streams (Run, Undo) keep their own timing (stream).
func unary(ctx context.Context) (context.Context, context.CancelFunc) {
	uctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	return uctx, func() { stop(); cancel(nil) }
}

// Describe fetches and caches the plugin's schema.
func (c *GRPCClient) Describe(ctx context.Context) (*Schema, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.schema != nil {
		return c.schema, nil
	}
	uctx, done := unary(ctx)
	resp, err := c.c.Describe(uctx, &pb.DescribeRequest{})
	done()
	if err != nil {
		return nil, err
	}
	s, err := SchemaFromPB(resp)
	if err != nil {
		return nil, err
	}
	c.schema = s
	return s, nil
}

func (c *GRPCClient) action(ctx context.Context, name string) (*Schema, *Action, error) {
	s, err := c.Describe(ctx)
	if err != nil {
		return nil, nil, err
	}
	a, ok := s.Action(name)
	if !ok {
		return nil, nil, fmt.Errorf("plugin %s has no action %q", s.Name, name)
	}
	return s, a, nil
}

// Configure sends the plugin block's config.
func (c *GRPCClient) Configure(ctx context.Context, config cty.Value, env Env) (Diagnostics, error) {
	s, err := c.Describe(ctx)
	if err != nil {
		return nil, err
	}
	dv, err := EncodeValue(config, s.Config.ObjectType())
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	uctx, done := unary(ctx)
	resp, err := c.c.Configure(uctx, &pb.ConfigureRequest{Config: dv, StateDir: env.StateDir, WorkDir: env.WorkDir})
	done()
	if err != nil {
		return nil, err
	}
	return DiagnosticsFromPB(resp.Diagnostics), nil
}

// Validate asks the plugin to check one step's inputs.
func (c *GRPCClient) Validate(ctx context.Context, action string, inputs cty.Value) (Diagnostics, error) {
	_, a, err := c.action(ctx, action)
	if err != nil {
		return nil, err
	}
	dv, err := EncodeValue(inputs, a.Inputs.ObjectType())
	if err != nil {
		return nil, fmt.Errorf("encoding inputs: %w", err)
	}
	uctx, done := unary(ctx)
	resp, err := c.c.Validate(uctx, &pb.ValidateRequest{Action: action, Inputs: dv})
	done()
	if err != nil {
		return nil, err
	}
	return DiagnosticsFromPB(resp.Diagnostics), nil
}

// Plan asks the plugin what Run would do.
func (c *GRPCClient) Plan(ctx context.Context, action string, inputs cty.Value) ([]string, Diagnostics, error) {
	_, a, err := c.action(ctx, action)
	if err != nil {
		return nil, nil, err
	}
	dv, err := EncodeValue(inputs, a.Inputs.ObjectType())
	if err != nil {
		return nil, nil, fmt.Errorf("encoding inputs: %w", err)
	}
	uctx, done := unary(ctx)
	resp, err := c.c.Plan(uctx, &pb.PlanRequest{Action: action, Inputs: dv})
	done()
	if err != nil {
		return nil, nil, err
	}
	return resp.Lines, DiagnosticsFromPB(resp.Diagnostics), nil
}

type eventReceiver interface{ Recv() (*pb.Event, error) }

// ErrNoResult is returned when a plugin ends a stream without a result.
var ErrNoResult = errors.New("the plugin ended the call without a result")

func receive(stream eventReceiver, emit func(Event)) (*pb.Result, error) {
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			return nil, ErrNoResult
		}
		if err != nil {
			return nil, err
		}
		switch e := ev.Event.(type) {
		case *pb.Event_Log:
			emit(Event{Kind: EventLog, Level: e.Log.Level, Message: e.Log.Message, Fields: e.Log.Fields})
		case *pb.Event_Progress:
			emit(Event{Kind: EventProgress, Current: e.Progress.Current, Total: e.Progress.Total, Label: e.Progress.Label})
		case *pb.Event_Result:
			return e.Result, nil
		}
	}
}

// CancelGrace is how long a cancelled call may take to wind down before
// vmflow drops the connection to it.
var CancelGrace = 30 * time.Second

var callSeq atomic.Uint64

// stream opens a Run or Undo stream and reads it to its result. When ctx
// is cancelled it asks the plugin to cancel the call and keeps reading, so
// the call ends only once the action has returned (or after CancelGrace).
func (c *GRPCClient) stream(ctx context.Context, open func(ctx context.Context, callID string) (eventReceiver, error), emit func(Event)) (*pb.Result, error) {
	callID := fmt.Sprintf("%d-%d", os.Getpid(), callSeq.Add(1))
	sctx, hardCancel := context.WithCancel(context.Background())
	defer hardCancel()
	stream, err := open(sctx, callID)
	if err != nil {
		return nil, err
	}
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-finished:
			return
		case <-ctx.Done():
		}
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.c.Cancel(cctx, &pb.CancelRequest{CallId: callID})
		cancel()
		if err != nil {
			hardCancel()
			return
		}
		select {
		case <-finished:
		case <-time.After(CancelGrace):
			hardCancel()
		}
	}()
	return receive(stream, emit)
}

// Run runs an action and streams its events to emit.
func (c *GRPCClient) Run(ctx context.Context, req RunRequest, emit func(Event)) (cty.Value, Diagnostics, error) {
	_, a, err := c.action(ctx, req.Action)
	if err != nil {
		return cty.NilVal, nil, err
	}
	dv, err := EncodeValue(req.Inputs, a.Inputs.ObjectType())
	if err != nil {
		return cty.NilVal, nil, fmt.Errorf("encoding inputs: %w", err)
	}
	res, err := c.stream(ctx, func(sctx context.Context, id string) (eventReceiver, error) {
		return c.c.Run(sctx, &pb.RunRequest{Action: req.Action, Inputs: dv, RunId: req.RunID, Step: req.Step, CallId: id, TimeoutMs: req.Timeout.Milliseconds()})
	}, emit)
	if err != nil {
		return cty.NilVal, nil, err
	}
	diags := DiagnosticsFromPB(res.Diagnostics)
	if diags.HasErrors() {
		return cty.NilVal, diags, nil
	}
	out, err := DecodeValue(res.Outputs, a.Outputs.ObjectType())
	if err != nil {
		return cty.NilVal, nil, fmt.Errorf("decoding outputs: %w", err)
	}
	return out, diags, nil
}

// Undo undoes a completed action.
func (c *GRPCClient) Undo(ctx context.Context, req UndoRequest, emit func(Event)) (Diagnostics, error) {
	_, a, err := c.action(ctx, req.Action)
	if err != nil {
		return nil, err
	}
	in, err := EncodeValue(req.Inputs, a.Inputs.ObjectType())
	if err != nil {
		return nil, fmt.Errorf("encoding inputs: %w", err)
	}
	out, err := EncodeValue(req.Outputs, a.Outputs.ObjectType())
	if err != nil {
		return nil, fmt.Errorf("encoding outputs: %w", err)
	}
	res, err := c.stream(ctx, func(sctx context.Context, id string) (eventReceiver, error) {
		return c.c.Undo(sctx, &pb.UndoRequest{Action: req.Action, Inputs: in, Outputs: out, RunId: req.RunID, Step: req.Step, CallId: id, TimeoutMs: req.Timeout.Milliseconds()})
	}, emit)
	if err != nil {
		return nil, err
	}
	return DiagnosticsFromPB(res.Diagnostics), nil
}
