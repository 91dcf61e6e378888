package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/core/sdk"
)

// snapshotSpec makes an internal qcow2 snapshot of the domain's writable
// disks only: the read-only boot disk is immutable and excluded. (libvirt
// 9 cannot revert external snapshots, so these are internal.) For a
// running domain libvirt includes the memory state, as QEMU requires.
func snapshotSpec(conn *libvirt.Libvirt, dom libvirt.Domain, name, description string) (string, error) {
	doc, err := conn.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive)
	if err != nil {
		return "", err
	}
	var dx libvirtxml.Domain
	if err := dx.Unmarshal(doc); err != nil {
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

type snapInfo struct {
	Name        string `cty:"name"`
	Created     string `cty:"created"`
	State       string `cty:"state"`
	Description string `cty:"description"`
}

var snapInfoType = sdk.ObjectOf(map[string]sdk.Type{
	"name": sdk.TypeString, "created": sdk.TypeString, "state": sdk.TypeString, "description": sdk.TypeString,
})

// snapshots lists a domain's snapshots, oldest first.
func snapshots(conn *libvirt.Libvirt, dom libvirt.Domain) ([]snapInfo, error) {
	snaps, _, err := conn.DomainListAllSnapshots(dom, 1, 0)
	if err != nil {
		return nil, err
	}
	out := make([]snapInfo, 0, len(snaps))
	parent := map[string]string{}
	for _, s := range snaps {
		doc, err := conn.DomainSnapshotGetXMLDesc(s, 0)
		if err != nil {
			return nil, err
		}
		var x libvirtxml.DomainSnapshot
		if err := x.Unmarshal(doc); err != nil {
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
		out = append(out, snapInfo{Name: x.Name, Created: created, State: x.State, Description: x.Description})
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

func snapshotNames(list []snapInfo) string {
	if len(list) == 0 {
		return "it has none"
	}
	names := make([]string, len(list))
	for i, s := range list {
		names[i] = s.Name
	}
	return "it has: " + strings.Join(names, ", ")
}

// lookupSnapshot finds a snapshot; an unknown name is an error that lists
// the snapshots there are.
func lookupSnapshot(conn *libvirt.Libvirt, dom libvirt.Domain, domName, snap string) (libvirt.DomainSnapshot, error) {
	s, err := conn.DomainSnapshotLookupByName(dom, snap, 0)
	if isCode(err, libvirt.ErrNoDomainSnapshot) {
		list, lerr := snapshots(conn, dom)
		if lerr != nil {
			return s, fmt.Errorf("no snapshot %q of domain %q", snap, domName)
		}
		return s, sdk.ArgError("snapshot", "no snapshot %q of domain %q; %s", snap, domName, snapshotNames(list))
	}
	return s, err
}

func validSnapshot(ctx context.Context, r *sdk.Request) error {
	if r.Known("snapshot") {
		if err := checkSnapshotName(r.String("snapshot")); err != nil {
			return sdk.ArgError("snapshot", "%v", err)
		}
	}
	return nil
}

func snapshotActions(d *driver) []*sdk.Action {
	nameIn := sdk.String("name", "Domain name.").Required()
	snapIn := sdk.String("snapshot", "Snapshot name: "+SnapshotPatternDoc+".").Required()
	return []*sdk.Action{
		{
			Name:        "snapshot_create",
			Description: "Takes an internal qcow2 snapshot of the domain's writable disks (its /var disk); the read-only boot disk is excluded. A running domain's memory is included. A duplicate name is refused.",
			Inputs:      []sdk.Attr{nameIn, snapIn, sdk.String("description", "A note kept with the snapshot.").Default("")},
			Outputs:     []sdk.Attr{sdk.String("snapshot", "The snapshot's name."), sdk.String("state", "The domain's state when it was taken.")},
			Validate:    checks(validName("name", "domain"), validSnapshot),
			Run: func(ctx context.Context, r *sdk.Request) error {
				name, snap := r.String("name"), r.String("snapshot")
				conn, dom, err := d.domain(name)
				if err != nil {
					return sdk.ArgError("name", "%v", err)
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
			},
			Undo: func(ctx context.Context, r *sdk.Request) error {
				conn, dom, err := d.domain(r.String("name"))
				if isNoDomain(err) {
					return nil
				}
				if err != nil {
					return err
				}
				s, err := conn.DomainSnapshotLookupByName(dom, r.OutputString("snapshot"), 0)
				if isCode(err, libvirt.ErrNoDomainSnapshot) {
					return nil
				}
				if err != nil {
					return err
				}
				return conn.DomainSnapshotDelete(s, 0)
			},
		},
		{
			Name:        "snapshot_list",
			Description: "Lists a domain's snapshots, oldest first.",
			Inputs:      []sdk.Attr{nameIn},
			Outputs: []sdk.Attr{
				sdk.StringList("names", "Snapshot names, oldest first."),
				sdk.Attribute("snapshots", sdk.ListOf(snapInfoType), "Each snapshot: name, created (RFC 3339), state, description."),
			},
			Validate: validName("name", "domain"),
			Run: func(ctx context.Context, r *sdk.Request) error {
				conn, dom, err := d.domain(r.String("name"))
				if err != nil {
					return sdk.ArgError("name", "%v", err)
				}
				list, err := snapshots(conn, dom)
				if err != nil {
					return err
				}
				names := make([]string, len(list))
				for i, s := range list {
					names[i] = s.Name
				}
				return errors.Join(r.Set("names", names), r.Set("snapshots", list))
			},
		},
		{
			Name:        "snapshot_revert",
			Description: "Reverts a domain's disks (and its definition, and memory for a running snapshot) to a snapshot. An unknown snapshot is an error that changes nothing.",
			Inputs:      []sdk.Attr{nameIn, snapIn},
			Outputs:     []sdk.Attr{sdk.String("state", "The domain's state after the revert.")},
			Validate:    checks(validName("name", "domain"), validSnapshot),
			Run: func(ctx context.Context, r *sdk.Request) error {
				name, snap := r.String("name"), r.String("snapshot")
				conn, dom, err := d.domain(name)
				if err != nil {
					return sdk.ArgError("name", "%v", err)
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
			},
		},
		{
			Name:        "snapshot_delete",
			Description: "Deletes a snapshot (its metadata and its data in the disk).",
			Inputs:      []sdk.Attr{nameIn, snapIn, sdk.Bool("missing_ok", "Succeed when there is no such snapshot.").Default(false)},
			Outputs:     []sdk.Attr{sdk.Bool("deleted", "Whether a snapshot was deleted.")},
			Validate:    checks(validName("name", "domain"), validSnapshot),
			Run: func(ctx context.Context, r *sdk.Request) error {
				name, snap := r.String("name"), r.String("snapshot")
				conn, dom, err := d.domain(name)
				if err != nil {
					return sdk.ArgError("name", "%v", err)
				}
				s, err := lookupSnapshot(conn, dom, name, snap)
				if err != nil {
					if r.Bool("missing_ok") {
						return r.Set("deleted", false)
					}
					return err
				}
				if err := conn.DomainSnapshotDelete(s, 0); err != nil {
					return fmt.Errorf("deleting snapshot %q of %q: %w", snap, name, err)
				}
				return r.Set("deleted", true)
			},
		},
	}
}
