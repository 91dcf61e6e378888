package hypervisor

import "github.com/vmflow/vmflow/core/sdk"

// volumesMade are the actions that make, grow and delete volumes.
func (c *shared) volumesMade(b *Backend) []spec {
	return []spec{
		{
			name: "volume_create",
			description: "Creates a volume of a given size, optionally holding a fresh ext4 filesystem with a label (the /var disk: whole-disk ext4, label \"var\") " +
				"and files written into it (a VM's identity, its SSH host keys). " +
				"Refuses to replace an existing volume. Its undo deletes it.",
			inputs: []sdk.Attr{
				c.volumeIn,
				sdk.String("size", "Size: "+SizeDoc+".").Required(),
				sdk.String("filesystem", "\"ext4\" to format the volume, or \"\" for an empty disk.").Default(""),
				sdk.String("label", "Filesystem label (at most 16 characters).").Default("var"),
				c.filesIn,
				c.secretFilesIn,
			},
			outputs:  c.volOutputs,
			validate: []Func{ValidName("name", "volume"), ValidSize("size"), validFilesystem, validFiles(true)},
			undo:     true,
			impl:     &b.VolumeCreate,
		},
		{
			name:        "volume_overlay",
			description: "Creates a thin overlay on a base image: a clone that costs O(1) in the base's size. Its undo deletes it.",
			inputs: []sdk.Attr{
				c.volumeIn,
				sdk.String("backing", "The base image: a volume's name, or where it is on the host.").Required(),
				sdk.String("backing_format", "Format of the base image: qcow2 or raw; auto finds it out.").Default("auto"),
			},
			outputs:  c.volOutputs,
			validate: []Func{ValidName("name", "volume")},
			undo:     true,
			impl:     &b.VolumeOverlay,
		},
		{
			name:        "volume_resize",
			description: "Grows a volume. Shrinking is refused: it would cut off data.",
			inputs: []sdk.Attr{
				sdk.String("name", "Volume name.").Required(),
				sdk.String("size", "New size: "+SizeDoc+".").Required(),
			},
			outputs:  c.volOutputs,
			validate: []Func{ValidName("name", "volume"), ValidSize("size")},
			impl:     &b.VolumeResize,
		},
		{
			name:        "volume_delete",
			description: "Deletes a volume.",
			inputs: []sdk.Attr{
				sdk.String("name", "Volume name.").Required(),
				sdk.Bool("missing_ok", "Succeed when the volume does not exist.").Default(false),
			},
			outputs:  []sdk.Attr{sdk.Bool("deleted", "Whether a volume was deleted.")},
			validate: []Func{ValidName("name", "volume")},
			impl:     &b.VolumeDelete,
		},
		{
			name: "volumes_delete",
			description: "Deletes several volumes in the order given (an overlay before its base): a VM's disks, in one step. " +
				"It stops at the first one it cannot delete, naming it; those deleted before it stay deleted.",
			inputs: []sdk.Attr{
				sdk.StringList("names", "Volume names, in the order to delete them.").Required(),
				sdk.Bool("missing_ok", "Skip volumes that do not exist.").Default(false),
			},
			outputs:  []sdk.Attr{sdk.StringList("deleted", "The volumes deleted, in order.")},
			validate: []Func{ValidNames("names", "volume")},
			impl:     &b.VolumesDelete,
		},
	}
}

