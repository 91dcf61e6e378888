package sdk

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/vmflow/vmflow/core/protocol"
)

// Env tells a plugin where it runs.
type Env = protocol.Env

// Request is one call of an action (Run, Undo or Validate) or of Configure.
// Its getters read the inputs; during Validate, inputs that depend on
// earlier steps are not known yet (see Known) and read as zero values.
type Request struct {
	// RunID and Step name the run and the step this call belongs to; empty
	// during Validate and Configure.
	RunID string
	Step  string
	// Env is the state and work directory vmflow gave the plugin.
	Env Env

	action  *protocol.Action
	inputs  cty.Value
	outputs cty.Value // Undo: what Run returned
	plugin  string    // the plugin's name, for its claims
	// interrupted: an Undo of a step whose Run never completed.
	interrupted bool
	// timeout: the limit vmflow put on this call (0: none), from start.
	timeout time.Duration
	start   time.Time

	emit func(protocol.Event)

	mu  sync.Mutex
	set map[string]cty.Value

	logOnce sync.Once
	logger  hclog.Logger
}

// Deadline is when this call should give up (from the step's timeout, or
// the action's default), and false when there is no limit. vmflow
// enforces the limit itself by cancelling ctx; the deadline comes a
// little before that (a tenth of the limit, at most five seconds), so
// that an action that watches it can fail with its own message ("no
// address after 3m0s: no DHCP lease, …"), and hand a matching limit on to
// what it drives (a guest agent's command timeout, a remote API's).
func (r *Request) Deadline() (time.Time, bool) {
	if r.timeout <= 0 {
		return time.Time{}, false
	}
	margin := min(r.timeout/10, 5*time.Second)
	return r.start.Add(r.timeout - margin), true
}

// Timeout is the limit vmflow put on this call (0: none): the step's
// timeout, or the action's default.
func (r *Request) Timeout() time.Duration { return r.timeout }

func (r *Request) attr(name string) cty.Value {
	if !r.inputs.IsKnown() || r.inputs.IsNull() || !r.inputs.Type().IsObjectType() || !r.inputs.Type().HasAttribute(name) {
		panic(fmt.Sprintf("sdk: %q is not an input of this action", name))
	}
	return r.inputs.GetAttr(name)
}

// Value returns an input as a cty value.
func (r *Request) Value(name string) cty.Value { return r.attr(name) }

// Known reports whether an input's value is known (always true during Run).
func (r *Request) Known(name string) bool { return r.attr(name).IsWhollyKnown() }

// IsSet reports whether an input is set (not null).
func (r *Request) IsSet(name string) bool { return !r.attr(name).IsNull() }

// primitive returns an input converted to ty, or false when it is unset,
// unknown or not convertible.
func (r *Request) primitive(name string, ty cty.Type) (cty.Value, bool) {
	v := r.attr(name)
	if v.IsNull() || !v.IsKnown() {
		return v, false
	}
	v, err := convert.Convert(v, ty)
	return v, err == nil && !v.IsNull()
}

// String returns a string input; "" when unset or unknown.
func (r *Request) String(name string) string {
	if v, ok := r.primitive(name, cty.String); ok {
		return v.AsString()
	}
	return ""
}

// Int returns a whole-number input; 0 when unset or unknown.
func (r *Request) Int(name string) int64 {
	if v, ok := r.primitive(name, cty.Number); ok {
		i, _ := v.AsBigFloat().Int64()
		return i
	}
	return 0
}

// Float returns a number input; 0 when unset or unknown.
func (r *Request) Float(name string) float64 {
	if v, ok := r.primitive(name, cty.Number); ok {
		f, _ := v.AsBigFloat().Float64()
		return f
	}
	return 0
}

// Bool returns a bool input; false when unset or unknown.
func (r *Request) Bool(name string) bool {
	if v, ok := r.primitive(name, cty.Bool); ok {
		return v.True()
	}
	return false
}

// Strings returns a list-of-strings input; nil when unset or not known.
func (r *Request) Strings(name string) []string {
	var out []string
	if err := r.Decode(name, &out); err != nil {
		return nil
	}
	return out
}

// StringMap returns a map-of-strings input; nil when unset or not known.
func (r *Request) StringMap(name string) map[string]string {
	var out map[string]string
	if err := r.Decode(name, &out); err != nil {
		return nil
	}
	return out
}

