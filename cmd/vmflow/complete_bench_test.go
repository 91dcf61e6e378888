package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/records"
	"github.com/vmflow/vmflow/internal/testbin"
)

// BenchmarkCompleteVMNames is `vmflow stop <TAB>` with the shipped
// tasks.hcl and 200 machine records on the proxmox-stub: the real binary,
// start to exit, as the shell runs it on every Tab. It must stay well
// under 50 ms an operation to feel instant. The first call parses the
// task files and fills the list cache; the timed ones answer from the
// cache and the records directory (fastComplete).
func BenchmarkCompleteVMNames(b *testing.B) {
	dir := b.TempDir()
	tasks, err := os.ReadFile(filepath.Join(testbin.Repo(), "tasks.hcl"))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tasks.hcl"), tasks, 0o644); err != nil {
		b.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	store := records.Store{Root: state}
	for i := range 200 {
		rec := records.Record{Values: cty.ObjectVal(map[string]cty.Value{"memory": cty.NumberIntVal(1024)})}
		if err := store.Write("machines/proxmox-stub", fmt.Sprintf("vm%03d", i), rec); err != nil {
			b.Fatal(err)
		}
	}
	env := append(os.Environ(), "VMFLOW_STATE_DIR="+state, "VMFLOW_VAR_backend=proxmox-stub",
		"HOME="+dir, "XDG_CACHE_HOME="+filepath.Join(dir, ".cache"))
	run := func() string {
		cmd := exec.Command(filepath.Join(binDir, "vmflow"), "__complete", "stop", "")
		cmd.Dir, cmd.Env = dir, env
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		return out.String()
	}
	if got := run(); strings.Count(got, "\n") != 200 || !strings.HasPrefix(got, "vm000\tVM name\n") {
		b.Fatalf("want the 200 VM names, got:\n%s", got)
	}
	b.ResetTimer()
	for b.Loop() {
		run()
	}
}
