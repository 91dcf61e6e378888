package protocol_test

import (
	"context"
	"errors"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
)

// serve connects a gRPC client to an SDK plugin over a real socket, as
// vmflow and a plugin process talk, but in one test process.
func serve(t *testing.T, p *sdk.Plugin) protocol.Conn {
	t.Helper()
	impl, err := sdk.InProcess(p)
	if err != nil {
		t.Fatal(err)
	}
	client, _ := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{
		protocol.PluginKey: &protocol.GRPCPlugin{Impl: impl},
	})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(protocol.PluginKey)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(protocol.Conn)
}

var started = make(chan struct{}, 1)

func testPlugin() *sdk.Plugin {
	return &sdk.Plugin{
		Name: "wire", Version: "2.0.0", Description: "wire test",
		Config: []sdk.Attr{sdk.String("uri", "where").Default("test:///default")},
		Configure: func(ctx context.Context, r *sdk.Request) error {
			if r.String("uri") == "bad" {
				return sdk.ArgError("uri", "unsupported uri")
			}
			return nil
		},
		Actions: []*sdk.Action{{
			Name: "make",
			Inputs: []sdk.Attr{
				sdk.String("name", "the name").Required(),
				sdk.StringList("tags", "tags"),
				sdk.Attribute("disks", sdk.ListOf(sdk.ObjectOf(map[string]sdk.Type{"size": sdk.TypeNumber})), "disks"),
				sdk.Number("sleep_ms", "").Default(0),
			},
			Outputs: []sdk.Attr{sdk.String("id", "the id"), sdk.Attribute("echo", sdk.TypeAny, "")},
			Validate: func(ctx context.Context, r *sdk.Request) error {
				var errs []error
				if !r.Known("name") {
					errs = append(errs, errors.New("name should be known in this test"))
				}
				if r.Known("disks") && r.IsSet("disks") {
					var disks []struct {
						Size int `cty:"size"`
					}
					if err := r.Decode("disks", &disks); err != nil {
						return err
					}
					for i, d := range disks {
						if d.Size <= 0 {
							errs = append(errs, sdk.ArgPathError(cty.GetAttrPath("disks").IndexInt(i).GetAttr("size"), "must be positive"))
						}
					}
				}
				return errors.Join(errs...)
			},
			Run: func(ctx context.Context, r *sdk.Request) error {
				r.Progress(1, 2, "half")
				r.Logger().Info("made", "name", r.String("name"))
				if ms := r.Int("sleep_ms"); ms > 0 {
					started <- struct{}{}
					select {
					case <-time.After(time.Duration(ms) * time.Millisecond):
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				if err := r.Set("echo", r.Value("tags")); err != nil {
					return err
				}
				return r.Set("id", "id-"+r.String("name"))
			},
			Undo: func(ctx context.Context, r *sdk.Request) error {
				if r.OutputString("id") != "id-"+r.String("name") {
					return errors.New("undo did not get the outputs")
				}
				return nil
			},
		}},
	}
}

func inputs(name cty.Value, disks cty.Value) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{
		"name":     name,
		"tags":     cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")}),
		"disks":    disks,
		"sleep_ms": cty.Zero,
	})
}

func TestSchemaCrossesTheWire(t *testing.T) {
	c := serve(t, testPlugin())
	s, err := c.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "wire" || s.Version != "2.0.0" || s.Description != "wire test" {
		t.Fatalf("schema header %+v", s)
	}
	a, ok := s.Action("make")
	if !ok || !a.HasUndo {
		t.Fatalf("action make: %+v", a)
	}
	name, _ := a.Inputs.Get("name")
	if !name.Required || name.Type != cty.String || name.Description != "the name" {
		t.Fatalf("name attr %+v", name)
	}
	disks, _ := a.Inputs.Get("disks")
	if !disks.Type.Equals(cty.List(cty.Object(map[string]cty.Type{"size": cty.Number}))) {
		t.Fatalf("disks type %#v", disks.Type)
	}
	uri, _ := s.Config.Get("uri")
	if uri.Default.AsString() != "test:///default" {
		t.Fatalf("config default %#v", uri.Default)
	}
}

