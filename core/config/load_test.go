package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/lang"
)

// root is the task file every test loads.
const root = "/proj/tasks.hcl"

// memFS is an in-memory file tree: absolute path → content.
type memFS map[string]string

func (m memFS) readFile(p string) ([]byte, error) {
	if s, ok := m[p]; ok {
		return []byte(s), nil
	}
	return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
}

// loadFS loads root from files. Environ defaults to an empty environment,
// so the test never sees the real process environment; a "/proj/.env"
// entry in files is the .env beside the task file.
func loadFS(files memFS, opts Options) (*Project, hcl.Diagnostics) {
	opts.ReadFile = files.readFile
	if opts.Environ == nil {
		opts.Environ = []string{}
	}
	return Load(root, opts)
}

// mustLoad loads and fails the test on any error diagnostic.
func mustLoad(t *testing.T, files memFS, opts Options) *Project {
	t.Helper()
	p, diags := loadFS(files, opts)
	if diags.HasErrors() {
		t.Fatalf("unexpected diagnostics:\n%s", diagString(diags))
	}
	if p == nil || p.Root == nil {
		t.Fatalf("no project or root without errors")
	}
	return p
}

func diagString(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "  %s: %s", d.Summary, d.Detail)
		if d.Subject != nil {
			fmt.Fprintf(&b, " (%s)", d.Subject)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func errorDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			out = append(out, d)
		}
	}
	return out
}

// findDiag returns the first error diagnostic with the given summary.
func findDiag(diags hcl.Diagnostics, summary string) *hcl.Diagnostic {
	for _, d := range diags {
		if d.Severity == hcl.DiagError && d.Summary == summary {
			return d
		}
	}
	return nil
}

// varValue returns the value of var.name in f.
func fileVar(t *testing.T, f *File, name string) cty.Value {
	t.Helper()
	if !f.VarValues.Type().IsObjectType() || !f.VarValues.Type().HasAttribute(name) {
		t.Fatalf("%s: no var.%s in %#v", f.Path, name, f.VarValues)
	}
	return f.VarValues.GetAttr(name)
}

// eval evaluates an expression of f with var.* and functions.
func eval(t *testing.T, f *File, e hcl.Expression, params, steps cty.Value) cty.Value {
	t.Helper()
	v, diags := e.Value(f.EvalContext(params, steps))
	if diags.HasErrors() {
		t.Fatalf("evaluating %s: %s", e.Range(), diagString(diags))
	}
	return v
}

func argNames(s *Step) []string {
	out := make([]string, len(s.Args))
	for i, a := range s.Args {
		out[i] = a.Name
	}
	return out
}

func refStrings(refs []StepRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = "step." + r.Step
		if r.Output != "" {
			out[i] += "." + r.Output
		}
	}
	return out
}

func equalStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func equalValue(t *testing.T, what string, got, want cty.Value) {
	t.Helper()
	if got == cty.NilVal || want == cty.NilVal {
		if got != want {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
		return
	}
	if !got.RawEquals(want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func equalType(t *testing.T, what string, got, want cty.Type) {
	t.Helper()
	if !got.Equals(want) {
		t.Errorf("%s type = %#v, want %#v", what, got, want)
	}
}

// TestLoadValid loads valid files and checks what the loader made of them.
func TestLoadValid(t *testing.T) {
	tests := []struct {
		name  string
		files memFS
		opts  Options
		check func(t *testing.T, p *Project)
	}{
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
		{
			name: "required variable set by --var, validation passes",
			files: memFS{root: `
variable "backend" {
  type = string
  validation {
    condition     = contains(["libvirt", "proxmox"], var.backend)
    error_message = "backend must be libvirt or proxmox."
  }
  validation {
    condition     = strlen(var.backend) > 3
    error_message = "too short"
  }
}
`},
			opts: Options{Vars: []string{"backend=proxmox"}},
			check: func(t *testing.T, p *Project) {
				v := p.Root.Variables[0]
				if v.Default != cty.NilVal {
					t.Errorf("default = %#v, want none", v.Default)
				}
				if len(v.Validations) != 2 {
					t.Fatalf("%d validations, want 2", len(v.Validations))
				}
				if l := v.Validations[1].DeclRange.Start.Line; l != 8 {
					t.Errorf("second validation on line %d, want 8", l)
				}
				equalValue(t, "var.backend", fileVar(t, p.Root, "backend"), cty.StringVal("proxmox"))
				if len(p.Deferred) != 0 {
					t.Errorf("deferred: %s", diagString(p.Deferred))
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
			name: "task with params, lock, steps, depends_on, if and outputs",
			files: memFS{root: `
plugin "hv" {
  source = "hypervisor"
}
variable "pool" {
  default = "default"
}
task "create" {
  description = "Create a VM in ${var.pool}"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "memory" {
    type    = number
    default = 1024
  }
  param "start" {
    type    = bool
    default = true
  }
  param "profiles" {
    type    = list(string)
    default = ["core"]
  }
  lock = "vm-${param.name}"

  step "disk" {
    action = hv.create_disk
    size   = "10G"
    pool   = var.pool
    name   = param.name
  }
  step "define" {
    name    = param.name
    action  = hv.define
    memory  = param.memory
    disk    = step.disk.path
    network = "default"
  }
  step "start" {
    action     = hv.start
    if         = param.start && step.define.ok
    domain     = step.define.id
    depends_on = [step.disk, step.define]
  }
  step "report" {
    action = builtin.exec
    argv   = ["echo", step.define.id, step.define.id, step.disk.path]
    depends_on = [step.start]
  }
  output "id" {
    value       = step.define.id
    description = "Domain id"
  }
  output "secret" {
    value     = "${step.disk.path}:${step.define.id}"
    sensitive = true
  }
  output "plain" {
    value = param.name
  }
}
task "other" {
  step "x" { action = builtin.exec }
}
`},
			check: func(t *testing.T, p *Project) {
				equalStrings(t, "tasks", p.TaskNames(), []string{"create", "other"})
				tk := p.Task("create")
				if tk == nil || tk.LocalName != "create" || tk.File != p.Root || tk.DeclRange.Start.Line != 8 {
					t.Fatalf("task = %+v", tk)
				}
				if p.Task("nosuch") != nil {
					t.Error("Task(nosuch) != nil")
				}
				if tk.Description != "Create a VM in default" {
					t.Errorf("description = %q", tk.Description)
				}
				var pn []string
				for _, pr := range tk.Params {
					pn = append(pn, pr.Name)
				}
				equalStrings(t, "params", pn, []string{"name", "memory", "start", "profiles"})
				name, mem, start, prof := tk.Params[0], tk.Params[1], tk.Params[2], tk.Params[3]
				equalType(t, "name", name.Type, cty.String)
				equalType(t, "memory", mem.Type, cty.Number)
				equalType(t, "start", start.Type, cty.Bool)
				equalType(t, "profiles", prof.Type, cty.List(cty.String))
				if !name.Required() || mem.Required() || name.Description != "VM name" {
					t.Errorf("name required=%v desc=%q, memory required=%v", name.Required(), name.Description, mem.Required())
				}
				equalValue(t, "memory default", mem.Default, cty.NumberIntVal(1024))
				equalValue(t, "start default", start.Default, cty.True)
				equalValue(t, "profiles default", prof.Default, cty.ListVal([]cty.Value{cty.StringVal("core")}))
				if tk.Param("memory") != mem || tk.Param("nope") != nil {
					t.Error("Param lookup")
				}
				if tk.Lock == nil {
					t.Fatal("no lock")
				}
				params := cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("web")})
				equalValue(t, "lock", eval(t, p.Root, tk.Lock, params, cty.NilVal), cty.StringVal("vm-web"))

				var sn []string
				for _, s := range tk.Steps {
					sn = append(sn, s.Name)
				}
				equalStrings(t, "steps", sn, []string{"disk", "define", "start", "report"})
				disk, def, st, rep := tk.Steps[0], tk.Steps[1], tk.Steps[2], tk.Steps[3]
				if tk.Step("define") != def || tk.Step("nope") != nil {
					t.Error("Step lookup")
				}
				for _, c := range []struct {
					s              *Step
					plugin, action string
					args, deps     []string
					refs           []string
					hasIf          bool
				}{
					{disk, "hv", "create_disk", []string{"size", "pool", "name"}, nil, nil, false},
					{def, "hv", "define", []string{"name", "memory", "disk", "network"}, nil, []string{"step.disk.path"}, false},
					// Refs list the arguments' references in source order, then
					// the if's, then depends_on's (here if precedes domain in
					// the source but its refs come second).
					{st, "hv", "start", []string{"domain"}, []string{"step.disk", "step.define"}, []string{"step.define.id", "step.define.ok", "step.disk", "step.define"}, true},
					{rep, "builtin", "exec", []string{"argv"}, []string{"step.start"}, []string{"step.define.id", "step.disk.path", "step.start"}, false},
				} {
					s := c.s
					if s.Plugin != c.plugin || s.ActionName != c.action {
						t.Errorf("step %s action = %s.%s, want %s.%s", s.Name, s.Plugin, s.ActionName, c.plugin, c.action)
					}
					equalStrings(t, "step "+s.Name+" args", argNames(s), c.args)
					equalStrings(t, "step "+s.Name+" depends_on", refStrings(s.DependsOn), c.deps)
					equalStrings(t, "step "+s.Name+" refs", refStrings(s.Refs), c.refs)
					if (s.If != nil) != c.hasIf {
						t.Errorf("step %s if = %v", s.Name, s.If)
					}
					if s.Arg(ArgAction) != nil || s.Arg(ArgDependsOn) != nil || s.Arg(ArgIf) != nil {
						t.Errorf("step %s: meta-argument among Args", s.Name)
					}
				}
				if def.ActionRange.Start.Line != 36 {
					t.Errorf("define's action on line %d, want 36", def.ActionRange.Start.Line)
				}
				if st.DependsOn[1].Range.Start.Line != 45 {
					t.Errorf("depends_on range line %d", st.DependsOn[1].Range.Start.Line)
				}
				if disk.Arg("pool") == nil || disk.Arg("nope") != nil {
					t.Error("Arg lookup")
				}

				var on []string
				for _, o := range tk.Outputs {
					on = append(on, o.Name)
				}
				equalStrings(t, "outputs", on, []string{"id", "secret", "plain"})
				id, sec, plain := tk.Outputs[0], tk.Outputs[1], tk.Outputs[2]
				if id.Description != "Domain id" || id.Sensitive || !sec.Sensitive {
					t.Errorf("outputs: %+v %+v", id, sec)
				}
				equalStrings(t, "id refs", refStrings(id.Refs), []string{"step.define.id"})
				equalStrings(t, "secret refs", refStrings(sec.Refs), []string{"step.disk.path", "step.define.id"})
				equalStrings(t, "plain refs", refStrings(plain.Refs), nil)
			},
		},
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
		{
			name: "env() sees .env and the process environment wins",
			files: memFS{
				root: `
variable "home" {
  default = env("HOME")
}
variable "region" {
  default = env("REGION")
}
variable "missing" {
  default = env("NOPE", "fallback")
}
variable "empty" {
  default = env("NOPE")
}
`,
				"/proj/.env": "HOME=/from/dotenv\nREGION=eu-dotenv\n# comment\nQUOTED=\"a b\"\n",
			},
			opts: Options{Environ: []string{"HOME=/from/process", "PATH=/bin"}},
			check: func(t *testing.T, p *Project) {
				equalValue(t, "home", fileVar(t, p.Root, "home"), cty.StringVal("/from/process"))
				equalValue(t, "region", fileVar(t, p.Root, "region"), cty.StringVal("eu-dotenv"))
				equalValue(t, "missing", fileVar(t, p.Root, "missing"), cty.StringVal("fallback"))
				equalValue(t, "empty", fileVar(t, p.Root, "empty"), cty.StringVal(""))
				want := map[string]string{"HOME": "/from/process", "REGION": "eu-dotenv", "QUOTED": "a b", "PATH": "/bin"}
				if !reflect.DeepEqual(p.Env, want) {
					t.Errorf("Env = %v, want %v", p.Env, want)
				}
			},
		},
		{
			name: "SkipDotEnv ignores .env",
			files: memFS{
				root: `
variable "v" {
  default = "default"
}
`,
				"/proj/.env": "VMFLOW_VAR_v=dotenv\nX=1\n",
			},
			opts: Options{SkipDotEnv: true},
			check: func(t *testing.T, p *Project) {
				equalValue(t, "v", fileVar(t, p.Root, "v"), cty.StringVal("default"))
				if _, ok := p.Env["X"]; ok {
					t.Error(".env read despite SkipDotEnv")
				}
			},
		},
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
			name: "wizard, options and prompt",
			files: memFS{root: `
variable "nets" {
  default = ["nat", "bridge"]
}
task "create" {
  wizard = true
  param "name" {
    type        = string
    description = "VM name"
  }
  param "network" {
    type    = string
    default = "nat"
    options = var.nets
    prompt  = "Which network?"
  }
  param "profiles" {
    type    = list(string)
    default = ["base"]
    options = ["base", "dev", "gui"]
  }
  param "vcpus" {
    type    = number
    default = 2
    options = [1, 2, "4"]
  }
  step "s" { action = builtin.exec }
}
task "plain" {
  step "s" { action = builtin.exec }
}
`},
			check: func(t *testing.T, p *Project) {
				tk := p.Task("create")
				if !tk.Wizard || p.Task("plain").Wizard {
					t.Errorf("Wizard = %v, %v; want true, false", tk.Wizard, p.Task("plain").Wizard)
				}
				str := cty.StringVal
				name, net, prof, cpus := tk.Param("name"), tk.Param("network"), tk.Param("profiles"), tk.Param("vcpus")
				if name.Options != nil || name.Question() != "VM name" {
					t.Errorf("name: options %v, question %q", name.Options, name.Question())
				}
				equalValue(t, "network options", cty.ListVal(net.Options), cty.ListVal([]cty.Value{str("nat"), str("bridge")}))
				if net.Prompt != "Which network?" || net.Question() != "Which network?" || net.MultiSelect() {
					t.Errorf("network: prompt %q, question %q, multi %v", net.Prompt, net.Question(), net.MultiSelect())
				}
				// A list param's options are values of its element type.
				equalValue(t, "profiles options", cty.ListVal(prof.Options), cty.ListVal([]cty.Value{str("base"), str("dev"), str("gui")}))
				if !prof.MultiSelect() || prof.Question() != "profiles" {
					t.Errorf("profiles: multi %v, question %q", prof.MultiSelect(), prof.Question())
				}
				// Options convert to the param's type, like a default does.
				equalValue(t, "vcpus options", cty.ListVal(cpus.Options),
					cty.ListVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2), cty.NumberIntVal(4)}))
				equalStrings(t, "vcpus option args", cpus.OptionArgs(), []string{"1", "2", "4"})
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
		{
			name: "required variable deferred",
			files: memFS{root: `
variable "token" {
  type = string
}
variable "size" {
  type    = number
  default = 1
}
task "needs" {
  step "x" {
    action = builtin.exec
    token  = var.token
  }
}
`},
			opts: Options{DeferMissingVars: true},
			check: func(t *testing.T, p *Project) {
				if len(p.Deferred) != 1 {
					t.Fatalf("deferred: %s", diagString(p.Deferred))
				}
				d := p.Deferred[0]
				if d.Summary != "No value for required variable" || d.Subject == nil || d.Subject.Start.Line != 2 {
					t.Errorf("deferred diag %s", diagString(p.Deferred))
				}
				if !strings.Contains(d.Detail, "--var token=…") || !strings.Contains(d.Detail, "VMFLOW_VAR_token") {
					t.Errorf("detail %q", d.Detail)
				}
				tok := fileVar(t, p.Root, "token")
				if tok.IsKnown() || !tok.Type().Equals(cty.String) {
					t.Errorf("var.token = %#v, want unknown string", tok)
				}
				equalValue(t, "size", fileVar(t, p.Root, "size"), cty.NumberIntVal(1))
				equalStrings(t, "tasks", p.TaskNames(), []string{"needs"})
			},
		},
		{
			name: "deferred variable failing validation is not checked",
			files: memFS{root: `
variable "token" {
  type = string
  validation {
    condition     = strlen(var.token) > 100
    error_message = "too short"
  }
}
`},
			opts: Options{DeferMissingVars: true},
			check: func(t *testing.T, p *Project) {
				if len(p.Deferred) != 1 {
					t.Errorf("deferred: %s", diagString(p.Deferred))
				}
			},
		},
		{
			name: "overrides convert to the variable's type",
			files: memFS{root: `
variable "memory" {
  type = number
}
variable "names" {
  type = list(string)
}
`},
			opts: Options{Overrides: map[string]cty.Value{
				"memory": cty.StringVal("4096"),
				"names":  cty.TupleVal([]cty.Value{cty.StringVal("a")}),
			}},
			check: func(t *testing.T, p *Project) {
				equalValue(t, "memory", fileVar(t, p.Root, "memory"), cty.NumberIntVal(4096))
				equalValue(t, "names", fileVar(t, p.Root, "names"), cty.ListVal([]cty.Value{cty.StringVal("a")}))
			},
		},
		{
			name: "--var parses by type; a --var sets same-named variables in every file",
			files: memFS{
				root: `
variable "profiles" {
  type = list(string)
}
variable "labels" {
  type = map(string)
}
variable "vm" {
  type = object({ cpus = number })
}
variable "raw" {}
variable "spaced" {
  type = string
}
include "sub" {
  path = "sub.hcl"
}
`,
				"/proj/sub.hcl": `
variable "raw" {
  type = string
}
`,
			},
			opts: Options{Vars: []string{"profiles=core, dev", `labels={ env = "x" }`, "vm={cpus=4}", "raw=42", "spaced = a = b "}},
			check: func(t *testing.T, p *Project) {
				equalValue(t, "profiles", fileVar(t, p.Root, "profiles"), cty.ListVal([]cty.Value{cty.StringVal("core"), cty.StringVal("dev")}))
				equalValue(t, "labels", fileVar(t, p.Root, "labels"), cty.MapVal(map[string]cty.Value{"env": cty.StringVal("x")}))
				equalValue(t, "vm", fileVar(t, p.Root, "vm"), cty.ObjectVal(map[string]cty.Value{"cpus": cty.NumberIntVal(4)}))
				equalValue(t, "raw (any)", fileVar(t, p.Root, "raw"), cty.NumberIntVal(42))
				equalValue(t, "raw (string, included)", fileVar(t, p.Files[1], "raw"), cty.StringVal("42"))
				// The name is trimmed, the value is not.
				equalValue(t, "spaced", fileVar(t, p.Root, "spaced"), cty.StringVal(" a = b "))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustLoad(t, tc.files, tc.opts)
			tc.check(t, p)
		})
	}
}

// TestLoadPrecedence checks where a variable's value comes from:
// Overrides > include vars > --var > process env > .env > default. The
// variable lives in an included file so that include vars can pin it; a
// second load with a validation that always fails reveals the origin the
// loader records.
func TestLoadPrecedence(t *testing.T) {
	type sources struct {
		override, include, cli, env, dotenv bool
		noDefault                           bool
	}
	tests := []struct {
		name       string
		src        sources
		want       string
		wantOrigin string
	}{
		{"default only", sources{}, "default", "the default"},
		{".env over default", sources{dotenv: true}, "dotenv", "/proj/.env (VMFLOW_VAR_v)"},
		{"env over .env", sources{env: true, dotenv: true}, "env", "environment variable VMFLOW_VAR_v"},
		{"--var over env", sources{cli: true, env: true, dotenv: true}, "cli", "--var v=cli"},
		{"include vars over env", sources{include: true, env: true, dotenv: true}, "include", "the include's vars"},
		{"override over include and env", sources{override: true, include: true, env: true, dotenv: true}, "override", "the resumed run"},
		{"env without default", sources{env: true, noDefault: true}, "env", "environment variable VMFLOW_VAR_v"},
		{".env without default", sources{dotenv: true, noDefault: true}, "dotenv", "/proj/.env (VMFLOW_VAR_v)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			build := func(failing bool) (memFS, Options) {
				incVars := ""
				if tc.src.include {
					incVars = `vars = { v = "include" }`
				}
				def := `default = "default"`
				if tc.src.noDefault {
					def = ""
				}
				val := ""
				if failing {
					val = `
  validation {
    condition     = var.v == "never"
    error_message = "v is never right."
  }`
				}
				files := memFS{
					root: fmt.Sprintf(`include "inc" {
  path = "inc.hcl"
  %s
}
`, incVars),
					"/proj/inc.hcl": fmt.Sprintf(`variable "v" {
  type = string
  %s
  %s
}
`, def, val),
				}
				var opts Options
				opts.Environ = []string{"OTHER=1"}
				if tc.src.dotenv {
					files["/proj/.env"] = "VMFLOW_VAR_v=dotenv\n"
				}
				if tc.src.env {
					opts.Environ = append(opts.Environ, "VMFLOW_VAR_v=env")
				}
				if tc.src.cli {
					opts.Vars = []string{"v=cli"}
				}
				if tc.src.override {
					opts.Overrides = map[string]cty.Value{"v": cty.StringVal("override")}
				}
				return files, opts
			}
			files, opts := build(false)
			p := mustLoad(t, files, opts)
			equalValue(t, "inc var.v", fileVar(t, p.Files[1], "v"), cty.StringVal(tc.want))

			_, diags := loadFS(build(true))
			d := findDiag(diags, `Invalid value for variable "v"`)
			if d == nil {
				t.Fatalf("validation did not fail:\n%s", diagString(diags))
			}
			wantDetail := fmt.Sprintf("v is never right.\n\nThe value %q came from %s.", tc.want, tc.wantOrigin)
			if d.Detail != wantDetail {
				t.Errorf("detail = %q, want %q", d.Detail, wantDetail)
			}
			if d.Subject == nil || d.Subject.Filename != "/proj/inc.hcl" || d.Subject.Start.Line != 6 {
				t.Errorf("subject = %v, want /proj/inc.hcl line 6", d.Subject)
			}
		})
	}
}

