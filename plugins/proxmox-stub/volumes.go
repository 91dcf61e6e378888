package main

import (
	"context"
	"errors"
	"maps"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

func setVolOutputs(r *sdk.Request, v *volume) error {
	return errors.Join(r.Set("name", v.Name), r.Set("path", v.VolID), r.Set("capacity", v.Size))
}

// mustBeNew refuses a volume name that exists: a volume may be a VM's
// /var disk.
func (c *cluster) mustBeNew(name string) error {
	if v := c.volumeByName(name); v != nil {
		return sdk.ArgError("name", "volume %q already exists (%s); vmflow never writes over an existing volume (delete it first if you mean to)", name, v.VolID)
	}
	return nil
}

// volumeArg finds the volume an argument names (a volume name or a
// Proxmox volume id).
func (c *cluster) volumeArg(field, ref string) (*volume, error) {
	if strings.HasPrefix(ref, "/") {
		return nil, sdk.ArgError(field, "%s is a path; Proxmox attaches volumes, not files: import it first (volume_import)", ref)
	}
	v := c.lookupVolume(ref)
	if v == nil {
		return nil, sdk.ArgError(field, "no volume %q on the stub's storages", ref)
	}
	return v, nil
}

// deleteVolume frees a volume (pvesm free).
func (d *driver) deleteVolume(name string, missingOK bool, cmds *commands) (bool, error) {
	deleted := false
	err := d.st.update(func(c *cluster) error {
		v := c.volumeByName(name)
		if v == nil {
			if missingOK {
				return nil
			}
			return sdk.ArgError("name", "no volume %q on the stub's storages", name)
		}
		cmds.add("pvesm", "free", v.VolID)
		delete(c.Volumes, v.VolID)
		deleted = true
		return nil
	})
	return deleted, err
}

// deleteLogged is volumes_delete's delete of one volume, logging what
// a real Proxmox would be asked.
func (d *driver) deleteLogged(ctx context.Context, r *sdk.Request, name string, missingOK bool) (bool, error) {
	var cmds commands
	deleted, err := d.deleteVolume(name, missingOK, &cmds)
	cmds.log(r)
	return deleted, err
}

// undoDelete is the undo of an action that made a volume: it frees it;
// after an interrupted Run, only if this step claimed it.
func (d *driver) undoDelete(ctx context.Context, r *sdk.Request) error {
	name := r.OutputString("name")
	if r.Interrupted() {
		if name = r.String("name"); !r.Claimed(volumeClaim(name), nil) {
			return nil
		}
	}
	var cmds commands
	_, err := d.deleteVolume(name, true, &cmds)
	cmds.log(r)
	return err
}

// mkfs is how a fresh filesystem gets onto a disk on the node: directly on
// an LVM volume, through qemu-nbd for a qcow2 image. With files, they are
// staged in a directory that mkfs copies in (-d).
func mkfs(v *volume, cmds *commands) {
	mk := []string{"mkfs." + v.FS, "-q"}
	if v.Label != "" {
		mk = append(mk, "-L", v.Label)
	}
	if len(v.Files) > 0 {
		mk = append(mk, "-d", "<the files>")
	}
	if v.Format == "raw" {
		cmds.add(append(mk, nodePath(v.VolID))...)
		return
	}
	cmds.add("qemu-nbd", "--connect=/dev/nbd0", nodePath(v.VolID))
	cmds.add(append(mk, "/dev/nbd0")...)
	cmds.add("qemu-nbd", "--disconnect", "/dev/nbd0")
}

// alloc logs `pvesm alloc` for a new disk.
func alloc(v *volume, cmds *commands) {
	words := []string{"pvesm", "alloc", v.Storage, itoa(v.VMID), volFile(v.VolID), formatSize(v.Size)}
	if v.Format == "qcow2" {
		words = append(words, "--format", "qcow2")
	}
	cmds.add(words...)
}

// validBacking checks volume_overlay's base: a volume name or a Proxmox
// volume id (a path is refused when it runs: Proxmox attaches volumes).
func validBacking(ctx context.Context, r *sdk.Request) error {
	if !r.Known("backing") {
		return nil
	}
	if b := r.String("backing"); !strings.Contains(b, ":") && !strings.HasPrefix(b, "/") {
		if err := hypervisor.CheckName("volume", b); err != nil {
			return sdk.ArgError("backing", "%v (or give a Proxmox volume id)", err)
		}
	}
	return nil
}

// validBackingFormat checks volume_overlay's backing_format up front.
func validBackingFormat(ctx context.Context, r *sdk.Request) error {
	if r.Known("backing_format") {
		switch f := r.String("backing_format"); f {
		case "auto", "qcow2", "raw":
		default:
			return sdk.ArgError("backing_format", "unsupported backing format %q: qcow2 or raw", f)
		}
	}
	return nil
}

// volumeActions implements the contract's volume actions as Proxmox
// storage would, on the stub's state.
func (d *driver) volumeActions(b *hypervisor.Backend) {
	b.VolumeCreate = hypervisor.Impl{Run: d.volumeCreate, Undo: d.undoDelete, Note: "It allocates a disk (pvesm alloc) on the configured storage, owned by the VMID of the VM it is named for (<vm>-<role>: demo-var is demo's), reserving the next free VMID when that VM has none yet; its path is the Proxmox volume id."}
	b.VolumeOverlay = hypervisor.Impl{Validate: hypervisor.Checks(validBacking, validBackingFormat), Run: d.volumeOverlay, Undo: d.undoDelete, Note: "It is made as Proxmox makes linked clones: a thin LVM snapshot (lvcreate -s) on local-lvm, a qcow2 overlay (qemu-img create -b) in a directory storage; a disk on local-lvm cannot be based on an uploaded image, so that is a full copy (qemu-img convert). The base is a volume name or a Proxmox volume id, and backing_format must be the base's."}
	b.VolumeResize = hypervisor.Impl{Run: d.volumeResize, Note: "A VM's disk grows by qm resize, any other by the storage's own resize; Proxmox refuses to shrink a disk too."}
	b.VolumeDelete = hypervisor.Impl{Run: d.volumeDelete, Note: "It frees the volume (pvesm free)."}
	b.VolumesDelete = hypervisor.DeleteEach(d.deleteLogged)
	b.VolumesDelete.Note = "It frees each volume (pvesm free)."
	b.VolumeCopy = hypervisor.Impl{Run: d.volumeCopy, Undo: d.undoDelete, Note: "It uses the storage content copy API; a disk's copy belongs to the VM the new name is for."}
	b.VolumeImport = hypervisor.Impl{
		Note: "It uploads the file to the local storage's import content (local:import/<name>.<format>); the stub checks the file and records it, but copies nothing. An uploaded image is no disk: VMs boot it as kernel or initrd, or disks are made of it. " +
			"A file the stub's volume_export wrote brings back the volume it describes: its format, size, filesystem and files; the export of a disk (a backup's /var) comes back as a disk of the VM the name is for, as qm disk import makes one.",
		Run:  d.volumeImport,
		Undo: d.undoDelete,
	}
	b.VolumeList = hypervisor.Impl{Run: d.volumeList, Note: "pvesm list on the stub's storages."}
	b.VolumeInfo = hypervisor.Impl{Run: d.volumeInfo, Note: "Its path is its Proxmox volume id, its backing the volume id of its base."}
}

// volumeCreate is volume_create's Run.
func (d *driver) volumeCreate(ctx context.Context, r *sdk.Request) error {
	name := r.String("name")
	size, err := hypervisor.SizeArg(r, "size")
	if err != nil {
		return err
	}
	var v *volume
	err = d.change(r, func(c *cluster, cmds *commands) error {
		if err := c.makeWay(r, name, cmds); err != nil {
			return err
		}
		v = c.newDisk(d.storage, c.reserve(ownerOf(name), cmds), name, size)
		alloc(v, cmds)
		if fs := r.String("filesystem"); fs != "" {
			v.FS, v.Label = fs, r.String("label")
			v.Files = fileModes(hypervisor.FilesOf(r))
			mkfs(v, cmds)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return setVolOutputs(r, v)
}

// volumeOverlay is volume_overlay's Run.
func (d *driver) volumeOverlay(ctx context.Context, r *sdk.Request) error {
	name := r.String("name")
	var v *volume
	err := d.change(r, func(c *cluster, cmds *commands) error {
		if err := c.makeWay(r, name, cmds); err != nil {
			return err
		}
		base, err := c.volumeArg("backing", r.String("backing"))
		if err != nil {
			return err
		}
		format := r.String("backing_format")
		if format == "auto" {
			format = base.Format
		}
		if format != base.Format {
			return sdk.ArgError("backing_format", "volume %s is %s, not %s", base.VolID, base.Format, format)
		}
		v = c.newDisk(d.storage, c.reserve(ownerOf(name), cmds), name, base.Size)
		v.Backing, v.FS, v.Label, v.Files = base.VolID, base.FS, base.Label, maps.Clone(base.Files)
		switch {
		case v.Storage == dirStorage:
			cmds.add("qemu-img", "create", "-f", "qcow2", "-F", base.Format, "-b", nodePath(base.VolID), nodePath(v.VolID))
		case base.Storage == lvmStorage:
			cmds.add("lvcreate", "-n", volFile(v.VolID), "-prohibitallocation", "-ay", "-s", "pve/"+volFile(base.VolID))
		default:
			alloc(v, cmds)
			cmds.add("qemu-img", "convert", "-p", "-n", "-f", base.Format, "-O", "raw", nodePath(base.VolID), nodePath(v.VolID))
			cmds.comment("LVM-thin cannot be based on a file: a full copy")
			v.Backing, v.Used = "", v.Size
		}
		return nil
	})
	if err != nil {
		return err
	}
	return setVolOutputs(r, v)
}

// volumeResize is volume_resize's Run.
func (d *driver) volumeResize(ctx context.Context, r *sdk.Request) error {
	size, err := hypervisor.SizeArg(r, "size")
	if err != nil {
		return err
	}
	var v *volume
	err = d.change(r, func(c *cluster, cmds *commands) error {
		if v, err = c.volumeArg("name", r.String("name")); err != nil {
			return err
		}
		if size < v.Size {
			return sdk.ArgError("size", "volume %q is %s; shrinking it to %s is refused (Proxmox: shrinking disks is not supported)", v.Name, formatSize(v.Size), formatSize(size))
		}
		if size == v.Size {
			return nil
		}
		switch owner, key := c.attachedTo(v.VolID); {
		case owner != nil:
			cmds.add("qm", "resize", itoa(owner.VMID), key, formatSize(size))
		case v.Storage == lvmStorage:
			cmds.add("lvresize", "-L", formatSize(size), "pve/"+volFile(v.VolID))
		default:
			cmds.add("qemu-img", "resize", "-f", v.Format, nodePath(v.VolID), formatSize(size))
		}
		v.Size = size
		return nil
	})
	if err != nil {
		return err
	}
	return setVolOutputs(r, v)
}

// volumeDelete is volume_delete's Run.
func (d *driver) volumeDelete(ctx context.Context, r *sdk.Request) error {
	var cmds commands
	deleted, err := hypervisor.DeleteOnce(ctx, r, r.String("name"), r.Bool("missing_ok"), func(ctx context.Context, r *sdk.Request, name string, missingOK bool) (bool, error) {
		return d.deleteVolume(name, missingOK, &cmds)
	})
	if err != nil {
		return err
	}
	cmds.log(r)
	return r.Set("deleted", deleted)
}

// volumeCopy is volume_copy's Run.
func (d *driver) volumeCopy(ctx context.Context, r *sdk.Request) error {
	name := r.String("name")
	var v *volume
	err := d.change(r, func(c *cluster, cmds *commands) error {
		src, err := c.volumeArg("source", r.String("source"))
		if err != nil {
			return err
		}
		if err := c.makeWay(r, name, cmds); err != nil {
			return err
		}
		cp := *src
		cp.Files = maps.Clone(src.Files)
		if src.VMID == 0 {
			cp.VolID = importVolID(name, src.Format)
			c.Volumes[cp.VolID] = &cp
			v = &cp
		} else {
			v = c.newDisk(src.Storage, c.reserve(ownerOf(name), cmds), name, src.Size)
			v.FS, v.Label, v.Files = src.FS, src.Label, maps.Clone(src.Files)
		}
		v.Name, v.Backing, v.Used = name, "", v.Size
		cmds.add("pvesh", "create", "/nodes/"+d.node+"/storage/"+src.Storage+"/content/"+src.VolID, "--target", v.VolID)
		return nil
	})
	if err != nil {
		return err
	}
	return setVolOutputs(r, v)
}

// volumeImport is volume_import's Run.
func (d *driver) volumeImport(ctx context.Context, r *sdk.Request) error {
	name, path := r.String("name"), r.String("path")
	st, err := os.Stat(path)
	if err != nil {
		return sdk.ArgError("path", "%v", err)
	}
	var v *volume
	exp, isExport := readExport(path)
	if isExport && !strings.Contains(exp.VolID, ":import/") {
		// The export of a VM's disk (a backup's /var) comes back
		// as a disk of the VM the new name is for, as qm disk
		// import makes one: uploaded images are no disks.
		var cmds commands
		err := d.st.update(func(c *cluster) error {
			if err := c.makeWay(r, name, &cmds); err != nil {
				return err
			}
			vmid := c.reserve(ownerOf(name), &cmds)
			v = c.newDisk(d.storage, vmid, name, exp.Size)
			v.Name, v.FS, v.Label, v.Files, v.Used = name, exp.FS, exp.Label, exp.Files, exp.Used
			cmds.add("qm", "disk", "import", strconv.Itoa(vmid), path, d.storage)
			return nil
		})
		if err != nil {
			return err
		}
		r.Log("%s is the stub's export of the disk %s (%s)", path, exp.Name, exp.VolID)
		cmds.log(r)
		return errors.Join(r.Set("format", v.Format), setVolOutputs(r, v))
	}
	if isExport {
		v = &volume{Format: exp.Format, Size: exp.Size, Used: exp.Used, FS: exp.FS, Label: exp.Label, Files: exp.Files}
		r.Log("%s is the stub's export of %s (%s)", path, exp.Name, exp.VolID)
	} else {
		format, size, err := imageInfo(path)
		if err != nil {
			return sdk.ArgError("path", "%v", err)
		}
		v = &volume{Format: format, Size: size, Used: uint64(st.Size())}
	}
	format := v.Format
	v.VolID, v.Name, v.Storage, v.Source = importVolID(name, format), name, dirStorage, path
	err = d.change(r, func(c *cluster, cmds *commands) error {
		if err := c.makeWay(r, name, cmds); err != nil {
			return err
		}
		c.Volumes[v.VolID] = v
		cmds.add("pvesh", "create", "/nodes/"+d.node+"/storage/"+dirStorage+"/upload", "--content", "import", "--filename", name+"."+format, "--tmpfilename", path)
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(r.Set("format", format), setVolOutputs(r, v))
}

// volumeList is volume_list's Run.
func (d *driver) volumeList(ctx context.Context, r *sdk.Request) error {
	match, err := hypervisor.MatchNames(r.String("pattern"))
	if err != nil {
		return sdk.ArgError("pattern", "%v", err)
	}
	names := []string{}
	if err := d.st.view(func(c *cluster) error {
		for _, v := range c.Volumes {
			if v.Name != "" && match(r.String("prefix"), v.Name) {
				names = append(names, v.Name)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	sort.Strings(names)
	return r.Set("names", names)
}

// volumeInfo is volume_info's Run.
func (d *driver) volumeInfo(ctx context.Context, r *sdk.Request) error {
	var v *volume
	if err := d.st.view(func(c *cluster) error {
		v = c.volumeByName(r.String("name"))
		return nil
	}); err != nil {
		return err
	}
	if v == nil {
		return r.Set("exists", false)
	}
	return errors.Join(r.Set("exists", true), r.Set("path", v.VolID), r.Set("capacity", v.Size),
		r.Set("allocation", v.Used), r.Set("format", v.Format), r.Set("backing", v.Backing))
}
