// Package protocol is the contract between vmflow and its plugins: the schema
// a plugin declares, the Conn interface both the gRPC client and in-process
// plugins implement, the go-plugin handshake, and the wire conversions.
package protocol

import (
	"fmt"
	"sort"
	"time"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Attribute is one typed input, output or config attribute.
type Attribute struct {
	Name        string
	Type        cty.Type
	Required    bool
	Description string
	Sensitive   bool
	// Default is used when the attribute is optional and not set. cty.NilVal
	// means no default (the value is null).
	Default cty.Value
}

// Attributes is an ordered attribute list; the order is the documentation
// order.
type Attributes []Attribute

// Get returns the attribute with the given name.
func (as Attributes) Get(name string) (Attribute, bool) {
	for _, a := range as {
		if a.Name == name {
			return a, true
		}
	}
	return Attribute{}, false
}

// Names returns the attribute names in declared order.
func (as Attributes) Names() []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Name
	}
	return out
}

// ObjectType is the cty object type holding every attribute.
func (as Attributes) ObjectType() cty.Type {
	m := make(map[string]cty.Type, len(as))
	for _, a := range as {
		m[a.Name] = a.Type
	}
	return cty.Object(m)
}

// Check validates the schema itself: names, types and defaults.
func (as Attributes) Check() error {
	seen := map[string]bool{}
	for _, a := range as {
		if !ValidName(a.Name) {
			return fmt.Errorf("attribute %q: name must be lower-case letters, digits and underscores, starting with a letter", a.Name)
		}
		if seen[a.Name] {
			return fmt.Errorf("attribute %q declared twice", a.Name)
		}
		seen[a.Name] = true
		if a.Type == cty.NilType {
			return fmt.Errorf("attribute %q has no type", a.Name)
		}
		if a.Default != cty.NilVal {
			if a.Required {
				return fmt.Errorf("attribute %q is required and has a default", a.Name)
			}
			if _, err := convert.Convert(a.Default, a.Type); err != nil {
				return fmt.Errorf("attribute %q: default: %v", a.Name, err)
			}
		}
	}
	return nil
}

// ApplyDefaults converts obj to the attributes' object type and fills unset
// optional attributes with their defaults. obj may lack attributes (they are
// treated as null) but must not carry unknown ones.
func (as Attributes) ApplyDefaults(obj cty.Value) (cty.Value, error) {
	vals := make(map[string]cty.Value, len(as))
	for _, a := range as {
		v := cty.NullVal(a.Type)
		if obj.IsKnown() && !obj.IsNull() && obj.Type().IsObjectType() && obj.Type().HasAttribute(a.Name) {
			v = obj.GetAttr(a.Name)
		}
		if v.IsNull() && a.Default != cty.NilVal {
			v = a.Default
		}
		cv, err := convert.Convert(v, a.Type)
		if err != nil {
			return cty.NilVal, fmt.Errorf("%s: %v", a.Name, err)
		}
		vals[a.Name] = cv
	}
	if len(vals) == 0 {
		return cty.EmptyObjectVal, nil
	}
	return cty.ObjectVal(vals), nil
}

// Action is what a plugin declares about one action.
type Action struct {
	Name        string
	Description string
	Inputs      Attributes
	Outputs     Attributes
	HasUndo     bool
	// Interactive actions use the user's terminal; vmflow runs them alone.
	Interactive bool
	// Timeout is how long a step of this action may run, and its undo
	// take, unless the step sets its own timeout; 0 means no limit.
	Timeout time.Duration
}

// Schema is what a plugin declares about itself.
type Schema struct {
	Name        string
	Version     string
	Description string
	Config      Attributes
	Actions     []Action
}

// Action returns the named action.
func (s *Schema) Action(name string) (*Action, bool) {
	for i := range s.Actions {
		if s.Actions[i].Name == name {
			return &s.Actions[i], true
		}
	}
	return nil, false
}

// ActionNames returns the sorted action names.
func (s *Schema) ActionNames() []string {
	out := make([]string, len(s.Actions))
	for i, a := range s.Actions {
		out[i] = a.Name
	}
	sort.Strings(out)
	return out
}

// Check validates the whole schema; plugins call it before serving.
func (s *Schema) Check() error {
	if !ValidName(s.Name) {
		return fmt.Errorf("plugin name %q: must be lower-case letters, digits, '_' or '-'", s.Name)
	}
	if err := s.Config.Check(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	seen := map[string]bool{}
	for _, a := range s.Actions {
		if !ValidName(a.Name) {
			return fmt.Errorf("action %q: name must be lower-case letters, digits and underscores", a.Name)
		}
		if seen[a.Name] {
			return fmt.Errorf("action %q declared twice", a.Name)
		}
		seen[a.Name] = true
		if a.Timeout < 0 {
			return fmt.Errorf("action %s: negative timeout %s", a.Name, a.Timeout)
		}
		if err := a.Inputs.Check(); err != nil {
			return fmt.Errorf("action %s: inputs: %w", a.Name, err)
		}
		for _, in := range a.Inputs {
			if ReservedInputs[in.Name] {
				return fmt.Errorf("action %s: input %q is reserved for vmflow's own step arguments", a.Name, in.Name)
			}
		}
		if err := a.Outputs.Check(); err != nil {
			return fmt.Errorf("action %s: outputs: %w", a.Name, err)
		}
		for _, o := range a.Outputs {
			if o.Required || o.Default != cty.NilVal {
				return fmt.Errorf("action %s: output %q cannot be required or have a default", a.Name, o.Name)
			}
		}
	}
	return nil
}

// ReservedInputs are step meta-arguments in task files; no action may
// declare inputs with these names.
var ReservedInputs = map[string]bool{"action": true, "depends_on": true, "if": true, "timeout": true, "commit": true}

// ValidName reports whether s is a valid plugin, action or attribute name:
// a lower-case letter, then lower-case letters, digits, '_' or '-'.
func ValidName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