// TestLoadErrors checks that each kind of bad input gets a diagnostic with
// the right summary at the right line.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string // the root file
		extra memFS  // other files
		opts  Options
		// summary and line of the expected diagnostic; line 0 means no
		// subject. file is the subject's file, root when empty.
		summary string
		line    int
		file    string
		detail  string // a substring of the detail, when set
	}{
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
			name:    "step without action",
			src:     "task \"t\" {\n  step \"a\" {\n    x = 1\n  }\n}\n",
			summary: "Missing action", line: 2, detail: `Step "a" needs action`,
		},
		{
			name:    "step with both action and task",
			src:     "task \"u\" {}\ntask \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    task = \"u\"\n  }\n}\n",
			summary: "Both action and task", line: 5,
		},
		{
			name:    "task call of an unknown task",
			src:     "task \"provision\" {}\ntask \"t\" {\n  step \"a\" {\n    task = \"provison\"\n  }\n}\n",
			summary: "Unknown task", line: 4, detail: `Did you mean "provision"?`,
		},
		{
			name:    "task call with an unknown param",
			src:     "task \"u\" {\n  param \"name\" {\n    type = string\n    default = \"\"\n  }\n}\ntask \"t\" {\n  step \"a\" {\n    task = \"u\"\n    nmae = \"x\"\n  }\n}\n",
			summary: "Unknown param", line: 10, detail: `Task u has no param "nmae". Did you mean "name"? Its params: name.`,
		},
		{
			name:    "task call without a required param",
			src:     "task \"u\" {\n  param \"name\" { type = string }\n}\ntask \"t\" {\n  step \"a\" {\n    task = \"u\"\n  }\n}\n",
			summary: "Missing param", line: 5, detail: `param "name" has no default`,
		},
		{
			name:    "task calls in a cycle",
			src:     "task \"u\" {\n  step \"b\" {\n    task = \"t\"\n  }\n}\ntask \"t\" {\n  step \"a\" {\n    task = \"u\"\n  }\n}\n",
			summary: "Task calls form a cycle", line: 8, detail: `u → t → u`,
		},
		{
			name:    "task that calls itself",
			src:     "task \"t\" {\n  step \"a\" {\n    task = \"t\"\n  }\n}\n",
			summary: "Task calls form a cycle", line: 3, detail: `t → t`,
		},
		{
			name:    "commit on a task call",
			src:     "task \"u\" {}\ntask \"t\" {\n  step \"a\" {\n    task = \"u\"\n    commit = true\n  }\n}\n",
			summary: "Commit on a task call", line: 5,
		},
		{
			name:    "task is not a string",
			src:     "task \"u\" {}\ntask \"t\" {\n  step \"a\" {\n    task = u\n  }\n}\n",
			summary: "Invalid task", line: 4,
		},
		{
			name:    "action is a string",
			src:     "task \"t\" {\n  step \"a\" {\n    action = \"builtin.exec\"\n  }\n}\n",
			summary: "Invalid action", line: 3,
		},
		{
			name:    "action without an action name",
			src:     "task \"t\" {\n  step \"a\" {\n\n    action = builtin\n  }\n}\n",
			summary: "Invalid action", line: 4,
		},
		{
			name:    "action too long",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec.more\n  }\n}\n",
			summary: "Invalid action", line: 3,
		},
		{
			name:    "action with a numeric index",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin[0]\n  }\n}\n",
			summary: "Invalid action", line: 3,
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
		{
			name:    "depends_on is not a list",
			src:     "task \"t\" {\n  step \"a\" { action = builtin.exec }\n  step \"b\" {\n    action = builtin.exec\n    depends_on = step.a\n  }\n}\n",
			summary: "Invalid depends_on", line: 5, detail: "must be a list",
		},
		{
			name:    "depends_on element is not a step",
			src:     "variable \"v\" {\n  default = 1\n}\ntask \"t\" {\n  step \"b\" {\n    action = builtin.exec\n    depends_on = [\n      var.v,\n    ]\n  }\n}\n",
			summary: "Invalid depends_on", line: 8, detail: "step.<name>",
		},
		{
			name:    "depends_on a step output",
			src:     "task \"t\" {\n  step \"a\" { action = builtin.exec }\n  step \"b\" {\n    action = builtin.exec\n    depends_on = [step.a.out]\n  }\n}\n",
			summary: "Invalid depends_on", line: 5,
		},
		{
			name:    "depends_on an undeclared step",
			src:     "task \"t\" {\n  step \"first\" { action = builtin.exec }\n  step \"b\" {\n    action = builtin.exec\n    depends_on = [step.frist]\n  }\n}\n",
			summary: "Reference to undeclared step", line: 5, detail: `Task "t" has no step named "frist". Did you mean "first"?`,
		},
		{
			name:    "reference to an undeclared variable",
			src:     "variable \"memory\" {\n  default = 1\n}\ntask \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    m = var.memroy\n  }\n}\n",
			summary: "Reference to undeclared variable", line: 7, detail: `No variable "memroy" is declared in this file. Did you mean "memory"?`,
		},
		{
			// Descriptions are evaluated, not reference-checked: the error is
			// HCL's own.
			name:    "description refers to an undeclared variable",
			src:     "task \"t\" {\n\n  description = \"${var.v}\"\n}\n",
			summary: "Unsupported attribute", line: 3,
		},
		{
			name:    "unknown function in a precondition",
			src:     "task \"t\" {\n  precondition {\n    condition     = alltrue([true])\n    error_message = \"x\"\n  }\n}\n",
			summary: "Call to unknown function", line: 3, detail: `There is no function named "alltrue".`,
		},
		{
			name:    "misspelt function in an output",
			src:     "task \"t\" {\n  output \"o\" {\n    value = lenght([1])\n  }\n}\n",
			summary: "Call to unknown function", line: 3, detail: `There is no function named "lenght". Did you mean "length"?`,
		},
		{
			name:    "reference to an undeclared param",
			src:     "task \"t\" {\n  param \"name\" {}\n  step \"a\" {\n    action = builtin.exec\n    n = param.nmae\n  }\n}\n",
			summary: "Reference to undeclared param", line: 5, detail: `Task "t" has no param "nmae". Did you mean "name"?`,
		},
		{
			name:    "reference to an undeclared step",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n  }\n  output \"o\" {\n    value = step.b.out\n  }\n}\n",
			summary: "Reference to undeclared step", line: 6,
		},
		{
			name:    "whole-step reference in an argument",
			src:     "task \"t\" {\n  step \"a\" { action = builtin.exec }\n  step \"b\" {\n    action = builtin.exec\n    x = step.a\n  }\n}\n",
			summary: "Incomplete step reference", line: 5, detail: "depends_on = [step.a]",
		},
		{
			name:    "incomplete reference",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    x = var\n  }\n}\n",
			summary: "Incomplete reference", line: 4,
		},
		{
			name:    "unknown reference root",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    x = module.foo\n  }\n}\n",
			summary: "Unknown reference", line: 4, detail: `"module"`,
		},
		{
			name:    "undeclared local",
			src:     "locals {\n  machines = \"m\"\n}\ntask \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    x = local.machine\n  }\n}\n",
			summary: "Reference to undeclared local", line: 7, detail: `Did you mean "machines"?`,
		},
		{
			name:    "locals that need each other",
			src:     "locals {\n  a = local.b\n  b = \"${local.a}x\"\n}\n",
			summary: "Locals refer to each other", line: 2, detail: `a, b`,
		},
		{
			name:    "local that uses a param",
			src:     "locals {\n  a = param.name\n}\n",
			summary: "param.* is not allowed in a local", line: 2,
		},
		{
			name:    "task local that uses a step",
			src:     "task \"t\" {\n  locals {\n    a = step.s.x\n  }\n  step \"s\" { action = builtin.exec }\n}\n",
			summary: "step.* is not allowed here", line: 3,
		},
		{
			name:    "task local that shadows a file local",
			src:     "locals {\n  a = 1\n}\ntask \"t\" {\n  locals {\n    a = 2\n  }\n}\n",
			summary: "Local shadows a file local", line: 6,
		},
		{
			name:    "task locals that need each other",
			src:     "task \"t\" {\n  locals {\n    a = local.b\n    b = local.a\n  }\n}\n",
			summary: "Locals refer to each other", line: 3, detail: "task t",
		},
		{
			name:    "local of another task",
			src:     "task \"u\" {\n  locals {\n    mine = 1\n  }\n}\ntask \"t\" {\n  step \"s\" {\n    action = builtin.exec\n    x = local.mine\n  }\n}\n",
			summary: "Reference to undeclared local", line: 9, detail: "this file or task t",
		},
		{
			name:    "local declared twice",
			src:     "locals {\n  a = 1\n}\nlocals {\n  a = 2\n}\n",
			summary: `Duplicate local "a"`, line: 5,
		},
		{
			name:    "param in a plugin source",
			src:     "plugin \"p\" {\n  source = param.x\n}\n",
			summary: "param.* is not allowed here", line: 2, detail: "In a plugin's source you can use var.*.",
		},
		{
			name:    "step in a task lock",
			src:     "task \"t\" {\n  step \"a\" { action = builtin.exec }\n  lock = step.a.id\n}\n",
			summary: "step.* is not allowed here", line: 3,
		},
		{
			name:    "param in a param default",
			src:     "task \"t\" {\n  param \"a\" {}\n  param \"b\" {\n    default = param.a\n  }\n}\n",
			summary: "param.* is not allowed here", line: 4,
		},
		{
			name:    "param in an include path",
			src:     "include \"i\" {\n  path = param.p\n}\n",
			summary: "param.* is not allowed here", line: 2,
		},
		{
			name:    "step referring to itself",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    x = step.a.out\n  }\n}\n",
			summary: "Self-referencing step", line: 4, detail: `Step "a" cannot use its own outputs.`,
		},
		{
			name:    "step condition referring to itself",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n\n    if = step.a.ok\n  }\n}\n",
			summary: "Self-referencing step", line: 5,
		},
		{
			name:    "step depending on itself",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    depends_on = [step.a]\n  }\n}\n",
			summary: "Self-referencing step", line: 4, detail: `Step "a" cannot depend on itself.`,
		},
		{
			name:    "required param after optional",
			src:     "task \"t\" {\n  param \"a\" {\n    default = \"x\"\n  }\n  param \"b\" {}\n}\n",
			summary: "Required param after an optional one", line: 5, detail: `"b" (required) cannot follow "a"`,
		},
		{
			name:    "invalid param default",
			src:     "task \"t\" {\n  param \"n\" {\n    type    = number\n    default = \"many\"\n  }\n}\n",
			summary: "Invalid default value for param", line: 4,
		},
		{
			name:    "options on a map param",
			src:     "task \"t\" {\n  param \"m\" {\n    type    = map(string)\n    options = [\"a\"]\n  }\n}\n",
			summary: "Invalid options for param", line: 4, detail: `options need a param of type string, number or bool`,
		},
		{
			name:    "option of the wrong type",
			src:     "task \"t\" {\n  param \"n\" {\n    type    = number\n    options = [\n      1,\n      \"two\",\n    ]\n  }\n}\n",
			summary: "Invalid options for param", line: 6, detail: `Option "two" of "n" is not a number`,
		},
		{
			name:    "list option of the wrong type",
			src:     "task \"t\" {\n  param \"ports\" {\n    type    = list(number)\n    options = [22, \"http\"]\n  }\n}\n",
			summary: "Invalid options for param", line: 4, detail: `Option "http" of "ports" is not a number`,
		},
		{
			name:    "options not a list",
			src:     "task \"t\" {\n  param \"net\" {\n    options = \"nat\"\n  }\n}\n",
			summary: "Invalid options for param", line: 3, detail: `options must be a list`,
		},
		{
			name:    "options empty",
			src:     "task \"t\" {\n  param \"net\" {\n\n    options = []\n  }\n}\n",
			summary: "Invalid options for param", line: 4, detail: `is empty`,
		},
		{
			name:    "option listed twice",
			src:     "task \"t\" {\n  param \"net\" {\n    options = [\"nat\", \"nat\"]\n  }\n}\n",
			summary: "Invalid options for param", line: 3, detail: `Option "nat" of "net" is listed twice`,
		},
		{
			name:    "null option",
			src:     "task \"t\" {\n  param \"net\" {\n    options = [null]\n  }\n}\n",
			summary: "Invalid options for param", line: 3, detail: `is null`,
		},
		{
			name:    "options use a param",
			src:     "task \"t\" {\n  param \"a\" {}\n  param \"b\" {\n    options = [param.a]\n  }\n}\n",
			summary: "param.* is not allowed here", line: 4, detail: "In a param's options you can use var.*",
		},
		{
			name:    "default outside the options",
			src:     "task \"t\" {\n  param \"net\" {\n    options = [\"nat\", \"bridge\"]\n    default = \"host\"\n  }\n}\n",
			summary: "Default value not among the options", line: 4, detail: `The default of "net": "host" is not one of its options: "nat", "bridge".`,
		},
		{
			name:    "list default outside the options",
			src:     "task \"t\" {\n  param \"p\" {\n    type    = list(string)\n    options = [\"base\", \"dev\"]\n    default = [\"base\", \"gui\"]\n  }\n}\n",
			summary: "Default value not among the options", line: 5, detail: `"gui" is not one of its options: "base", "dev"`,
		},
		{
			name:    "number default outside the options",
			src:     "task \"t\" {\n  param \"n\" {\n    type    = number\n    options = [1, 2]\n    default = 3\n  }\n}\n",
			summary: "Default value not among the options", line: 5, detail: `3 is not one of its options: 1, 2`,
		},
		{
			name:    "prompt not a string",
			src:     "task \"t\" {\n  param \"p\" {\n    prompt = [\"Name?\"]\n  }\n}\n",
			summary: "Invalid prompt", line: 3,
		},
		{
			name:    "wizard not a bool",
			src:     "task \"t\" {\n  wizard = \"yes\"\n}\n",
			summary: "Invalid wizard", line: 2,
		},
		{
			name:    "wizard on a param",
			src:     "task \"t\" {\n  param \"p\" {\n    wizard = true\n  }\n}\n",
			summary: "Unsupported argument", line: 3,
		},
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
			name:    "description not a string",
			src:     "task \"t\" {\n  description = [\"x\"]\n}\n",
			summary: "Invalid description", line: 2,
		},
		{
			name:    "sensitive not a bool",
			src:     "variable \"v\" {\n  default   = 1\n  sensitive = \"yes\"\n}\n",
			summary: "Invalid sensitive", line: 3,
		},
		{
			name:    "output without value",
			src:     "task \"t\" {\n  output \"o\" {\n    description = \"x\"\n  }\n}\n",
			summary: "Missing required argument", line: 2, detail: `"value"`,
		},
		{
			name:    "block inside a step",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    opts {\n    }\n  }\n}\n",
			summary: "Unexpected \"opts\" block", line: 4,
		},
		{
			name:    "unknown block inside a task",
			src:     "task \"t\" {\n  steps \"a\" {\n  }\n}\n",
			summary: "Unsupported block type", line: 2,
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
		{
			name:    "wrong type of --var",
			src:     "\nvariable \"memory\" {\n  type = number\n}\n",
			opts:    Options{Vars: []string{"memory=lots"}},
			summary: "Invalid value for variable", line: 2,
			detail: `--var memory=lots: variable "memory": a number is required, got "lots".`,
		},
		{
			name:    "wrong type in the environment",
			src:     "variable \"memory\" {\n  type = number\n}\n",
			opts:    Options{Environ: []string{"VMFLOW_VAR_memory=many"}},
			summary: "Invalid value for variable", line: 1,
			detail: `environment variable VMFLOW_VAR_memory: variable "memory": a number is required, got "many".`,
		},
		{
			name:    "wrong type in .env",
			src:     "variable \"on\" {\n  type = bool\n}\n",
			extra:   memFS{"/proj/.env": "VMFLOW_VAR_on=maybe\n"},
			summary: "Invalid value for variable", line: 1,
			detail: `/proj/.env (VMFLOW_VAR_on): variable "on": a bool (true or false) is required, got "maybe".`,
		},
		{
			name:    "wrong type of an override",
			src:     "variable \"memory\" {\n  type = number\n}\n",
			opts:    Options{Overrides: map[string]cty.Value{"memory": cty.StringVal("x")}},
			summary: "Invalid value for variable", line: 1, detail: "the resumed run: variable \"memory\"",
		},
		{
			name:    "undeclared --var",
			src:     "variable \"memory\" {\n  default = 1\n}\n",
			opts:    Options{Vars: []string{"memroy=2"}},
			summary: "Value for undeclared variable", line: 0,
			detail: `--var memroy=…: no task file declares a variable named "memroy". Did you mean "memory"?`,
		},
		{
			name:    "--var without =",
			src:     "variable \"memory\" {\n  default = 1\n}\n",
			opts:    Options{Vars: []string{"memory"}},
			summary: "Invalid --var argument", line: 0, detail: "expected name=value",
		},
		{
			name:    "--var with empty name",
			src:     "",
			opts:    Options{Vars: []string{" =1"}},
			summary: "Invalid --var argument", line: 0,
		},
		{
			name:    "invalid .env",
			src:     "",
			extra:   memFS{"/proj/.env": "A=\"unterminated\n"},
			summary: "Invalid .env file", line: 0, detail: "/proj/.env",
		},
		{
			name:    "required variable without value",
			src:     "task \"t\" {\n}\n\nvariable \"token\" {\n  type = string\n}\n",
			summary: "No value for required variable", line: 4,
			detail: `Variable "token" has no default. Set it with --var token=…, the environment variable VMFLOW_VAR_token, or a VMFLOW_VAR_token line in .env beside the task file.`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := memFS{root: tc.src}
			for k, v := range tc.extra {
				files[k] = v
			}
			p, diags := loadFS(files, tc.opts)
			if p == nil {
				t.Fatal("Load returned a nil project")
			}
			if !diags.HasErrors() {
				t.Fatalf("no error; want %q", tc.summary)
			}
			d := findDiag(diags, tc.summary)
			if d == nil {
				t.Fatalf("no %q diagnostic in:\n%s", tc.summary, diagString(diags))
			}
			switch {
			case tc.line == 0 && d.Subject != nil:
				t.Errorf("subject = %s, want none", d.Subject)
			case tc.line != 0 && d.Subject == nil:
				t.Errorf("no subject, want line %d", tc.line)
			case tc.line != 0:
				if d.Subject.Start.Line != tc.line {
					t.Errorf("subject line = %d, want %d (%s)", d.Subject.Start.Line, tc.line, d.Subject)
				}
				file := tc.file
				if file == "" {
					file = root
				}
				if d.Subject.Filename != file {
					t.Errorf("subject file = %s, want %s", d.Subject.Filename, file)
				}
				// Sources can show a snippet of every subject.
				if p.Sources[d.Subject.Filename] == nil {
					t.Errorf("no source for %s", d.Subject.Filename)
				}
			}
			if tc.detail != "" && !strings.Contains(d.Detail, tc.detail) {
				t.Errorf("detail = %q, want it to contain %q", d.Detail, tc.detail)
			}
		})
	}
}

