package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/claims"
)

// A step interrupted by SIGKILL runs again when the run is resumed, with
// the same run id and step. The stub's state file changes atomically, so
// an interrupted attempt either made its change, whole, or did not: these
// tests run each action twice with the same RunID/Step (the first attempt
// made the change and was never reported) and check that the second
// finishes the job while another run still gets the refusal.

var nullOutputs = cty.NullVal(cty.DynamicPseudoType)

func TestRetriedStepsOnTheStub(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	const run, other = "20261127-100000-aaaa", "20261127-100001-bbbb"
	kernel := kernelFile(t)
	countNamed := func(name string) int {
		n := 0
		for _, v := range h.cluster().Volumes {
			if v.Name == name {
				n++
			}
		}
		return n
	}

	steps := []struct {
		step, action string
		args         map[string]any
	}{
		{"kernel", "volume_import", map[string]any{"path": kernel, "name": "demo-kernel"}},
		{"base", "volume_create", map[string]any{"name": "demo-base", "size": "64M"}},
		{"boot", "volume_overlay", map[string]any{"name": "demo-boot", "backing": "demo-base"}},
		{"var", "volume_create", map[string]any{"name": "demo-var", "size": "1G", "filesystem": "ext4", "files": map[string]string{"identity/hostname": "demo\n"}}},
		{"copy", "volume_copy", map[string]any{"source": "demo-var", "name": "demo-var2"}},
	}
	for _, s := range steps {
		first := h.MustAttempt(run, s.step, s.action, s.args)
		h.AttemptFails(other, s.step, s.action, s.args, "already exists")
		h.AttemptFails(run, "not_"+s.step, s.action, s.args, "already exists")
		again := h.MustAttempt(run, s.step, s.action, s.args)
		name := s.args["name"].(string)
		if n := countNamed(name); n != 1 {
			t.Fatalf("%s: %d volumes named %s after the retry", s.action, n, name)
		}
		if str(again, "name") != str(first, "name") {
			t.Fatalf("%s: the retry made %s", s.action, str(again, "name"))
		}
		if !anyContains(h.Logs, "pvesm free") {
			t.Fatalf("%s: the retry did not free the leftover first: %v", s.action, h.Logs)
		}
	}

	// The export file, written whole but never reported.
	exp := filepath.Join(t.TempDir(), "var.json")
	eargs := map[string]any{"name": "demo-var", "path": exp}
	h.MustAttempt(run, "export", "volume_export", eargs)
	if _, err := h.RunOnly(other, "export", "volume_export", h.Inputs("volume_export", eargs)); err == nil || !strings.Contains(err.Error(), "nothing is written over an existing file") {
		t.Fatalf("another run's export over the file: %v", err)
	}
	out, err := h.RunOnly(run, "export", "volume_export", h.Inputs("volume_export", eargs))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(exp); !strings.Contains(string(b), `"name": "demo-var"`) || str(out, "path") != exp {
		t.Fatalf("the retried export wrote %s", b)
	}

	// define: a VM this step made is new to its retry; another run sees it
	// as there before it.
	def := map[string]any{"name": "demo", "boot_volume": "demo-boot", "var_volume": "demo-var", "firmware": "kernel", "kernel": kernel, "memory": 256}
	h.MustAttempt(run, "define", "define", def)
	if d := h.MustAttempt(run, "define", "define", def); str(d, "previous_xml") != "" {
		t.Fatal("the retried define of a new VM reports a previous configuration")
	}
	if d := h.MustAttempt(other, "define", "define", def); str(d, "previous_xml") == "" {
		t.Fatal("another run's define of the existing VM calls it new")
	}

	// start and shutdown run again report the change of the interrupted
	// attempt.
	vm := map[string]any{"name": "demo"}
	h.Retried(run, "start", "start", vm, "started", other)
	h.Retried(run, "stop", "shutdown", vm, "stopped")

	// The undos of interrupted attempts remove what the step claimed, and
	// nothing another run's step made.
	h.UndoStep(other, "var", "volume_create", steps[3].args, nullOutputs)
	if countNamed("demo-var") != 1 {
		t.Fatal("the undo of a step that claimed nothing removed a volume")
	}
	h.UndoStep(run, "copy", "volume_copy", steps[4].args, nullOutputs)
	if countNamed("demo-var2") != 0 {
		t.Fatal("the undo of the interrupted copy left its volume")
	}
	h.UndoStep(run, "export", "volume_export", eargs, nullOutputs)
	if _, err := os.Stat(exp); !os.IsNotExist(err) {
		t.Fatal("the undo of the interrupted export left its file")
	}
	h.UndoStep(run, "stop", "shutdown", vm, nullOutputs)
	if h.cluster().VMs["demo"].Status != running {
		t.Fatal("the undo of the interrupted shutdown did not start the VM")
	}
	// suspend: a pause of the interrupted attempt is this step's; the
	// undo of the interrupted attempt resumes the VM, another run's not.
	h.Retried(run, "pause", "suspend", vm, "suspended", other)
	h.UndoStep(other, "pause", "suspend", vm, nullOutputs)
	if !h.cluster().VMs["demo"].Paused {
		t.Fatal("another run's interrupted suspend was undone")
	}
	h.UndoStep(run, "pause", "suspend", vm, nullOutputs)
	if h.cluster().VMs["demo"].Paused {
		t.Fatal("the undo of the interrupted suspend left the VM paused")
	}
	h.UndoStep(run, "define", "define", def, nullOutputs)
	if h.cluster().VMs["demo"] != nil {
		t.Fatal("the undo of the interrupted define left the VM it made")
	}

	// A deletion done but never reported counts as done on the retry.
	del := map[string]any{"name": "demo-boot"}
	h.Retried(run, "old_boot", "volume_delete", del, "deleted")
	h.AttemptFails(other, "old_boot", "volume_delete", del, `no volume "demo-boot"`)
}