func TestConfigureDiagnostics(t *testing.T) {
	c := serve(t, testPlugin())
	ds, err := c.Configure(context.Background(), cty.ObjectVal(map[string]cty.Value{"uri": cty.StringVal("bad")}), protocol.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Summary != "unsupported uri" || protocol.FormatPath(ds[0].Path) != "uri" {
		t.Fatalf("diags %+v", ds)
	}
}

func TestValidateWithUnknownsAndPaths(t *testing.T) {
	c := serve(t, testPlugin())
	disks := cty.ListVal([]cty.Value{
		cty.ObjectVal(map[string]cty.Value{"size": cty.NumberIntVal(10)}),
		cty.ObjectVal(map[string]cty.Value{"size": cty.NumberIntVal(-1)}),
	})
	ds, err := c.Validate(context.Background(), "make", inputs(cty.StringVal("x"), disks))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || protocol.FormatPath(ds[0].Path) != "disks[1].size" || ds[0].Summary != "must be positive" {
		t.Fatalf("diags %+v", ds)
	}
	// An unknown value (an earlier step's output) survives the trip.
	ds, err = c.Validate(context.Background(), "make", inputs(cty.UnknownVal(cty.String), cty.UnknownVal(disks.Type())))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Summary != "name should be known in this test" {
		t.Fatalf("diags %+v", ds)
	}
}

func TestRunStreamsEventsAndOutputs(t *testing.T) {
	c := serve(t, testPlugin())
	var events []protocol.Event
	in := inputs(cty.StringVal("vm1"), cty.NullVal(cty.List(cty.Object(map[string]cty.Type{"size": cty.Number}))))
	out, ds, err := c.Run(context.Background(), protocol.RunRequest{Action: "make", Inputs: in, Step: "s"}, func(e protocol.Event) { events = append(events, e) })
	if err != nil || ds.HasErrors() {
		t.Fatal(err, ds)
	}
	if out.GetAttr("id").AsString() != "id-vm1" {
		t.Fatalf("outputs %#v", out)
	}
	if echo := out.GetAttr("echo"); echo.LengthInt() != 2 {
		t.Fatalf("dynamic output %#v", echo)
	}
	if len(events) != 2 || events[0].Kind != protocol.EventProgress || events[0].Label != "half" ||
		events[1].Kind != protocol.EventLog || events[1].Message != "made" || events[1].Fields[1] != "vm1" {
		t.Fatalf("events %+v", events)
	}
	ds, err = c.Undo(context.Background(), protocol.UndoRequest{Action: "make", Inputs: in, Outputs: out}, func(protocol.Event) {})
	if err != nil || ds.HasErrors() {
		t.Fatal(err, ds)
	}
}

func TestCancelReachesTheActionAndWaitsForIt(t *testing.T) {
	c := serve(t, testPlugin())
	in := cty.ObjectVal(map[string]cty.Value{
		"name": cty.StringVal("slow"), "tags": cty.NullVal(cty.List(cty.String)),
		"disks":    cty.NullVal(cty.List(cty.Object(map[string]cty.Type{"size": cty.Number}))),
		"sleep_ms": cty.NumberIntVal(60000),
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	begin := time.Now()
	_, ds, err := c.Run(ctx, protocol.RunRequest{Action: "make", Inputs: in}, func(protocol.Event) {})
	if err != nil {
		t.Fatalf("call error %v: a cancelled call should end with the action's own result", err)
	}
	if !ds.HasErrors() || ds[0].Summary != "context canceled" {
		t.Fatalf("diags %+v", ds)
	}
	if time.Since(begin) > 10*time.Second {
		t.Fatal("cancel did not reach the action")
	}
}

// A limit vmflow puts on a call stays vmflow's: the plugin is cancelled
// when it passes, but gets no deadline of its own, so its timer cannot
// end the call first and the caller always knows its limit ended it.
// (Once the deadline crossed, the plugin's side sometimes fired first on
// a busy machine, and "it did not finish configuring within 2s" came out
// as a bare "rpc error: code = DeadlineExceeded".)
func TestCallLimitsStayOnTheCallersSide(t *testing.T) {
	sawDeadline := make(chan bool, 1)
	p := testPlugin()
	p.Configure = func(ctx context.Context, r *sdk.Request) error {
		_, ok := ctx.Deadline()
		sawDeadline <- ok
		<-ctx.Done()
		return ctx.Err()
	}
	c := serve(t, p)
	cfg := cty.ObjectVal(map[string]cty.Value{"uri": cty.StringVal("x")})
	limit := errors.New("the caller's limit")
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithTimeoutCause(context.Background(), 20*time.Millisecond, limit)
		_, err := c.Configure(ctx, cfg, protocol.Env{})
		cause := context.Cause(ctx)
		cancel()
		if err == nil {
			t.Fatal("a Configure that never returns succeeded")
		}
		if !errors.Is(cause, limit) {
			t.Fatalf("call %d ended (%v) before the caller's limit had passed", i, err)
		}
		if <-sawDeadline {
			t.Fatalf("call %d: the plugin got the caller's deadline", i)
		}
	}
}
