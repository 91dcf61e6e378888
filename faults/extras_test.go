package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Faults of issue 10 §3 that are not kills: a damaged state file, drift
// between the teardown lists, and which error comes first.

// TestDamagedState (§3.7): a damaged stub state file gives a clear error
// naming the file, never a panic.
func TestDamagedState(t *testing.T) {
	e := newEnv(t, t.TempDir())
	dir := filepath.Join(e.state, "proxmox-stub")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "cluster.json")
	if err := os.WriteFile(file, []byte(`{"vms":{"p1":null},"volumes":{"x":null},"vmids":{}}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{createK(), {"purge", "p1"}} {
		r := e.vmflow(setupArgs(cmd)...)
		if r.code == 0 || strings.Contains(r.stderr, "panic") || !strings.Contains(r.stderr, file) {
			t.Errorf("%s with a damaged %s: want a failure naming the file, and no panic\n%s", r, file, r.tail())
		}
	}
}

// §3.8 (every teardown removes the same volumes) holds by construction
// now: destroy, purge and restore-backup call the one teardown task;
// cmd/vmflow's TestTeardownFindsEveryVolume checks that, and that its
// pattern finds every volume a task makes.

// TestCreateExistingMessage (§3.9): create of a name whose VM runs says
// first that the VM exists. Which of the parallel checks fails first
// varies, so it tries a few times.
func TestCreateExistingMessage(t *testing.T) {
	e := newEnv(t, t.TempDir())
	if r := e.vmflow(setupArgs(createK())...); r.code != 0 {
		t.Fatalf("%s\n%s", r, r.tail())
	}
	defer e.vmflow(setupArgs([]string{"purge", "k"})...)
	wrong := 0
	var last cmdResult
	const tries = 6
	for i := 0; i < tries; i++ {
		r := e.vmflow(setupArgs(createK())...)
		first := ""
		for _, l := range strings.Split(r.stderr, "\n") {
			if strings.HasPrefix(l, "Error:") {
				first = l
				break
			}
		}
		if r.code == 0 || !strings.Contains(first, "VM k exists (running)") {
			wrong++
			last = r
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d creates of k (running) put another error first; the last one:\n%s", wrong, tries, last.tail())
	}
}
