package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmflow/vmflow/internal/testbin"
)

// docs/plugins.md says how a plugin in a module of its own builds against
// a checkout of vmflow: go mod edit -replace. This does it with the
// hello example, and runs the plugin's describe.
func TestBuildOutsideTheRepository(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("go", "mod", "init", "example.com/myplugin")
	run("go", "mod", "edit", "-replace", "github.com/vmflow/vmflow="+testbin.Repo())
	run("go", "mod", "edit", "-require", "github.com/vmflow/vmflow@v0.0.0")
	run("go", "mod", "tidy")
	run("go", "build", "-o", "vmflow-plugin-hello", ".")
	// Run by hand, a plugin says what it is and exits.
	out, _ := exec.Command(filepath.Join(dir, "vmflow-plugin-hello")).CombinedOutput()
	if !strings.Contains(string(out), "is a vmflow plugin (hello 0.1.0)") {
		t.Fatalf("the plugin run by hand said:\n%s", out)
	}
}
