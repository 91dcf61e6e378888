package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"

	"github.com/vmflow/vmflow/core/claims"
	"github.com/vmflow/vmflow/internal/archivetest"
)

// A step interrupted by SIGKILL runs again when the run is resumed, with
// the same run id and step. These tests call Run twice with the same
// RunID/Step, the first attempt leaving what a killed one leaves, and
// check that the second finishes the job, while another run (or another
// step) still gets the refusal.

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// halfMade truncates a volume's file, as an upload killed early leaves it.
func halfMade(t *testing.T, path string) {
	t.Helper()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}

// undoLeaves undoes an interrupted attempt of step step of run runID; the
// domain must then be in state state.
func (h *harness) undoLeaves(runID, step, action string, args map[string]any, state string) {
	h.t.Helper()
	h.undoStep(runID, step, action, args, nullOutputs)
	if s := h.run("state", args); str(s, "state") != state {
		h.t.Fatalf("after the undo of %s (run %s, step %s): %#v, want state %q", action, runID, step, s, state)
	}
}

// retryHalfMade runs step step of run runID, then cuts the volume it made
// short, as a kill during its upload leaves it: another run's attempt must
// be refused with refusal; the step's retry runs, and its outputs are
// returned.
func (h *harness) retryHalfMade(runID, other, step, action string, args map[string]any, refusal string) cty.Value {
	h.t.Helper()
	first := h.mustAttempt(runID, step, action, args)
	halfMade(h.t, str(first, "path"))
	h.attemptFails(other, step, action, args, refusal)
	return h.mustAttempt(runID, step, action, args)
}

func (h *harness) exists(volume string) bool {
	h.t.Helper()
	return h.run("volume_info", map[string]any{"name": volume}).GetAttr("exists").True()
}

var nullOutputs = cty.NullVal(cty.DynamicPseudoType)