// TestLoadUnreadableRoot: a root that cannot be read is a diagnostic, and
// the project is still non-nil.
func TestLoadUnreadableRoot(t *testing.T) {
	p, diags := Load("/proj/tasks.hcl", Options{
		Environ:  []string{},
		ReadFile: func(string) ([]byte, error) { return nil, errors.New("disk on fire") },
	})
	if p == nil || p.Root != nil {
		t.Fatalf("project = %+v", p)
	}
	d := findDiag(diags, "Cannot read task file")
	if d == nil || d.Detail != "disk on fire" || d.Subject != nil {
		t.Fatalf("diags:\n%s", diagString(diags))
	}
}

// TestLoadRelativePath: a relative path is made absolute, and the .env is
// looked for beside it.
func TestLoadRelativePath(t *testing.T) {
	var asked []string
	p, diags := Load("sub/tasks.hcl", Options{
		Environ: []string{},
		ReadFile: func(path string) ([]byte, error) {
			asked = append(asked, path)
			if strings.HasSuffix(path, "/sub/tasks.hcl") {
				return []byte(`task "t" {}`), nil
			}
			return nil, fs.ErrNotExist
		},
	})
	if diags.HasErrors() {
		t.Fatal(diagString(diags))
	}
	if len(asked) != 2 || !strings.HasSuffix(asked[0], "/sub/.env") || asked[0][0] != '/' {
		t.Errorf("read %q", asked)
	}
	if p.Root.Path != asked[1] || p.Root.Dir+"/tasks.hcl" != p.Root.Path {
		t.Errorf("root %s in %s", p.Root.Path, p.Root.Dir)
	}
}