// Decode stores an input into the Go value target points to (structs use
// `cty:"name"` field tags). An unset input leaves target alone.
func (r *Request) Decode(name string, target any) error {
	return decodeValue(r.attr(name), target)
}

func decodeValue(v cty.Value, target any) error {
	if v.IsNull() {
		return nil
	}
	if !v.IsWhollyKnown() {
		return fmt.Errorf("value is not known yet")
	}
	return gocty.FromCtyValue(v, target)
}

// Output returns one of the outputs the action's Run produced; for Undo.
func (r *Request) Output(name string) cty.Value {
	if r.outputs == cty.NilVal || r.outputs.IsNull() || !r.outputs.Type().HasAttribute(name) {
		return cty.NilVal
	}
	return r.outputs.GetAttr(name)
}

// OutputString returns a string output of the action's Run; for Undo.
func (r *Request) OutputString(name string) string {
	v := r.Output(name)
	if v == cty.NilVal || v.IsNull() || v.Type() != cty.String {
		return ""
	}
	return v.AsString()
}

// Set records an output. v is a Go value or a cty.Value; it must fit the
// declared output type.
func (r *Request) Set(name string, v any) error {
	if r.action == nil {
		return fmt.Errorf("sdk: Set(%q) outside Run", name)
	}
	attr, ok := r.action.Outputs.Get(name)
	if !ok {
		return fmt.Errorf("sdk: action %s declares no output %q", r.action.Name, name)
	}
	cv, ok := v.(cty.Value)
	if !ok {
		var err error
		// gocty cannot encode into a dynamic type; infer it from v first.
		ty := attr.Type
		if ty == cty.DynamicPseudoType {
			if ty, err = gocty.ImpliedType(v); err != nil {
				return fmt.Errorf("sdk: output %s: %w", name, err)
			}
		}
		if cv, err = gocty.ToCtyValue(v, ty); err != nil {
			return fmt.Errorf("sdk: output %s: %w", name, err)
		}
	}
	cv, err := convert.Convert(cv, attr.Type)
	if err != nil {
		return fmt.Errorf("sdk: output %s: %w", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set == nil {
		r.set = map[string]cty.Value{}
	}
	r.set[name] = cv
	return nil
}

func (r *Request) outputValue() cty.Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	vals := make(map[string]cty.Value, len(r.action.Outputs))
	for _, o := range r.action.Outputs {
		if v, ok := r.set[o.Name]; ok {
			vals[o.Name] = v
		} else {
			vals[o.Name] = cty.NullVal(o.Type)
		}
	}
	if len(vals) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(vals)
}

// Log writes an info line to the step's log.
func (r *Request) Log(format string, args ...any) {
	r.send(protocol.Event{Kind: protocol.EventLog, Level: "info", Message: fmt.Sprintf(format, args...)})
}

// Progress reports progress: current of total, with a label ("copying",
// "building"). total 0 means unknown.
func (r *Request) Progress(current, total int64, label string) {
	r.send(protocol.Event{Kind: protocol.EventProgress, Current: current, Total: total, Label: label})
}

func (r *Request) send(e protocol.Event) {
	if r.emit != nil {
		r.emit(e)
	}
}

// Logger returns an hclog logger whose lines reach vmflow's log tagged
// with this step.
func (r *Request) Logger() hclog.Logger {
	r.logOnce.Do(func() {
		il := hclog.NewInterceptLogger(&hclog.LoggerOptions{Output: io.Discard, Level: logLevel()})
		il.RegisterSink(sink{r})
		r.logger = il
	})
	return r.logger
}

type sink struct{ r *Request }

func (s sink) Accept(name string, level hclog.Level, msg string, args ...interface{}) {
	if level < logLevel() {
		return
	}
	fields := make([]string, 0, len(args)+2)
	if name != "" {
		fields = append(fields, "logger", name)
	}
	for i := 0; i+1 < len(args); i += 2 {
		fields = append(fields, fmt.Sprint(args[i]), fmt.Sprint(args[i+1]))
	}
	s.r.send(protocol.Event{Kind: protocol.EventLog, Level: level.String(), Message: msg, Fields: fields})
}
