package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// Proxmox says a VM is running or stopped; vmflow's state outputs use the
// words the libvirt plugin does, so that task files carry over.
const (
	running = "running"
	stopped = "stopped"
)

func stateWord(status string) string {
	if status == running {
		return "running"
	}
	return "shut off"
}

// state is the VM's state in those words; a suspended VM is paused.
func (v *vm) state() string {
	if v.Status == running && v.Paused {
		return "paused"
	}
	return stateWord(v.Status)
}

// stop records the VM as stopped (qm stop, qm shutdown).
func (v *vm) stop() { v.Status, v.Paused = stopped, false }

// macFor derives a stable MAC address from a VM name, in the BC:24:11
// range Proxmox gives its guests.
func macFor(name string) string {
	s := sha256.Sum256([]byte("vmflow-mac:" + name))
	return fmt.Sprintf("BC:24:11:%02X:%02X:%02X", s[0], s[1], s[2])
}

// ipFor is the stub's address for a VMID: 10.x.y.z, the VMID's low 24 bits
// (VMID 100 has 10.0.0.100, 1234 has 10.0.4.210).
func ipFor(vmid int) string {
	return fmt.Sprintf("10.%d.%d.%d", vmid>>16&0xff, vmid>>8&0xff, vmid&0xff)
}

// vmArg finds the VM an argument names.
func (d *driver) vmArg(c *cluster, name string) (*vm, error) {
	if v := c.VMs[name]; v != nil {
		return v, nil
	}
	return nil, sdk.ArgError("name", "no VM named %q on node %s", name, d.node)
}

// diskArg finds a disk an argument names; an uploaded image is no disk.
func (c *cluster) diskArg(field, ref string) (*volume, error) {
	v, err := c.volumeArg(field, ref)
	if err != nil {
		return nil, err
	}
	if v.VMID == 0 {
		return nil, sdk.ArgError(field, "%s is an uploaded image, and Proxmox attaches only disks: make a disk of it first (volume_overlay or volume_copy)", v.VolID)
	}
	return v, nil
}

// fileArg resolves a kernel or initrd: an uploaded image, or a file on
// this machine (which stands in for the node), to its path on the node.
func (c *cluster) fileArg(field, ref string) (string, error) {
	if strings.HasPrefix(ref, "/") {
		if _, err := os.Stat(ref); err != nil {
			return "", sdk.ArgError(field, "%v", err)
		}
		return ref, nil
	}
	v, err := c.volumeArg(field, ref)
	if err != nil {
		return "", err
	}
	if v.VMID != 0 {
		return "", sdk.ArgError(field, "%s is a disk; a kernel or initrd is a file: upload it (volume_import)", v.VolID)
	}
	return nodePath(v.VolID), nil
}

type opt struct{ key, val string }

// options renders a VM's configuration as qm create takes it. newEFI asks
// Proxmox to allocate the EFI vars disk (STORAGE:1).
func (d *driver) options(v *vm, newEFI bool) []opt {
	o := []opt{
		{"name", v.Name},
		{"memory", itoa(int(v.Memory))},
		{"cores", itoa(int(v.Cores))},
		{"smbios1", "uuid=" + v.UUID},
		{"machine", "q35"},
	}
	switch {
	case v.Firmware == "uefi" && newEFI:
		o = append(o, opt{"bios", "ovmf"}, opt{"efidisk0", d.storage + ":1,efitype=4m"})
	case v.Firmware == "uefi":
		o = append(o, opt{"bios", "ovmf"}, opt{"efidisk0", v.EFIDisk + ",efitype=4m"})
	default:
		args := "-kernel " + v.Kernel
		if v.Initrd != "" {
			args += " -initrd " + v.Initrd
		}
		if v.Cmdline != "" {
			args += ` -append "` + v.Cmdline + `"`
		}
		o = append(o, opt{"bios", "seabios"}, opt{"args", args})
	}
	boot := v.Boot
	if v.BootRO {
		boot += ",ro=1"
	}
	o = append(o, opt{"virtio0", boot})
	if v.Var != "" {
		o = append(o, opt{"virtio1", v.Var})
	}
	o = append(o, opt{"boot", "order=virtio0"})
	switch {
	case v.Network == "nat":
		o = append(o, opt{"net0", "virtio=" + v.MAC + ",bridge=vmbr0"})
	case strings.HasPrefix(v.Network, "bridge:"):
		o = append(o, opt{"net0", "virtio=" + v.MAC + ",bridge=" + strings.TrimPrefix(v.Network, "bridge:")})
	}
	o = append(o, hostpci(v.PCI)...)
	return append(o, opt{"agent", "enabled=1"}, opt{"serial0", "socket"})
}

