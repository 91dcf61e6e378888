package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/vmflow/vmflow/core/claims"
)

// Unit tests of volume_overlay's file made with qemu-img on this machine
// (localvol.go), on fakeLibvirt with the pool's directory a temporary one.

// newLocalPoolHarness is the fake harness on qemu:///system whose pool is
// a directory of the test's own, holding a 64 MiB qcow2 base volume; euid
// says who the plugin runs as.
func newLocalPoolHarness(t *testing.T, euid int) (*harness, *fakeLibvirt, string) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("qemu-img is not installed (make deps)")
		}
		t.Skip("qemu-img is not installed")
	}
	old := geteuid
	geteuid = func() int { return euid }
	t.Cleanup(func() { geteuid = old })
	h, f := newFakeHarness(t, "qemu:///system")
	dir := t.TempDir()
	h.d.poolPath = dir
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(dir, "base"), "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	conn, pool, err := h.d.pool()
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.StoragePoolRefresh(pool, 0); err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	return h, f, dir
}

// imgInfo is qemu-img info's JSON of a file.
func imgInfo(t *testing.T, file string) map[string]any {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "--output=json", file).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", file, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// As root on qemu:///system, the overlay is made by qemu-img here, as
// libvirtd would make it (qcow2, compat 0.10, the base as backing file with
// its format, the base's capacity, mode 0600), and libvirt lists it after
// one refresh: no StorageVolCreateXML.
func TestUnitOverlayMadeLocally(t *testing.T) {
	h, f, dir := newLocalPoolHarness(t, 0)
	out := h.run("volume_overlay", map[string]any{"name": "ov", "backing": "base"})
	file := filepath.Join(dir, "ov")
	if str(out, "path") != file || num(out, "capacity") != 64<<20 || str(out, "name") != "ov" {
		t.Fatalf("outputs: %#v", out)
	}
	if f.count("StorageVolCreateXML") != 0 || f.count("StoragePoolRefresh") != 1 {
		t.Fatalf("calls: %v", f.calls)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("overlay file: %v %v", st, err)
	}
	info := imgInfo(t, file)
	spec, _ := info["format-specific"].(map[string]any)
	data, _ := spec["data"].(map[string]any)
	if info["format"] != "qcow2" || info["backing-filename"] != filepath.Join(dir, "base") || info["backing-filename-format"] != "qcow2" ||
		info["virtual-size"] != float64(64<<20) || data["compat"] != "0.10" {
		t.Fatalf("qemu-img info: %v", info)
	}
	// It is a volume like any other: info, delete.
	if i := h.run("volume_info", map[string]any{"name": "ov"}); str(i, "path") != file {
		t.Fatalf("volume_info: %#v", i)
	}
	h.fails("volume_overlay", map[string]any{"name": "ov", "backing": "base"}, `volume "ov" already exists`)
	h.run("volume_delete", map[string]any{"name": "ov"})
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("deleted overlay: %v", err)
	}
}

// Where this process is not the user libvirtd runs as, or the file's name
// is taken behind libvirt's back, or libvirt refuses the refresh, or
// qemu-img fails, libvirtd makes the volume, as before; nothing of the
// local attempt is left.
func TestUnitOverlayAsksLibvirtOtherwise(t *testing.T) {
	h, f, dir := newLocalPoolHarness(t, 1000)
	h.run("volume_overlay", map[string]any{"name": "ov1", "backing": "base"})
	if f.count("StorageVolCreateXML") != 1 || f.count("StoragePoolRefresh") != 0 {
		t.Fatalf("not root: calls %v", f.calls)
	}

	h, f, dir = newLocalPoolHarness(t, 0)
	stray := filepath.Join(dir, "ov2")
	os.WriteFile(stray, []byte("not vmflow's"), 0o644)
	h.run("volume_overlay", map[string]any{"name": "ov2", "backing": "base"})
	if b, _ := os.ReadFile(stray); string(b) != "not vmflow's" || f.count("StorageVolCreateXML") != 1 {
		t.Fatalf("a file in the way: %q, calls %v", b, f.calls)
	}

	f.calls = nil
	f.failNext("StoragePoolRefresh", lvErr(libvirt.ErrInternalError, "internal error: pool 'vmflow-unit' has asynchronous jobs running."))
	h.run("volume_overlay", map[string]any{"name": "ov3", "backing": "base"})
	if f.count("StorageVolCreateXML") != 1 {
		t.Fatalf("refresh refused: calls %v", f.calls)
	}
	if _, err := os.Stat(filepath.Join(dir, "ov3")); !os.IsNotExist(err) {
		t.Fatalf("refresh refused: the local file is left: %v", err)
	}

	f.calls = nil
	old := qemuImg
	qemuImg = "false"
	defer func() { qemuImg = old }()
	h.run("volume_overlay", map[string]any{"name": "ov4", "backing": "base"})
	if f.count("StorageVolCreateXML") != 1 {
		t.Fatalf("qemu-img failed: calls %v", f.calls)
	}
	if _, err := os.Stat(filepath.Join(dir, "ov4")); !os.IsNotExist(err) {
		t.Fatalf("qemu-img failed: the local file is left: %v", err)
	}
}

// A step killed after it made the file but before libvirt listed it
// leaves the file and its claim: the step run again removes it and makes
// the overlay; the undo of an interrupted step removes it. A file no claim
// names is never removed.
func TestUnitOverlayLeftoverOfAKilledAttempt(t *testing.T) {
	h, _, dir := newLocalPoolHarness(t, 0)
	leave := func(run, name string) string {
		t.Helper()
		file := filepath.Join(dir, name)
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", file, "1M").CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if err := claims.Write(claims.Dir(h.stateDir, "libvirt", run, "ov"), volumeClaim(name), scratchClaim{File: file}); err != nil {
			t.Fatal(err)
		}
		return file
	}
	file := leave("20261207-080000-aaaa", "ov")
	out, err := h.attempt("20261207-080000-aaaa", "ov", "volume_overlay", map[string]any{"name": "ov", "backing": "base"})
	if err != nil {
		t.Fatal(err)
	}
	if num(out, "capacity") != 64<<20 {
		t.Fatalf("the rerun kept the leftover: %#v", out)
	}
	if b := imgInfo(t, file)["backing-filename"]; b != filepath.Join(dir, "base") {
		t.Fatalf("backing %v", b)
	}

	file = leave("20261207-080000-bbbb", "ov2")
	h.undoStep("20261207-080000-bbbb", "ov", "volume_overlay", map[string]any{"name": "ov2", "backing": "base"}, nullOutputs)
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("the undo left %s: %v", file, err)
	}

	// Another run's step claimed nothing: its undo leaves the file alone.
	other := filepath.Join(dir, "ov3")
	os.WriteFile(other, []byte("x"), 0o600)
	h.undoStep("20261207-080000-cccc", "ov", "volume_overlay", map[string]any{"name": "ov3", "backing": "base"}, nullOutputs)
	if b, err := os.ReadFile(other); err != nil || !strings.HasPrefix(string(b), "x") {
		t.Fatalf("an unclaimed file was touched: %v", err)
	}
}
