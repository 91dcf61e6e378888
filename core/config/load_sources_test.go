package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// TestLoadValidSetValues: values set by --var and by Overrides, converted
// to each variable's type.
func TestLoadValidSetValues(t *testing.T) {
	runLoadValid(t, []loadValidCase{
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
	})
}

// TestLoadValidEnvironment: the .env file beside the task file and the
// process environment.
func TestLoadValidEnvironment(t *testing.T) {
	runLoadValid(t, []loadValidCase{
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
	})
}

// TestLoadValidDeferred: DeferMissingVars loads without a required value.
func TestLoadValidDeferred(t *testing.T) {
	runLoadValid(t, []loadValidCase{
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
	})
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

// TestLoadErrorsVariableSources: values from --var, the environment, .env
// and Overrides that do not fit, and required variables without one.
func TestLoadErrorsVariableSources(t *testing.T) {
	runLoadErrors(t, []loadErrorCase{
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
	})
}
