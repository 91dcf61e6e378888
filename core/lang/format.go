package lang

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// FormatValue renders a value on one line as HCL would write it:
// "demo", 4096, ["core", "dev"], { memory = 2048 }.
func FormatValue(v cty.Value) string {
	switch {
	case v.IsMarked():
		return Hidden
	case !v.IsKnown():
		return "(not yet known)"
	case v.IsNull():
		return "null"
	}
	ty := v.Type()
	switch {
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		parts := make([]string, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			parts = append(parts, FormatValue(ev))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case ty.IsMapType() || ty.IsObjectType():
		if v.LengthInt() == 0 {
			return "{}"
		}
		parts := make([]string, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			key := k.AsString()
			if !hclsyntax.ValidIdentifier(key) {
				key = strconv.Quote(key)
			}
			parts = append(parts, key+" = "+FormatValue(ev))
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	switch ty {
	case cty.String:
		// HCL string syntax: Go's escapes, plus $${ and %%{ for literal
		// template sequences.
		q := strconv.Quote(v.AsString())
		q = strings.ReplaceAll(q, "${", "$${")
		return strings.ReplaceAll(q, "%{", "%%{")
	case cty.Number:
		return v.AsBigFloat().Text('f', -1)
	case cty.Bool:
		return strconv.FormatBool(v.True())
	}
	return v.GoString()
}

// FormatDuration writes a duration as a timeout is written: "2h", "3m",
// "1h30m", "90s" becomes "1m30s", "200ms".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if d >= time.Minute && strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if d >= time.Hour && strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// PlainValue turns a known value into plain Go values (maps, slices,
// strings, float64s, bools) for JSON output; nil for a value not wholly
// known.
func PlainValue(v cty.Value) any {
	if v == cty.NilVal || !v.IsWhollyKnown() {
		return nil
	}
	if v.ContainsMarked() {
		return plainMasked(v)
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
