package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// The stub's plans: for `vmflow plan`, the qm, pvesm and pvesh commands a
// step would stand for, worked out from the cluster as it is now. Values
// that come from earlier steps are not known yet and read <like this>.

// known returns an input, or a placeholder while it is not known.
func known(r *sdk.Request, field string) string {
	if !r.Known(field) {
		return "<" + field + ">"
	}
	return r.String(field)
}

// vmidFor is a VM name's VMID, or the one /cluster/nextid would hand out
// for it now.
func vmidFor(c *cluster, name string) string {
	if name == "" || name[0] == '<' {
		return "<vmid>"
	}
	if id, ok := c.VMIDs[name]; ok {
		return itoa(id)
	}
	return itoa(c.nextID())
}

// plan wraps a function of the cluster and the request into a Plan.
func (d *driver) plan(fn func(c *cluster, r *sdk.Request) []string) func(ctx context.Context, r *sdk.Request) ([]string, error) {
	return func(ctx context.Context, r *sdk.Request) ([]string, error) {
		var lines []string
		err := d.st.view(func(c *cluster) error {
			lines = fn(c, r)
			return nil
		})
		return lines, err
	}
}

func (d *driver) addPlans(b *hypervisor.Backend) {
	disk := func(c *cluster, name string) string {
		return fmt.Sprintf("vm-%s-disk-<n>", vmidFor(c, ownerOf(name)))
	}
	vm := func(c *cluster, r *sdk.Request) string { return vmidFor(c, known(r, "name")) }
	b.VolumeCreate.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		name := known(r, "name")
		lines := []string{fmt.Sprintf("pvesm alloc %s %s %s %s", d.storage, vmidFor(c, ownerOf(name)), disk(c, name), known(r, "size"))}
		if r.Known("filesystem") && r.String("filesystem") != "" {
			d := ""
			if n := len(knownKeys(r, "files")) + len(knownKeys(r, "secret_files")); n > 0 {
				d = fmt.Sprintf(" -d <%d file(s)>", n)
			}
			lines = append(lines, fmt.Sprintf("mkfs.%s -q -L %s%s <the new disk>", r.String("filesystem"), known(r, "label"), d))
		}
		return lines
	})
	b.VolumeExport.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		return []string{fmt.Sprintf("pvesm export <volume id of %s> <format>+size %s", known(r, "name"), known(r, "path"))}
	})
	b.VolumeEdit.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		var what []string
		if r.Known("remove") {
			for _, p := range r.Strings("remove") {
				what = append(what, "rm "+p)
			}
		} else {
			what = append(what, "rm <remove>")
		}
		for _, field := range []string{"files", "secret_files"} {
			if !r.Known(field) {
				what = append(what, "write <"+field+">")
				continue
			}
			for _, p := range knownKeys(r, field) {
				what = append(what, "write "+p)
			}
		}
		return []string{
			fmt.Sprintf("debugfs -w -f <edit script> <disk of %s>  # %s", known(r, "name"), strings.Join(what, "; ")),
			fmt.Sprintf("e2fsck -fn <disk of %s>", known(r, "name")),
		}
	})
	b.VolumeSwap.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		return []string{fmt.Sprintf("exchange <volume id of %s> and <volume id of %s> (lvrename ×3 on local-lvm, mv --exchange on local)", known(r, "name"), known(r, "with"))}
	})
	b.EnsureAbsent.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		var lines []string
		if !r.Known("vm") || r.String("vm") != "" {
			lines = append(lines, fmt.Sprintf("qm status <vmid of %s>  # must not exist", known(r, "vm")))
		}
		vols := "<volumes>"
		if r.Known("volumes") {
			vols = strings.Join(r.Strings("volumes"), ", ")
		}
		if vols != "" {
			lines = append(lines, fmt.Sprintf("pvesm list %s  # none of %s may exist", d.storage, vols))
		}
		return lines
	})
	b.VolumeOverlay.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		name := known(r, "name")
		return []string{fmt.Sprintf("a linked clone of %s as %s:%s (lvcreate -s on local-lvm, qemu-img create -b on local)", known(r, "backing"), d.storage, disk(c, name))}
	})
	b.VolumeResize.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		return []string{fmt.Sprintf("qm disk resize <vmid of %s> <disk> %s", known(r, "name"), known(r, "size"))}
	})
	b.VolumeDelete.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		return []string{fmt.Sprintf("pvesm free <volume id of %s>", known(r, "name"))}
	})
	b.VolumesDelete.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		if !r.Known("names") {
			return []string{"pvesm free <volume id> for each volume"}
		}
		var lines []string
		for _, n := range r.Strings("names") {
			lines = append(lines, fmt.Sprintf("pvesm free <volume id of %s>", n))
		}
		return lines
	})
	b.VolumeCopy.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		name := known(r, "name")
		return []string{fmt.Sprintf("qemu-img convert %s → %s:%s (a full copy)", known(r, "source"), d.storage, disk(c, name))}
	})
	b.VolumeImport.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		return []string{fmt.Sprintf("pvesh create /nodes/%s/storage/local/upload --content import --filename %s.<fmt> --tmpfilename %s", d.node, known(r, "name"), known(r, "path"))}
	})
	b.Define.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		verb := "qm create"
		if v := c.VMs[known(r, "name")]; v != nil {
			verb = "qm set"
		}
		return []string{fmt.Sprintf("%s %s --name %s --memory %s --cores %s --virtio0 %s,ro=1 --virtio1 %s --net0 virtio,bridge=vmbr0 --agent enabled=1",
			verb, vm(c, r), known(r, "name"), knownNum(r, "memory"), knownNum(r, "vcpus"), known(r, "boot_volume"), known(r, "var_volume"))}
	})
	b.Undefine.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		return []string{fmt.Sprintf("qm destroy %s --destroy-unreferenced-disks 0 --purge 1", vm(c, r))}
	})
	for _, p := range []struct {
		impl *hypervisor.Impl
		cmd  string
	}{{&b.Start, "qm start"}, {&b.Shutdown, "qm shutdown"}, {&b.Destroy, "qm stop"}, {&b.Reboot, "qm reboot"}, {&b.Suspend, "qm suspend"}, {&b.Resume, "qm resume"}} {
		cmd := p.cmd
		p.impl.Plan = d.plan(func(c *cluster, r *sdk.Request) []string { return []string{cmd + " " + vm(c, r)} })
	}
	b.SnapshotCreate.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		return []string{fmt.Sprintf("qm snapshot %s %s", vm(c, r), known(r, "snapshot"))}
	})
	b.SnapshotRevert.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		return []string{fmt.Sprintf("qm rollback %s %s", vm(c, r), known(r, "snapshot"))}
	})
	b.SnapshotDelete.Plan = d.plan(func(c *cluster, r *sdk.Request) []string {
		return []string{fmt.Sprintf("qm delsnapshot %s %s", vm(c, r), known(r, "snapshot"))}
	})
}

// knownKeys lists a map input's keys, sorted; none while it is unknown.
func knownKeys(r *sdk.Request, field string) []string {
	if !r.Known(field) {
		return nil
	}
	return sortedKeys(r.StringMap(field))
}

func knownNum(r *sdk.Request, field string) string {
	if !r.Known(field) {
		return "<" + field + ">"
	}
	return fmt.Sprint(r.Int(field))
}
