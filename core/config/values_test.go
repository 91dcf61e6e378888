package config

import (
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestParseValue(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		ty      cty.Type
		want    cty.Value
		wantErr string // a substring of the error; "" for success
	}{
		// Strings are taken as they are.
		{"string", "hello", cty.String, str("hello"), ""},
		{"string keeps spaces", "  a b  ", cty.String, str("  a b  "), ""},
		{"string empty", "", cty.String, str(""), ""},
		{"string that looks like a number", "42", cty.String, str("42"), ""},
		{"string that looks like HCL", `["a"]`, cty.String, str(`["a"]`), ""},
		{"string with comma", "a,b", cty.String, str("a,b"), ""},

		// Numbers.
		{"number", "4096", cty.Number, num(4096), ""},
		{"number trimmed", " 12 ", cty.Number, num(12), ""},
		{"number negative", "-3", cty.Number, num(-3), ""},
		{"number fraction", "1.5", cty.Number, cty.NumberFloatVal(1.5), ""},
		{"number exponent", "1e3", cty.Number, num(1000), ""},
		{"number invalid", "lots", cty.Number, cty.NilVal, `a number is required, got "lots"`},
		{"number empty", "", cty.Number, cty.NilVal, `a number is required, got ""`},
		{"number with unit", "4G", cty.Number, cty.NilVal, "a number is required"},

		// Bools.
		{"bool true", "true", cty.Bool, cty.True, ""},
		{"bool false", "false", cty.Bool, cty.False, ""},
		{"bool trimmed", " true ", cty.Bool, cty.True, ""},
		{"bool 1", "1", cty.Bool, cty.True, ""},
		{"bool 0", "0", cty.Bool, cty.False, ""},
		{"bool yes", "yes", cty.Bool, cty.NilVal, `a bool (true or false) is required, got "yes"`},
		{"bool upper", "TRUE", cty.Bool, cty.NilVal, "a bool (true or false) is required"},

		// Lists of primitives: comma-separated or HCL.
		{"list comma", "core,dev", cty.List(cty.String), strList("core", "dev"), ""},
		{"list comma spaces", " core , dev ,", cty.List(cty.String), strList("core", "dev"), ""},
		{"list single", "core", cty.List(cty.String), strList("core"), ""},
		{"list empty", "", cty.List(cty.String), cty.ListValEmpty(cty.String), ""},
		{"list only commas", " , ,", cty.List(cty.String), cty.ListValEmpty(cty.String), ""},
		{"list HCL", `["a", "b"]`, cty.List(cty.String), strList("a", "b"), ""},
		{"list HCL with comma inside", `["a,b", "c"]`, cty.List(cty.String), strList("a,b", "c"), ""},
		{"list HCL leading space", `  ["x"]`, cty.List(cty.String), strList("x"), ""},
		{"list HCL empty", `[]`, cty.List(cty.String), cty.ListValEmpty(cty.String), ""},
		{"list HCL numbers to strings", `[1, 2]`, cty.List(cty.String), strList("1", "2"), ""},
		{"list HCL unterminated", `["a"`, cty.List(cty.String), cty.NilVal, "not a valid list(string)"},
		{"list HCL variable", `[a]`, cty.List(cty.String), cty.NilVal, "not a valid list(string): Variables not allowed"},
		{"list of numbers comma", "1, 2,3", cty.List(cty.Number), cty.ListVal([]cty.Value{num(1), num(2), num(3)}), ""},
		{"list of numbers bad element", "1,x", cty.List(cty.Number), cty.NilVal, `a number is required, got "x"`},
		{"list of bools", "true,false", cty.List(cty.Bool), cty.ListVal([]cty.Value{cty.True, cty.False}), ""},
		{"list HCL wrong element type", `[[1]]`, cty.List(cty.Number), cty.NilVal, "list(number) is required"},

		// Sets.
		{"set comma dedups", "b,a,b", cty.Set(cty.String), cty.SetVal([]cty.Value{str("a"), str("b")}), ""},
		{"set empty", "", cty.Set(cty.String), cty.SetValEmpty(cty.String), ""},
		{"set HCL", `["x", "x"]`, cty.Set(cty.String), cty.SetVal([]cty.Value{str("x")}), ""},
		{"set of numbers", "3,1", cty.Set(cty.Number), cty.SetVal([]cty.Value{num(1), num(3)}), ""},

		// Maps and objects: HCL only.
		{"map HCL", `{a="b"}`, cty.Map(cty.String), cty.MapVal(map[string]cty.Value{"a": str("b")}), ""},
		{"map HCL two", `{ env = "dev", "k-2" = 3 }`, cty.Map(cty.String), cty.MapVal(map[string]cty.Value{"env": str("dev"), "k-2": str("3")}), ""},
		{"map HCL empty", `{}`, cty.Map(cty.String), cty.MapValEmpty(cty.String), ""},
		{"map not HCL", "a=b", cty.Map(cty.String), cty.NilVal, "not a valid map(string): Extra characters after expression"},
		{"map wrong value type", `{a=[1]}`, cty.Map(cty.String), cty.NilVal, "map(string) is required"},
		{"map null", "null", cty.Map(cty.String), cty.NullVal(cty.Map(cty.String)), ""},
		{"map function call", `{a=upper("x")}`, cty.Map(cty.String), cty.NilVal, "Function calls not allowed"},
		{"object", `{cpus=2, disk="10G"}`, cty.Object(map[string]cty.Type{"cpus": cty.Number, "disk": cty.String}),
			cty.ObjectVal(map[string]cty.Value{"cpus": num(2), "disk": str("10G")}), ""},
		{"object missing attribute", `{cpus=2}`, cty.Object(map[string]cty.Type{"cpus": cty.Number, "disk": cty.String}),
			cty.NilVal, `attribute "disk" is required`},
		{"list of lists", `[["a"], []]`, cty.List(cty.List(cty.String)),
			cty.ListVal([]cty.Value{strList("a"), cty.ListValEmpty(cty.String)}), ""},
		{"list of lists comma is not HCL", `a,b`, cty.List(cty.List(cty.String)), cty.NilVal, "not a valid list(list(string))"},
		{"tuple", `["a", 1]`, cty.Tuple([]cty.Type{cty.String, cty.Number}), cty.TupleVal([]cty.Value{str("a"), num(1)}), ""},

		// any: an HCL literal when it is one, the raw string otherwise.
		{"any number", "42", cty.DynamicPseudoType, num(42), ""},
		{"any bool", "true", cty.DynamicPseudoType, cty.True, ""},
		{"any quoted string", `"x"`, cty.DynamicPseudoType, str("x"), ""},
		{"any bare word", "hello", cty.DynamicPseudoType, str("hello"), ""},
		{"any path", "/tmp/x", cty.DynamicPseudoType, str("/tmp/x"), ""},
		{"any comma list", "a,b", cty.DynamicPseudoType, str("a,b"), ""},
		{"any empty", "", cty.DynamicPseudoType, str(""), ""},
		{"any function call", `upper("x")`, cty.DynamicPseudoType, str(`upper("x")`), ""},
		{"any tuple", `[1, "a"]`, cty.DynamicPseudoType, cty.TupleVal([]cty.Value{num(1), str("a")}), ""},
		{"any object", `{a=1}`, cty.DynamicPseudoType, cty.ObjectVal(map[string]cty.Value{"a": num(1)}), ""},
		{"any null", "null", cty.DynamicPseudoType, cty.NullVal(cty.DynamicPseudoType), ""},
		{"list of any", `[1, "a"]`, cty.List(cty.DynamicPseudoType), cty.ListVal([]cty.Value{str("1"), str("a")}), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseValue(tc.raw, tc.ty)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseValue(%q, %#v) = %#v, want error containing %q", tc.raw, tc.ty, got, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error = %q, want it to contain %q", err, tc.wantErr)
				}
				if got != cty.NilVal {
					t.Errorf("value with error = %#v, want cty.NilVal", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseValue(%q, %#v): %v", tc.raw, tc.ty, err)
			}
			if !got.RawEquals(tc.want) {
				t.Errorf("ParseValue(%q, %#v) = %#v, want %#v", tc.raw, tc.ty, got, tc.want)
			}
			if !tc.ty.HasDynamicTypes() && !got.Type().Equals(tc.ty) {
				t.Errorf("type = %#v, want %#v", got.Type(), tc.ty)
			}
		})
	}
}

func TestTypeName(t *testing.T) {
	for _, tc := range []struct {
		ty   cty.Type
		want string
	}{
		{cty.String, "a string"},
		{cty.Number, "a number"},
		{cty.Bool, "a bool (true or false)"},
		{cty.List(cty.String), "list(string)"},
		{cty.Map(cty.Number), "map(number)"},
		{cty.DynamicPseudoType, "any"},
	} {
		if got := typeName(tc.ty); got != tc.want {
			t.Errorf("typeName(%#v) = %q, want %q", tc.ty, got, tc.want)
		}
	}
}

// TestFormatArg: what FormatArg writes, ParseValue reads back as the same
// value; lists are comma-separated unless an element needs HCL syntax.
func TestFormatArg(t *testing.T) {
	list := func(vs ...cty.Value) cty.Value { return cty.ListVal(vs) }
	tests := []struct {
		v    cty.Value
		want string
	}{
		{str("demo"), "demo"},
		{str(" a, b "), " a, b "},
		{str(""), ""},
		{cty.NumberIntVal(4096), "4096"},
		{cty.NumberFloatVal(1.5), "1.5"},
		{cty.True, "true"},
		{list(str("base"), str("dev")), "base,dev"},
		{list(cty.NumberIntVal(22), cty.NumberIntVal(80)), "22,80"},
		{cty.ListValEmpty(cty.String), ""},
		{cty.SetVal([]cty.Value{str("b"), str("a")}), "a,b"},
		{list(str("a,b"), str("c")), `["a,b", "c"]`},
		{list(str(" x")), `[" x"]`},
		{list(str("")), `[""]`},
		{list(str("[draft]")), `["[draft]"]`},
		{list(str("x"), str("[y]")), "x,[y]"},
		{cty.MapVal(map[string]cty.Value{"env": str("dev")}), `{ env = "dev" }`},
	}
	for _, tc := range tests {
		got := FormatArg(tc.v)
		if got != tc.want {
			t.Errorf("FormatArg(%#v) = %q, want %q", tc.v, got, tc.want)
		}
		back, err := ParseValue(got, tc.v.Type())
		if err != nil {
			t.Errorf("ParseValue(%q): %v", got, err)
			continue
		}
		if !back.RawEquals(tc.v) {
			t.Errorf("ParseValue(FormatArg(%#v)) = %#v", tc.v, back)
		}
	}
}
