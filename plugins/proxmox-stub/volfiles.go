package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// volume_edit, volume_swap and volume_export on the stub's state: it
// records which files a volume's filesystem holds (names and modes, never
// contents), exchanges volumes' contents between their ids, and exports a
// volume as a JSON description that its volume_import brings back.

// fileModes records files as the stub keeps them: path → mode.
func fileModes(files []hypervisor.File) map[string]string {
	if len(files) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, f := range files {
		out[f.Path] = fmt.Sprintf("%04o", f.Mode)
	}
	return out
}

// nodeDevice is how a command on the node reaches a disk's blocks: the LVM
// volume itself, or a qcow2 image through qemu-nbd (connect and
// disconnect are logged around the commands).
func nodeDevice(v *volume, cmds *commands, inner func(dev string)) {
	if v.Format == "raw" {
		inner(nodePath(v.VolID))
		return
	}
	cmds.add("qemu-nbd", "--connect=/dev/nbd0", nodePath(v.VolID))
	inner("/dev/nbd0")
	cmds.add("qemu-nbd", "--disconnect", "/dev/nbd0")
}

// notRunning refuses a volume a running VM uses: as one of its disks, or
// as the base of one.
func (c *cluster) notRunning(field string, v *volume, action string) error {
	for _, name := range c.vmNames("") {
		vm := c.VMs[name]
		if vm.Status != running {
			continue
		}
		for key, id := range map[string]string{"virtio0": vm.Boot, "virtio1": vm.Var} {
			for depth := 0; id != "" && depth < 16; depth++ {
				if id == v.VolID {
					return sdk.ArgError(field, "volume %q is in use by VM %d (%s, its %s), which is running; shut it down first (%s never changes a disk under a running VM)", v.Name, vm.VMID, vm.Name, key, action)
				}
				next := c.Volumes[id]
				if next == nil {
					break
				}
				id = next.Backing
			}
		}
	}
	return nil
}

// editFiles is volume_edit on the stub's record of a volume's files.
func (d *driver) editFiles(ctx context.Context, r *sdk.Request) error {
	files := hypervisor.FilesOf(r)
	written := hypervisor.FilePaths(files)
	var removed []string
	err := d.change(r, func(c *cluster, cmds *commands) error {
		v, err := c.volumeArg("name", r.String("name"))
		if err != nil {
			return err
		}
		if err := c.notRunning("name", v, "volume_edit"); err != nil {
			return err
		}
		if v.Backing != "" {
			return sdk.ArgError("name", "volume %q is an overlay on %s, whose filesystem it shares; volume_edit edits a volume that holds its own (copy it first: volume_copy)", v.Name, v.Backing)
		}
		if v.FS != "ext4" {
			return sdk.ArgError("name", "volume %q (%s) holds no ext4 filesystem; volume_edit edits files in one", v.Name, v.VolID)
		}
		have := make([]string, 0, len(v.Files))
		for p := range v.Files {
			have = append(have, p)
		}
		removed = hypervisor.MatchRemovals(r.Strings("remove"), hypervisor.ExpandPaths(have))
		left := map[string]string{}
	files:
		for p, mode := range v.Files {
			for _, gone := range removed {
				if p == gone || strings.HasPrefix(p, gone+"/") {
					continue files
				}
			}
			left[p] = mode
		}
		for _, f := range files {
			for _, dir := range hypervisor.Parents(f.Path) {
				if _, isFile := left[dir]; isFile {
					return fmt.Errorf("volume %q: cannot write %s: %s is a file on the volume, not a directory (remove it first); the volume is unchanged", v.Name, f.Path, dir)
				}
			}
			for p := range left {
				if strings.HasPrefix(p, f.Path+"/") {
					return fmt.Errorf("volume %q: cannot write %s: it is a directory on the volume (remove it first); the volume is unchanged", v.Name, f.Path)
				}
			}
		}
		for p, mode := range fileModes(files) {
			left[p] = mode
		}
		if len(removed) == 0 && len(files) == 0 {
			return nil
		}
		if len(left) == 0 {
			left = nil
		}
		v.Files = left
		nodeDevice(v, cmds, func(dev string) {
			cmds.add("debugfs", "-w", "-f", "<edit script>", dev)
			var what []string
			for _, p := range removed {
				what = append(what, "rm "+p)
			}
			for _, p := range written {
				what = append(what, "write "+p)
			}
			cmds.comment(strings.Join(what, "; "))
			cmds.add("e2fsck", "-fn", dev)
		})
		return nil
	})
	if err != nil {
		return err
	}
	if removed == nil {
		removed = []string{}
	}
	return errors.Join(r.Set("written", written), r.Set("removed", removed))
}

