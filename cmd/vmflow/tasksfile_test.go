package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/internal/testbin"
	"github.com/vmflow/vmflow/internal/testenv"
)

// parseHCL reads and parses an HCL file, as text: its source and syntax.
func parseHCL(t *testing.T, path string) ([]byte, *hcl.File) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return src, f
}

// The default tasks.hcl is the product: every task says what it does,
// every param has a type and a description, and each task is offered by
// shell completion, but for the internal ones, which only steps call.
func TestDefaultTaskFile(t *testing.T) {
	path := filepath.Join(testbin.Repo(), "tasks.hcl")
	proj, diags := config.Load(path, config.Options{Environ: os.Environ()})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if len(proj.Tasks) < 20 {
		t.Fatalf("tasks.hcl has %d tasks", len(proj.Tasks))
	}
	cmd := exec.Command(filepath.Join(binDir, "vmflow"), "-f", path, "__complete", "")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("__complete: %v", err)
	}
	// Types are declared, not left to the string default.
	_, f := parseHCL(t, path)
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "task" {
			continue
		}
		for _, pb := range b.Body.Blocks {
			if _, ok := pb.Body.Attributes["type"]; pb.Type == "param" && !ok {
				t.Errorf("task %s: param %s has no type", b.Labels[0], pb.Labels[0])
			}
		}
	}
	for _, task := range proj.Tasks {
		if strings.TrimSpace(task.Description) == "" {
			t.Errorf("task %s has no description", task.Name)
		}
		for _, p := range task.Params {
			if strings.TrimSpace(p.Description) == "" {
				t.Errorf("task %s: param %s has no description", task.Name, p.Name)
			}
		}
		offered := bytes.Contains(out, []byte("\n"+task.Name+"\t")) || bytes.HasPrefix(out, []byte(task.Name+"\t"))
		if !offered && !task.Internal {
			t.Errorf("completion does not offer task %s", task.Name)
		}
		if offered && task.Internal {
			t.Errorf("completion offers task %s, which is internal", task.Name)
		}
	}
}

// create offers exactly the profiles the flake has (profiles/profiles.nix,
// read by the real nix).
func TestCreateOffersTheFlakesProfiles(t *testing.T) {
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		testenv.Unavailable(t, "nix-instantiate is missing (make test installs nix-bin)")
	}
	repo := testbin.Repo()
	out, err := exec.Command("nix-instantiate", "--eval", "--strict", "--json", filepath.Join(repo, "profiles", "profiles.nix")).Output()
	if err != nil {
		t.Fatalf("nix-instantiate: %v", err)
	}
	var profiles map[string]any
	if err := json.Unmarshal(out, &profiles); err != nil {
		t.Fatal(err)
	}
	var want []string
	for n := range profiles {
		want = append(want, n)
	}
	sort.Strings(want)

	proj, diags := config.Load(filepath.Join(repo, "tasks.hcl"), config.Options{Environ: os.Environ()})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	p := proj.Task("create").Param("profiles")
	var got []string
	for _, o := range p.Options {
		got = append(got, o.AsString())
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("create's profile options %v, the flake's profiles %v", got, want)
	}
}

