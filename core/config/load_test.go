package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/internal/testfs"
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

// Values as the test tables write them.
var str, num = cty.StringVal, cty.NumberIntVal

func obj(m map[string]cty.Value) cty.Value { return cty.ObjectVal(m) }

func strList(ss ...string) cty.Value {
	vals := make([]cty.Value, len(ss))
	for i, s := range ss {
		vals[i] = str(s)
	}
	return cty.ListVal(vals)
}

// loadValidCase is a valid project and what the loader must make of it.
type loadValidCase struct {
	name  string
	files memFS
	opts  Options
	check func(t *testing.T, p *Project)
}

// runLoadValid loads valid files and checks what the loader made of them.
func runLoadValid(t *testing.T, tests []loadValidCase) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustLoad(t, tc.files, tc.opts)
			tc.check(t, p)
		})
	}
}

// loadErrorCase is a bad input and the diagnostic it must get.
type loadErrorCase struct {
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
}

// runLoadErrors checks that each kind of bad input gets a diagnostic with
// the right summary at the right line.
func runLoadErrors(t *testing.T, tests []loadErrorCase) {
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
	testfs.Write(t, dir, "tasks.hcl", `
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
	testfs.Write(t, dir, "motd.txt", "hi")
	testfs.Write(t, dir, ".env", "VMFLOW_VAR_a=dotenv\nVMFLOW_VAR_b=dotenv\n")
	testfs.Write(t, dir, "lib/tasks.hcl", `
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
