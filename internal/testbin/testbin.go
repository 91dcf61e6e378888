// Package testbin builds vmflow's real binaries for tests and benchmarks,
// once per test binary, with the tags `make build` uses.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
)

// Tags are the build tags of `make build` (see the Makefile).
const Tags = "grpcnotrace,urfave_cli_no_docs"

// Repo is the repository's root directory.
func Repo() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Plugins maps every plugin binary name to its package: the example, the
// test plugin, and each plugins/<name> that is a main package.
func Plugins() map[string]string {
	out := map[string]string{
		"vmflow-plugin-hello":   "./examples/hello",
		"vmflow-plugin-testkit": "./internal/testkit",
	}
	ents, _ := os.ReadDir(filepath.Join(Repo(), "plugins"))
	for _, e := range ents {
		if isCommand(filepath.Join(Repo(), "plugins", e.Name())) {
			out["vmflow-plugin-"+e.Name()] = "./plugins/" + e.Name()
		}
	}
	return out
}

// isCommand reports whether a directory holds a main package (a plugin
// binary, not a library such as plugins/hypervisor).
func isCommand(dir string) bool {
	gos, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, g := range gos {
		if strings.HasSuffix(g, "_test.go") {
			continue
		}
		b, err := os.ReadFile(g)
		if err == nil && regexp.MustCompile(`(?m)^package main$`).Match(b) {
			return true
		}
	}
	return false
}

// Build builds each binary (name → package path relative to the repo)
// into dir.
func Build(dir string, bins map[string]string) error {
	for name, pkg := range bins {
		cmd := exec.Command("go", "build", "-tags", Tags, "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = Repo()
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building %s: %w", name, err)
		}
	}
	return nil
}

// Main builds the binaries into a temporary directory, sets *dir to it,
// runs the tests and removes it. Call it from TestMain.
func Main(run func() int, dir *string, bins map[string]string) int {
	d, err := os.MkdirTemp("", "vmflow-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(d)
	if err := Build(d, bins); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*dir = d
	return run()
}

// PluginProcess is a running plugin binary.
type PluginProcess struct {
	PID  int
	Name string // vmflow-plugin-<name>
}

func (p PluginProcess) String() string { return fmt.Sprintf("%s (pid %d)", p.Name, p.PID) }

// PIDs lists the processes /proc shows.
func PIDs() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// PluginsOf lists the plugin processes started for a state directory:
// they inherit VMFLOW_STATE_DIR, which each test gives a directory of its
// own, so tests running side by side do not see each other's plugins.
func PluginsOf(stateDir string) []PluginProcess {
	marker := "VMFLOW_STATE_DIR=" + stateDir
	var out []PluginProcess
	for _, pid := range PIDs() {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || !strings.HasPrefix(filepath.Base(exe), "vmflow-plugin-") {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if kv == marker {
				out = append(out, PluginProcess{PID: pid, Name: strings.TrimSuffix(filepath.Base(exe), " (deleted)")})
				break
			}
		}
	}
	return out
}