// Every creating action on qemu:///system, where volumes are files: the
// leftover of an interrupted attempt is replaced, another run's refusal
// stays, and the undo of an interrupted attempt removes what it claimed.
func TestRetriedVolumeStepsOnQemuSystem(t *testing.T) {
	h := newHarness(t, "qemu:///system")
	const run, other = "20261127-100000-aaaa", "20261127-100001-bbbb"
	refusal := "already exists in pool " + h.d.poolName + "; vmflow never writes over an existing volume"

	// volume_create with a filesystem: killed mid-upload, the volume is
	// there and holds no filesystem yet.
	vargs := map[string]any{"name": "r-var", "size": "64M", "filesystem": "ext4", "label": "var", "files": map[string]string{"identity/hostname": "r\n"}}
	v := h.mustAttempt(run, "var", "volume_create", vargs)
	halfMade(t, str(v, "path"))
	h.attemptFails(other, "var", "volume_create", vargs, refusal)
	h.attemptFails(run, "other_step", "volume_create", vargs, refusal)
	v = h.mustAttempt(run, "var", "volume_create", vargs)
	if files := readFiles(t, str(v, "path")); files["identity/hostname"].content != "r\n" {
		t.Fatalf("the retried volume_create holds %v", files)
	}
	if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "vmflow-mkfs-*")); len(left) > 0 {
		t.Logf("scratch directories in %s (maybe other tests'): %v", os.TempDir(), left)
	}

	// volume_import: the upload cut short.
	img := filepath.Join(t.TempDir(), "image.raw")
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	iargs := map[string]any{"path": img, "name": "r-base"}
	imp := h.retryHalfMade(run, other, "image", "volume_import", iargs, refusal)
	if archivetest.FileSum(t, str(imp, "path")) != archivetest.FileSum(t, img) {
		t.Fatal("the retried import does not hold the image")
	}

	// volume_overlay and volume_copy: made whole, but never reported.
	oargs := map[string]any{"name": "r-boot", "backing": "r-base"}
	h.mustAttempt(run, "boot", "volume_overlay", oargs)
	h.attemptFails(other, "boot", "volume_overlay", oargs, refusal)
	ov := h.mustAttempt(run, "boot", "volume_overlay", oargs)
	if i := h.run("volume_info", map[string]any{"name": "r-boot"}); str(i, "backing") != str(imp, "path") || str(i, "path") != str(ov, "path") {
		t.Fatalf("the retried overlay: %#v", i)
	}
	cargs := map[string]any{"source": "r-base", "name": "r-copy"}
	cp := h.retryHalfMade(run, other, "copy", "volume_copy", cargs, refusal)
	if archivetest.FileSum(t, str(cp, "path")) != archivetest.FileSum(t, img) {
		t.Fatal("the retried copy does not hold the image")
	}

	// volume_export: the file half-written. (Validate refuses a path that
	// exists when it knows the path before the run; the tasks' export
	// paths come from earlier steps, so the retry meets only Run's check.)
	exp := filepath.Join(t.TempDir(), "base.img")
	eargs := map[string]any{"name": "r-base", "path": exp}
	h.mustAttempt(run, "export", "volume_export", eargs)
	halfMade(t, exp)
	_, err := h.shared().RunOnly(other, "export", "volume_export", h.inputs("volume_export", eargs))
	if err == nil || !strings.Contains(err.Error(), "nothing is written over an existing file") {
		t.Fatalf("another run's export over the file: %v", err)
	}
	out, err := h.shared().RunOnly(run, "export", "volume_export", h.inputs("volume_export", eargs))
	if err != nil {
		t.Fatal(err)
	}
	if sum := archivetest.FileSum(t, exp); sum != str(out, "sha256") || sum != archivetest.FileSum(t, img) {
		t.Fatalf("the retried export: sha256 %s, reported %s", sum, str(out, "sha256"))
	}

	// The undo of an interrupted attempt (vmflow resume --undo) removes
	// what the step claimed; a step that claimed nothing leaves alone a
	// volume of the same name.
	h.mustAttempt("20261127-100002-cccc", "var", "volume_create", map[string]any{"name": "r-half", "size": "16M"})
	h.undoStep("20261127-100003-dddd", "var", "volume_create", map[string]any{"name": "r-half", "size": "16M"}, nullOutputs)
	if !h.exists("r-half") {
		t.Fatal("the undo of another run's interrupted step deleted a volume it never claimed")
	}
	h.undoStep("20261127-100002-cccc", "var", "volume_create", map[string]any{"name": "r-half", "size": "16M"}, nullOutputs)
	if h.exists("r-half") {
		t.Fatal("the undo of the interrupted step left the volume it claimed")
	}
	h.undoStep(run, "export", "volume_export", eargs, nullOutputs)
	if _, err := os.Stat(exp); !os.IsNotExist(err) {
		t.Fatalf("the undo of the interrupted export left %s", exp)
	}
	for _, name := range []string{"r-var", "r-boot", "r-copy", "r-base"} {
		h.run("volume_delete", map[string]any{"name": name})
	}
}

