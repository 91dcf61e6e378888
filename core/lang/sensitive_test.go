package lang

import (
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Sensitivity follows the value through expressions: templates,
// functions, conditionals, collections; and shows as (sensitive) exactly
// where it is.
func TestSensitiveFollowsTheValue(t *testing.T) {
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{
			"token": cty.StringVal("s3cret-value").Mark(Sensitive),
			"name":  cty.StringVal("demo"),
		})},
		Functions: Functions(".", nil),
	}
	for src, want := range map[string]string{
		`"t=${var.token}"`:                    `(sensitive)`,
		`upper(var.token)`:                    `(sensitive)`,
		`var.token == "x" ? "a" : "b"`:        `(sensitive)`,
		`{ TOKEN = var.token, N = var.name }`: `{ N = "demo", TOKEN = (sensitive) }`,
		`["true", var.token]`:                 `["true", (sensitive)]`,
		`var.name`:                            `"demo"`,
	} {
		expr, diags := hclsyntax.ParseExpression([]byte(src), "t", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		v, diags := expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", src, diags)
		}
		if got := FormatValue(v); got != want {
			t.Errorf("%s = %s, want %s", src, got, want)
		}
		if p := PlainValue(v); src == `{ TOKEN = var.token, N = var.name }` && p.(map[string]any)["TOKEN"] != Hidden {
			t.Errorf("PlainValue(%s) = %v", src, p)
		}
	}
	r := &Redactor{}
	r.Add(ctx.Variables["var"])
	if got := r.Redact("got s3cret-value twice: s3cret-value"); got != "got (sensitive) twice: (sensitive)" {
		t.Errorf("redacted: %q", got)
	}
	out := r.MarkLeaks(cty.ObjectVal(map[string]cty.Value{"stdout": cty.StringVal("echo s3cret-value"), "code": cty.NumberIntVal(0)}))
	if !out.GetAttr("stdout").IsMarked() || out.GetAttr("code").IsMarked() {
		t.Errorf("MarkLeaks: %#v", out)
	}
}
