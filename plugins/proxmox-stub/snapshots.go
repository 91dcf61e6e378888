package main

import (
	"context"
	"errors"
	"time"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

func (v *vm) snapshot(name string) int {
	for i, s := range v.Snapshots {
		if s.Name == name {
			return i
		}
	}
	return -1
}

// deleteSnapshot is qm delsnapshot of the VM's snapshot i.
func (v *vm) deleteSnapshot(i int, cmds *commands) {
	cmds.add("qm", "delsnapshot", itoa(v.VMID), v.Snapshots[i].Name)
	v.Snapshots = append(v.Snapshots[:i], v.Snapshots[i+1:]...)
}

// snapshotArg finds a snapshot; an unknown name is an error that lists the
// snapshots there are.
func snapshotArg(v *vm, name string) (int, error) {
	i := v.snapshot(name)
	if i >= 0 {
		return i, nil
	}
	names := make([]string, len(v.Snapshots))
	for i, s := range v.Snapshots {
		names[i] = s.Name
	}
	return -1, sdk.ArgError("snapshot", "no snapshot %q of VM %d (%s); %s", name, v.VMID, v.Name, hypervisor.HaveSnapshots(names))
}

// snapshotActions implements the contract's snapshot actions as qm
// snapshot would, on the stub's state.
func (d *driver) snapshotActions(b *hypervisor.Backend) {
	b.SnapshotCreate = hypervisor.Impl{Run: d.snapshotCreate, Undo: d.undoSnapshotCreate, Note: "qm snapshot, with its RAM (--vmstate 1) when the VM runs; Proxmox snapshots every disk of the VM, and refuses a duplicate name too."}
	b.SnapshotList = hypervisor.Impl{Run: d.snapshotList, Note: "qm listsnapshot."}
	b.SnapshotRevert = hypervisor.Impl{Run: d.snapshotRevert, Note: "qm rollback, which restores the configuration too."}
	b.SnapshotDelete = hypervisor.Impl{Run: d.snapshotDelete, Note: "qm delsnapshot."}
}

// snapshotCreate is snapshot_create's Run.
func (d *driver) snapshotCreate(ctx context.Context, r *sdk.Request) error {
	snap := r.String("snapshot")
	var state string
	err := d.changeVM(r, func(v *vm, cmds *commands) error {
		if v.snapshot(snap) >= 0 {
			return sdk.ArgError("snapshot", "VM %d (%s) already has a snapshot %q (Proxmox: snapshot name '%s' already used); choose another name or delete it first", v.VMID, v.Name, snap, snap)
		}
		s := snapshot{Name: snap, Description: r.String("description"), Created: time.Now().UTC(), VMState: v.Status == running, Config: v.vmConfig}
		words := []string{"qm", "snapshot", itoa(v.VMID), snap}
		if s.Description != "" {
			words = append(words, "--description", s.Description)
		}
		if s.VMState {
			words = append(words, "--vmstate", "1")
		}
		cmds.add(words...)
		v.Snapshots = append(v.Snapshots, s)
		state = v.state()
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(r.Set("snapshot", snap), r.Set("state", state))
}

// undoSnapshotCreate is snapshot_create's Undo.
func (d *driver) undoSnapshotCreate(ctx context.Context, r *sdk.Request) error {
	return d.change(r, func(c *cluster, cmds *commands) error {
		v := c.VMs[r.String("name")]
		if v == nil {
			return nil
		}
		if i := v.snapshot(r.OutputString("snapshot")); i >= 0 {
			v.deleteSnapshot(i, cmds)
		}
		return nil
	})
}

// snapshotList is snapshot_list's Run.
func (d *driver) snapshotList(ctx context.Context, r *sdk.Request) error {
	v, err := d.viewVM(r.String("name"))
	if err != nil {
		return err
	}
	list := []hypervisor.SnapshotInfo{}
	names := []string{}
	for _, s := range v.Snapshots {
		// The state a snapshot was taken in, in libvirt's words
		// for it, as the libvirt plugin lists them.
		state := "shutoff"
		if s.VMState {
			state = "running"
		}
		names = append(names, s.Name)
		list = append(list, hypervisor.SnapshotInfo{Name: s.Name, Created: s.Created.Format(time.RFC3339), State: state, Description: s.Description})
	}
	return errors.Join(r.Set("names", names), r.Set("snapshots", list))
}

// snapshotRevert is snapshot_revert's Run.
func (d *driver) snapshotRevert(ctx context.Context, r *sdk.Request) error {
	return changeVMOutput(d, r, "state", func(v *vm, cmds *commands) (string, error) {
		i, err := snapshotArg(v, r.String("snapshot"))
		if err != nil {
			return "", err
		}
		s := v.Snapshots[i]
		cmds.add("qm", "rollback", itoa(v.VMID), s.Name)
		v.vmConfig, v.Status, v.Paused = s.Config, stopped, false
		if s.VMState {
			v.Status = running
		}
		return v.state(), nil
	})
}

// snapshotDelete is snapshot_delete's Run.
func (d *driver) snapshotDelete(ctx context.Context, r *sdk.Request) error {
	return changeVMOutput(d, r, "deleted", func(v *vm, cmds *commands) (bool, error) {
		i, err := snapshotArg(v, r.String("snapshot"))
		if err != nil {
			if r.Bool("missing_ok") {
				return false, nil
			}
			return false, err
		}
		v.deleteSnapshot(i, cmds)
		return true, nil
	})
}
