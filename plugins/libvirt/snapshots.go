package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// snapshotSpec makes an internal qcow2 snapshot of the domain's writable
// disks only: the read-only boot disk is immutable and excluded. (libvirt
// 9 cannot revert external snapshots, so these are internal.) For a
// running domain libvirt includes the memory state, as QEMU requires.
func snapshotSpec(conn libvirtConn, dom libvirt.Domain, name, description string) (string, error) {
	dx, err := parseXML[libvirtxml.Domain](conn.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive))
	if err != nil {
		return "", err
	}
	snap := libvirtxml.DomainSnapshot{Name: name, Description: description, Disks: &libvirtxml.DomainSnapshotDisks{}}
	writable := 0
	if dx.Devices != nil {
		for _, disk := range dx.Devices.Disks {
			if disk.Target == nil || disk.Device == "cdrom" {
				continue
			}
			mode := "internal"
			if disk.ReadOnly != nil {
				mode = "no"
			} else {
				writable++
			}
			snap.Disks.Disks = append(snap.Disks.Disks, libvirtxml.DomainSnapshotDisk{Name: disk.Target.Dev, Snapshot: mode})
		}
	}
	if writable == 0 {
		return "", fmt.Errorf("domain %q has no writable disk to snapshot", name)
	}
	return snap.Marshal()
}

