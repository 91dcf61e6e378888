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

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/internal/testbin"
)

// The default tasks.hcl is the product: every task says what it does,
// every param has a type and a description, and each task is offered by
// shell completion.
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
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, hd := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if hd.HasErrors() {
		t.Fatal(hd.Error())
	}
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
		if !bytes.Contains(out, []byte("\n"+task.Name+"\t")) && !bytes.HasPrefix(out, []byte(task.Name+"\t")) {
			t.Errorf("completion does not offer task %s", task.Name)
		}
	}
}

// create offers exactly the profiles the flake has (profiles/profiles.nix,
// read by the real nix).
func TestCreateOffersTheFlakesProfiles(t *testing.T) {
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nix-instantiate is missing (make test installs nix-bin)")
		}
		t.Skip("nix-instantiate is missing")
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
// restore-backup) finds them the same way, and that way matches every
// volume any task makes: a volume added to create, upgrade or clone, and
// forgotten in a teardown, fails here rather than being left behind.
func TestTeardownFindsEveryVolume(t *testing.T) {
	path := filepath.Join(testbin.Repo(), "tasks.hcl")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, hd := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if hd.HasErrors() {
		t.Fatal(hd.Error())
	}
	action := func(b *hclsyntax.Block) string {
		if a, ok := b.Body.Attributes["action"]; ok {
			return string(a.Expr.Range().SliceBytes(src))
		}
		return ""
	}
	text := func(b *hclsyntax.Block, name string) string {
		if a, ok := b.Body.Attributes[name]; ok {
			return string(a.Expr.Range().SliceBytes(src))
		}
		return ""
	}
	patterns := map[string]string{} // task → the pattern of its volume_list
	var made []string               // names of volumes tasks make, as written
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
			switch action(sb) {
			case "hypervisor.volume_list":
				patterns[task] = text(sb, "prefix") + " " + text(sb, "pattern")
			case "hypervisor.volumes_delete":
				deletes = true
				if got := text(sb, "names"); !strings.HasPrefix(got, "step.") || !strings.HasSuffix(got, ".names") {
					t.Errorf("task %s deletes a list of its own (%s), not what volume_list found", task, got)
				}
			case "hypervisor.undefine":
				undefines = true
			case "hypervisor.volume_create", "hypervisor.volume_overlay", "hypervisor.volume_import", "hypervisor.volume_copy":
				if n := text(sb, "name"); strings.HasPrefix(n, `"`) {
					made = append(made, task+": "+n)
				}
			}
		}
		if deletes && undefines && patterns[task] == "" {
			t.Errorf("task %s tears a VM down without volume_list", task)
		}
	}
	teardowns := slices.Sorted(maps.Keys(patterns))
	if !slices.Equal(teardowns, []string{"destroy", "purge", "restore-backup"}) {
		t.Errorf("tasks that find a VM's volumes: %v", teardowns)
	}
	for _, task := range teardowns {
		if patterns[task] != patterns["destroy"] {
			t.Errorf("task %s finds volumes with %s, destroy with %s", task, patterns[task], patterns["destroy"])
		}
	}
	// The pattern, for a VM named vm.
	parts := strings.SplitN(patterns["destroy"], " ", 2)
	var pattern string
	if err := json.Unmarshal([]byte(strings.ReplaceAll(parts[1], "${param.name}", "vm")), &pattern); err != nil {
		t.Fatalf("pattern %s: %v", parts[1], err)
	}
	re := regexp.MustCompile("^(?:" + pattern + ")$")
	// Each name a task makes, with its params as vm and numbers as 7.
	if len(made) < 10 {
		t.Fatalf("found only %d volume names: %v", len(made), made)
	}
	param := regexp.MustCompile(`\$\{param\.[a-z_]+\}`)
	other := regexp.MustCompile(`\$\{[^}]*\}`)
	for _, m := range made {
		task, name, _ := strings.Cut(m, ": ")
		name = other.ReplaceAllString(param.ReplaceAllString(strings.Trim(name, `"`), "vm"), "7")
		if !re.MatchString(name) {
			t.Errorf("task %s makes volume %s, which destroy, purge and restore-backup do not find (pattern %s)", task, name, pattern)
		}
	}
}
