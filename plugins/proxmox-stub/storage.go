package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// The two storages of a stock Proxmox VE node.
const (
	lvmStorage = "local-lvm" // LVM-thin (pool pve/data): raw volumes
	dirStorage = "local"     // a directory (/var/lib/vz): qcow2 images, and the import content
)

// diskFormat is the format a storage keeps disks in.
func diskFormat(storage string) string {
	if storage == dirStorage {
		return "qcow2"
	}
	return "raw"
}

// diskFile is the name of disk n of a VMID on a storage, as `pvesm alloc`
// takes it: vm-100-disk-0 on LVM-thin, vm-100-disk-0.qcow2 in a directory.
func diskFile(storage string, vmid, n int) string {
	if storage == dirStorage {
		return fmt.Sprintf("vm-%d-disk-%d.qcow2", vmid, n)
	}
	return fmt.Sprintf("vm-%d-disk-%d", vmid, n)
}

// diskVolID is Proxmox's volume id of a disk: local-lvm:vm-100-disk-0,
// or local:100/vm-100-disk-0.qcow2 in a directory storage.
func diskVolID(storage string, vmid, n int) string {
	if storage == dirStorage {
		return fmt.Sprintf("%s:%d/%s", storage, vmid, diskFile(storage, vmid, n))
	}
	return storage + ":" + diskFile(storage, vmid, n)
}

// importVolID is the volume id of an image uploaded to the local storage's
// import content.
func importVolID(name, format string) string {
	return dirStorage + ":import/" + name + "." + format
}

// nodePath is where a volume lives on the Proxmox node (`pvesm path`).
func nodePath(volid string) string {
	storage, rest, _ := strings.Cut(volid, ":")
	if storage == lvmStorage {
		return "/dev/pve/" + rest
	}
	if strings.HasPrefix(rest, "import/") {
		return "/var/lib/vz/" + rest
	}
	return "/var/lib/vz/images/" + rest
}

// volFile is a volume's file (or logical volume) name: vm-100-disk-0,
// vm-100-disk-0.qcow2, demo-base.raw.
func volFile(volid string) string {
	_, rest, _ := strings.Cut(volid, ":")
	return rest[strings.LastIndexByte(rest, '/')+1:]
}

// newDisk allocates the lowest free disk number of a VMID on a storage,
// as Proxmox does, and records the disk.
func (c *cluster) newDisk(storage string, vmid int, name string, size uint64) *volume {
	n := 0
	for c.Volumes[diskVolID(storage, vmid, n)] != nil {
		n++
	}
	v := &volume{VolID: diskVolID(storage, vmid, n), Name: name, Storage: storage, VMID: vmid, Format: diskFormat(storage), Size: size}
	c.Volumes[v.VolID] = v
	return v
}

// lookupVolume finds a volume by vmflow's name or by its volume id.
func (c *cluster) lookupVolume(ref string) *volume {
	if strings.Contains(ref, ":") {
		return c.Volumes[ref]
	}
	return c.volumeByName(ref)
}

// reserve returns the VMID of a VM name, allocating the next free one (and
// logging the question a real cluster would be asked) when it has none.
func (c *cluster) reserve(owner string, cmds *commands) int {
	id, allocated := c.vmid(owner)
	if allocated {
		cmds.add("pvesh", "get", "/cluster/nextid")
		cmds.comment(fmt.Sprintf("%d, reserved for %s", id, owner))
	}
	return id
}

// commands collects the Proxmox commands an action stands for; they are
// logged once the change is committed to the state file.
type commands []string

func (cs *commands) add(words ...string) { *cs = append(*cs, command(words...)) }

// comment appends a shell comment to the last command.
func (cs *commands) comment(text string) { (*cs)[len(*cs)-1] += "  # " + text }

func (cs commands) log(r *sdk.Request) {
	for _, c := range cs {
		r.Log("%s", c)
	}
}

// change runs fn on the state (saved when fn succeeds, as update does),
// then logs the commands fn collected: what a real Proxmox would have
// been asked.
func (d *driver) change(r *sdk.Request, fn func(c *cluster, cmds *commands) error) error {
	var cmds commands
	if err := d.st.update(func(c *cluster) error { return fn(c, &cmds) }); err != nil {
		return err
	}
	cmds.log(r)
	return nil
}

// changeVM is change on the VM the name argument names.
func (d *driver) changeVM(r *sdk.Request, fn func(v *vm, cmds *commands) error) error {
	return d.change(r, func(c *cluster, cmds *commands) error {
		v, err := d.vmArg(c, r.String("name"))
		if err != nil {
			return err
		}
		return fn(v, cmds)
	})
}

// changeVMOutput is changeVM for a step whose one output is what fn
// returns (whether it changed the VM, or its state afterwards).
func changeVMOutput[T any](d *driver, r *sdk.Request, output string, fn func(v *vm, cmds *commands) (T, error)) error {
	var out T
	err := d.changeVM(r, func(v *vm, cmds *commands) (err error) {
		out, err = fn(v, cmds)
		return err
	})
	if err != nil {
		return err
	}
	return r.Set(output, out)
}

func itoa(i int) string { return strconv.Itoa(i) }

// imageInfo is hypervisor.ImageInfo for a file to upload: a raw image
// must be a regular file.
func imageInfo(path string) (format string, size uint64, err error) {
	format, size, err = hypervisor.ImageInfo(path)
	if err != nil || format != "raw" {
		return format, size, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	if !st.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s is not a regular file", path)
	}
	return format, size, nil
}
