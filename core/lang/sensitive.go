package lang

import (
	"encoding/json"
	"sort"
	"strings"
	"sync"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

type mark string

// Sensitive marks a value that must not be shown: a sensitive variable's
// value, what is computed from it (hcl and cty carry marks through every
// expression and function), and what a plugin declares sensitive.
const Sensitive = mark("sensitive")

// Hidden is what is shown in place of a sensitive value.
const Hidden = "(sensitive)"

// Unmarked returns the value without any marks, for the places where it
// becomes a decision (if, lock, timeout) or leaves vmflow (a plugin).
func Unmarked(v cty.Value) cty.Value {
	if v == cty.NilVal {
		return v
	}
	u, _ := v.UnmarkDeep()
	return u
}

// IsSensitive reports whether any part of a value is sensitive.
func IsSensitive(v cty.Value) bool {
	return v != cty.NilVal && v.ContainsMarked()
}

// MarkAttrs marks the attributes of an object whose names are in names.
func MarkAttrs(v cty.Value, names []string) cty.Value {
	if len(names) == 0 || v == cty.NilVal || v.IsMarked() || !v.Type().IsObjectType() || v.IsNull() || !v.IsKnown() {
		return v
	}
	m := v.AsValueMap()
	for _, n := range names {
		if a, ok := m[n]; ok {
			m[n] = a.Mark(Sensitive)
		}
	}
	return cty.ObjectVal(m)
}

// SensitivePaths returns the value without marks and the paths of its
// sensitive parts. A path into a set stops at the set: its elements have
// no stable address, so the whole set counts as sensitive.
func SensitivePaths(v cty.Value) (cty.Value, []cty.Path) {
	u, pvm := v.UnmarkDeepWithPaths()
	var paths []cty.Path
	for _, pm := range pvm {
		if _, ok := pm.Marks[Sensitive]; !ok {
			continue
		}
		p := pm.Path
		// A set's elements: cut at the set itself.
		if cut := setPrefix(u, p); cut != nil {
			p = cut
		}
		paths = append(paths, p.Copy())
	}
	return u, paths
}

// setPrefix returns the path up to the first set it goes through, or nil.
func setPrefix(v cty.Value, p cty.Path) cty.Path {
	cur := v
	for i, st := range p {
		if cur.Type().IsSetType() {
			return p[:i]
		}
		next, err := st.Apply(cur)
		if err != nil {
			return p[:i]
		}
		cur = next
	}
	return nil
}

// Mask returns the value with its sensitive parts replaced by nulls of
// their types, unmarked: what may be written where secrets may not.
func Mask(v cty.Value) cty.Value {
	u, paths := SensitivePaths(v)
	if len(paths) == 0 {
		return u
	}
	out, _ := cty.Transform(u, func(p cty.Path, x cty.Value) (cty.Value, error) {
		for _, sp := range paths {
			if p.Equals(sp) {
				return cty.NullVal(x.Type()), nil
			}
		}
		return x, nil
	})
	return out
}

// Remark puts the Sensitive mark back on the paths of a value.
func Remark(v cty.Value, paths []cty.Path) cty.Value {
	if len(paths) == 0 {
		return v
	}
	out, _ := cty.Transform(v, func(p cty.Path, x cty.Value) (cty.Value, error) {
		for _, sp := range paths {
			if p.Equals(sp) {
				return x.Mark(Sensitive), nil
			}
		}
		return x, nil
	})
	return out
}

// Secrets lists the strings inside the sensitive parts of a value (a
// sensitive map's every value), for masking them in free text.
func Secrets(v cty.Value) []string {
	if v == cty.NilVal {
		return nil
	}
	u, paths := SensitivePaths(v)
	var out []string
	for _, p := range paths {
		x, err := p.Apply(u)
		if err != nil {
			continue
		}
		out = append(out, stringsIn(x)...)
	}
	return out
}

func stringsIn(v cty.Value) []string {
	if !v.IsKnown() || v.IsNull() {
		return nil
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return []string{v.AsString()}
	case ty.IsPrimitiveType():
		return nil
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType() || ty.IsMapType() || ty.IsObjectType():
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			out = append(out, stringsIn(ev)...)
		}
		return out
	}
	return nil
}

// MinSecret is the shortest secret masked in free text: a shorter one
// ("1", "on") would mask unrelated words.
const MinSecret = 4

// Redactor replaces known secrets in free text (log lines, errors).
type Redactor struct {
	mu      sync.Mutex
	secrets []string
}

// Add records the secrets inside a value's sensitive parts.
func (r *Redactor) Add(v cty.Value) {
	for _, s := range Secrets(v) {
		r.AddString(s)
	}
}

// AddString records one secret.
func (r *Redactor) AddString(s string) {
	if len(s) < MinSecret {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.secrets {
		if x == s {
			return
		}
	}
	r.secrets = append(r.secrets, s)
	// Longest first, so that a secret containing another goes whole.
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

// Redact replaces every known secret in s.
func (r *Redactor) Redact(s string) string {
	if r == nil || s == "" {
		return s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.secrets {
		if strings.Contains(s, x) {
			s = strings.ReplaceAll(s, x, Hidden)
		}
	}
	return s
}

// plainMasked is PlainValue for a value with sensitive parts: those
// become "(sensitive)".
func plainMasked(v cty.Value) any {
	u, paths := SensitivePaths(v)
	if !u.IsWhollyKnown() {
		return nil
	}
	b, err := ctyjson.Marshal(u, u.Type())
	if err != nil {
		return nil
	}
	var out any
	_ = json.Unmarshal(b, &out)
	for _, p := range paths {
		if len(p) == 0 {
			return Hidden
		}
		out = replaceAt(out, p)
	}
	return out
}

func replaceAt(x any, p cty.Path) any {
	if len(p) == 0 {
		return Hidden
	}
	switch st := p[0].(type) {
	case cty.GetAttrStep:
		if m, ok := x.(map[string]any); ok {
			m[st.Name] = replaceAt(m[st.Name], p[1:])
		}
	case cty.IndexStep:
		switch c := x.(type) {
		case map[string]any:
			if st.Key.Type() == cty.String {
				k := st.Key.AsString()
				c[k] = replaceAt(c[k], p[1:])
			}
		case []any:
			if st.Key.Type() == cty.Number {
				i, _ := st.Key.AsBigFloat().Int64()
				if int(i) < len(c) {
					c[i] = replaceAt(c[i], p[1:])
				}
			}
		}
	}
	return x
}

// MarkLeaks marks the strings inside a value that contain a known
// secret: a plugin's output that repeats a sensitive input (a command's
// stdout echoing a token) is as sensitive as the input.
func (r *Redactor) MarkLeaks(v cty.Value) cty.Value {
	if r == nil || v == cty.NilVal {
		return v
	}
	r.mu.Lock()
	secrets := append([]string(nil), r.secrets...)
	r.mu.Unlock()
	if len(secrets) == 0 {
		return v
	}
	u, paths := SensitivePaths(v)
	if !u.IsWhollyKnown() {
		return v
	}
	out, err := cty.Transform(u, func(_ cty.Path, x cty.Value) (cty.Value, error) {
		if x.Type() != cty.String || x.IsNull() || !x.IsKnown() {
			return x, nil
		}
		for _, s := range secrets {
			if strings.Contains(x.AsString(), s) {
				return x.Mark(Sensitive), nil
			}
		}
		return x, nil
	})
	if err != nil {
		return v
	}
	return Remark(out, paths)
}
