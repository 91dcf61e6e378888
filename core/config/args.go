package config

import (
	"fmt"
	"strings"

	"github.com/zclconf/go-cty/cty"
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
	raw := map[string][]string{}
	for i, a := range positional {
		if i >= len(t.Params) {
			if t.Variadic() {
				last := t.Params[len(t.Params)-1].Name
				raw[last] = append(raw[last], a)
				continue
			}
			return cty.NilVal, &ArgError{fmt.Sprintf("task %s takes at most %d argument(s) (%s), got %d: unexpected %q",
				t.Name, len(t.Params), t.Usage(), len(positional), a)}
		}
		raw[t.Params[i].Name] = append(raw[t.Params[i].Name], a)
	}
	for name, v := range named {
		p := t.Param(name)
		if p == nil {
			return cty.NilVal, &ArgError{fmt.Sprintf("task %s has no param %q (params: %s)", t.Name, name, t.paramNames())}
		}
		if _, dup := raw[name]; dup {
			return cty.NilVal, &ArgError{fmt.Sprintf("param %s given both by position and as --%s", name, name)}
		}
		raw[name] = []string{v}
	}
	vals := make(map[string]cty.Value, len(t.Params))
	for _, p := range t.Params {
		rs, ok := raw[p.Name]
		if !ok {
			if p.Required() {
				return cty.NilVal, &ArgError{fmt.Sprintf("task %s: missing required param %s (usage: %s %s)", t.Name, p.Name, t.Name, t.Usage())}
			}
			vals[p.Name] = p.Default
			continue
		}
		v, err := parseArgs(rs, p.Type)
		if err != nil {
			return cty.NilVal, &ArgError{fmt.Sprintf("task %s: param %s: %v", t.Name, p.Name, err)}
		}
		vals[p.Name] = v
	}
	return t.paramObject(vals), nil
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
