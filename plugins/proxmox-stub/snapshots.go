package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/vmflow/vmflow/core/sdk"
)

type snapInfo struct {
	Name        string `cty:"name"`
	Created     string `cty:"created"`
	State       string `cty:"state"`
	Description string `cty:"description"`
}

var snapInfoType = sdk.ObjectOf(map[string]sdk.Type{
	"name": sdk.TypeString, "created": sdk.TypeString, "state": sdk.TypeString, "description": sdk.TypeString,
})

func validSnapshot(ctx context.Context, r *sdk.Request) error {
	if r.Known("snapshot") {
		if err := checkSnapshotName(r.String("snapshot")); err != nil {
			return sdk.ArgError("snapshot", "%v", err)
		}
	}
	return nil
}

func (v *vm) snapshot(name string) int {
	for i, s := range v.Snapshots {
		if s.Name == name {
			return i
		}
	}
	return -1
}

// snapshotArg finds a snapshot; an unknown name is an error that lists the
// snapshots there are.
func snapshotArg(v *vm, name string) (int, error) {
	i := v.snapshot(name)
	if i >= 0 {
		return i, nil
	}
	have := "it has none"
	if len(v.Snapshots) > 0 {
		names := make([]string, len(v.Snapshots))
		for i, s := range v.Snapshots {
			names[i] = s.Name
		}
		have = "it has: " + strings.Join(names, ", ")
	}
	return -1, sdk.ArgError("snapshot", "no snapshot %q of VM %d (%s); %s", name, v.VMID, v.Name, have)
}

func snapshotActions(d *driver) []*sdk.Action {
	nameIn := sdk.String("name", "VM name.").Required()
	snapIn := sdk.String("snapshot", "Snapshot name: "+SnapshotPatternDoc+".").Required()
	return []*sdk.Action{
		{
			Name:        "snapshot_create",
			Description: "Takes a snapshot of a VM (qm snapshot), with its RAM (--vmstate 1) when it runs. A duplicate name is refused, as Proxmox refuses it.",
			Inputs:      []sdk.Attr{nameIn, snapIn, sdk.String("description", "A note kept with the snapshot.").Default("")},
			Outputs:     []sdk.Attr{sdk.String("snapshot", "The snapshot's name."), sdk.String("state", "The VM's state when it was taken.")},
			Validate:    checks(validVMName, validSnapshot),
			Run: func(ctx context.Context, r *sdk.Request) error {
				snap := r.String("snapshot")
				var state string
				var cmds commands
				err := d.st.update(func(c *cluster) error {
					v, err := d.vmArg(c, r.String("name"))
					if err != nil {
						return err
					}
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
					state = stateWord(v.Status)
					return nil
				})
				if err != nil {
					return err
				}
				cmds.log(r)
				return errors.Join(r.Set("snapshot", snap), r.Set("state", state))
			},
			Undo: func(ctx context.Context, r *sdk.Request) error {
				var cmds commands
				err := d.st.update(func(c *cluster) error {
					v := c.VMs[r.String("name")]
					if v == nil {
						return nil
					}
					if i := v.snapshot(r.OutputString("snapshot")); i >= 0 {
						cmds.add("qm", "delsnapshot", itoa(v.VMID), v.Snapshots[i].Name)
						v.Snapshots = append(v.Snapshots[:i], v.Snapshots[i+1:]...)
					}
					return nil
				})
				cmds.log(r)
				return err
			},
		},
		{
			Name:        "snapshot_list",
			Description: "Lists a VM's snapshots (qm listsnapshot), oldest first.",
			Inputs:      []sdk.Attr{nameIn},
			Outputs: []sdk.Attr{
				sdk.StringList("names", "Snapshot names, oldest first."),
				sdk.Attribute("snapshots", sdk.ListOf(snapInfoType), "Each snapshot: name, created (RFC 3339), state (running: with RAM, or shutoff), description."),
			},
			Validate: validVMName,
			Run: func(ctx context.Context, r *sdk.Request) error {
				list := []snapInfo{}
				names := []string{}
				err := d.st.view(func(c *cluster) error {
					v, err := d.vmArg(c, r.String("name"))
					if err != nil {
						return err
					}
					for _, s := range v.Snapshots {
						// The state a snapshot was taken in, in libvirt's
						// words for it, as the libvirt plugin lists them.
						state := "shutoff"
						if s.VMState {
							state = "running"
						}
						names = append(names, s.Name)
						list = append(list, snapInfo{Name: s.Name, Created: s.Created.Format(time.RFC3339), State: state, Description: s.Description})
					}
					return nil
				})
				if err != nil {
					return err
				}
				return errors.Join(r.Set("names", names), r.Set("snapshots", list))
			},
		},
		{
			Name:        "snapshot_revert",
			Description: "Rolls a VM back to a snapshot (qm rollback): its disks and configuration, and its RAM when the snapshot has it (the VM then runs; else it is stopped). An unknown snapshot is an error that changes nothing.",
			Inputs:      []sdk.Attr{nameIn, snapIn},
			Outputs:     []sdk.Attr{sdk.String("state", "The VM's state after the rollback.")},
			Validate:    checks(validVMName, validSnapshot),
			Run: func(ctx context.Context, r *sdk.Request) error {
				var state string
				var cmds commands
				err := d.st.update(func(c *cluster) error {
					v, err := d.vmArg(c, r.String("name"))
					if err != nil {
						return err
					}
					i, err := snapshotArg(v, r.String("snapshot"))
					if err != nil {
						return err
					}
					s := v.Snapshots[i]
					cmds.add("qm", "rollback", itoa(v.VMID), s.Name)
					v.vmConfig, v.Status = s.Config, stopped
					if s.VMState {
						v.Status = running
					}
					state = stateWord(v.Status)
					return nil
				})
				if err != nil {
					return err
				}
				cmds.log(r)
				return r.Set("state", state)
			},
		},
		{
			Name:        "snapshot_delete",
			Description: "Deletes a snapshot (qm delsnapshot).",
			Inputs:      []sdk.Attr{nameIn, snapIn, sdk.Bool("missing_ok", "Succeed when there is no such snapshot.").Default(false)},
			Outputs:     []sdk.Attr{sdk.Bool("deleted", "Whether a snapshot was deleted.")},
			Validate:    checks(validVMName, validSnapshot),
			Run: func(ctx context.Context, r *sdk.Request) error {
				deleted := false
				var cmds commands
				err := d.st.update(func(c *cluster) error {
					v, err := d.vmArg(c, r.String("name"))
					if err != nil {
						return err
					}
					i, err := snapshotArg(v, r.String("snapshot"))
					if err != nil {
						if r.Bool("missing_ok") {
							return nil
						}
						return err
					}
					cmds.add("qm", "delsnapshot", itoa(v.VMID), v.Snapshots[i].Name)
					v.Snapshots = append(v.Snapshots[:i], v.Snapshots[i+1:]...)
					deleted = true
					return nil
				})
				if err != nil {
					return err
				}
				cmds.log(r)
				return r.Set("deleted", deleted)
			},
		},
	}
}
