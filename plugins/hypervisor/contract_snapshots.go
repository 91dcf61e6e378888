package hypervisor

import "github.com/vmflow/vmflow/core/sdk"

// snapshots are the actions on a VM's snapshots.
func (c *shared) snapshots(b *Backend) []spec {
	return []spec{
		{
			name:        "snapshot_create",
			description: "Takes a snapshot of a VM's disks (its writable /var disk at least), with its memory when it runs. A duplicate name is refused. Its undo deletes it.",
			inputs:      []sdk.Attr{c.vmIn, c.snapIn, sdk.String("description", "A note kept with the snapshot.").Default("")},
			outputs:     []sdk.Attr{sdk.String("snapshot", "The snapshot's name."), sdk.String("state", "The VM's state when it was taken.")},
			validate:    []Func{c.validVM, ValidSnapshot},
			undo:        true,
			impl:        &b.SnapshotCreate,
		},
		{
			name:        "snapshot_list",
			description: "Lists a VM's snapshots, oldest first.",
			inputs:      []sdk.Attr{c.vmIn},
			outputs: []sdk.Attr{
				sdk.StringList("names", "Snapshot names, oldest first."),
				sdk.Attribute("snapshots", sdk.ListOf(SnapshotInfoType), "Each snapshot: name, created (RFC 3339), state (running: with memory, or shutoff), description."),
			},
			validate: []Func{c.validVM},
			impl:     &b.SnapshotList,
		},
		{
			name: "snapshot_revert",
			description: "Reverts a VM to a snapshot: its disks and definition, and its memory when the snapshot has it (the VM then runs; else it is shut off). " +
				"An unknown snapshot is an error that lists the snapshots there are, and changes nothing.",
			inputs:   []sdk.Attr{c.vmIn, c.snapIn},
			outputs:  []sdk.Attr{sdk.String("state", "The VM's state after the revert.")},
			validate: []Func{c.validVM, ValidSnapshot},
			impl:     &b.SnapshotRevert,
		},
		{
			name:        "snapshot_delete",
			description: "Deletes a snapshot.",
			inputs:      []sdk.Attr{c.vmIn, c.snapIn, sdk.Bool("missing_ok", "Succeed when there is no such snapshot.").Default(false)},
			outputs:     []sdk.Attr{sdk.Bool("deleted", "Whether a snapshot was deleted.")},
			validate:    []Func{c.validVM, ValidSnapshot},
			impl:        &b.SnapshotDelete,
		},
	}
}
