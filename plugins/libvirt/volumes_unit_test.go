package main

import (
	"context"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// Unit tests of the volume actions' logic, on fakeLibvirt: no libvirtd.

// busyErr is libvirtd's refusal while another job runs in the pool.
var busyErr = lvErr(libvirt.ErrInternalError, "internal error: pool 'vmflow-unit' has asynchronous jobs running.")

// volumeXML is what the plugin sent libvirt for a volume.
func (f *fakeLibvirt) volumeXML(t *testing.T, name string) libvirtxml.StorageVolume {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pools["vmflow-unit"]
	if p == nil || p.vols[name] == nil {
		t.Fatalf("no volume %s in the fake's pool", name)
	}
	return p.vols[name].x
}

// The pool is defined (a directory at pool_path), built, set to autostart
// and started on first use, and looked up once per connection; a pool
// that exists but is inactive is started, not defined again.
func TestUnitPoolIsMadeOnFirstUse(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	h.run("volume_create", map[string]any{"name": "a", "size": "1G"})
	h.run("volume_create", map[string]any{"name": "b", "size": "1G"})
	p := f.pools["vmflow-unit"]
	if p == nil || p.path != "/pool" || !p.built || !p.autostart || !p.active {
		t.Fatalf("pool after first use: %+v", p)
	}
	if n := f.count("StoragePoolLookupByName"); n != 1 {
		t.Fatalf("the pool was looked up %d times, want once", n)
	}

	h2, f2 := newFakeHarness(t, "qemu:///system")
	f2.pools["vmflow-unit"] = &fakePool{pool: libvirt.StoragePool{Name: "vmflow-unit"}, path: "/pool", vols: map[string]*fakeVolume{}}
	h2.run("volume_create", map[string]any{"name": "a", "size": "1G"})
	if f2.count("StoragePoolDefineXML") != 0 || f2.count("StoragePoolCreate") != 1 {
		t.Fatalf("an inactive pool: calls %v", f2.calls)
	}
}

// A pool libvirt will not build is reported with its name and path, and
// the next action tries again.
func TestUnitPoolErrorsNameThePool(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	f.failNext("StoragePoolBuild", lvErr(libvirt.ErrOperationFailed, "operation failed: permission denied"))
	h.fails("volume_create", map[string]any{"name": "a", "size": "1G"}, "building storage pool vmflow-unit at /pool: operation failed: permission denied")
	f.failNext("StoragePoolLookupByName", lvErr(libvirt.ErrInternalError, "internal error: boom"))
	h.fails("volume_create", map[string]any{"name": "a", "size": "1G"}, "storage pool vmflow-unit: internal error: boom")
}

// volume_create without a filesystem: a qcow2 volume of the size asked,
// thin (allocation 0), described without asking libvirt again.
func TestUnitVolumeCreateSendsAThinQcow2(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	out := h.run("volume_create", map[string]any{"name": "v", "size": "2G"})
	x := f.volumeXML(t, "v")
	if x.Target.Format.Type != "qcow2" || x.Capacity.Value != 2<<30 || x.Capacity.Unit != "bytes" || x.Allocation.Value != 0 || x.BackingStore != nil {
		t.Fatalf("volume XML: %+v %+v %+v", x.Target.Format, x.Capacity, x.Allocation)
	}
	if str(out, "path") != "/pool/v" || num(out, "capacity") != 2<<30 || str(out, "name") != "v" {
		t.Fatalf("outputs: %#v", out)
	}
	if f.count("StorageVolGetXMLDesc") != 0 {
		t.Fatal("a directory pool's new volume was described by asking libvirt")
	}
}

// A volume that exists is never written over; libvirt's "exists" does
// not even come into it, since the plugin asks first.
func TestUnitVolumeCreateRefusesAnExistingVolume(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	h.run("volume_create", map[string]any{"name": "v", "size": "1G"})
	h.fails("volume_create", map[string]any{"name": "v", "size": "1G"},
		`volume "v" already exists in pool vmflow-unit; vmflow never writes over an existing volume (delete it first if you mean to)`)
	if f.count("StorageVolDelete") != 0 || f.count("StorageVolCreateXML") != 1 {
		t.Fatalf("calls: %v", f.calls)
	}
}

// A step run again after a kill removes the volume its own first attempt
// made (it claimed it) and makes it again; a step of another run is
// refused as ever.
func TestUnitVolumeCreateReplacesItsOwnLeftover(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	args := map[string]any{"name": "v", "size": "1G"}
	h.mustAttempt("run1", "disk", "volume_create", args)
	h.mustAttempt("run1", "disk", "volume_create", args)
	if f.count("StorageVolDelete") != 1 || f.count("StorageVolCreateXML") != 2 {
		t.Fatalf("calls: %v", f.calls)
	}
	h.attemptFails("run2", "disk", "volume_create", args, `volume "v" already exists`)
	// The undo of an interrupted attempt deletes only what it claimed.
	h.undoStep("run2", "disk", "volume_create", args, nullOutputs)
	if !h.exists("v") {
		t.Fatal("the undo of a step that claimed nothing deleted the volume")
	}
	h.undoStep("run1", "disk", "volume_create", args, nullOutputs)
	if h.exists("v") {
		t.Fatal("the undo of the interrupted attempt left its volume")
	}
}

// A leftover that libvirt is still busy with (a copy or upload winding
// down) is deleted once libvirt lets go; any other refusal ends the
// attempt at once with libvirt's message.
func TestUnitLeftoverIsDeletedOnceLibvirtLetsGo(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	args := map[string]any{"name": "v", "size": "1G"}
	h.mustAttempt("run1", "disk", "volume_create", args)
	f.failNext("StorageVolDelete", busyErr, lvErr(libvirt.ErrOperationInvalid, "Requested operation is not valid: volume is in use"))
	h.mustAttempt("run1", "disk", "volume_create", args)
	if n := f.count("StorageVolDelete"); n != 3 {
		t.Fatalf("StorageVolDelete called %d times, want 3 (two refusals while busy, then the delete)", n)
	}
	f.failNext("StorageVolDelete", lvErr(libvirt.ErrAccessDenied, "access denied: no"))
	h.attemptFails("run1", "disk", "volume_create", args, `deleting volume "v": access denied: no`)
	if n := f.count("StorageVolDelete"); n != 4 {
		t.Fatalf("a refusal other than busy was tried again: %d calls", n)
	}
}

// volume_delete: libvirt's "no such volume" is "deleted = false" with
// missing_ok, and a clear error without; other errors keep libvirt's
// message.
func TestUnitVolumeDeleteMissing(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	if out := h.run("volume_delete", map[string]any{"name": "nosuch", "missing_ok": true}); out.GetAttr("deleted").True() {
		t.Fatal("deleted a missing volume")
	}
	h.fails("volume_delete", map[string]any{"name": "nosuch"}, `no volume "nosuch" in pool vmflow-unit`)
	h.run("volume_create", map[string]any{"name": "v", "size": "1G"})
	f.failNext("StorageVolDelete", lvErr(libvirt.ErrOperationFailed, "operation failed: disk busy"))
	h.fails("volume_delete", map[string]any{"name": "v"}, `deleting volume "v": operation failed: disk busy`)
	if out := h.run("volume_delete", map[string]any{"name": "v"}); !out.GetAttr("deleted").True() || h.exists("v") {
		t.Fatalf("volume_delete: %#v", out)
	}
	out := h.run("volumes_delete", map[string]any{"names": []string{"a", "b"}, "missing_ok": true})
	if n := out.GetAttr("deleted").LengthInt(); n != 0 {
		t.Fatalf("volumes_delete of missing volumes: %#v", out)
	}
}

// An overlay names its base by path with the base's format, and has the
// base's capacity; a base that is not a volume, or of a format qemu
// cannot put an overlay on, is refused at backing / backing_format.
func TestUnitVolumeOverlayXML(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	h.run("volume_create", map[string]any{"name": "base", "size": "3G"})
	out := h.run("volume_overlay", map[string]any{"name": "boot", "backing": "base"})
	x := f.volumeXML(t, "boot")
	if x.BackingStore == nil || x.BackingStore.Path != "/pool/base" || x.BackingStore.Format.Type != "qcow2" || x.Target.Format.Type != "qcow2" || x.Capacity.Value != 3<<30 {
		t.Fatalf("overlay XML: %+v %+v", x.BackingStore, x.Capacity)
	}
	if num(out, "capacity") != 3<<30 {
		t.Fatalf("overlay outputs: %#v", out)
	}
	// The base given by path, as a volume of some pool.
	h.run("volume_overlay", map[string]any{"name": "boot2", "backing": "/pool/base"})
	if x := f.volumeXML(t, "boot2"); x.BackingStore.Path != "/pool/base" || x.Capacity.Value != 3<<30 {
		t.Fatalf("overlay on a path: %+v", x.BackingStore)
	}
	h.fails("volume_overlay", map[string]any{"name": "o", "backing": "nosuch"}, `no volume "nosuch" in pool vmflow-unit`)
	f.pools["vmflow-unit"].vols["base"].x.Target.Format.Type = "vmdk"
	h.fails("volume_overlay", map[string]any{"name": "o", "backing": "base"}, `unsupported backing format "vmdk": qcow2 or raw`)
	h.run("volume_overlay", map[string]any{"name": "o", "backing": "base", "backing_format": "raw"})
	if x := f.volumeXML(t, "o"); x.BackingStore.Format.Type != "raw" {
		t.Fatalf("backing_format raw: %+v", x.BackingStore.Format)
	}
}

// volume_resize grows, refuses to shrink, and does nothing at the same
// size; libvirt's refusal comes through with the volume's name.
func TestUnitVolumeResize(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	h.run("volume_create", map[string]any{"name": "v", "size": "2G"})
	h.fails("volume_resize", map[string]any{"name": "v", "size": "1G"}, `volume "v" is 2G; shrinking it to 1G is refused (it would cut off data)`)
	h.run("volume_resize", map[string]any{"name": "v", "size": "2G"})
	if f.count("StorageVolResize") != 0 {
		t.Fatal("resized a volume to its own size")
	}
	if out := h.run("volume_resize", map[string]any{"name": "v", "size": "3G"}); num(out, "capacity") != 3<<30 {
		t.Fatalf("grown: %#v", out)
	}
	f.failNext("StorageVolResize", lvErr(libvirt.ErrNoSupport, "this function is not supported by the connection driver: virStorageVolResize"))
	h.fails("volume_resize", map[string]any{"name": "v", "size": "4G"}, `resizing volume "v": this function is not supported`)
	f.failNext("StorageVolLookupByName", lvErr(libvirt.ErrInternalError, "internal error: boom"))
	h.fails("volume_resize", map[string]any{"name": "v", "size": "4G"}, `volume "v": internal error: boom`)
}

// volume_copy asks libvirt for a copy with the source's capacity and
// format; its failure names both volumes.
func TestUnitVolumeCopy(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	h.run("volume_create", map[string]any{"name": "a", "size": "2G"})
	f.pools["vmflow-unit"].vols["a"].x.Target.Format.Type = "raw"
	out := h.run("volume_copy", map[string]any{"source": "a", "name": "b"})
	if x := f.volumeXML(t, "b"); x.Target.Format.Type != "raw" || x.Capacity.Value != 2<<30 || str(out, "path") != "/pool/b" {
		t.Fatalf("copy: %+v %#v", x.Target.Format, out)
	}
	f.failNext("StorageVolCreateXMLFrom", lvErr(libvirt.ErrOperationFailed, "operation failed: no space"))
	h.fails("volume_copy", map[string]any{"source": "a", "name": "c"}, `copying volume "a" to "c": operation failed: no space`)
	h.fails("volume_copy", map[string]any{"source": "nosuch", "name": "c"}, `no volume "nosuch"`)
}

// volume_info of a missing volume says so without an error; of one that
// is there, what libvirt says of it (a capacity not in bytes asked for
// separately).
func TestUnitVolumeInfo(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	if out := h.run("volume_info", map[string]any{"name": "v"}); out.GetAttr("exists").True() {
		t.Fatal("a missing volume exists")
	}
	h.run("volume_create", map[string]any{"name": "x", "size": "1G"})
	h.run("volume_overlay", map[string]any{"name": "v", "backing": "/pool/x"})
	h.run("volume_create", map[string]any{"name": "w", "size": "1G"})
	f.pools["vmflow-unit"].vols["w"].x.Capacity.Unit = "KiB"
	out := h.run("volume_info", map[string]any{"name": "w"})
	if num(out, "capacity") != 1<<30 || f.count("StorageVolGetInfo") != 1 {
		t.Fatalf("a size not in bytes: %#v (GetInfo %d)", out, f.count("StorageVolGetInfo"))
	}
	out = h.run("volume_info", map[string]any{"name": "v"})
	if str(out, "backing") != "/pool/x" || str(out, "format") != "qcow2" || str(out, "path") != "/pool/v" {
		t.Fatalf("volume_info: %#v", out)
	}
}

// volume_list lists the pool's volumes by prefix and pattern, sorted.
func TestUnitVolumeList(t *testing.T) {
	h, _ := newFakeHarness(t, "qemu:///system")
	for _, n := range []string{"vm-var", "vm-boot-2", "vm-boot-1", "other"} {
		h.run("volume_create", map[string]any{"name": n, "size": "1G"})
	}
	out := h.run("volume_list", map[string]any{"prefix": "vm-", "pattern": "vm-boot-[0-9]+"})
	if got := strings.Join(strs(out, "names"), " "); got != "vm-boot-1 vm-boot-2" {
		t.Fatalf("volume_list: %s", got)
	}
	h.fails("volume_list", map[string]any{"pattern": "("}, "not a regular expression")
}

// refreshPool waits while libvirt refuses a refresh for a job in the
// pool, and reports any other refusal at once, naming the pool.
func TestUnitRefreshPoolWaitsOutBusy(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	conn, pool, err := h.d.pool()
	if err != nil {
		t.Fatal(err)
	}
	f.failNext("StoragePoolRefresh", busyErr, busyErr)
	if err := h.d.refreshPool(context.Background(), conn, pool); err != nil || f.count("StoragePoolRefresh") != 3 {
		t.Fatalf("refresh: %v after %d calls", err, f.count("StoragePoolRefresh"))
	}
	f.failNext("StoragePoolRefresh", lvErr(libvirt.ErrOperationFailed, "operation failed: gone"))
	err = h.d.refreshPool(context.Background(), conn, pool)
	if err == nil || err.Error() != "refreshing storage pool vmflow-unit: operation failed: gone" || f.count("StoragePoolRefresh") != 4 {
		t.Fatalf("refresh: %v", err)
	}
}