// volumesData are the actions that move a volume's data: copies, imports
// and exports, edits of its files, swaps.
func (c *shared) volumesData(b *Backend) []spec {
	return []spec{
		{
			name:        "volume_copy",
			description: "Copies a volume into a new one (for clones and backups). The copy is complete, not thin. Its undo deletes it.",
			inputs: []sdk.Attr{
				sdk.String("source", "The volume to copy.").Required(),
				sdk.String("name", "The new volume's name.").Required(),
			},
			outputs:  c.volOutputs,
			validate: []Func{ValidName("source", "volume"), ValidName("name", "volume")},
			undo:     true,
			impl:     &b.VolumeCopy,
		},
		{
			name:        "volume_import",
			description: "Brings a local image file into a new volume: an image to boot (a disk, a kernel, an initrd) or to base disks on. Its undo deletes it.",
			inputs: []sdk.Attr{
				sdk.String("path", "The image file on this machine.").Required(),
				sdk.String("name", "The new volume's name.").Required(),
			},
			outputs:  append(append([]sdk.Attr{}, c.volOutputs...), sdk.String("format", "qcow2 or raw, read from the file.")),
			validate: []Func{ValidName("name", "volume"), validLocalFile("path")},
			undo:     true,
			impl:     &b.VolumeImport,
		},
		{
			name: "volume_export",
			description: "Writes a volume to a local file as the backend stores it (for backups), computing its SHA-256 on the way; volume_import brings it back. " +
				"Refuses a file that exists. Its undo removes the file.",
			inputs: []sdk.Attr{
				sdk.String("name", "Volume name.").Required(),
				sdk.String("path", "The file to write on this machine: it must not exist, its directory must.").Required(),
			},
			outputs: []sdk.Attr{
				sdk.String("path", "The file written (an absolute path)."),
				sdk.String("format", "The format of what was written: qcow2 or raw."),
				sdk.Number("size", "Bytes written."),
				sdk.String("sha256", "The SHA-256 of the file, in hex."),
			},
			validate: []Func{ValidName("name", "volume"), validNewLocalFile("path")},
			undo:     true,
			impl:     &b.VolumeExport,
		},
		{
			name: "volume_edit",
			description: "Changes files inside the ext4 filesystem of an existing volume that no running VM uses (a clone's identity: write its hostname, drop the source's SSH host keys): " +
				"removes what remove matches, then writes files and secret_files, as volume_create writes them. " +
				"Refuses a volume a running VM uses and one that holds no ext4 filesystem. It has no undo.",
			inputs: []sdk.Attr{
				sdk.String("name", "Volume name.").Required(),
				c.filesIn,
				c.secretFilesIn,
				sdk.StringList("remove", "Paths or shell globs to remove, relative to the filesystem's root (\"identity/ssh/*\"); a directory goes with what it holds. Missing ones are fine.").Default([]string{}),
			},
			outputs: []sdk.Attr{
				sdk.StringList("written", "The files written, sorted."),
				sdk.StringList("removed", "The paths removed (those that existed), sorted."),
			},
			validate: []Func{ValidName("name", "volume"), validFiles(false), validRemove},
			impl:     &b.VolumeEdit,
		},
		{
			name: "volume_swap",
			description: "Exchanges two existing volumes atomically: name then holds what with held, and the other way round (an upgrade swaps a new boot disk in under the stable name). " +
				"Refuses volumes a running VM uses. Its undo swaps them back.",
			inputs: []sdk.Attr{
				sdk.String("name", "Volume name.").Required(),
				sdk.String("with", "The volume to exchange it with.").Required(),
			},
			validate: []Func{ValidName("name", "volume"), ValidName("with", "volume"), validSwap},
			undo:     true,
			impl:     &b.VolumeSwap,
		},
	}
}

// volumesSeen are the actions that only look at volumes.
func (c *shared) volumesSeen(b *Backend) []spec {
	return []spec{
		{
			name:        "volume_info",
			description: "Reports whether a volume exists, and where it is, its sizes, format and base.",
			inputs:      []sdk.Attr{sdk.String("name", "Volume name.").Required()},
			outputs: []sdk.Attr{
				sdk.Bool("exists", "Whether the volume exists."),
				sdk.String("path", "Where it is on the host: its file, or its storage's volume id."),
				sdk.Number("capacity", "Its size in bytes, as the guest sees it."),
				sdk.Number("allocation", "Bytes it uses on the host."),
				sdk.String("format", "qcow2 or raw."),
				sdk.String("backing", "Where an overlay's base is, else \"\"."),
			},
			validate: []Func{ValidName("name", "volume")},
			impl:     &b.VolumeInfo,
		},
		{
			name: "volume_list",
			description: "Lists the volumes in vmflow's storage whose names start with prefix and, when pattern is set, match it as a whole: " +
				"to find every volume of a VM by its names, whether or not a record remembers them.",
			inputs: []sdk.Attr{
				sdk.String("prefix", "Only names starting with this.").Default(""),
				sdk.String("pattern", "A regular expression (RE2 syntax) the whole name must match; \"\" for any.").Default(""),
			},
			outputs:  []sdk.Attr{sdk.StringList("names", "The volumes' names, sorted.")},
			validate: []Func{validPattern},
			impl:     &b.VolumeList,
		},
	}
}
