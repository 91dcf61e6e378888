package main

import (
	"bytes"
	"os"
	"syscall"
	"testing"

	"libvirt.org/go/libvirtxml"
)

// volume_overlay's file (on qemu:///system as root, made by the plugin
// itself: localvol.go) is byte for byte, mode and owner, the file libvirtd
// makes for the same volume.
func TestOverlayFileIsTheOneLibvirtdMakes(t *testing.T) {
	h := newHarness(t, "qemu:///system")
	name := uniqueName("vmflow-ov")
	base := h.run("volume_create", map[string]any{"name": name + "-base", "size": "64M"})
	ov := h.run("volume_overlay", map[string]any{"name": name + "-ov", "backing": name + "-base"})
	t.Cleanup(func() {
		for _, v := range []string{"-ov", "-api", "-base"} {
			h.run("volume_delete", map[string]any{"name": name + v, "missing_ok": true})
		}
	})
	conn, pool, err := h.d.pool()
	if err != nil {
		t.Fatal(err)
	}
	x := libvirtxml.StorageVolume{
		Name:         name + "-api",
		Capacity:     &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: 64 << 20},
		Allocation:   &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: 0},
		Target:       &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
		BackingStore: &libvirtxml.StorageVolumeBackingStore{Path: str(base, "path"), Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
	}
	doc, _ := x.Marshal()
	vol, err := conn.StorageVolCreateXML(pool, doc, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, err1 := os.ReadFile(str(ov, "path"))
	theirs, err2 := os.ReadFile(vol.Key)
	if err1 != nil || err2 != nil || !bytes.Equal(mine, theirs) {
		t.Fatalf("the overlay (%v) differs from libvirtd's (%v)", err1, err2)
	}
	a, _ := os.Stat(str(ov, "path"))
	b, _ := os.Stat(vol.Key)
	sa, sb := a.Sys().(*syscall.Stat_t), b.Sys().(*syscall.Stat_t)
	if a.Mode() != b.Mode() || sa.Uid != sb.Uid || sa.Gid != sb.Gid {
		t.Fatalf("mode %v %d:%d, libvirtd's %v %d:%d", a.Mode(), sa.Uid, sa.Gid, b.Mode(), sb.Uid, sb.Gid)
	}
}
