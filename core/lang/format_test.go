package lang

import (
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

func TestFormatValue(t *testing.T) {
	cases := []struct {
		v    cty.Value
		want string
	}{
		{cty.StringVal("demo"), `"demo"`},
		{cty.StringVal("a \"q\"\n${x} %{y}"), `"a \"q\"\n$${x} %%{y}"`},
		{cty.NumberIntVal(4096), "4096"},
		{cty.NumberFloatVal(1.5), "1.5"},
		{cty.True, "true"},
		{cty.NullVal(cty.String), "null"},
		{cty.UnknownVal(cty.String), "(not yet known)"},
		{cty.ListVal([]cty.Value{cty.StringVal("core"), cty.StringVal("dev")}), `["core", "dev"]`},
		{cty.ListValEmpty(cty.String), "[]"},
		{cty.ObjectVal(map[string]cty.Value{"memory": cty.NumberIntVal(2048), "a-b c": cty.False}), `{ "a-b c" = false, memory = 2048 }`},
		{cty.MapValEmpty(cty.String), "{}"},
	}
	for _, c := range cases {
		if got := FormatValue(c.v); got != c.want {
			t.Errorf("FormatValue(%#v) = %s, want %s", c.v, got, c.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Hour: "2h", 3 * time.Minute: "3m", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s",
		time.Second: "1s", 200 * time.Millisecond: "200ms", time.Hour + time.Second: "1h0m1s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

// What FormatValue writes is HCL: a string with any characters reads back
// as itself (Go's \x01 and \a escapes, which HCL has not, are not used).
func TestFormatValueReadsBack(t *testing.T) {
	for _, s := range []string{"bell\a tab\t nul\x00 esc\x1b", "zero\u200bwidth é 😀", "${x} %{y} $ % {", `back\slash "q"`} {
		q := FormatValue(cty.StringVal(s))
		expr, diags := hclsyntax.ParseExpression([]byte(q), "v", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s does not parse: %v", q, diags)
		}
		v, diags := expr.Value(nil)
		if diags.HasErrors() || v.AsString() != s {
			t.Fatalf("%s reads back as %#v (%v), want %q", q, v, diags, s)
		}
	}
}
