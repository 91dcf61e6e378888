package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const profilesDir = "../../profiles"

// Every .nix file under profiles/ parses.
func TestProfilesParse(t *testing.T) {
	requireNix(t)
	files, _ := filepath.Glob(filepath.Join(profilesDir, "*.nix"))
	more, _ := filepath.Glob(filepath.Join(profilesDir, "*", "*.nix"))
	files = append(files, more...)
	if len(files) < 12 {
		t.Fatalf("only %d nix files under %s", len(files), profilesDir)
	}
	for _, f := range files {
		if out, err := exec.Command("nix-instantiate", "--parse", f).CombinedOutput(); err != nil {
			t.Errorf("%s does not parse: %s", f, out)
		}
	}
}

// The flake's profile list (profiles.nix, which flake.nix imports) names
// exactly the profile files, each requirement is a known profile, and
// the plugin reads the same list offline.
func TestProfileListMatchesFiles(t *testing.T) {
	requireNix(t)
	out, err := exec.Command("nix-instantiate", "--eval", "--strict", "--json", filepath.Join(profilesDir, "profiles.nix")).Output()
	if err != nil {
		t.Fatal(err)
	}
	var list map[string]struct {
		File     string   `json:"file"`
		Requires []string `json:"requires"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for name, p := range list {
		listed = append(listed, name)
		if p.File != name+".nix" {
			t.Errorf("profile %s lives in %q, not %s.nix", name, p.File, name)
		}
		for _, r := range p.Requires {
			if _, ok := list[r]; !ok {
				t.Errorf("profile %s requires unknown %q", name, r)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(profilesDir, "*.nix"))
	var onDisk []string
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".nix")
		if name != "flake" && name != "profiles" {
			onDisk = append(onDisk, name)
		}
	}
	slices.Sort(listed)
	slices.Sort(onDisk)
	if !slices.Equal(listed, onDisk) {
		t.Fatalf("profiles.nix lists %v, profiles/ holds %v", listed, onDisk)
	}
	want := []string{"claude", "core", "dev", "docker", "home-manager", "nvidia", "open-code", "podman", "python", "rust"}
	if !slices.Equal(listed, want) {
		t.Fatalf("profiles %v, want %v", listed, want)
	}
	flake, _ := filepath.Abs(profilesDir)
	known, err := knownProfiles(context.Background(), flake, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedNames(known); !slices.Equal(got, listed) {
		t.Fatalf("the plugin reads %v", got)
	}
	norm, _, err := normalize([]string{"nvidia", "claude"}, known)
	if err != nil || strings.Join(norm, ",") != "claude,core,docker,nvidia" {
		t.Fatalf("normalize: %v %v", norm, err)
	}
	if !strings.Contains(mustRead(t, filepath.Join(profilesDir, "flake.nix")), "profiles.nix") {
		t.Fatal("flake.nix does not import profiles.nix")
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
