package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
