package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A fast pass over every action on libvirt's test driver, through the
// daemon. The test driver keeps state per connection, which the plugin's
// one connection holds for the whole test.
func TestEveryActionOnTheTestDriver(t *testing.T) {
	h := newHarness(t, "test:///default")

	// Volumes.
	base := h.run("volume_create", map[string]any{"name": "base", "size": "1G"})
	if num(base, "capacity") != 1<<30 || str(base, "name") != "base" {
		t.Fatalf("volume_create: %#v", base)
	}
	h.fails("volume_create", map[string]any{"name": "base", "size": "1G"}, `volume "base" already exists`)
	h.fails("volume_create", map[string]any{"name": "bad/name", "size": "1G"}, "invalid volume name")
	h.fails("volume_create", map[string]any{"name": "ok", "size": "1.5G"}, `invalid size "1.5G"`)
	ov := h.run("volume_overlay", map[string]any{"name": "boot", "backing": "base"})
	if num(ov, "capacity") != 1<<30 {
		t.Fatalf("overlay capacity %d", num(ov, "capacity"))
	}
	info := h.run("volume_info", map[string]any{"name": "boot"})
	if !info.GetAttr("exists").True() || str(info, "path") != str(ov, "path") {
		t.Fatalf("volume_info: %#v", info)
	}
	h.run("volume_create", map[string]any{"name": "var", "size": "2G"})
	// The test driver cannot resize (qemu:///system's test grows a disk);
	// libvirt's own message comes through.
	h.fails("volume_resize", map[string]any{"name": "var", "size": "3G"}, "this function is not supported by the connection driver: virStorageVolResize")
	h.fails("volume_resize", map[string]any{"name": "var", "size": "1G"}, "shrinking it to 1G is refused")
	h.run("volume_copy", map[string]any{"source": "var", "name": "var-copy"})
	img := filepath.Join(t.TempDir(), "image.raw")
	os.WriteFile(img, make([]byte, 1<<20), 0o644)
	// Nor upload: the import fails with libvirt's message and leaves no
	// half-made volume.
	h.fails("volume_import", map[string]any{"path": img, "name": "imported"}, "virStorageVolUpload")
	if i := h.run("volume_info", map[string]any{"name": "imported"}); i.GetAttr("exists").True() {
		t.Fatal("a failed import left its volume")
	}
	// Nor download: no export (and no file left), no edit. Its volumes have
	// no files, so they cannot be swapped.
	exp := filepath.Join(t.TempDir(), "var.qcow2")
	h.fails("volume_export", map[string]any{"name": "var", "path": exp}, "virStorageVolDownload")
	if _, err := os.Stat(exp); !os.IsNotExist(err) {
		t.Fatalf("a failed export left %s", exp)
	}
	h.fails("volume_edit", map[string]any{"name": "var", "files": map[string]string{"identity/hostname": "x"}}, "virStorageVolDownload")
	h.fails("volume_edit", map[string]any{"name": "boot", "remove": []string{"x"}}, `volume "boot" is an overlay on`)
	h.fails("volume_swap", map[string]any{"name": "var", "with": "var-copy"}, "its file is not on this machine")
	h.fails("volume_create", map[string]any{"name": "withfiles", "size": "1G", "filesystem": "ext4", "files": map[string]string{"a": "b"}}, "virStorageVolUpload")

	// Domains.
	def := map[string]any{"name": "vm1", "boot_volume": "boot", "var_volume": "var", "firmware": "kernel", "kernel": "/boot/vmlinuz", "network": "none"}
	d1 := h.run("define", def)
	if str(d1, "domain_type") != "test" || str(d1, "mac") != macFor("vm1") || str(d1, "previous_xml") != "" {
		t.Fatalf("define: %#v", d1)
	}
	d2 := h.run("define", def) // redefining a shut-off domain keeps its UUID
	if str(d2, "uuid") != str(d1, "uuid") || str(d2, "previous_xml") == "" {
		t.Fatalf("redefine changed the uuid or lost the previous definition: %s %s", str(d1, "uuid"), str(d2, "uuid"))
	}
	st := h.run("start", map[string]any{"name": "vm1"})
	if str(st, "state") != "running" || !st.GetAttr("started").True() {
		t.Fatalf("start: %#v", st)
	}
	if again := h.run("start", map[string]any{"name": "vm1"}); again.GetAttr("started").True() {
		t.Fatal("starting a running domain should do nothing")
	}
	h.fails("define", def, `domain "vm1" is running; stop it before redefining it`)
	h.fails("undefine", map[string]any{"name": "vm1"}, "is running; stop it first, or set force = true")
	list := h.run("list", map[string]any{"prefix": "vm"})
	if names := list.GetAttr("names").AsValueSlice(); len(names) != 1 || names[0].AsString() != "vm1" {
		t.Fatalf("list: %#v", list)
	}
	h.run("reboot", map[string]any{"name": "vm1"})
	// Paused and resumed.
	sus := h.run("suspend", map[string]any{"name": "vm1"})
	if s := h.run("state", map[string]any{"name": "vm1"}); !sus.GetAttr("suspended").True() || str(s, "state") != "paused" || str(s, "ip") != "" {
		t.Fatalf("suspend: %#v, state %#v", sus, s)
	}
	if again := h.run("suspend", map[string]any{"name": "vm1"}); again.GetAttr("suspended").True() {
		t.Fatal("suspending a paused domain should do nothing")
	}
	if res := h.run("resume", map[string]any{"name": "vm1"}); !res.GetAttr("resumed").True() {
		t.Fatalf("resume: %#v", res)
	}
	if res := h.run("resume", map[string]any{"name": "vm1"}); res.GetAttr("resumed").True() {
		t.Fatal("resuming a running domain should do nothing")
	}
	if s := h.run("state", map[string]any{"name": "vm1"}); str(s, "state") != "running" || str(s, "ip") != "" {
		t.Fatalf("a running domain without a network has an address: %#v", s)
	}
	h.fails("ensure_absent", map[string]any{"vm": "vm1", "volumes": []string{"var", "nosuch", "boot"}}, "VM vm1 exists (running); volumes var, boot exist")
	h.fails("volume_edit", map[string]any{"name": "var", "remove": []string{"x"}}, `volume "var" is in use by domain "vm1", which is running`)
	h.fails("volume_swap", map[string]any{"name": "base", "with": "var-copy"}, `volume "base" is in use by domain "vm1"`)
	if s := h.run("state", map[string]any{"name": "vm1"}); str(s, "state") != "running" || str(s, "uuid") != str(d1, "uuid") {
		t.Fatalf("state: %#v", s)
	}
	if out := h.run("destroy", map[string]any{"name": "vm1"}); !out.GetAttr("was_running").True() {
		t.Fatal("destroy: was not running")
	}
	if s := h.run("state", map[string]any{"name": "vm1"}); str(s, "ip") != "" {
		t.Fatalf("a stopped domain has ip %q", str(s, "ip"))
	}

	// Snapshots.
	h.run("snapshot_create", map[string]any{"name": "vm1", "snapshot": "s1", "description": "first"})
	h.fails("snapshot_create", map[string]any{"name": "vm1", "snapshot": "s1"}, `already has a snapshot "s1"`)
	h.fails("snapshot_create", map[string]any{"name": "vm1", "snapshot": "current"}, "invalid snapshot name")
	h.fails("snapshot_create", map[string]any{"name": "vm1", "snapshot": "1st"}, "invalid snapshot name")
	h.run("snapshot_create", map[string]any{"name": "vm1", "snapshot": "s2"})
	sl := h.run("snapshot_list", map[string]any{"name": "vm1"})
	if n := sl.GetAttr("names").LengthInt(); n != 2 {
		t.Fatalf("snapshot_list: %#v", sl)
	}
	h.run("snapshot_revert", map[string]any{"name": "vm1", "snapshot": "s1"})
	h.fails("snapshot_revert", map[string]any{"name": "vm1", "snapshot": "nope"}, `no snapshot "nope" of domain "vm1"; it has: s1, s2`)
	h.run("snapshot_delete", map[string]any{"name": "vm1", "snapshot": "s2"})
	h.fails("snapshot_delete", map[string]any{"name": "vm1", "snapshot": "s2"}, `no snapshot "s2"`)

	// Removal leaves nothing.
	h.run("undefine", map[string]any{"name": "vm1"})
	if s := h.run("state", map[string]any{"name": "vm1"}); s.GetAttr("exists").True() {
		t.Fatal("vm1 still defined")
	}
	h.fails("undefine", map[string]any{"name": "vm1"}, `no domain "vm1"`)
	h.run("undefine", map[string]any{"name": "vm1", "missing_ok": true})
	for _, v := range []string{"boot", "base", "var", "var-copy"} {
		h.run("volume_delete", map[string]any{"name": v})
		if i := h.run("volume_info", map[string]any{"name": v}); i.GetAttr("exists").True() {
			t.Fatalf("volume %s still there", v)
		}
	}
	if out := h.run("volume_delete", map[string]any{"name": "base", "missing_ok": true}); out.GetAttr("deleted").True() {
		t.Fatal("deleted a missing volume")
	}
	if out := h.run("ensure_absent", map[string]any{"vm": "vm1", "volumes": []string{"boot", "base"}}); len(strs(out, "checked")) != 3 {
		t.Fatalf("ensure_absent: %#v", out)
	}
}

