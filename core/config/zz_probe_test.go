package config

import (
	"fmt"
	"io/fs"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

func probeLoad(files map[string]string, opts Options) {
	opts.ReadFile = func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
	if opts.Environ == nil {
		opts.Environ = []string{}
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Println("PANIC:", r)
		}
	}()
	p, d := Load("/proj/tasks.hcl", opts)
	for _, x := range d {
		fmt.Printf("  diag %s | %s | %v\n", x.Summary, x.Detail, x.Subject)
	}
	_ = p
	if p.Root != nil {
		fmt.Printf("  vars %#v\n", p.Root.VarValues.GoString())
	}
}

func TestProbe(t *testing.T) {
	fmt.Println("defer include path")
	probeLoad(map[string]string{"/proj/tasks.hcl": `variable "d" { type = string }
include "x" { path = "${var.d}/a.hcl" }`}, Options{DeferMissingVars: true})
	fmt.Println("defer include vars")
	probeLoad(map[string]string{"/proj/tasks.hcl": `variable "d" { type = map(string) }
include "x" { 
path = "a.hcl"
vars = var.d
}`, "/proj/a.hcl": ``}, Options{DeferMissingVars: true})
	fmt.Println("defer description")
	probeLoad(map[string]string{"/proj/tasks.hcl": `variable "d" { type = string }
task "t" { 
  description = "deploy ${var.d}"
  step "s" { action = builtin.exec }
}`}, Options{DeferMissingVars: true})
	fmt.Println("--var pinned by include")
	probeLoad(map[string]string{"/proj/tasks.hcl": `include "x" { 
path = "a.hcl"
vars = { f = "pinned" }
}`, "/proj/a.hcl": `variable "f" { default = "d" }`}, Options{Vars: []string{"f=cli"}})
	fmt.Println("--var with override")
	probeLoad(map[string]string{"/proj/tasks.hcl": `variable "f" { default = "d" }`}, Options{Vars: []string{"f=cli"}, Overrides: map[string]cty.Value{"f": cty.StringVal("o")}})
	fmt.Println("include vars undeclared")
	probeLoad(map[string]string{"/proj/tasks.hcl": `include "x" { 
path = "a.hcl"
vars = { nope = "pinned" }
}`, "/proj/a.hcl": `variable "f" { default = "d" }`}, Options{})
	for _, s := range []string{"_x", "x-y", "1x", "x.y", "é"} {
		fmt.Println(s, hclsyntax.ValidIdentifier(s))
	}
	for _, s := range []string{"1", "0", "yes", "TRUE", " true "} {
		v, err := ParseValue(s, cty.Bool)
		fmt.Println(s, v.GoString(), err)
	}
	for _, s := range []string{"null", "hello", "42", "a,b", "[1,\"a\"]", "{a=1}"} {
		v, err := ParseValue(s, cty.DynamicPseudoType)
		fmt.Println(s, v.GoString(), err)
	}
	for _, s := range []string{"null", "a=b"} {
		v, err := ParseValue(s, cty.Map(cty.String))
		fmt.Println(s, v.GoString(), err)
	}
}
