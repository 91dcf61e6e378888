package config

import (
	"fmt"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/lang"
)

// ArgError is a problem with the command-line arguments of a task.
type ArgError struct{ Msg string }

func (e *ArgError) Error() string { return e.Msg }

// Variadic reports whether the task's last param collects the remaining
// positional arguments (it is a list or set).
func (t *Task) Variadic() bool {
	if len(t.Params) == 0 {
		return false
	}
	ty := t.Params[len(t.Params)-1].Type
	return ty.IsListType() || ty.IsSetType()
}

// Usage renders the task's params: NAME [MEMORY] [PROFILES…].
func (t *Task) Usage() string {
	var parts []string
	for i, p := range t.Params {
		s := strings.ToUpper(p.Name)
		if i == len(t.Params)-1 && t.Variadic() {
			s += "…"
		}
		if !p.Required() {
			s = "[" + s + "]"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// BindArgs turns command-line arguments into the param.* object:
// positional arguments fill params in declared order (a trailing list param
// takes the rest), named ones (--memory 4096) fill the param of that name.
// Missing params take their defaults; a missing required param is an error.
func (t *Task) BindArgs(positional []string, named map[string]string) (cty.Value, error) {
	raw, err := t.SortArgs(positional, named)
	if err != nil {
		return cty.NilVal, err
	}
	return t.Bind(raw)
}

// SortArgs assigns command-line arguments to params: positional ones in
// declared order (a trailing list param takes the rest), named ones
// (--memory 4096) by name. The result maps each param given to its raw
// arguments; params not given are absent.
func (t *Task) SortArgs(positional []string, named map[string]string) (map[string][]string, error) {
	raw := map[string][]string{}
	for i, a := range positional {
		if i >= len(t.Params) {
			if t.Variadic() {
				last := t.Params[len(t.Params)-1].Name
				raw[last] = append(raw[last], a)
				continue
			}
			return nil, &ArgError{fmt.Sprintf("task %s takes at most %d argument(s) (%s), got %d: unexpected %q",
				t.Name, len(t.Params), t.Usage(), len(positional), a)}
		}
		raw[t.Params[i].Name] = append(raw[t.Params[i].Name], a)
	}
	for name, v := range named {
		p := t.Param(name)
		if p == nil {
			return nil, &ArgError{fmt.Sprintf("task %s has no param %q (params: %s)", t.Name, name, t.paramNames())}
		}
		if _, dup := raw[name]; dup {
			return nil, &ArgError{fmt.Sprintf("param %s given both by position and as --%s", name, name)}
		}
		raw[name] = []string{v}
	}
	return raw, nil
}

// Bind turns the raw arguments SortArgs sorted into the param.* object:
// ParseArgs, then BindValues.
func (t *Task) Bind(raw map[string][]string) (cty.Value, error) {
	given, err := t.ParseArgs(raw)
	if err != nil {
		return cty.NilVal, err
	}
	return t.BindValues(given)
}

// ParseArgs reads the raw arguments of each param given (ParseParam), in
// declared order; the first that is bad is the error.
func (t *Task) ParseArgs(raw map[string][]string) (map[string]cty.Value, error) {
	given := make(map[string]cty.Value, len(raw))
	for _, p := range t.Params {
		if rs, ok := raw[p.Name]; ok {
			v, err := t.ParseParam(p, rs)
			if err != nil {
				return nil, err
			}
			given[p.Name] = v
		}
	}
	return given, nil
}

// BindValues makes the param.* object of the values given, by param name
// (ParseArgs' result, with the wizard's answers): params not given take
// their defaults; a missing required param is an error.
func (t *Task) BindValues(given map[string]cty.Value) (cty.Value, error) {
	vals := make(map[string]cty.Value, len(t.Params))
	for _, p := range t.Params {
		v, ok := given[p.Name]
		if !ok {
			if p.Required() {
				return cty.NilVal, &ArgError{fmt.Sprintf("task %s: missing required param %s (usage: %s %s)", t.Name, p.Name, t.Name, t.Usage())}
			}
			v = p.Default
		}
		vals[p.Name] = v
	}
	return t.paramObject(vals), nil
}

// ParseParam reads one param's raw arguments (one, or a trailing list
// param's several) by the command-line rules of ParseValue, and checks the
// value against the param's options. Errors name the task and the param.
func (t *Task) ParseParam(p *Param, raw []string) (cty.Value, error) {
	v, err := parseArgs(raw, p.Type)
	if err == nil {
		err = p.CheckOptions(v)
	}
	if err != nil {
		return cty.NilVal, &ArgError{fmt.Sprintf("task %s: param %s: %v", t.Name, p.Name, err)}
	}
	return v, nil
}

// CheckOptions reports a value (or, for a list or set param, an element)
// that is not among the param's options.
func (p *Param) CheckOptions(v cty.Value) error {
	if p.Options == nil || v.IsNull() || !v.IsWhollyKnown() {
		return nil
	}
	elems := []cty.Value{v}
	if ty := v.Type(); ty.IsListType() || ty.IsSetType() || ty.IsTupleType() {
		elems = elems[:0]
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			elems = append(elems, ev)
		}
	}
	for _, ev := range elems {
		if !p.IsOption(ev) {
			return fmt.Errorf("%s is not one of its options: %s", lang.FormatValue(ev), p.optionList())
		}
	}
	return nil
}

// IsOption reports whether v is one of the param's options.
func (p *Param) IsOption(v cty.Value) bool { return isOption(p.Options, v) }

// IsOption reports whether val is one the variable accepts: any value
// when it has no options.
func (v *Variable) IsOption(val cty.Value) bool { return v.Options == nil || isOption(v.Options, val) }

func (p *Param) optionList() string { return formatOptions(p.Options) }

// isOption reports whether v is one of opts (a param's or a variable's).
func isOption(opts []cty.Value, v cty.Value) bool {
	for _, o := range opts {
		if o.Type().Equals(v.Type()) && o.Equals(v).True() {
			return true
		}
	}
	return false
}

// formatOptions lists options as messages show them: "a", "b".
func formatOptions(opts []cty.Value) string {
	parts := make([]string, len(opts))
	for i, o := range opts {
		parts[i] = lang.FormatValue(o)
	}
	return strings.Join(parts, ", ")
}

// OptionArgs are the param's options as they are written on the command
// line, for completion and for the wizard's choices.
func (p *Param) OptionArgs() []string {
	out := make([]string, len(p.Options))
	for i, o := range p.Options {
		out[i] = FormatArg(o)
	}
	return out
}

// MultiSelect reports whether the param picks any number of its options:
// a list or set param with options.
func (p *Param) MultiSelect() bool {
	return p.Options != nil && (p.Type.IsListType() || p.Type.IsSetType())
}

// Question is what the wizard asks for the param: its prompt, else its
// description, else its name.
func (p *Param) Question() string {
	switch {
	case p.Prompt != "":
		return p.Prompt
	case p.Description != "":
		return p.Description
	}
	return p.Name
}

// parseArgs reads one param's arguments: a single one as ParseValue does
// (so a list may be "a,b"), several (a trailing list param's) as one
// element each.
func parseArgs(raw []string, ty cty.Type) (cty.Value, error) {
	if len(raw) == 1 || !(ty.IsListType() || ty.IsSetType()) {
		return ParseValue(strings.Join(raw, ","), ty)
	}
	elems := make([]cty.Value, len(raw))
	for i, r := range raw {
		v, err := ParseValue(r, ty.ElementType())
		if err != nil {
			return cty.NilVal, err
		}
		elems[i] = v
	}
	if ty.IsSetType() {
		return cty.SetVal(elems), nil
	}
	return cty.ListVal(elems), nil
}

// UnknownParams is the param.* object with every value unknown, for
// checking a task without arguments (vmflow validate).
func (t *Task) UnknownParams() cty.Value {
	vals := make(map[string]cty.Value, len(t.Params))
	for _, p := range t.Params {
		vals[p.Name] = cty.UnknownVal(p.Type)
	}
	return t.paramObject(vals)
}

func (t *Task) paramObject(vals map[string]cty.Value) cty.Value {
	if len(vals) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(vals)
}

func (t *Task) paramNames() string {
	if len(t.Params) == 0 {
		return "none"
	}
	names := make([]string, len(t.Params))
	for i, p := range t.Params {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}