// qmSet logs the qm set that turns one configuration into another; nothing
// when they are the same.
func qmSet(vmid int, before, after []opt, cmds *commands) {
	old := map[string]string{}
	for _, o := range before {
		old[o.key] = o.val
	}
	words := []string{"qm", "set", itoa(vmid)}
	for _, o := range after {
		if v, ok := old[o.key]; !ok || v != o.val {
			words = append(words, "--"+o.key, o.val)
		}
		delete(old, o.key)
	}
	var gone []string
	for _, o := range before {
		if _, ok := old[o.key]; ok {
			gone = append(gone, o.key)
		}
	}
	if len(gone) > 0 {
		words = append(words, "--delete", strings.Join(gone, ","))
	}
	if len(words) > 3 {
		cmds.add(words...)
	}
}

// destroyVM removes a VM with its EFI disk; the stub keeps its other
// disks, as vmflow's undefine does (volume_delete removes them).
func destroyVM(c *cluster, v *vm, cmds *commands) {
	if v.Status == running {
		cmds.add("qm", "stop", itoa(v.VMID))
	}
	cmds.add("qm", "destroy", itoa(v.VMID), "--destroy-unreferenced-disks", "0", "--purge", "1")
	cmds.comment("its disks stay, for volume_delete")
	delete(c.Volumes, v.EFIDisk)
	delete(c.VMs, v.Name)
}

// define builds the VM's new configuration from the inputs.
func (d *driver) define(c *cluster, r *sdk.Request, cmds *commands) (v *vm, previous string, err error) {
	name := r.String("name")
	old := c.VMs[name]
	if old != nil && old.Status == running {
		return nil, "", sdk.ArgError("name", "VM %d (%s) is running; stop it before redefining it", old.VMID, name)
	}
	cfg := vmConfig{
		UUID: r.String("uuid"), MAC: r.String("mac"), Memory: r.Int("memory"), Cores: r.Int("vcpus"),
		BootRO: r.Bool("boot_readonly"), Firmware: r.String("firmware"), Network: r.String("network"),
	}
	pci, err := hypervisor.PCIDevices(r)
	if err != nil {
		return nil, "", err
	}
	if err := pciGivenElsewhere(c, name, pci); err != nil {
		return nil, "", err
	}
	for _, a := range pci {
		cfg.PCI = append(cfg.PCI, a.String())
	}
	boot, err := c.diskArg("boot_volume", r.String("boot_volume"))
	if err != nil {
		return nil, "", err
	}
	cfg.Boot = boot.VolID
	if r.IsSet("var_volume") {
		disk, err := c.diskArg("var_volume", r.String("var_volume"))
		if err != nil {
			return nil, "", err
		}
		cfg.Var = disk.VolID
	}
	if cfg.Firmware == "kernel" {
		if cfg.Kernel, err = c.fileArg("kernel", r.String("kernel")); err != nil {
			return nil, "", err
		}
		if r.IsSet("initrd") {
			if cfg.Initrd, err = c.fileArg("initrd", r.String("initrd")); err != nil {
				return nil, "", err
			}
		}
		cfg.Cmdline = r.String("cmdline")
	}
	if cfg.MAC == "" {
		cfg.MAC = macFor(name)
	}
	if old == nil {
		if cfg.UUID == "" {
			cfg.UUID = hypervisor.NewUUID()
		}
		v = &vm{VMID: c.reserve(name, cmds), Name: name, Status: stopped, vmConfig: cfg}
		if cfg.Firmware == "uefi" {
			v.EFIDisk = c.newDisk(d.storage, v.VMID, "", 4<<20).VolID
		}
		words := []string{"qm", "create", itoa(v.VMID)}
		for _, o := range d.options(v, cfg.Firmware == "uefi") {
			words = append(words, "--"+o.key, o.val)
		}
		cmds.add(words...)
		c.VMs[name] = v
		return v, "", nil
	}
	prev, err := json.Marshal(old.vmConfig)
	if err != nil {
		return nil, "", err
	}
	if cfg.UUID == "" {
		cfg.UUID = old.UUID
	}
	before := d.options(old, false)
	old.vmConfig = cfg
	newEFI := cfg.Firmware == "uefi" && old.EFIDisk == ""
	if newEFI {
		old.EFIDisk = c.newDisk(d.storage, old.VMID, "", 4<<20).VolID
	}
	qmSet(old.VMID, before, d.options(old, newEFI), cmds)
	return old, string(prev), nil
}