// Every task that tears a VM's volumes down (destroy, purge,
// restore-backup) does it through the one task that finds them, and the
// way it finds them matches every volume any task makes: a volume added
// to create, upgrade or clone, and not found by the teardown, fails here
// rather than being left behind.
func TestTeardownFindsEveryVolume(t *testing.T) {
	path := filepath.Join(testbin.Repo(), "tasks.hcl")
	src, f := parseHCL(t, path)
	proj, diags := config.Load(path, config.Options{Environ: os.Environ()})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	// The file's variables and locals, and a VM named vm.
	ctx := proj.Root.EvalContext(cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("vm")}), cty.NilVal)
	text := func(b *hclsyntax.Block, name string) string {
		if a, ok := b.Body.Attributes[name]; ok {
			return string(a.Expr.Range().SliceBytes(src))
		}
		return ""
	}
	patterns := map[string]hcl.Expression{} // task → the pattern of its volume_list
	var made []string                       // names of volumes tasks make, as written
	for _, tb := range f.Body.(*hclsyntax.Body).Blocks {
		if tb.Type != "task" {
			continue
		}
		task := tb.Labels[0]
		var deletes, undefines bool
		for _, sb := range tb.Body.Blocks {
			if sb.Type != "step" {
				continue
			}
			switch text(sb, "action") {
			case "hypervisor.volume_list":
				patterns[task] = sb.Body.Attributes["pattern"].Expr
			case "hypervisor.volumes_delete":
				deletes = true
			case "hypervisor.undefine":
				undefines = true
			case "hypervisor.volume_create", "hypervisor.volume_overlay", "hypervisor.volume_import", "hypervisor.volume_copy":
				n := text(sb, "name")
				if !strings.HasPrefix(n, `"`) {
					break
				}
				// A step with for_each names one volume per key.
				keys := forEachKeys(t, sb, ctx)
				if keys == nil {
					made = append(made, task+": "+n)
				}
				for _, k := range keys {
					made = append(made, task+": "+strings.ReplaceAll(n, "${each.key}", k))
				}
			}
		}
		if deletes && undefines && patterns[task] == nil {
			t.Errorf("task %s tears a VM down without volume_list", task)
		}
	}
	if finders := slices.Sorted(maps.Keys(patterns)); !slices.Equal(finders, []string{"teardown"}) {
		t.Errorf("tasks that find a VM's volumes: %v; want teardown only", finders)
	}
	// destroy, purge and restore-backup call it.
	for _, name := range []string{"destroy", "purge", "restore-backup"} {
		calls := false
		for _, s := range proj.Task(name).Steps {
			calls = calls || s.Called == proj.Task("teardown")
		}
		if !calls {
			t.Errorf("task %s does not call teardown", name)
		}
	}
	// The pattern, for a VM named vm.
	pv, diags := patterns["teardown"].Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("teardown's pattern: %s", diags.Error())
	}
	pattern := pv.AsString()
	re := regexp.MustCompile("^(?:" + pattern + ")$")
	// Each name a task makes, with its params as vm and numbers as 7;
	// the image task's suffix as each value its callers give (none, and
	// upgrade's .next).
	if len(made) < 10 {
		t.Fatalf("found only %d volume names: %v", len(made), made)
	}
	param := regexp.MustCompile(`\$\{param\.[a-z_]+\}`)
	other := regexp.MustCompile(`\$\{[^}]*\}`)
	for _, m := range made {
		task, name, _ := strings.Cut(m, ": ")
		for _, suffix := range []string{"", ".next"} {
			name := strings.ReplaceAll(strings.Trim(name, `"`), "${param.suffix}", suffix)
			name = other.ReplaceAllString(param.ReplaceAllString(name, "vm"), "7")
			if !re.MatchString(name) {
				t.Errorf("task %s makes volume %s, which destroy, purge and restore-backup do not find (pattern %s)", task, name, pattern)
			}
		}
	}
}

// forEachKeys reads the keys of a step's for_each: an object's attribute
// names as written (its values may need steps), else the strings of the
// set it evaluates to with ctx (toset(local.boot_layer)); nil without
// for_each.
func forEachKeys(t *testing.T, b *hclsyntax.Block, ctx *hcl.EvalContext) []string {
	a, ok := b.Body.Attributes["for_each"]
	if !ok {
		return nil
	}
	keys := []string{}
	switch e := a.Expr.(type) {
	case *hclsyntax.ObjectConsExpr:
		for _, it := range e.Items {
			if k := hcl.ExprAsKeyword(it.KeyExpr); k != "" {
				keys = append(keys, k)
			} else if v, d := it.KeyExpr.Value(nil); !d.HasErrors() && v.Type() == cty.String {
				keys = append(keys, v.AsString())
			}
		}
	default:
		if v, d := e.Value(ctx); !d.HasErrors() && v.CanIterateElements() {
			for _, k := range v.AsValueSlice() {
				keys = append(keys, k.AsString())
			}
		}
	}
	if len(keys) == 0 {
		t.Errorf("for_each at %s: no keys read", a.Expr.Range())
	}
	return keys
}

// The task files vmflow ships and shows are laid out as hclwrite lays
// them out (make fmt), as Go files are by gofmt.
func TestTaskFilesFormatted(t *testing.T) {
	out, err := exec.Command("git", "-C", testbin.Repo(), "ls-files", "*.hcl").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	n := 0
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "/testdata/fuzz/") {
			continue // fuzz seeds are odd on purpose
		}
		b, err := os.ReadFile(filepath.Join(testbin.Repo(), p))
		if err != nil {
			t.Fatal(err)
		}
		n++
		if f := hclwrite.Format(b); !bytes.Equal(b, f) {
			t.Errorf("%s is not formatted: make fmt formats it", p)
		}
	}
	if n < 5 {
		t.Fatalf("only %d task files checked", n)
	}
}
