package main

import (
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// Unit tests of the snapshot actions' logic, on fakeLibvirt: no libvirtd.

const twoDisks = `<domain><name>vm1</name><devices>
<disk type="file" device="disk"><source file="/pool/boot"/><target dev="vda" bus="virtio"/><readonly/></disk>
<disk type="file" device="disk"><source file="/pool/var"/><target dev="vdb" bus="virtio"/></disk>
<disk type="file" device="cdrom"><target dev="sda" bus="sata"/></disk>
</devices></domain>`

// A snapshot covers the writable disks, internally; the read-only boot
// disk is left out and a cdrom is not named; a domain with no writable
// disk has nothing to snapshot.
func TestUnitSnapshotSpec(t *testing.T) {
	f := newFakeLibvirt()
	fd, _ := f.addDomain(twoDisks, libvirt.DomainShutoff)
	doc, err := snapshotSpec(f, fd.dom, "s1", "first")
	if err != nil {
		t.Fatal(err)
	}
	var x libvirtxml.DomainSnapshot
	if err := x.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	d := x.Disks.Disks
	if x.Name != "s1" || x.Description != "first" || len(d) != 2 || d[0].Name != "vda" || d[0].Snapshot != "no" || d[1].Name != "vdb" || d[1].Snapshot != "internal" {
		t.Fatalf("snapshot: %s", doc)
	}
	ro, _ := f.addDomain(`<domain><name>ro</name><devices><disk device="disk"><target dev="vda"/><readonly/></disk></devices></domain>`, libvirt.DomainShutoff)
	if _, err := snapshotSpec(f, ro.dom, "s1", ""); err == nil || !strings.HasSuffix(err.Error(), "has no writable disk to snapshot") {
		t.Fatalf("read-only domain: %v", err)
	}
}

// snapshot_list is oldest first; within one second (creation times have
// one-second resolution) a snapshot comes after its ancestors, whatever
// their names.
func TestUnitSnapshotsOldestFirst(t *testing.T) {
	f := newFakeLibvirt()
	fd, _ := f.addDomain(twoDisks, libvirt.DomainShutoff)
	add := func(name, parent, created string) {
		x := libvirtxml.DomainSnapshot{Name: name, CreationTime: created, State: "shutoff"}
		if parent != "" {
			x.Parent = &libvirtxml.DomainSnapshotParent{Name: parent}
		}
		doc, _ := x.Marshal()
		fd.snaps = append(fd.snaps, &fakeSnapshot{snap: libvirt.DomainSnapshot{Name: name, Dom: fd.dom}, xml: doc})
	}
	add("c", "", "1700000005")
	add("b", "c", "1700000005")
	add("a", "b", "1700000005")
	add("z", "", "1700000001")
	list, err := snapshots(f, fd.dom)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(snapshotNames(list), " "); got != "z c b a" || list[0].Created != "2023-11-14T22:13:21Z" {
		t.Fatalf("order: %s (%+v)", got, list[0])
	}
}

// The snapshot actions' refusals and libvirt's errors, as the user sees
// them; snapshot_create's undo deletes the snapshot, and is quiet when
// it or the domain is gone.
func TestUnitSnapshotActions(t *testing.T) {
	h, f := newFakeHarness(t, "test:///default")
	h.fails("snapshot_create", map[string]any{"name": "vm1", "snapshot": "s1"}, `no domain "vm1"`)
	f.addDomain(twoDisks, libvirt.DomainRunning)
	s1 := h.run("snapshot_create", map[string]any{"name": "vm1", "snapshot": "s1"})
	if str(s1, "state") != "running" {
		t.Fatalf("snapshot_create: %#v", s1)
	}
	h.fails("snapshot_create", map[string]any{"name": "vm1", "snapshot": "s1"}, `domain "vm1" already has a snapshot "s1"; choose another name or delete it first`)
	f.failNext("DomainSnapshotCreateXML", lvErr(libvirt.ErrOperationFailed, "operation failed: no space"))
	h.fails("snapshot_create", map[string]any{"name": "vm1", "snapshot": "s2"}, `snapshot "s2" of "vm1": operation failed: no space`)
	h.run("snapshot_create", map[string]any{"name": "vm1", "snapshot": "s2"})
	if got := strings.Join(strs(h.run("snapshot_list", map[string]any{"name": "vm1"}), "names"), " "); got != "s1 s2" {
		t.Fatalf("snapshot_list: %s", got)
	}
	h.fails("snapshot_revert", map[string]any{"name": "vm1", "snapshot": "nope"}, `no snapshot "nope" of domain "vm1"; it has: s1, s2`)
	f.failNext("DomainRevertToSnapshot", lvErr(libvirt.ErrOperationFailed, "operation failed: busy"))
	h.fails("snapshot_revert", map[string]any{"name": "vm1", "snapshot": "s1"}, `reverting "vm1" to "s1": operation failed: busy`)
	h.run("snapshot_revert", map[string]any{"name": "vm1", "snapshot": "s1"})
	if f.domains["vm1"].current != "s1" {
		t.Fatal("not reverted")
	}
	if out := h.run("snapshot_delete", map[string]any{"name": "vm1", "snapshot": "nope", "missing_ok": true}); out.GetAttr("deleted").True() {
		t.Fatal("deleted a missing snapshot")
	}
	h.fails("snapshot_delete", map[string]any{"name": "vm1", "snapshot": "nope"}, `no snapshot "nope"`)
	// missing_ok is for a snapshot that is not there, not for a lookup
	// that failed: that is an error, and nothing counts as deleted.
	f.failNext("DomainSnapshotLookupByName", lvErr(libvirt.ErrInternalError, "internal error: client socket is closed"))
	h.fails("snapshot_delete", map[string]any{"name": "vm1", "snapshot": "s2", "missing_ok": true}, `client socket is closed`)
	h.undo("snapshot_create", map[string]any{"name": "vm1", "snapshot": "s1"}, s1)
	h.undo("snapshot_create", map[string]any{"name": "vm1", "snapshot": "s1"}, s1)
	if got := strings.Join(strs(h.run("snapshot_list", map[string]any{"name": "vm1"}), "names"), " "); got != "s2" {
		t.Fatalf("after the undo: %s", got)
	}
	delete(f.domains, "vm1")
	h.undo("snapshot_create", map[string]any{"name": "vm1", "snapshot": "s1"}, s1)
}