// vmActions implements the contract's VM actions as qm would, on the
// stub's state.
func (d *driver) vmActions(b *hypervisor.Backend) {
	b.Define = hypervisor.Impl{Run: d.defineVM, Undo: d.undoDefine, Note: "It creates a Proxmox VM (qm create) with the VMID reserved for its name, or the next free one, or reconfigures a stopped one (qm set): virtio0 is the boot disk (ro=1 when read-only), virtio1 the /var disk, each a volume name or a Proxmox volume id; OVMF with an EFI disk, or direct kernel boot (args) from an uploaded image or a file; net0 on vmbr0 (nat) or another bridge, with a MAC in Proxmox's BC:24:11 range; the guest agent and a serial console (a socket, so console_log is \"\"). The UUID is the SMBIOS one; domain_type is kvm; previous_xml holds the replaced configuration as the stub's JSON."}
	b.Undefine = hypervisor.Impl{Run: d.undefine, Note: "It destroys the VM (qm destroy) with its EFI disk; Proxmox refuses a running VM too, so force stops it first (qm stop)."}
	b.Start = hypervisor.Impl{Run: d.start, Undo: d.undoStart, Note: "qm start; its undo is qm stop."}
	b.Shutdown = hypervisor.Impl{Run: d.shutdown, Undo: d.undoShutdown, Note: "qm shutdown, within the step's timeout; Proxmox uses the guest agent when it is enabled, as it is here, so mode is checked but not used. Its undo is qm start."}
	b.Suspend = hypervisor.Impl{Run: d.suspend, Undo: d.undoSuspend, Note: "qm suspend (the VM's CPUs stop; qm status --verbose then says qmpstatus paused); its undo is qm resume."}
	b.Resume = hypervisor.Impl{Run: d.resume, Note: "qm resume."}
	b.Destroy = hypervisor.Impl{Run: d.destroy, Note: "qm stop."}
	b.Reboot = hypervisor.Impl{Run: d.reboot, Note: "qm reboot; a stopped VM is refused, as Proxmox refuses it."}
	b.State = hypervisor.Impl{Run: d.vmState, Note: "qm status: Proxmox's stopped is reported as shut off, as every backend words it."}
	b.List = hypervisor.Impl{Run: d.list, Note: "qm list."}
	b.EnsureAbsent = hypervisor.Impl{Run: d.ensureAbsent, Note: "It reads the VM (qm status) and the volumes (pvesm list) from the stub's state."}
	b.WaitIP = hypervisor.Impl{Run: d.waitIP, Note: "The stub answers at once, as the guest agent would (qm guest cmd VMID network-get-interfaces), with 10.x.y.z derived from the VMID (VMID 100: 10.0.0.100)."}
	b.GuestExec = hypervisor.Impl{Run: d.guestExec, Note: "Not supported by the stub, which runs no guest: it fails, naming the qm guest exec a real Proxmox would run."}
	b.Console = hypervisor.Impl{Run: d.console, Note: "Not supported by the stub, which runs no guest: it fails, naming the qm terminal a real Proxmox would attach."}
}