// Undo reverses what each undoable action did.
func TestUndosOnTheTestDriver(t *testing.T) {
	h := newHarness(t, "test:///default")
	args := map[string]any{"name": "u1", "size": "1G"}
	out := h.run("volume_create", args)
	h.undo("volume_create", args, out)
	if i := h.run("volume_info", map[string]any{"name": "u1"}); i.GetAttr("exists").True() {
		t.Fatal("volume_create's undo left the volume")
	}
	h.run("volume_create", map[string]any{"name": "b", "size": "1G"})
	def := map[string]any{"name": "u2", "boot_volume": "b", "firmware": "kernel", "kernel": "/boot/vmlinuz", "network": "none"}
	out = h.run("define", def)
	h.undo("define", def, out)
	if s := h.run("state", map[string]any{"name": "u2"}); s.GetAttr("exists").True() {
		t.Fatal("define's undo left the domain")
	}

	// shutdown's undo starts what it stopped; suspend's resumes.
	h.run("define", def)
	h.run("start", map[string]any{"name": "u2"})
	sus := map[string]any{"name": "u2"}
	h.undo("suspend", sus, h.run("suspend", sus))
	if s := h.run("state", sus); str(s, "state") != "running" {
		t.Fatalf("after suspend's undo: %#v", s)
	}
	down := map[string]any{"name": "u2"}
	out = h.run("shutdown", down)
	if !out.GetAttr("stopped").True() || str(out, "state") != "shut off" {
		t.Fatalf("shutdown: %#v", out)
	}
	h.undo("shutdown", down, out)
	if s := h.run("state", down); str(s, "state") != "running" {
		t.Fatalf("after shutdown's undo: %#v", s)
	}
	h.run("destroy", down)
	out = h.run("shutdown", down)
	if out.GetAttr("stopped").True() {
		t.Fatalf("shutdown of a stopped domain: %#v", out)
	}
	h.undo("shutdown", down, out)
	if s := h.run("state", down); str(s, "state") != "shut off" {
		t.Fatalf("the undo of a shutdown that stopped nothing started it: %#v", s)
	}
}
