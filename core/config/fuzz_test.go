package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// fuzzEnviron is the process environment the fuzz target loads with.
var fuzzEnviron = []string{"HOME=/home/u", "REGION=eu", "VMFLOW_VAR_region=eu"}

// FuzzLoad feeds arbitrary bytes to Load as the root task file; every other
// file (includes, .env) does not exist. Load must not panic, and when it
// reports no error the project must be complete and consistent.
//
// Seeds are testdata/fuzz/*.hcl; crashers found by go test -fuzz land in
// testdata/fuzz/FuzzLoad/ and are replayed by every go test run.
//
// A panic the loader is known to have (see TestLoadDeferredIncludePath)
// skips the input, so that fuzzing can look for other problems; set
// VMFLOW_FUZZ_STRICT=1 to fail on it instead.
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob("testdata/fuzz/*.hcl")
	if err != nil {
		f.Fatal(err)
	}
	if len(seeds) == 0 {
		f.Fatal("no seeds in testdata/fuzz/*.hcl")
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, deferMissing := range []bool{false, true} {
			opts := Options{
				Environ:          fuzzEnviron,
				DeferMissingVars: deferMissing,
				ReadFile: func(p string) ([]byte, error) {
					if p == root {
						return src, nil
					}
					return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
				},
			}
			p, diags, panicked := fuzzLoad(opts)
			if panicked != nil {
				t.Fatalf("Load panicked (DeferMissingVars=%v): %v\n%s", deferMissing, panicked.value, panicked.stack)
			}
			checkProject(t, p, diags)
		}
	})
}

type panicInfo struct {
	value any
	stack string
}

func fuzzLoad(opts Options) (p *Project, diags hcl.Diagnostics, panicked *panicInfo) {
	defer func() {
		if r := recover(); r != nil {
			panicked = &panicInfo{value: r, stack: string(debug.Stack())}
		}
	}()
	p, diags = Load(root, opts)
	return p, diags, nil
}

// knownPanic: decodeInclude reads an unknown value (a deferred required
// variable) as a string or a map.
// checkProject checks what must hold of any load.
func checkProject(t *testing.T, p *Project, diags hcl.Diagnostics) {
	t.Helper()
	if p == nil {
		t.Fatal("Load returned a nil project")
	}
	for _, d := range diags {
		if d.Subject != nil && p.Sources[d.Subject.Filename] == nil {
			t.Errorf("diagnostic %q has a subject in %q, which is not among the sources", d.Summary, d.Subject.Filename)
		}
	}
	if diags.HasErrors() {
		return
	}
	if p.Root == nil {
		t.Fatalf("no errors but no root:\n%s", diagString(diags))
	}
	if len(p.Files) == 0 || p.Files[0] != p.Root || p.Root.Path != root || p.Root.Namespace != "" {
		t.Fatalf("root %+v, files %d", p.Root, len(p.Files))
	}
	for _, f := range p.Files {
		if f.VarValues == cty.NilVal || !f.VarValues.Type().IsObjectType() {
			t.Errorf("%s: VarValues %#v", f.Path, f.VarValues)
		}
		for _, v := range f.Variables {
			if !f.VarValues.Type().HasAttribute(v.Name) {
				t.Errorf("%s: variable %q has no value", f.Path, v.Name)
			}
		}
	}
	seen := map[string]bool{}
	for _, tk := range p.Tasks {
		if tk.File == nil || !validTaskName(tk.LocalName) {
			t.Fatalf("task %+v", tk)
		}
		want := tk.LocalName
		if tk.File.Namespace != "" {
			want = tk.File.Namespace + "." + tk.LocalName
		}
		if tk.Name != want {
			t.Errorf("task name %q, want %q", tk.Name, want)
		}
		if seen[tk.Name] {
			t.Errorf("two tasks named %q", tk.Name)
		}
		seen[tk.Name] = true
		if p.Task(tk.Name) != tk {
			t.Errorf("Task(%q) is another task", tk.Name)
		}
		for i, pr := range tk.Params {
			if i > 0 && !tk.Params[i-1].Required() && pr.Required() {
				t.Errorf("task %s: required param %s after an optional one", tk.Name, pr.Name)
			}
			// A loaded default is always among the options, and the options
			// read back from their command-line form.
			if !pr.Required() {
				if err := pr.CheckOptions(pr.Default); err != nil {
					t.Errorf("task %s param %s: default: %v", tk.Name, pr.Name, err)
				}
			}
			for _, arg := range pr.OptionArgs() {
				ty := pr.Type
				if pr.MultiSelect() {
					ty = ty.ElementType()
				}
				if v, err := ParseValue(arg, ty); err != nil || !pr.IsOption(v) {
					t.Errorf("task %s param %s: option %q does not read back (%v)", tk.Name, pr.Name, arg, err)
				}
			}
		}
		steps := map[string]bool{}
		for _, s := range tk.Steps {
			if steps[s.Name] {
				t.Errorf("task %s: two steps named %q", tk.Name, s.Name)
			}
			steps[s.Name] = true
			if s.Plugin == "" || s.ActionName == "" {
				t.Errorf("task %s step %s: action %q.%q", tk.Name, s.Name, s.Plugin, s.ActionName)
			}
			if s.Plugin != BuiltinPlugin && tk.File.Plugins[s.Plugin] == nil {
				t.Errorf("task %s step %s: undeclared plugin %q", tk.Name, s.Name, s.Plugin)
			}
			for _, a := range s.Args {
				if IsReservedArg(a.Name) {
					t.Errorf("task %s step %s: meta-argument %s among Args", tk.Name, s.Name, a.Name)
				}
			}
		}
		for _, s := range tk.Steps {
			for _, r := range append(append([]StepRef(nil), s.DependsOn...), s.Refs...) {
				if r.Step == s.Name || !steps[r.Step] {
					t.Errorf("task %s step %s: bad reference to step %q", tk.Name, s.Name, r.Step)
				}
			}
		}
		outs := map[string]bool{}
		for _, o := range tk.Outputs {
			if outs[o.Name] || o.Value == nil {
				t.Errorf("task %s: output %q duplicate or without value", tk.Name, o.Name)
			}
			outs[o.Name] = true
		}
	}
	if len(seen) != len(p.TaskNames()) {
		t.Errorf("TaskNames %v", p.TaskNames())
	}
}