// volume_swap never exchanges twice: run again after an exchange that was
// done but not reported, it only reports success; run again after a kill
// between its claim and the exchange, it exchanges. Its undo, run twice,
// swaps back once.
func TestRetriedSwapOnQemuSystem(t *testing.T) {
	h := newHarness(t, "qemu:///system")
	const run = "20261127-110000-aaaa"
	a := h.run("volume_create", map[string]any{"name": "s-a", "size": "16M"})
	b := h.run("volume_create", map[string]any{"name": "s-b", "size": "32M"})
	inoA, inoB := inode(t, str(a, "path")), inode(t, str(b, "path"))
	capOf := func(name string) uint64 { return num(h.run("volume_info", map[string]any{"name": name}), "capacity") }
	swap := map[string]any{"name": "s-a", "with": "s-b"}

	out := h.mustAttempt(run, "swap", "volume_swap", swap)
	if capOf("s-a") != 32<<20 || inode(t, str(a, "path")) != inoB {
		t.Fatal("the first attempt did not exchange")
	}
	// Done, not journaled: the retry must not swap back.
	h.mustAttempt(run, "swap", "volume_swap", swap)
	if capOf("s-a") != 32<<20 || inode(t, str(a, "path")) != inoB || inode(t, str(b, "path")) != inoA {
		t.Fatal("the retried swap exchanged again, swapping back")
	}
	// The undo swaps back; run again (an interrupted undo), it leaves them.
	h.undoStep(run, "swap", "volume_swap", swap, out)
	h.undoStep(run, "swap", "volume_swap", swap, out)
	if capOf("s-a") != 16<<20 || inode(t, str(a, "path")) != inoA {
		t.Fatal("two undos did not leave the volumes as they were")
	}

	// Killed after its claim, before the exchange: the retry exchanges.
	const run2 = "20261127-110001-bbbb"
	if err := claims.Write(claims.Dir(h.stateDir, "libvirt", run2, "swap"), swapKey("s-a", "s-b"), swapClaim{NameIno: inoA, WithIno: inoB}); err != nil {
		t.Fatal(err)
	}
	h.mustAttempt(run2, "swap", "volume_swap", swap)
	if capOf("s-a") != 32<<20 {
		t.Fatal("the retry after a claim without its exchange did not exchange")
	}
	// The undo of that interrupted step (no outputs) swaps back, once.
	h.undoStep(run2, "swap", "volume_swap", swap, nullOutputs)
	h.undoStep(run2, "swap", "volume_swap", swap, nullOutputs)
	if capOf("s-a") != 16<<20 || inode(t, str(a, "path")) != inoA {
		t.Fatal("the undo of the interrupted swap did not swap back exactly once")
	}
	// A swap whose files changed since its claim is not guessed at.
	if err := claims.Write(claims.Dir(h.stateDir, "libvirt", "20261127-110002-cccc", "swap"), swapKey("s-a", "s-b"), swapClaim{NameIno: 1, WithIno: 2}); err != nil {
		t.Fatal(err)
	}
	h.attemptFails("20261127-110002-cccc", "swap", "volume_swap", swap, "something else changed them")
	if capOf("s-a") != 16<<20 {
		t.Fatal("a refused swap exchanged")
	}
	// Another run swaps as ever.
	h.mustAttempt("20261127-110003-dddd", "swap", "volume_swap", swap)
	if capOf("s-a") != 32<<20 {
		t.Fatal("another run's swap did not exchange")
	}
}