// defineVM is define's Run.
func (d *driver) defineVM(ctx context.Context, r *sdk.Request) error {
	var v *vm
	var previous string
	err := d.change(r, func(c *cluster, cmds *commands) (err error) {
		name := r.String("name")
		var earlier vmClaim
		claimed := r.Claimed(defineClaim(name), &earlier)
		if !claimed {
			// What it replaces, before it changes anything: a
			// retry finds its own configuration in place.
			prev := ""
			if old := c.VMs[name]; old != nil {
				b, err := json.Marshal(old.vmConfig)
				if err != nil {
					return err
				}
				prev = string(b)
			}
			if err := r.Claim(defineClaim(name), vmClaim{Previous: prev}); err != nil {
				return err
			}
		}
		if v, previous, err = d.define(c, r, cmds); err != nil {
			return err
		}
		if claimed {
			// An interrupted attempt of this step may have made
			// or changed the VM: what it replaced is what this
			// step replaces (nothing: the VM is new, and the undo
			// destroys it).
			previous = earlier.Previous
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(r.Set("name", v.Name), r.Set("uuid", v.UUID), r.Set("mac", v.MAC),
		r.Set("domain_type", "kvm"), r.Set("console_log", ""), r.Set("previous_xml", previous))
}

// undoDefine is define's Undo.
func (d *driver) undoDefine(ctx context.Context, r *sdk.Request) error {
	name, prev := r.OutputString("name"), r.OutputString("previous_xml")
	if r.Interrupted() {
		var earlier vmClaim
		if name = r.String("name"); !r.Claimed(defineClaim(name), &earlier) {
			return nil
		}
		prev = earlier.Previous
	}
	return d.change(r, func(c *cluster, cmds *commands) error {
		v := c.VMs[name]
		if v == nil {
			return nil
		}
		if prev == "" {
			destroyVM(c, v, cmds)
			return nil
		}
		var cfg vmConfig
		if err := json.Unmarshal([]byte(prev), &cfg); err != nil {
			return fmt.Errorf("define's undo: the previous configuration of VM %d: %v", v.VMID, err)
		}
		before := d.options(v, false)
		v.vmConfig = cfg
		qmSet(v.VMID, before, d.options(v, false), cmds)
		return nil
	})
}

// undefine is undefine's Run.
func (d *driver) undefine(ctx context.Context, r *sdk.Request) error {
	name := r.String("name")
	undefined := false
	err := d.change(r, func(c *cluster, cmds *commands) error {
		v := c.VMs[name]
		if v == nil && r.Bool("missing_ok") {
			return nil
		}
		v, err := d.vmArg(c, name)
		if err != nil {
			return err
		}
		if v.Status == running && !r.Bool("force") {
			return sdk.ArgError("name", "VM %d (%s) is running; stop it first, or set force = true (Proxmox refuses to destroy a running VM)", v.VMID, name)
		}
		destroyVM(c, v, cmds)
		undefined = true
		return nil
	})
	if err != nil {
		return err
	}
	return r.Set("undefined", undefined)
}

// vmState is state's Run.
func (d *driver) vmState(ctx context.Context, r *sdk.Request) error {
	var v *vm
	if err := d.st.view(func(c *cluster) error {
		v = c.VMs[r.String("name")]
		return nil
	}); err != nil {
		return err
	}
	if v == nil {
		return errors.Join(r.Set("exists", false), r.Set("state", ""), r.Set("uuid", ""), r.Set("ip", ""))
	}
	ip := ""
	if v.Status == running && !v.Paused && v.Network != "none" {
		ip = ipFor(v.VMID)
	}
	return errors.Join(r.Set("exists", true), r.Set("state", v.state()), r.Set("uuid", v.UUID), r.Set("ip", ip))
}

// list is list's Run.
func (d *driver) list(ctx context.Context, r *sdk.Request) error {
	var names []string
	states := map[string]string{}
	if err := d.st.view(func(c *cluster) error {
		names = c.vmNames(r.String("prefix"))
		for _, n := range names {
			states[n] = c.VMs[n].state()
		}
		return nil
	}); err != nil {
		return err
	}
	byHost, unreachable := d.listClusters(r.StringMap("hosts"), r.String("prefix"))
	return errors.Join(r.Set("names", names), r.Set("states", states), r.Set("by_host", byHost), r.Set("unreachable", unreachable))
}

// listClusters lists the VMs of other clusters (host name → cluster
// name, "" for the default one), reading their state files; a cluster
// whose state cannot be read is unreachable, with the reason. One that
// holds nothing yet has no VMs.
func (d *driver) listClusters(hosts map[string]string, prefix string) (byHost map[string]map[string]string, unreachable map[string]string) {
	byHost, unreachable = map[string]map[string]string{}, map[string]string{}
	for name, cl := range hosts {
		if cl != "" && !clusterName.MatchString(cl) {
			unreachable[name] = fmt.Sprintf("invalid cluster name %q", cl)
			continue
		}
		c, err := storeAt(d.stateDir, cl).read()
		if err != nil {
			unreachable[name] = err.Error()
			continue
		}
		states := map[string]string{}
		for _, n := range c.vmNames(prefix) {
			states[n] = c.VMs[n].state()
		}
		byHost[name] = states
	}
	return byHost, unreachable
}

// ensureAbsent is ensure_absent's Run.
func (d *driver) ensureAbsent(ctx context.Context, r *sdk.Request) error {
	name, vols := r.String("vm"), r.Strings("volumes")
	checked := []string{}
	state := ""
	var found []string
	if err := d.st.view(func(c *cluster) error {
		if name != "" {
			checked = append(checked, "VM "+name)
			if v := c.VMs[name]; v != nil {
				state = v.state()
			}
		}
		for _, n := range vols {
			checked = append(checked, "volume "+n)
			if c.volumeByName(n) != nil {
				found = append(found, n)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := hypervisor.AbsentError(name, state, found); err != nil {
		return err
	}
	return r.Set("checked", checked)
}
