package engine

import (
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
)

// A step with for_each is one planned step per key, named NAME[KEY]
// (copy[kernel]): journaled, shown, undone and resumed as any step. Its
// keys are worked out before the run, from variables and params; its
// values (each.value) may come from steps, and are read when the
// instance starts. step.NAME reads the instances' outputs by key.

// forEachKeys works out the keys of a step's for_each, with steps not
// known. known is false when the keys cannot be told before the run: an
// error for a run (run true), one stand-in instance for vmflow validate.
func forEachKeys(s *config.Step, ectx *hcl.EvalContext, run bool) (keys []string, known bool, diags hcl.Diagnostics) {
	v, diags := s.ForEach.Value(ectx)
	if diags.HasErrors() {
		return nil, false, diags
	}
	bad := func(why string) hcl.Diagnostics {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Invalid for_each",
			Detail:  fmt.Sprintf("Step %q: %s", s.Name, why),
			Subject: s.ForEach.Range().Ptr(),
		}}
	}
	unknown := func() ([]string, bool, hcl.Diagnostics) {
		if !run {
			return nil, false, nil
		}
		return nil, false, bad("its keys must be known before the run: they may use variables and params, not steps' outputs (a value may: for_each = { kernel = step.record.values.kernel }).")
	}
	if !v.IsKnown() {
		return unknown()
	}
	// Keys name the instances wherever steps are named (the output, the
	// journal, vmflow runs): a sensitive one would be shown.
	sensitive := bad("its keys come from a sensitive value, and keys are shown as the instances' names; take the keys from a value that is not sensitive (a value may be: for_each = { token = var.token }).")
	if v.IsMarked() {
		return nil, false, sensitive
	}
	ty := v.Type()
	switch {
	case v.IsNull():
		return nil, false, bad("for_each is null; give a map, or a set or list of strings.")
	case ty.IsObjectType():
		for name := range ty.AttributeTypes() {
			keys = append(keys, name)
		}
		slices.Sort(keys)
	case ty.IsMapType():
		for it := v.ElementIterator(); it.Next(); {
			k, _ := it.Element()
			keys = append(keys, k.AsString())
		}
	case ty.IsSetType() || ty.IsListType() || ty.IsTupleType():
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.IsMarked() {
				return nil, false, sensitive
			}
			if !e.IsKnown() {
				return unknown()
			}
			if e.IsNull() || e.Type() != cty.String {
				return nil, false, bad("a set or list for_each holds strings (the keys).")
			}
			if slices.Contains(keys, e.AsString()) {
				return nil, false, bad(fmt.Sprintf("key %q is in it twice.", e.AsString()))
			}
			keys = append(keys, e.AsString())
		}
	default:
		return nil, false, bad("for_each is a map (or object), or a set or list of strings; got " + ty.FriendlyName() + ".")
	}
	return keys, true, nil
}

// instanceName names one instance of a for_each step.
func instanceName(prefix, step string, key cty.Value) string {
	if !key.IsKnown() {
		return prefix + step + "[*]"
	}
	return prefix + step + "[" + key.AsString() + "]"
}

// eachContext adds each.key and each.value to the context an instance of
// a for_each step is evaluated in; other steps get ectx back.
func eachContext(ps *PlanStep, ectx *hcl.EvalContext) (*hcl.EvalContext, hcl.Diagnostics) {
	if ps.Key == cty.NilVal || ectx == nil {
		return ectx, nil
	}
	value := cty.DynamicVal
	if ps.Key.IsKnown() {
		v, diags := ps.ForEach.Value(ectx)
		if diags.HasErrors() {
			return nil, diags
		}
		value = forEachValue(v, ps.Key.AsString())
	}
	child := ectx.NewChild()
	child.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": ps.Key, "value": value})}
	return child, nil
}

// forEachValue is the value a for_each gives one key.
func forEachValue(v cty.Value, key string) cty.Value {
	switch ty := v.Type(); {
	case !v.IsKnown() || v.IsNull():
		return cty.DynamicVal
	case ty.IsObjectType():
		if ty.HasAttribute(key) {
			return v.GetAttr(key)
		}
	case ty.IsMapType():
		if k := cty.StringVal(key); v.HasIndex(k).True() {
			return v.Index(k)
		}
	default:
		return cty.StringVal(key)
	}
	return cty.DynamicVal
}

// groupValue is what step.NAME reads for a for_each step: each
// instance's outputs by key (an empty object with no instances).
func groupValue(insts []*PlanStep, value func(*PlanStep) cty.Value) cty.Value {
	if len(insts) == 1 && !insts[0].Key.IsKnown() {
		return cty.DynamicVal // vmflow validate: keys not known
	}
	m := make(map[string]cty.Value, len(insts))
	for _, ps := range insts {
		m[ps.Key.AsString()] = value(ps)
	}
	return objectOf(m)
}
