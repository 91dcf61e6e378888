package config

import (
	"slices"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

const backendVar = `
variable "backend" {
  type    = string
  default = "libvirt"
  options = ["libvirt", "proxmox-stub"]
}
plugin "hypervisor" {
  source = var.backend
}
`

// A variable's options: the values it accepts, from any source.
func TestVariableOptions(t *testing.T) {
	runLoadValid(t, []loadValidCase{{
		name:  "an option from --var",
		files: memFS{root: backendVar},
		opts:  Options{Vars: []string{"backend=proxmox-stub"}},
		check: func(t *testing.T, p *Project) {
			v := p.Root.Variables[0]
			if len(v.Options) != 2 || v.Options[1] != cty.StringVal("proxmox-stub") {
				t.Errorf("options = %#v", v.Options)
			}
			if got := p.Root.VarValues.GetAttr("backend"); got != cty.StringVal("proxmox-stub") {
				t.Errorf("backend = %#v", got)
			}
		},
	}, {
		name:  "numbers",
		files: memFS{root: "variable \"cpus\" {\n  type    = number\n  default = 2\n  options = [1, 2, 4]\n}\n"},
		opts:  Options{Environ: []string{"VMFLOW_VAR_cpus=4"}},
		check: func(t *testing.T, p *Project) {
			if got := p.Root.VarValues.GetAttr("cpus"); !got.RawEquals(cty.NumberIntVal(4)) {
				t.Errorf("cpus = %#v", got)
			}
		},
	}})
	runLoadErrors(t, []loadErrorCase{{
		name:    "a value not among them, said with where it came from",
		src:     backendVar,
		opts:    Options{Vars: []string{"backend=xen"}},
		summary: `Invalid value for variable "backend"`, line: 2,
		detail: "backend must be one of its options: \"libvirt\", \"proxmox-stub\".\n\nThe value \"xen\" came from --var backend=xen.",
	}, {
		name:    "a sensitive value is not shown",
		src:     "variable \"key\" {\n  type      = string\n  default   = \"a\"\n  sensitive = true\n  options   = [\"a\", \"b\"]\n}\n",
		opts:    Options{Vars: []string{"key=c"}},
		summary: `Invalid value for variable "key"`, line: 1,
		detail: "The value (sensitive) came from --var key=(sensitive).",
	}, {
		name:    "a default not among them",
		src:     "variable \"b\" {\n  type    = string\n  default = \"xen\"\n  options = [\"libvirt\"]\n}\n",
		summary: "Invalid options for variable", line: 4,
		detail: `The default of "b", "xen", is not one of its options: "libvirt".`,
	}, {
		name:    "empty",
		src:     "variable \"b\" {\n  type    = string\n  options = []\n}\n",
		summary: "Invalid options for variable", line: 3,
		detail: `options of "b" is empty`,
	}, {
		name:    "not a list",
		src:     "variable \"b\" {\n  type    = string\n  options = \"libvirt\"\n}\n",
		summary: "Invalid options for variable", line: 3,
		detail: `options must be a list of the values "b" accepts`,
	}, {
		name:    "a value of another type",
		src:     "variable \"n\" {\n  type    = number\n  options = [1, \"two\"]\n}\n",
		summary: "Invalid options for variable", line: 3,
		detail: `options of "n": "two" is not a number.`,
	}, {
		name:    "a variable of a type options do not fit",
		src:     "variable \"l\" {\n  type    = list(string)\n  options = [\"a\"]\n}\n",
		summary: "Invalid options for variable", line: 3,
		detail: `Variable "l" is of type`,
	}})
}

// A plugin block's sources: as the variables are, then as each of their
// options would make it, each once.
func TestPluginSources(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		vars []string
		want []string
	}{
		{"the current value first", backendVar, []string{"backend=proxmox-stub"}, []string{"proxmox-stub", "libvirt"}},
		{"a fixed source", "plugin \"nix\" {\n  source = \"nix\"\n}\n", nil, []string{"nix"}},
		{"a variable without options", "variable \"b\" {\n  default = \"libvirt\"\n}\nplugin \"h\" {\n  source = var.b\n}\n", nil, []string{"libvirt"}},
		{"two variables", `
variable "kind" {
  type    = string
  default = "vm"
  options = ["vm", "ct"]
}
variable "site" {
  type    = string
  default = "a"
  options = ["a", "b"]
}
plugin "h" {
  source = "${var.kind}-${var.site}"
}
`, nil, []string{"vm-a", "ct-a", "vm-b", "ct-b"}},
		{"a source that reads a local: only as it is", `
variable "backend" {
  type    = string
  default = "libvirt"
  options = ["libvirt", "proxmox-stub"]
}
locals {
  b = var.backend
}
plugin "h" {
  source = local.b
}
`, nil, []string{"libvirt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustLoad(t, memFS{root: tc.src}, Options{Vars: tc.vars})
			names := p.Root.PluginNames()
			if len(names) != 1 {
				t.Fatalf("plugins %q, want one", names)
			}
			if got := p.Root.Plugin(names[0]).Sources(); !slices.Equal(got, tc.want) {
				t.Errorf("Sources() = %q, want %q", got, tc.want)
			}
		})
	}
}