// snapshots lists a domain's snapshots, oldest first.
func snapshots(conn libvirtConn, dom libvirt.Domain) ([]hypervisor.SnapshotInfo, error) {
	snaps, _, err := conn.DomainListAllSnapshots(dom, 1, 0)
	if err != nil {
		return nil, err
	}
	out := make([]hypervisor.SnapshotInfo, 0, len(snaps))
	parent := map[string]string{}
	for _, s := range snaps {
		x, err := parseXML[libvirtxml.DomainSnapshot](conn.DomainSnapshotGetXMLDesc(s, 0))
		if err != nil {
			return nil, err
		}
		created := ""
		var secs int64
		if _, err := fmt.Sscan(x.CreationTime, &secs); err == nil {
			created = time.Unix(secs, 0).UTC().Format(time.RFC3339)
		}
		if x.Parent != nil {
			parent[x.Name] = x.Parent.Name
		}
		out = append(out, hypervisor.SnapshotInfo{Name: x.Name, Created: created, State: x.State, Description: x.Description})
	}
	// Creation times have one-second resolution; within a second a
	// snapshot comes after its ancestors.
	depth := func(n string) int {
		d := 0
		for p, ok := parent[n]; ok && d < len(parent); p, ok = parent[p] {
			d++
		}
		return d
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Created != out[j].Created {
			return out[i].Created < out[j].Created
		}
		if di, dj := depth(out[i].Name), depth(out[j].Name); di != dj {
			return di < dj
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func snapshotNames(list []hypervisor.SnapshotInfo) []string {
	names := make([]string, len(list))
	for i, s := range list {
		names[i] = s.Name
	}
	return names
}

// lookupSnapshot finds a snapshot; an unknown name is an error that lists
// the snapshots there are.
func lookupSnapshot(conn libvirtConn, dom libvirt.Domain, domName, snap string) (libvirt.DomainSnapshot, error) {
	s, err := conn.DomainSnapshotLookupByName(dom, snap, 0)
	if isCode(err, libvirt.ErrNoDomainSnapshot) {
		return s, noSnapshot(conn, dom, domName, snap)
	}
	return s, err
}

// noSnapshot is the error for a snapshot the domain does not have, with
// those it has when they can be listed.
func noSnapshot(conn libvirtConn, dom libvirt.Domain, domName, snap string) error {
	list, err := snapshots(conn, dom)
	if err != nil {
		return fmt.Errorf("no snapshot %q of domain %q", snap, domName)
	}
	return sdk.ArgError("snapshot", "no snapshot %q of domain %q; %s", snap, domName, hypervisor.HaveSnapshots(snapshotNames(list)))
}

// snapshotActions implements the contract's snapshot actions with libvirt's
// internal snapshots.
func (d *driver) snapshotActions(b *hypervisor.Backend) {
	b.SnapshotCreate = hypervisor.Impl{Run: d.snapshotCreate, Undo: d.undoSnapshotCreate, Note: "An internal qcow2 snapshot (libvirt 9 cannot revert external ones) of the writable disks; the read-only boot disk is excluded."}
	b.SnapshotList = hypervisor.Impl{Run: d.snapshotList}
	b.SnapshotRevert = hypervisor.Impl{Run: d.snapshotRevert}
	b.SnapshotDelete = hypervisor.Impl{Run: d.snapshotDelete, Note: "Its metadata goes, and its data in the disks."}
}

// snapshotCreate is snapshot_create's Run.
func (d *driver) snapshotCreate(ctx context.Context, r *sdk.Request) error {
	name, snap := r.String("name"), r.String("snapshot")
	conn, dom, err := d.domainArg(name)
	if err != nil {
		return err
	}
	if _, err := conn.DomainSnapshotLookupByName(dom, snap, 0); err == nil {
		return sdk.ArgError("snapshot", "domain %q already has a snapshot %q; choose another name or delete it first", name, snap)
	}
	doc, err := snapshotSpec(conn, dom, snap, r.String("description"))
	if err != nil {
		return err
	}
	if _, err := conn.DomainSnapshotCreateXML(dom, doc, 0); err != nil {
		return fmt.Errorf("snapshot %q of %q: %w", snap, name, err)
	}
	st, err := d.state(conn, dom)
	if err != nil {
		return err
	}
	r.Log("took snapshot %s of %s (%s)", snap, name, st)
	return errors.Join(r.Set("snapshot", snap), r.Set("state", st))
}

// undoSnapshotCreate is snapshot_create's Undo.
func (d *driver) undoSnapshotCreate(ctx context.Context, r *sdk.Request) error {
	conn, dom, err := d.domain(r.String("name"))
	if err != nil {
		return ignoreNoDomain(err)
	}
	s, err := conn.DomainSnapshotLookupByName(dom, r.OutputString("snapshot"), 0)
	if isCode(err, libvirt.ErrNoDomainSnapshot) {
		return nil
	}
	if err != nil {
		return err
	}
	return conn.DomainSnapshotDelete(s, 0)
}

// snapshotList is snapshot_list's Run.
func (d *driver) snapshotList(ctx context.Context, r *sdk.Request) error {
	conn, dom, err := d.domainArg(r.String("name"))
	if err != nil {
		return err
	}
	list, err := snapshots(conn, dom)
	if err != nil {
		return err
	}
	return errors.Join(r.Set("names", snapshotNames(list)), r.Set("snapshots", list))
}

// snapshotRevert is snapshot_revert's Run.
func (d *driver) snapshotRevert(ctx context.Context, r *sdk.Request) error {
	name, snap := r.String("name"), r.String("snapshot")
	conn, dom, err := d.domainArg(name)
	if err != nil {
		return err
	}
	s, err := lookupSnapshot(conn, dom, name, snap)
	if err != nil {
		return err
	}
	if err := conn.DomainRevertToSnapshot(s, 0); err != nil {
		return fmt.Errorf("reverting %q to %q: %w", name, snap, err)
	}
	st, err := d.state(conn, dom)
	if err != nil {
		return err
	}
	r.Log("reverted %s to %s (%s)", name, snap, st)
	return r.Set("state", st)
}

// snapshotDelete is snapshot_delete's Run.
func (d *driver) snapshotDelete(ctx context.Context, r *sdk.Request) error {
	name, snap := r.String("name"), r.String("snapshot")
	conn, dom, err := d.domainArg(name)
	if err != nil {
		return err
	}
	// missing_ok forgives only a snapshot that is not there: a lookup that
	// failed otherwise (the connection, the daemon) is an error.
	s, err := conn.DomainSnapshotLookupByName(dom, snap, 0)
	if isCode(err, libvirt.ErrNoDomainSnapshot) {
		if r.Bool("missing_ok") {
			return r.Set("deleted", false)
		}
		return noSnapshot(conn, dom, name, snap)
	}
	if err != nil {
		return err
	}
	if err := conn.DomainSnapshotDelete(s, 0); err != nil {
		return fmt.Errorf("deleting snapshot %q of %q: %w", snap, name, err)
	}
	return r.Set("deleted", true)
}
