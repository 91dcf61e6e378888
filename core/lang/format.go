package lang

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

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
			parts = append(parts, ObjectKey(k.AsString())+" = "+FormatValue(ev))
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	switch ty {
	case cty.String:
		return QuoteString(v.AsString())
	case cty.Number:
		return v.AsBigFloat().Text('f', -1)
	case cty.Bool:
		return strconv.FormatBool(v.True())
	}
	return v.GoString()
}

// QuoteString is s as an HCL quoted string, as hclwrite writes one:
// \n, \r, \t, \" and \\ escaped, any other character that does not
// print as \uNNNN (or \UNNNNNNNN), and "${" and "%{" doubled so that no
// template sequence is read into it.
func QuoteString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case (r == '$' || r == '%') && strings.HasPrefix(s[i+1:], "{"):
			b.WriteRune(r)
			b.WriteRune(r)
		case !unicode.IsPrint(r) && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		case !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ObjectKey is an object key as HCL writes it: bare when it is an
// identifier, else quoted.
func ObjectKey(k string) string {
	if hclsyntax.ValidIdentifier(k) {
		return k
	}
	return QuoteString(k)
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