// swapPair finds and checks the two volumes volume_swap exchanges.
func swapPair(c *cluster, r *sdk.Request) (a, b *volume, err error) {
	if a, err = c.volumeArg("name", r.String("name")); err != nil {
		return nil, nil, err
	}
	if b, err = c.volumeArg("with", r.String("with")); err != nil {
		return nil, nil, err
	}
	if a.Storage != b.Storage || a.Format != b.Format || (a.VMID == 0) != (b.VMID == 0) {
		return nil, nil, sdk.ArgError("with", "volume %q is %s and %q is %s: Proxmox exchanges volumes only of one kind on one storage", a.Name, a.VolID, b.Name, b.VolID)
	}
	if a.Backing == b.VolID || b.Backing == a.VolID {
		return nil, nil, sdk.ArgError("with", "one of %q and %q is based on the other; swapping them would make a volume its own base", a.Name, b.Name)
	}
	if err := c.notRunning("name", a, "volume_swap"); err != nil {
		return nil, nil, err
	}
	if err := c.notRunning("with", b, "volume_swap"); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// exchange swaps what the two volume ids hold.
func exchange(a, b *volume, cmds *commands) {
	if a.Storage == lvmStorage {
		tmp := volFile(a.VolID) + "-swap"
		cmds.add("lvrename", "pve/"+volFile(a.VolID), tmp)
		cmds.comment("LVM has no atomic exchange: three renames")
		cmds.add("lvrename", "pve/"+volFile(b.VolID), volFile(a.VolID))
		cmds.add("lvrename", "pve/"+tmp, volFile(b.VolID))
	} else {
		cmds.add("mv", "--exchange", "-T", nodePath(a.VolID), nodePath(b.VolID))
	}
	a.Size, b.Size = b.Size, a.Size
	a.Used, b.Used = b.Used, a.Used
	a.Backing, b.Backing = b.Backing, a.Backing
	a.FS, b.FS = b.FS, a.FS
	a.Label, b.Label = b.Label, a.Label
	a.Source, b.Source = b.Source, a.Source
	a.Files, b.Files = b.Files, a.Files
}

// swapVolumes is volume_swap: what each volume id holds is exchanged, so
// that the VMs and names that refer to one get the other's contents. What
// each held is claimed first: an attempt run again after an interruption
// finds the exchange in the state file or not, and never exchanges twice,
// which would swap back.
func (d *driver) swapVolumes(ctx context.Context, r *sdk.Request) error {
	var cmds commands
	already := false
	key := swapKey(r.String("name"), r.String("with"))
	err := d.st.update(func(c *cluster) error {
		a, b, err := swapPair(c, r)
		if err != nil {
			return err
		}
		switch swapState(r, key, a, b) {
		case swapUnclaimed:
			if err := r.Claim(key, swapClaim{Name: contents(a), With: contents(b)}); err != nil {
				return err
			}
		case swapExchanged:
			already = true
			return nil
		case swapChanged:
			return fmt.Errorf("volume_swap: %s and %s are neither as an interrupted attempt of this step found them nor exchanged; something else changed them: check them by hand", a.VolID, b.VolID)
		}
		exchange(a, b, &cmds)
		return nil
	})
	if err != nil {
		return err
	}
	if already {
		r.Log("%s and %s were exchanged already, by an interrupted attempt of this step", r.String("name"), r.String("with"))
	}
	cmds.log(r)
	return nil
}

// swapBack is volume_swap's undo: the contents exchanged back, unless the
// claim shows they are back already (an undo run again) or were never
// exchanged (an interrupted attempt that stopped short of it).
func (d *driver) swapBack(ctx context.Context, r *sdk.Request) error {
	key := swapKey(r.String("name"), r.String("with"))
	err := d.change(r, func(c *cluster, cmds *commands) error {
		a, b, err := swapPair(c, r)
		if err != nil {
			return err
		}
		switch swapState(r, key, a, b) {
		case swapAsFound:
			return nil // as before the step
		case swapChanged:
			return fmt.Errorf("volume_swap's undo: %s and %s are neither as the step found them nor exchanged; something else changed them: check them by hand", a.VolID, b.VolID)
		case swapUnclaimed:
			if r.Interrupted() {
				return nil
			}
		}
		exchange(a, b, cmds)
		return nil
	})
	if err != nil {
		return err
	}
	return nil
}

// stubExport is what the stub's volume_export writes: the volume as the
// stub records it. exportMagic tells volume_import it is one.
type stubExport struct {
	Magic  string            `json:"vmflow_proxmox_stub_export"`
	Name   string            `json:"name"`
	VolID  string            `json:"volid"`
	Format string            `json:"format"`
	Size   uint64            `json:"size"`
	Used   uint64            `json:"used"`
	FS     string            `json:"filesystem,omitempty"`
	Label  string            `json:"label,omitempty"`
	Files  map[string]string `json:"files,omitempty"`
}

const exportMagic = "1"

// readExport reads a file the stub's volume_export wrote; ok is false for
// any other file.
func readExport(path string) (*stubExport, bool) {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Size() > 1<<20 {
		return nil, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var e stubExport
	if json.Unmarshal(b, &e) != nil || e.Magic != exportMagic || (e.Format != "raw" && e.Format != "qcow2") {
		return nil, false
	}
	return &e, true
}

// exportVolume is volume_export: the stub writes what it knows of the
// volume, as JSON.
func (d *driver) exportVolume(ctx context.Context, r *sdk.Request) error {
	path, err := filepath.Abs(r.String("path"))
	if err != nil {
		return sdk.ArgError("path", "%v", err)
	}
	var v volume
	if err := d.st.view(func(c *cluster) error {
		found, err := c.volumeArg("name", r.String("name"))
		if err == nil {
			v = *found
		}
		return err
	}); err != nil {
		return err
	}
	doc, err := json.MarshalIndent(stubExport{Magic: exportMagic, Name: v.Name, VolID: v.VolID, Format: v.Format, Size: v.Size, Used: v.Used, FS: v.FS, Label: v.Label, Files: v.Files}, "", "  ")
	if err != nil {
		return err
	}
	doc = append(doc, '\n')
	if err := hypervisor.ClaimNewFile(r, "path", path); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return sdk.ArgError("path", "%v", err)
	}
	_, err = f.Write(doc)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	sum := sha256.Sum256(doc)
	r.Log("%s", command("pvesm", "export", v.VolID, v.Format+"+size", path))
	r.Log("the stub wrote a description of %s, not its blocks", v.VolID)
	return errors.Join(r.Set("path", path), r.Set("format", v.Format), r.Set("size", len(doc)), r.Set("sha256", hex.EncodeToString(sum[:])))
}

// volumeFileActions implements volume_export, volume_edit and volume_swap.
func volumeFileActions(d *driver, b *hypervisor.Backend) {
	b.VolumeExport = hypervisor.Impl{
		Note: "A real Proxmox would run pvesm export; the stub, which keeps no blocks, writes a JSON description of the volume (name, format, size, filesystem, files), which its volume_import brings back.",
		Run:  d.exportVolume,
		Undo: hypervisor.UndoExport,
	}
	b.VolumeEdit = hypervisor.Impl{
		Note: "It logs the debugfs -w and e2fsck -fn a node would run on the disk (through qemu-nbd for qcow2) and updates the files the stub records for the volume (names and modes; contents are not kept). An overlay is refused.",
		Run:  d.editFiles,
	}
	b.VolumeSwap = hypervisor.Impl{
		Note: "It exchanges what the two volume ids hold (lvrename three times on local-lvm, mv --exchange on local), under the state file's lock; both must be of one kind on one storage.",
		Run:  d.swapVolumes,
		Undo: d.swapBack,
	}
}