// TestLoadErrorsKeepGoing: independent errors in one file are all reported.
func TestLoadErrorsKeepGoing(t *testing.T) {
	_, diags := loadFS(memFS{root: `
task "a" {
  step "s" { action = nope.x }
}
task "b" {
  step "s" { x = 1 }
}
task "c" {
  output "o" { value = var.missing }
}
`}, Options{})
	var got []string
	for _, d := range errorDiags(diags) {
		got = append(got, fmt.Sprintf("%s@%d", d.Summary, d.Subject.Start.Line))
	}
	equalStrings(t, "errors", got, []string{"Plugins or variables not declared@3", "Missing action@6"})
	if d := findDiag(diags, "Plugins or variables not declared"); d == nil || !strings.Contains(d.Detail, "uses plugin nope and variable missing without declaring them") {
		t.Errorf("the summary: %v", d)
	}
}

// TestLoadDeferredIncludePath: with DeferMissingVars (which the CLI always
// uses to list tasks), an include whose path uses a required variable
// without a value must not crash the loader.
func TestLoadDeferredIncludePath(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"path", `variable "dir" {
  type = string
}
include "x" {
  path = "${var.dir}/tasks.hcl"
}
`},
		{"vars", `variable "pins" {
  type = map(string)
}
include "x" {
  path = "lib/tasks.hcl"
  vars = var.pins
}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				p     *Project
				diags hcl.Diagnostics
			)
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("Load panics with DeferMissingVars when an include's %s uses a required variable without a value: %v", tc.name, r)
					}
				}()
				p, diags = loadFS(memFS{root: tc.src, "/proj/lib/tasks.hcl": ""}, Options{DeferMissingVars: true})
			}()
			// Expected: no panic; the project loads (the include cannot be
			// followed, which is worth an error or the deferred one).
			if p == nil {
				t.Fatal("nil project")
			}
			if len(p.Deferred) != 1 && !diags.HasErrors() {
				t.Errorf("no diagnostic about the missing variable")
			}
		})
	}
}

// TestLoadDeferredDescription: listing tasks needs no variable values, so a
// description that interpolates a required variable must not be an error
// when DeferMissingVars is set.
func TestLoadDeferredDescription(t *testing.T) {
	p, diags := loadFS(memFS{root: `variable "env" {
  type = string
}
task "deploy" {
  description = "Deploy to ${var.env}"
  step "s" { action = builtin.exec }
}
`}, Options{DeferMissingVars: true})
	if d := findDiag(diags, "Invalid description"); d != nil {
		t.Fatalf("with DeferMissingVars a description using a deferred variable is an error: %s: %s (line %d)", d.Summary, d.Detail, d.Subject.Start.Line)
	}
	if diags.HasErrors() {
		t.Fatal(diagString(diags))
	}
	if p.Task("deploy") == nil || len(p.Deferred) != 1 {
		t.Errorf("tasks %v, deferred %d", p.TaskNames(), len(p.Deferred))
	}
}

// TestLoadVarShadowedIsNotUndeclared: a --var for a variable whose value
// comes from a higher source (include vars, resume overrides) names a
// declared variable; it must not be reported as undeclared.
func TestLoadVarShadowedIsNotUndeclared(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files memFS
		opts  Options
	}{
		{"include vars", memFS{
			root:             "include \"team\" {\n  path = \"team.hcl\"\n  vars = { flavour = \"pinned\" }\n}\n",
			"/proj/team.hcl": "variable \"flavour\" {\n  default = \"plain\"\n}\n",
		}, Options{Vars: []string{"flavour=cli"}}},
		{"overrides", memFS{
			root: "variable \"flavour\" {\n  default = \"plain\"\n}\n",
		}, Options{Vars: []string{"flavour=cli"}, Overrides: map[string]cty.Value{"flavour": cty.StringVal("resumed")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := loadFS(tc.files, tc.opts)
			if d := findDiag(diags, "Value for undeclared variable"); d != nil {
				t.Fatalf("--var flavour=cli for a declared variable whose value comes from %s is reported as %q: %s", tc.name, d.Summary, d.Detail)
			}
			if diags.HasErrors() {
				t.Fatal(diagString(diags))
			}
		})
	}
}

// TestLoadIncludeVarsUndeclared: an include's vars naming a variable the
// included file does not declare is a typo like an undeclared --var, and
// should be reported rather than silently ignored.
func TestLoadIncludeVarsUndeclared(t *testing.T) {
	_, diags := loadFS(memFS{
		root:             "include \"team\" {\n  path = \"team.hcl\"\n  vars = { flavor = \"pinned\" }\n}\n",
		"/proj/team.hcl": "variable \"flavour\" {\n  default = \"plain\"\n}\n",
	}, Options{})
	d := findDiag(diags, "Include sets an undeclared variable")
	if d == nil || d.Subject == nil || d.Subject.Start.Line != 1 || !strings.Contains(d.Detail, `Did you mean "flavour"?`) {
		t.Fatalf("include vars { flavor = ... } for a file that declares only \"flavour\": %s", diagString(diags))
	}
}

// TestLoadSuggestionDeterministic: the "Did you mean" of an unknown plugin
// must not depend on map iteration order when two names are equally close.
func TestLoadSuggestionDeterministic(t *testing.T) {
	src := `plugin "kit1" {
  source = "a"
}
plugin "kit2" {
  source = "b"
}
plugin "kit3" {
  source = "c"
}
task "t" {
  step "s" { action = kit.run }
}
`
	details := map[string]bool{}
	for range 50 {
		_, diags := loadFS(memFS{root: src}, Options{})
		d := findDiag(diags, "Unknown plugin")
		if d == nil {
			t.Fatal(diagString(diags))
		}
		details[d.Detail] = true
	}
	if len(details) > 1 {
		var got []string
		for d := range details {
			got = append(got, d)
		}
		t.Fatalf("the suggestion for an unknown plugin changes from load to load (map order):\n%s", strings.Join(got, "\n"))
	}
}

// TestLoadFromDisk uses the real file system and process environment: nil
// ReadFile and Environ.
func TestLoadFromDisk(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tasks.hcl", `
variable "a" {
  default = "default"
}
variable "b" {
  default = "default"
}
variable "motd" {
  default = file("motd.txt")
}
include "lib" {
  path = "lib/tasks.hcl"
}
`)
	write("motd.txt", "hi")
	write(".env", "VMFLOW_VAR_a=dotenv\nVMFLOW_VAR_b=dotenv\n")
	write("lib/tasks.hcl", `
variable "here" {
  default = abspath(".")
}
task "t" {
  step "s" { action = builtin.exec }
}
`)
	t.Setenv("VMFLOW_VAR_b", "process")
	p, diags := Load(filepath.Join(dir, "tasks.hcl"), Options{})
	if diags.HasErrors() {
		t.Fatal(diagString(diags))
	}
	equalValue(t, "a", fileVar(t, p.Root, "a"), cty.StringVal("dotenv"))
	equalValue(t, "b", fileVar(t, p.Root, "b"), cty.StringVal("process"))
	equalValue(t, "motd", fileVar(t, p.Root, "motd"), cty.StringVal("hi"))
	equalValue(t, "here", fileVar(t, p.Files[1], "here"), cty.StringVal(filepath.Join(dir, "lib")))
	equalStrings(t, "tasks", p.TaskNames(), []string{"lib.t"})
}
