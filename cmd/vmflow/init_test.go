package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// uncommentExamples turns the commented example tasks of the init
// template into live ones: each block from "# task" to "# }".
func uncommentExamples(tmpl string) (string, int) {
	var out []string
	in, n := false, 0
	for _, l := range strings.Split(tmpl, "\n") {
		if strings.HasPrefix(l, "# task ") {
			in = true
			n++
		}
		if in {
			l = strings.TrimPrefix(strings.TrimPrefix(l, "#"), " ")
			if l == "}" {
				in = false
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n"), n
}

// The examples vmflow init writes in comments work as written: a task
// that gives create other defaults, and one that adds a local command
// after snapshot, both calling the default lifecycle's tasks.
func TestInitExamples(t *testing.T) {
	work := t.TempDir()
	src, n := uncommentExamples(initTemplate)
	if n != 2 {
		t.Fatalf("found %d example tasks in the template, want 2", n)
	}
	if err := os.WriteFile(filepath.Join(work, "tasks.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "img"), []byte("a small image"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(work, "state")
	vmflow := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(binDir, "vmflow"), append([]string{"--var", "backend=proxmox-stub"}, args...)...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "VMFLOW_STATE_DIR="+state, "PATH="+binDir+":"+os.Getenv("PATH"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("vmflow %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	out := vmflow("dev-vm", "web", "--var", "image=img")
	if !strings.Contains(out, "==> vm: task create") || !strings.Contains(out, "vmflow ssh web") {
		t.Fatalf("dev-vm:\n%s", out)
	}
	rec, err := os.ReadFile(filepath.Join(state, "machines", "proxmox-stub", "web", "record.json"))
	if err != nil || !bytes.Contains(rec, []byte(`"memory": 4096`)) && !bytes.Contains(rec, []byte(`"memory":4096`)) {
		t.Fatalf("the record of web (%v):\n%s", err, rec)
	}
	vmflow("snapshot-and-note", "web", "s1")
	if b, err := os.ReadFile(filepath.Join(work, "snapshots.log")); err != nil || string(b) != "web s1\n" {
		t.Fatalf("snapshots.log: %q %v", b, err)
	}
	if out := vmflow("snapshots", "web"); !strings.Contains(out, "s1") {
		t.Fatalf("snapshots of web:\n%s", out)
	}
	vmflow("purge", "web")
}
