package config

import (
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// TestLoadValidBlocks: an empty file, plugin blocks, and names with dashes
// and underscores.
func TestLoadValidBlocks(t *testing.T) {
	runLoadValid(t, []loadValidCase{
		{
			name:  "empty file",
			files: memFS{root: ""},
			check: func(t *testing.T, p *Project) {
				if len(p.Tasks) != 0 || len(p.Files) != 1 || !p.Root.VarValues.RawEquals(cty.EmptyObjectVal) {
					t.Errorf("project %+v", p)
				}
			},
		},
		{
			name: "plugins with source and config from variables",
			files: memFS{root: `
variable "registry" {
  type    = string
  default = "registry.example"
}
variable "uri" {
  default = "qemu:///system"
}
plugin "hv" {
  source = "${var.registry}/hypervisor"
  config = {
    uri     = var.uri
    retries = 3
  }
}
plugin "kit" {
  source = "testkit"
}
task "t" {
  step "a" { action = hv.define }
  step "b" { action = kit.record }
}
`},
			check: func(t *testing.T, p *Project) {
				f := p.Root
				if len(f.Plugins) != 2 {
					t.Fatalf("plugins: %v", f.Plugins)
				}
				hv := f.Plugins["hv"]
				if hv == nil || hv.Name != "hv" || hv.File != f || hv.DeclRange.Start.Line != 9 {
					t.Fatalf("plugin hv = %+v", hv)
				}
				equalValue(t, "hv source", eval(t, f, hv.Source, cty.NilVal, cty.NilVal), cty.StringVal("registry.example/hypervisor"))
				if hv.Config == nil {
					t.Fatal("hv has no config")
				}
				cfg := eval(t, f, hv.Config, cty.NilVal, cty.NilVal)
				equalValue(t, "hv config", cfg, cty.ObjectVal(map[string]cty.Value{"uri": cty.StringVal("qemu:///system"), "retries": cty.NumberIntVal(3)}))
				kit := f.Plugins["kit"]
				if kit == nil || kit.Config != nil {
					t.Fatalf("plugin kit = %+v", kit)
				}
				equalValue(t, "kit source", eval(t, f, kit.Source, cty.NilVal, cty.NilVal), cty.StringVal("testkit"))
				a, b := p.Tasks[0].Steps[0], p.Tasks[0].Steps[1]
				if a.Plugin != "hv" || a.ActionName != "define" || b.Plugin != "kit" || b.ActionName != "record" {
					t.Errorf("actions %s.%s, %s.%s", a.Plugin, a.ActionName, b.Plugin, b.ActionName)
				}
			},
		},
		{
			name: "names with dashes and underscores",
			files: memFS{
				root: `
variable "my-var" {
  default = 1
}
variable "_under" {
  default = 2
}
task "build-all_2" {
  param "vm-name" {}
  step "step-1" {
    action = builtin.exec
    x      = var.my-var
  }
  step "step_2" {
    action     = builtin.exec
    depends_on = [step.step-1]
  }
}
include "sub-ns" {
  path = "sub.hcl"
}
`,
				"/proj/sub.hcl": `task "t-1" {
  step "a" { action = builtin.exec }
}`,
			},
			check: func(t *testing.T, p *Project) {
				equalStrings(t, "tasks", p.TaskNames(), []string{"build-all_2", "sub-ns.t-1"})
				tk := p.Tasks[0]
				// A param without a type is a string.
				equalType(t, "vm-name", tk.Params[0].Type, cty.String)
				equalStrings(t, "deps", refStrings(tk.Steps[1].DependsOn), []string{"step.step-1"})
				equalValue(t, "my-var", fileVar(t, p.Root, "my-var"), cty.NumberIntVal(1))
			},
		},
	})
}

// TestLoadValidIncludes: included files, their namespaces and vars.
func TestLoadValidIncludes(t *testing.T) {
	runLoadValid(t, []loadValidCase{
		{
			name: "namespaced includes, nested, with vars pinning variables",
			files: memFS{
				root: `
variable "base" {
  default = "pinned"
}
include "team" {
  path = "team/tasks.hcl"
  vars = { flavour = var.base, size = "3" }
}
task "local" {
  step "x" { action = builtin.exec }
}
`,
				"/proj/team/tasks.hcl": `
variable "flavour" {
  type    = string
  default = "plain"
}
variable "size" {
  type    = number
  default = 1
}
variable "other" {
  default = "untouched"
}
include "deep" {
  path = "deep/tasks.hcl"
}
task "build" {
  description = "Build ${var.flavour}"
  step "where" { action = builtin.exec }
  output "flavour" { value = var.flavour }
}
`,
				"/proj/team/deep/tasks.hcl": `
variable "flavour" {
  default = "deep-default"
}
plugin "h" {
  source = "hello"
}
task "hello" {
  step "greet" {
    action = h.greet
    name   = "deep"
  }
}
task "bye" {
  step "x" { action = h.bye }
}
`,
			},
			check: func(t *testing.T, p *Project) {
				equalStrings(t, "tasks", p.TaskNames(), []string{"local", "team.build", "team.deep.hello", "team.deep.bye"})
				if len(p.Files) != 3 || p.Files[0] != p.Root {
					t.Fatalf("files: %d, root first %v", len(p.Files), p.Files[0] == p.Root)
				}
				for i, want := range []struct{ path, dir, ns string }{
					{"/proj/tasks.hcl", "/proj", ""},
					{"/proj/team/tasks.hcl", "/proj/team", "team"},
					{"/proj/team/deep/tasks.hcl", "/proj/team/deep", "team.deep"},
				} {
					f := p.Files[i]
					if f.Path != want.path || f.Dir != want.dir || f.Namespace != want.ns {
						t.Errorf("file %d = %s %s %q, want %+v", i, f.Path, f.Dir, f.Namespace, want)
					}
				}
				inc := p.Root.Includes
				if len(inc) != 1 || inc[0].Name != "team" || inc[0].Path != "/proj/team/tasks.hcl" || inc[0].DeclRange.Start.Line != 5 {
					t.Fatalf("root includes %+v", inc)
				}
				equalValue(t, "include vars", cty.ObjectVal(inc[0].Vars), cty.ObjectVal(map[string]cty.Value{"flavour": cty.StringVal("pinned"), "size": cty.StringVal("3")}))
				team := p.Files[1]
				equalValue(t, "team var.flavour", fileVar(t, team, "flavour"), cty.StringVal("pinned"))
				equalValue(t, "team var.size", fileVar(t, team, "size"), cty.NumberIntVal(3))
				equalValue(t, "team var.other", fileVar(t, team, "other"), cty.StringVal("untouched"))
				// include vars pin only the included file, not its own includes.
				equalValue(t, "deep var.flavour", fileVar(t, p.Files[2], "flavour"), cty.StringVal("deep-default"))
				if len(team.Includes) != 1 || team.Includes[0].Path != "/proj/team/deep/tasks.hcl" {
					t.Errorf("team includes %+v", team.Includes)
				}
				build := p.Task("team.build")
				if build == nil || build.LocalName != "build" || build.File != team || build.Description != "Build pinned" {
					t.Fatalf("team.build = %+v", build)
				}
				hello := p.Task("team.deep.hello")
				if hello == nil || hello.LocalName != "hello" || hello.File != p.Files[2] {
					t.Fatalf("team.deep.hello = %+v", hello)
				}
				if s := hello.Steps[0]; s.Plugin != "h" || s.ActionName != "greet" {
					t.Errorf("deep step action %s.%s", s.Plugin, s.ActionName)
				}
				if p.Files[2].Plugins["h"] == nil || len(p.Root.Plugins) != 0 {
					t.Error("plugins belong to their own file")
				}
				if p.Task("hello") != nil || p.Task("build") != nil {
					t.Error("included tasks are reachable by their local name")
				}
				if len(p.Sources) != 3 || p.Sources["/proj/team/deep/tasks.hcl"] == nil {
					t.Errorf("sources: %v", p.Sources)
				}
			},
		},
		{
			name: "include path from a variable, the same file twice",
			files: memFS{
				root: `
variable "dir" {
  default = "lib"
}
include "a" {
  path = "${var.dir}/common.hcl"
}
include "b" {
  path = "/proj/lib/common.hcl"
  vars = { who = "b" }
}
`,
				"/proj/lib/common.hcl": `
variable "who" {
  default = "a"
}
task "hi" {
  description = "hi from ${var.who}"
  step "x" { action = builtin.exec }
}
`,
			},
			check: func(t *testing.T, p *Project) {
				equalStrings(t, "tasks", p.TaskNames(), []string{"a.hi", "b.hi"})
				if d := p.Task("a.hi").Description; d != "hi from a" {
					t.Errorf("a.hi: %q", d)
				}
				if d := p.Task("b.hi").Description; d != "hi from b" {
					t.Errorf("b.hi: %q", d)
				}
			},
		},
	})
}

// TestLoadErrorsSyntax: what is not HCL, or not a block a task file has.
func TestLoadErrorsSyntax(t *testing.T) {
	runLoadErrors(t, []loadErrorCase{
		{
			name:    "malformed HCL",
			src:     "task \"t\" {\n  step \"a\" {\n    action = = builtin.exec\n  }\n}\n",
			summary: "Invalid expression", line: 3,
		},
		{
			name:    "unclosed block",
			src:     "task \"t\" {\n  step \"a\" {\n",
			summary: "Unclosed configuration block", line: 2,
		},
		{
			name:    "unknown top-level block",
			src:     "task \"t\" {\n}\nresource \"x\" {\n}\n",
			summary: "Unsupported block type", line: 3, detail: `"resource"`,
		},
		{
			name:    "top-level attribute",
			src:     "\nname = \"x\"\n",
			summary: "Unsupported argument", line: 2,
		},
		{
			name:    "block without a label",
			src:     "\n\ntask {\n}\n",
			summary: "Missing name for task", line: 3,
		},
	})
}

// TestLoadErrorsNames: names declared twice, and names that are not valid.
func TestLoadErrorsNames(t *testing.T) {
	runLoadErrors(t, []loadErrorCase{
		{
			name:    "duplicate variable",
			src:     "variable \"v\" {\n}\n\nvariable \"v\" {\n  default = 1\n}\n",
			summary: `Duplicate variable "v"`, line: 4, detail: "/proj/tasks.hcl:1",
		},
		{
			name:    "duplicate plugin",
			src:     "plugin \"p\" {\n  source = \"a\"\n}\nplugin \"p\" {\n  source = \"b\"\n}\n",
			summary: `Duplicate plugin "p"`, line: 4,
		},
		{
			name:    "duplicate task",
			src:     "task \"t\" {\n}\n\n\ntask \"t\" {\n}\n",
			summary: `Duplicate task "t"`, line: 5,
		},
		{
			name:    "duplicate step",
			src:     "task \"t\" {\n  step \"a\" { action = builtin.exec }\n  step \"a\" { action = builtin.exec }\n}\n",
			summary: `Duplicate step "a"`, line: 3,
		},
		{
			name:    "duplicate param",
			src:     "task \"t\" {\n  param \"p\" {}\n\n  param \"p\" {}\n}\n",
			summary: `Duplicate param "p"`, line: 4,
		},
		{
			name:    "duplicate output",
			src:     "task \"t\" {\n  output \"o\" { value = 1 }\n  output \"o\" { value = 2 }\n}\n",
			summary: `Duplicate output "o"`, line: 3,
		},
		{
			name:    "duplicate include",
			src:     "include \"i\" {\n  path = \"a.hcl\"\n}\ninclude \"i\" {\n  path = \"a.hcl\"\n}\n",
			extra:   memFS{"/proj/a.hcl": ""},
			summary: `Duplicate include "i"`, line: 4,
		},
		{
			name:    "include name clashes with a task",
			src:     "task \"x\" {\n}\ninclude \"x\" {\n  path = \"a.hcl\"\n}\n",
			extra:   memFS{"/proj/a.hcl": ""},
			summary: "Include name clashes with a task", line: 3,
		},
		{
			name:    "invalid variable name",
			src:     "\nvariable \"1abc\" {\n}\n",
			summary: "Invalid variable name", line: 2, detail: `"1abc"`,
		},
		{
			name:    "invalid plugin name",
			src:     "plugin \"my.plugin\" {\n  source = \"x\"\n}\n",
			summary: "Invalid plugin name", line: 1,
		},
		{
			name:    "invalid task name with a dot",
			src:     "\ntask \"team.build\" {\n}\n",
			summary: "Invalid task name", line: 2,
		},
		{
			name:    "invalid task name starting with underscore",
			src:     "task \"_t\" {\n}\n",
			summary: "Invalid task name", line: 1,
		},
		{
			name:    "invalid task name, empty",
			src:     "task \"\" {\n}\n",
			summary: "Invalid task name", line: 1,
		},
		{
			name:    "invalid step name",
			src:     "task \"t\" {\n  step \"a b\" {\n    action = builtin.exec\n  }\n}\n",
			summary: "Invalid step name", line: 2,
		},
		{
			name:    "invalid param name",
			src:     "task \"t\" {\n\n  param \"9\" {}\n}\n",
			summary: "Invalid param name", line: 3,
		},
		{
			name:    "invalid output name",
			src:     "task \"t\" {\n  output \"o.x\" {\n    value = 1\n  }\n}\n",
			summary: "Invalid output name", line: 2,
		},
		{
			name:    "invalid include name",
			src:     "include \"a.b\" {\n  path = \"x.hcl\"\n}\n",
			summary: "Invalid include name", line: 1,
		},
	})
}

// TestLoadErrorsPlugins: bad plugin blocks, and actions of plugins that
// are not declared.
func TestLoadErrorsPlugins(t *testing.T) {
	runLoadErrors(t, []loadErrorCase{
		{
			name:    "plugin builtin is reserved",
			src:     "\n\nplugin \"builtin\" {\n  source = \"x\"\n}\n",
			summary: "Reserved plugin name", line: 3,
		},
		{
			name:    "plugin without source",
			src:     "plugin \"p\" {\n  config = {}\n}\n",
			summary: "Missing required argument", line: 1, detail: `"source"`,
		},
		{
			name:    "plugin with an unknown argument",
			src:     "plugin \"p\" {\n  source = \"x\"\n  version = \"1\"\n}\n",
			summary: "Unsupported argument", line: 3,
		},
		{
			name:    "unknown plugin in action",
			src:     "plugin \"hypervisor\" {\n  source = \"x\"\n}\ntask \"t\" {\n  step \"a\" {\n    action = hypervisr.define\n  }\n}\n",
			summary: "Unknown plugin", line: 6, detail: `Did you mean "hypervisor"?`,
		},
		{
			name:    "plugin unknown to an include and to the file that includes it",
			src:     "plugin \"p\" {\n  source = \"x\"\n}\ninclude \"i\" {\n  path = \"i.hcl\"\n}\n",
			extra:   memFS{"/proj/i.hcl": "task \"t\" {\n  step \"a\" {\n    action = q.run\n  }\n}\n"},
			summary: "Unknown plugin", line: 3, file: "/proj/i.hcl", detail: `Did you mean "p"?`,
		},
	})
}

// TestLoadErrorsIncludes: include cycles, and include blocks that are
// bad or point to what cannot be loaded.
func TestLoadErrorsIncludes(t *testing.T) {
	runLoadErrors(t, []loadErrorCase{
		{
			name:    "include cycle",
			src:     "include \"b\" {\n  path = \"b.hcl\"\n}\n",
			extra:   memFS{"/proj/b.hcl": "\n\ninclude \"a\" {\n  path = \"tasks.hcl\"\n}\n"},
			summary: "Include cycle", line: 3, file: "/proj/b.hcl",
			detail: "A task file includes itself: /proj/tasks.hcl → /proj/b.hcl → /proj/tasks.hcl.",
		},
		{
			name:    "self include",
			src:     "\ninclude \"me\" {\n  path = \"./tasks.hcl\"\n}\n",
			summary: "Include cycle", line: 2,
			detail: "A task file includes itself: /proj/tasks.hcl → /proj/tasks.hcl.",
		},
		{
			name:    "include of a missing file",
			src:     "task \"t\" {\n}\ninclude \"x\" {\n  path = \"nope/tasks.hcl\"\n}\n",
			summary: "Cannot read task file", line: 3, detail: "/proj/nope/tasks.hcl",
		},
		{
			name:    "include path not a string",
			src:     "include \"x\" {\n  path = [\"a\"]\n}\n",
			summary: "Invalid include path", line: 2,
		},
		{
			name:    "include path null",
			src:     "include \"x\" {\n  path = null\n}\n",
			summary: "Invalid include path", line: 2,
		},
		{
			name:    "include without path",
			src:     "include \"x\" {\n}\n",
			summary: "Missing required argument", line: 1,
		},
		{
			name:    "include vars not an object",
			src:     "include \"x\" {\n  path = \"a.hcl\"\n  vars = \"flavour=pinned\"\n}\n",
			extra:   memFS{"/proj/a.hcl": ""},
			summary: "Invalid include vars", line: 3,
		},
		{
			name:    "include vars of the wrong type",
			src:     "include \"x\" {\n  path = \"a.hcl\"\n  vars = { n = \"many\" }\n}\n",
			extra:   memFS{"/proj/a.hcl": "\nvariable \"n\" {\n  type = number\n}\n"},
			summary: "Invalid value for variable", line: 2, file: "/proj/a.hcl",
			detail: `the include's vars: variable "n"`,
		},
		{
			name:    "error in an included file",
			src:     "include \"x\" {\n  path = \"a.hcl\"\n}\n",
			extra:   memFS{"/proj/a.hcl": "task \"t\" {\n  step \"s\" {\n    action = = 1\n  }\n}\n"},
			summary: "Invalid expression", line: 3, file: "/proj/a.hcl",
		},
	})
}
