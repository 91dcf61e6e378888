package config

import (
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/lang"
)

// TestLoadValidVariables: variables of every type, their defaults,
// descriptions and sensitivity.
func TestLoadValidVariables(t *testing.T) {
	runLoadValid(t, []loadValidCase{
		{
			name: "variables of every type",
			files: memFS{root: `
variable "name" {
  type        = string
  default     = "demo"
  description = "The VM's name"
}
variable "memory" {
  type    = number
  default = 2048
}
variable "enabled" {
  type    = bool
  default = true
}
variable "profiles" {
  type    = list(string)
  default = ["core", "dev"]
}
variable "labels" {
  type    = map(string)
  default = { env = "dev", team = "infra" }
}
variable "vm" {
  type = object({ cpus = number, disk = string })
  default = {
    cpus = 2
    disk = "10G"
  }
}
variable "anything" {
  default = [1, "two"]
}
variable "token" {
  type      = string
  default   = "s3cret"
  sensitive = true
}
variable "tags" {
  type    = set(string)
  default = ["b", "a", "b"]
}
variable "computed" {
  type    = string
  default = upper(format("%s-%d", "vm", 3))
}
task "t" {
  step "s" { action = builtin.exec }
}
`},
			check: func(t *testing.T, p *Project) {
				f := p.Root
				var names []string
				for _, v := range f.Variables {
					names = append(names, v.Name)
				}
				equalStrings(t, "variables", names, []string{"name", "memory", "enabled", "profiles", "labels", "vm", "anything", "token", "tags", "computed"})
				types := map[string]cty.Type{
					"name":     cty.String,
					"memory":   cty.Number,
					"enabled":  cty.Bool,
					"profiles": cty.List(cty.String),
					"labels":   cty.Map(cty.String),
					"vm":       cty.Object(map[string]cty.Type{"cpus": cty.Number, "disk": cty.String}),
					"anything": cty.DynamicPseudoType,
					"token":    cty.String,
					"tags":     cty.Set(cty.String),
					"computed": cty.String,
				}
				wants := map[string]cty.Value{
					"name":     cty.StringVal("demo"),
					"memory":   cty.NumberIntVal(2048),
					"enabled":  cty.True,
					"profiles": cty.ListVal([]cty.Value{cty.StringVal("core"), cty.StringVal("dev")}),
					"labels":   cty.MapVal(map[string]cty.Value{"env": cty.StringVal("dev"), "team": cty.StringVal("infra")}),
					"vm":       cty.ObjectVal(map[string]cty.Value{"cpus": cty.NumberIntVal(2), "disk": cty.StringVal("10G")}),
					"anything": cty.TupleVal([]cty.Value{cty.NumberIntVal(1), cty.StringVal("two")}),
					"token":    cty.StringVal("s3cret"),
					"tags":     cty.SetVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")}),
					"computed": cty.StringVal("VM-3"),
				}
				for _, v := range f.Variables {
					equalType(t, v.Name, v.Type, types[v.Name])
					equalValue(t, v.Name+" default", v.Default, wants[v.Name])
					want := wants[v.Name]
					if v.Sensitive {
						// The value carries its sensitivity wherever it goes.
						want = want.Mark(lang.Sensitive)
					}
					equalValue(t, "var."+v.Name, fileVar(t, f, v.Name), want)
				}
				if d := f.Variables[0].Description; d != "The VM's name" {
					t.Errorf("description = %q", d)
				}
				if f.Variables[1].Description != "" {
					t.Errorf("memory has description %q", f.Variables[1].Description)
				}
				if !f.Variables[7].Sensitive || f.Variables[0].Sensitive {
					t.Errorf("sensitive: token %v, name %v", f.Variables[7].Sensitive, f.Variables[0].Sensitive)
				}
				if l := f.Variables[0].DeclRange.Start.Line; l != 2 {
					t.Errorf("name declared on line %d, want 2", l)
				}
			},
		},
	})
}

// TestLoadErrorsVariables: bad variable blocks and validations that fail.
func TestLoadErrorsVariables(t *testing.T) {
	runLoadErrors(t, []loadErrorCase{
		{
			name:    "invalid variable default",
			src:     "variable \"n\" {\n  type    = number\n  default = \"many\"\n}\n",
			summary: "Invalid default value for variable", line: 3,
		},
		{
			name:    "invalid type expression",
			src:     "variable \"n\" {\n  type = strng\n}\n",
			summary: "Invalid type specification", line: 2,
		},
		{
			name:    "variable default refers to another variable",
			src:     "variable \"a\" {\n  default = 1\n}\nvariable \"b\" {\n  default = var.a\n}\n",
			summary: "Variables not allowed", line: 5,
		},
		{
			name:    "sensitive not a bool",
			src:     "variable \"v\" {\n  default   = 1\n  sensitive = \"yes\"\n}\n",
			summary: "Invalid sensitive", line: 3,
		},
		{
			name: "validation failing",
			src: `variable "backend" {
  type = string
  validation {
    condition     = contains(["libvirt", "proxmox"], var.backend)
    error_message = "backend must be libvirt or proxmox, not ${var.backend}."
  }
}
`,
			opts:    Options{Vars: []string{"backend=xen"}},
			summary: `Invalid value for variable "backend"`, line: 4,
			detail: "backend must be libvirt or proxmox, not xen.\n\nThe value \"xen\" came from --var backend=xen.",
		},
		{
			name: "validation failing on a sensitive default",
			src: `variable "token" {
  default   = "abc"
  sensitive = true
  validation {
    condition     = strlen(var.token) > 10
    error_message = "token too short"
  }
}
`,
			summary: `Invalid value for variable "token"`, line: 5,
			detail: "token too short\n\nThe value (sensitive) came from the default.",
		},
		{
			name: "validation error_message not a string",
			src: `variable "v" {
  default = 1
  validation {
    condition     = var.v > 1
    error_message = 42
  }
}
`,
			summary: `Invalid value for variable "v"`, line: 4, detail: "The value is not valid.",
		},
		{
			name: "validation referring to a variable declared after it",
			src: `variable "v" {
  default = 2
  validation {

    condition     = var.v > var.min
    error_message = "v too small"
  }
}
variable "min" {
  default = 1
}
`,
			summary: "Invalid validation condition", line: 5, detail: `can only refer to var.v and to variables declared before it`,
		},
		{
			name: "validation referring to a sensitive variable",
			src: `variable "min" {
  default   = 1
  sensitive = true
}
variable "v" {
  default = 2
  validation {
    condition     = var.v > var.min
    error_message = "v too small"
  }
}
`,
			summary: "Invalid validation condition", line: 8, detail: `that are not sensitive`,
		},
		{
			name: "validation reading a variable declared before it",
			src: `variable "min" {
  default = 3
}
variable "v" {
  default = 2
  validation {
    condition     = var.v > var.min
    error_message = "v must be above ${var.min}."
  }
}
`,
			summary: `Invalid value for variable "v"`, line: 7, detail: "v must be above 3.",
		},
		{
			name: "validation condition not a bool",
			src: `variable "v" {
  default = 2
  validation {
    condition     = "yes"
    error_message = "x"
  }
}
`,
			summary: "Invalid validation condition", line: 4, detail: "true or false",
		},
		{
			name: "validation without error_message",
			src: `variable "v" {
  default = 2
  validation {
    condition = true
  }
}
`,
			summary: "Missing required argument", line: 3,
		},
	})
}