// volume_swap on the stub never exchanges twice; its undo swaps back once.
func TestRetriedSwapOnTheStub(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	const run = "20261127-110000-aaaa"
	h.Run("volume_create", map[string]any{"name": "s-a", "size": "16M"})
	h.Run("volume_create", map[string]any{"name": "s-b", "size": "32M"})
	size := func(name string) uint64 { return h.cluster().volumeByName(name).Size }
	swap := map[string]any{"name": "s-a", "with": "s-b"}

	h.MustAttempt(run, "swap", "volume_swap", swap)
	h.MustAttempt(run, "swap", "volume_swap", swap)
	if size("s-a") != 32<<20 {
		t.Fatal("the retried swap exchanged again, swapping back")
	}
	if !anyContains(h.Logs, "exchanged already") {
		t.Fatalf("the retry did not say the exchange was done: %v", h.Logs)
	}
	h.UndoStep(run, "swap", "volume_swap", swap, cty.EmptyObjectVal)
	h.UndoStep(run, "swap", "volume_swap", swap, cty.EmptyObjectVal)
	if size("s-a") != 16<<20 {
		t.Fatal("two undos did not leave the volumes as they were")
	}

	// Killed after its claim, before the change reached the state file.
	const run2 = "20261127-110001-bbbb"
	c := h.cluster()
	pre := swapClaim{Name: contents(c.volumeByName("s-a")), With: contents(c.volumeByName("s-b"))}
	if err := claims.Write(claims.Dir(h.state, "proxmox-stub", run2, "swap"), swapKey("s-a", "s-b"), pre); err != nil {
		t.Fatal(err)
	}
	h.MustAttempt(run2, "swap", "volume_swap", swap)
	if size("s-a") != 32<<20 {
		t.Fatal("the retry after a claim without its change did not exchange")
	}
	h.UndoStep(run2, "swap", "volume_swap", swap, nullOutputs)
	h.UndoStep(run2, "swap", "volume_swap", swap, nullOutputs)
	if size("s-a") != 16<<20 {
		t.Fatal("the undo of the interrupted swap did not swap back exactly once")
	}
}

// anyContains reports whether any line contains s.
func anyContains(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}
