package sdk

import (
	"fmt"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/vmflow/vmflow/core/protocol"
)

// Type is the type of an attribute's value (a cty type).
type Type = cty.Type

// The types an attribute can have.
var (
	TypeString = cty.String
	TypeNumber = cty.Number
	TypeBool   = cty.Bool
	// TypeAny accepts any value; the plugin receives it as it was written.
	TypeAny = cty.DynamicPseudoType
)

// ListOf is a list whose elements all have type t.
func ListOf(t Type) Type { return cty.List(t) }

// MapOf is a map from strings to values of type t.
func MapOf(t Type) Type { return cty.Map(t) }

// ObjectOf is an object with the given attribute types.
func ObjectOf(attrs map[string]Type) Type { return cty.Object(attrs) }

// Attr declares one input, output or config attribute. Build it with
// String, Number, Bool, StringList, StringMap or Attribute, then chain
// Required, Default or Sensitive.
type Attr struct{ a protocol.Attribute }

// Attribute declares an attribute of any type.
func Attribute(name string, t Type, description string) Attr {
	return Attr{protocol.Attribute{Name: name, Type: t, Description: description}}
}

// String declares a string attribute.
func String(name, description string) Attr { return Attribute(name, TypeString, description) }

// Number declares a number attribute.
func Number(name, description string) Attr { return Attribute(name, TypeNumber, description) }

// Bool declares a bool attribute.
func Bool(name, description string) Attr { return Attribute(name, TypeBool, description) }

// StringList declares a list(string) attribute.
func StringList(name, description string) Attr {
	return Attribute(name, ListOf(TypeString), description)
}

// StringMap declares a map(string) attribute.
func StringMap(name, description string) Attr {
	return Attribute(name, MapOf(TypeString), description)
}

// Required marks an input as required.
func (a Attr) Required() Attr { a.a.Required = true; return a }

// Sensitive keeps the value out of logs, plans and journals.
func (a Attr) Sensitive() Attr { a.a.Sensitive = true; return a }

// Default sets the value used when an optional input is not given. v is a
// Go value (string, int, bool, []string, map[string]string…) or a cty.Value.
// It panics when v does not fit the attribute's type: that is a bug in the
// plugin, found the first time it starts.
func (a Attr) Default(v any) Attr {
	cv, ok := v.(cty.Value)
	if !ok {
		var err error
		if cv, err = gocty.ToCtyValue(v, a.a.Type); err != nil {
			panic(fmt.Sprintf("sdk: default of %s: %v", a.a.Name, err))
		}
	}
	a.a.Default = cv
	return a
}

func toAttributes(as []Attr) protocol.Attributes {
	out := make(protocol.Attributes, len(as))
	for i, a := range as {
		out[i] = a.a
	}
	return out
}