// define, start and shutdown on the test driver: a domain this run's
// step defined is new to its retry (previous_xml "", so the undo removes
// it); one it redefined keeps the definition from before the step; start
// and shutdown run again report the change the interrupted attempt made,
// so their undos reverse it.
func TestRetriedDomainStepsOnTheTestDriver(t *testing.T) {
	h := newHarness(t, "test:///default")
	const run, other = "20261127-120000-aaaa", "20261127-120001-bbbb"
	h.run("volume_create", map[string]any{"name": "d-boot", "size": "1G"})
	def := map[string]any{"name": "d1", "boot_volume": "d-boot", "firmware": "kernel", "kernel": "/boot/vmlinuz", "network": "none", "memory": 256}

	h.mustAttempt(run, "define", "define", def)
	out := h.mustAttempt(run, "define", "define", def)
	if str(out, "previous_xml") != "" {
		t.Fatal("the retried define of a new domain reports a previous definition")
	}
	if o := h.mustAttempt(other, "define", "define", def); str(o, "previous_xml") == "" {
		t.Fatal("another run's define of the existing domain calls it new")
	}
	h.undo("define", def, out)
	if h.run("state", map[string]any{"name": "d1"}).GetAttr("exists").True() {
		t.Fatal("the undo of the retried define left the domain")
	}

	// A redefinition: the retry reports (and its undo restores) the
	// definition from before the step, not its own first attempt's.
	h.run("define", def)
	redef := map[string]any{"name": "d1", "boot_volume": "d-boot", "firmware": "kernel", "kernel": "/boot/vmlinuz", "network": "none", "memory": 512}
	first := h.mustAttempt(run, "redefine", "define", redef)
	again := h.mustAttempt(run, "redefine", "define", redef)
	if str(again, "previous_xml") != str(first, "previous_xml") || !strings.Contains(str(first, "previous_xml"), "262144") {
		t.Fatal("the retried redefine lost the definition from before the step")
	}
	h.undo("define", redef, again)
	if x := h.run("define", def); !strings.Contains(str(x, "previous_xml"), "262144") {
		t.Fatal("the undo did not restore the definition from before the step")
	}

	// start and shutdown.
	st := map[string]any{"name": "d1"}
	h.shared().Retried(run, "start", "start", st, "started", other)
	h.shared().Retried(run, "stop", "shutdown", st, "stopped", other)
	// The undos of interrupted attempts: shutdown starts it again, start
	// forces it off, define removes the domain it made.
	h.undoLeaves(run, "stop", "shutdown", st, "running")
	h.undoLeaves(run, "start", "start", st, "shut off")
	// suspend: the retry reports the pause of the interrupted attempt,
	// another run's does not; the undo of the interrupted attempt resumes
	// the guest (a backup killed while it was paused, then rolled back).
	h.run("start", st)
	h.shared().Retried(run, "pause", "suspend", st, "suspended", other)
	h.undoLeaves(other, "pause", "suspend", st, "paused")
	h.undoLeaves(run, "pause", "suspend", st, "running")
	h.run("destroy", st)

	// Killed after its claim, maybe before its request reached the guest:
	// the undo takes the guest down (it may be on its way) and starts it,
	// so that it is not left to go off afterwards.
	h.run("start", st)
	if err := claims.Write(claims.Dir(h.stateDir, "libvirt", "20261127-120004-eeee", "stop"), shutdownClaim("d1"), powerClaim{}); err != nil {
		t.Fatal(err)
	}
	h.undoLeaves("20261127-120004-eeee", "stop", "shutdown", st, "running")
	h.run("destroy", st)
	h.run("undefine", st)
	h.mustAttempt("20261127-120002-cccc", "define", "define", def)
	h.undoStep("20261127-120003-dddd", "define", "define", def, nullOutputs)
	if !h.run("state", st).GetAttr("exists").True() {
		t.Fatal("the undo of another run's interrupted define removed the domain")
	}
	h.undoStep("20261127-120002-cccc", "define", "define", def, nullOutputs)
	if h.run("state", st).GetAttr("exists").True() {
		t.Fatal("the undo of the interrupted define left the domain it made")
	}

	// Volumes on the test driver too.
	vol := map[string]any{"name": "d-var", "size": "1G"}
	h.mustAttempt(run, "var", "volume_create", vol)
	h.attemptFails(other, "var", "volume_create", vol, `volume "d-var" already exists`)
	h.mustAttempt(run, "var", "volume_create", vol)

	// A deletion done but never reported: the retry counts it as done,
	// another run still finds the volume missing.
	del := map[string]any{"name": "d-var"}
	h.shared().Retried(run, "old", "volume_delete", del, "deleted")
	h.attemptFails(other, "old", "volume_delete", del, `no volume "d-var"`)
	h.run("volume_create", map[string]any{"name": "d-x", "size": "1G"})
	dels := map[string]any{"names": []string{"d-x", "d-boot"}}
	h.mustAttempt(run, "volumes", "volumes_delete", dels)
	if o := h.mustAttempt(run, "volumes", "volumes_delete", dels); len(strs(o, "deleted")) != 2 {
		t.Fatalf("the retried volumes_delete: %#v", o)
	}
	h.attemptFails(other, "volumes", "volumes_delete", dels, `no volume "d-x"`)
}
