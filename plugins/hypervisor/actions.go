// Package hypervisor is the contract every hypervisor plugin of vmflow
// offers (plugins/libvirt, plugins/proxmox-stub): the actions' names,
// descriptions, inputs and outputs, which ones have an undo and which are
// interactive, and the validation rules for names, sizes and snapshot
// names. It is declared once, here, so that a task file written against
// one backend runs on another unchanged.
//
// A plugin calls Actions with its Backend, which gives each action's Run,
// its Undo where the contract has one, and optionally a Validate and a
// Plan of its own and a sentence of its own for the description.
package hypervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/vmflow/vmflow/core/sdk"
)

// Impl is one action as a backend implements it.
type Impl struct {
	// Note is added to the contract's description of the action: what the
	// backend does, in its own terms. Optional.
	Note string
	// Validate runs after the contract's own checks of the inputs, for
	// what only this backend refuses. Optional.
	Validate Func
	// Run does the work.
	Run Func
	// Undo reverses a completed Run. It must be set exactly for the
	// actions the contract declares with an undo.
	Undo Func
	// Plan says what Run would do, in the backend's own terms (vmflow
	// plan). Optional.
	Plan func(ctx context.Context, r *sdk.Request) ([]string, error)
}

// NameRule is a backend's rule for VM names.
type NameRule struct {
	Doc   string                  // how it reads in docs: "a letter or digit, …"
	Check func(name string) error // nil for a valid name
}

// NameRuleFor is the name rule (NamePatternDoc) as a VM name rule; what
// names a VM in the errors ("domain", "VM").
func NameRuleFor(what string) NameRule {
	return NameRule{Doc: NamePatternDoc, Check: func(name string) error { return CheckName(what, name) }}
}

// Backend is a hypervisor plugin: its rules where backends may differ,
// and its implementation of every action.
type Backend struct {
	// VMName is the rule for VM names. Default: NameRuleFor("VM").
	VMName NameRule
	// MinMemory is the least memory a VM may have, in MiB. Default: 1.
	MinMemory int64
	// MACExample is how a MAC address is written, in errors. Default:
	// 52:54:00:12:34:56.
	MACExample string

	VolumeCreate, VolumeOverlay, VolumeResize, VolumeDelete, VolumesDelete, VolumeCopy, VolumeImport, VolumeExport, VolumeEdit, VolumeSwap, VolumeInfo, VolumeList Impl

	Define, Undefine, Start, Shutdown, Destroy, Reboot, Suspend, Resume, State, List, EnsureAbsent, WaitIP, GuestExec, Console, HostCheck Impl

	SnapshotCreate, SnapshotList, SnapshotRevert, SnapshotDelete Impl
}

// spec is one action of the contract.
type spec struct {
	name        string
	description string
	inputs      []sdk.Attr
	outputs     []sdk.Attr
	validate    []Func // the contract's checks of the inputs
	undo        bool
	interactive bool
	impl        *Impl
}

// Default step timeouts (a step's timeout = "…" replaces them). Calls
// that only ask the hypervisor something get minutes, which covers a busy
// host re-probing QEMU; those that move a disk's data get hours, since a
// stalled stream fails on its own long before; waiting for a guest gets
// what a slow boot needs.
const (
	quickTimeout    = 5 * time.Minute
	dataTimeout     = 2 * time.Hour
	snapshotTimeout = 30 * time.Minute
)

// timeouts are the actions whose default is not quickTimeout (0: none).
var timeouts = map[string]time.Duration{
	"volume_create": dataTimeout, "volume_copy": dataTimeout, "volume_import": dataTimeout,
	"volume_export": dataTimeout, "volume_edit": dataTimeout, "volume_resize": dataTimeout,
	"snapshot_create": snapshotTimeout, "snapshot_revert": snapshotTimeout, "snapshot_delete": snapshotTimeout,
	"shutdown": 2 * time.Minute, "wait_ip": 3 * time.Minute, "guest_exec": time.Minute,
	"console": 0, // interactive: as long as the user stays
}

// Timeout is the contract's default timeout of an action.
func Timeout(action string) time.Duration {
	if d, ok := timeouts[action]; ok {
		return d
	}
	return quickTimeout
}

// contract declares every action, in the order plugins list them, bound
// to b's implementations.
func contract(b *Backend) []spec {
	vmName := b.VMName
	if vmName.Check == nil {
		vmName = NameRuleFor("VM")
	}
	minMemory := b.MinMemory
	if minMemory == 0 {
		minMemory = 1
	}
	macExample := b.MACExample
	if macExample == "" {
		macExample = "52:54:00:12:34:56"
	}
	validVM := func(ctx context.Context, r *sdk.Request) error {
		if r.Known("name") {
			if err := vmName.Check(r.String("name")); err != nil {
				return sdk.ArgError("name", "%v", err)
			}
		}
		return nil
	}
	validOptionalVM := func(ctx context.Context, r *sdk.Request) error {
		if r.Known("vm") && r.String("vm") != "" {
			if err := vmName.Check(r.String("vm")); err != nil {
				return sdk.ArgError("vm", "%v", err)
			}
		}
		return nil
	}
	filesIn := sdk.StringMap("files", "Files to write into the filesystem: "+FilePathDoc+" → its content. Files are 0644, directories made for them 0755, all owned by root.")
	secretFilesIn := sdk.StringMap("secret_files", "Like files, for secrets (SSH host keys, tokens): mode 0600, and kept out of logs and plans.").Sensitive()

	volumeIn := sdk.String("name", "Volume name: "+NamePatternDoc+".").Required()
	volOutputs := []sdk.Attr{
		sdk.String("name", "The volume's name."),
		sdk.String("path", "Where the volume is on the host: its file, or its storage's volume id. Actions that take a volume take this too."),
		sdk.Number("capacity", "Its size in bytes, as the guest sees it."),
	}
	vmIn := sdk.String("name", "VM name.").Required()
	snapIn := sdk.String("snapshot", "Snapshot name: "+SnapshotPatternDoc+".").Required()

	return []spec{
		// Volumes.
		{
			name: "volume_create",
			description: "Creates a volume of a given size, optionally holding a fresh ext4 filesystem with a label (the /var disk: whole-disk ext4, label \"var\") " +
				"and files written into it (a VM's identity, its SSH host keys). " +
				"Refuses to replace an existing volume. Its undo deletes it.",
			inputs: []sdk.Attr{
				volumeIn,
				sdk.String("size", "Size: "+SizeDoc+".").Required(),
				sdk.String("filesystem", "\"ext4\" to format the volume, or \"\" for an empty disk.").Default(""),
				sdk.String("label", "Filesystem label (at most 16 characters).").Default("var"),
				filesIn,
				secretFilesIn,
			},
			outputs:  volOutputs,
			validate: []Func{ValidName("name", "volume"), ValidSize("size"), validFilesystem, validFiles(true)},
			undo:     true,
			impl:     &b.VolumeCreate,
		},
		{
			name:        "volume_overlay",
			description: "Creates a thin overlay on a base image: a clone that costs O(1) in the base's size. Its undo deletes it.",
			inputs: []sdk.Attr{
				volumeIn,
				sdk.String("backing", "The base image: a volume's name, or where it is on the host.").Required(),
				sdk.String("backing_format", "Format of the base image: qcow2 or raw; auto finds it out.").Default("auto"),
			},
			outputs:  volOutputs,
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
			outputs:  volOutputs,
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
		{
			name:        "volume_copy",
			description: "Copies a volume into a new one (for clones and backups). The copy is complete, not thin. Its undo deletes it.",
			inputs: []sdk.Attr{
				sdk.String("source", "The volume to copy.").Required(),
				sdk.String("name", "The new volume's name.").Required(),
			},
			outputs:  volOutputs,
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
			outputs:  append(append([]sdk.Attr{}, volOutputs...), sdk.String("format", "qcow2 or raw, read from the file.")),
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
				filesIn,
				secretFilesIn,
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

		// VMs.
		{
			name: "define",
			description: "Defines (or redefines, when shut off) a VM: a virtio boot disk (read-only by default) and /var disk, UEFI or direct kernel boot, " +
				"a NAT or bridged network with a fixed MAC, a guest-agent channel and a serial console. " +
				"Refuses to redefine a running VM. Its undo restores the previous definition, or removes the new VM.",
			inputs: []sdk.Attr{
				sdk.String("name", "VM name: "+vmName.Doc+".").Required(),
				sdk.String("uuid", "A fixed UUID. Default: the existing VM's, else a new random one."),
				sdk.Number("memory", "Memory in MiB.").Default(1024),
				sdk.Number("vcpus", "Virtual CPUs.").Default(1),
				sdk.String("boot_volume", "The boot disk (the first virtio disk): a volume.").Required(),
				sdk.Bool("boot_readonly", "Attach the boot disk read-only.").Default(true),
				sdk.String("var_volume", "The /var disk (the second virtio disk), read-write: a volume."),
				sdk.String("firmware", "uefi (OVMF, with per-VM variables) or kernel (direct kernel boot).").Default("uefi"),
				sdk.String("kernel", "Direct kernel boot: the kernel."),
				sdk.String("initrd", "Direct kernel boot: the initrd."),
				sdk.String("cmdline", "Direct kernel boot: the kernel command line."),
				sdk.String("network", "nat (the host's NAT network), bridge:<name>, or none.").Default("nat"),
				sdk.String("mac", "A fixed MAC address. Default: derived from the name, so it never changes."),
				sdk.String("console_log", "Where the serial console is logged on the host, when the backend logs it. Default: the backend's place."),
				sdk.StringList("pci_devices", "Host PCI devices passed through to the VM (a GPU, say): "+PCIDoc+". Refused when another VM has one of them (host_check checks the rest)."),
			},
			outputs: []sdk.Attr{
				sdk.String("name", "The VM name."),
				sdk.String("uuid", "Its UUID."),
				sdk.String("mac", "Its MAC address."),
				sdk.String("domain_type", "How it is virtualised: kvm, or qemu (TCG) when KVM is not usable."),
				sdk.String("console_log", "The console log file, or \"\" when there is none."),
				sdk.String("previous_xml", "The definition it replaced, if any, in the backend's own form (for the undo)."),
			},
			validate: []Func{validVM, ValidNetwork, ValidFirmware, ValidMAC(macExample), ValidUUID, AtLeast("memory", minMemory), Positive("vcpus"), ValidPCIDevices},
			undo:     true,
			impl:     &b.Define,
		},
		{
			name: "host_check",
			description: "Checks, before anything is made, that the host can give a VM what define would ask for: no more memory or CPUs than it has, " +
				"and PCI devices that exist, can be passed through (an IOMMU group whose other devices go along or are bridges), are not the host's only display, " +
				"and are not given to another VM. Changes nothing. With known arguments it refuses in the plan, before the run.",
			inputs: []sdk.Attr{
				sdk.String("name", "The VM it is for: its own devices do not count as given to another."),
				sdk.Number("memory", "Memory in MiB; null: not checked."),
				sdk.Number("vcpus", "Virtual CPUs; null: not checked."),
				sdk.StringList("pci_devices", "Host PCI devices to pass through: "+PCIDoc+"."),
			},
			outputs: []sdk.Attr{
				sdk.Number("host_memory", "The host's memory, MiB."),
				sdk.Number("host_cpus", "The host's CPUs (logical)."),
				sdk.StringList("pci_devices", "The devices, as the host names them (address, class, vendor:device)."),
			},
			validate: []Func{ValidPCIDevices, Positive("vcpus")},
			impl:     &b.HostCheck,
		},
		{
			name:        "undefine",
			description: "Removes a VM's definition with its firmware variables and snapshots. Its disks stay (volume_delete removes them). Refuses a running VM unless force is set.",
			inputs: []sdk.Attr{
				vmIn,
				sdk.Bool("force", "Force a running VM off first.").Default(false),
				sdk.Bool("missing_ok", "Succeed when the VM does not exist.").Default(false),
			},
			outputs:  []sdk.Attr{sdk.Bool("undefined", "Whether a VM was removed.")},
			validate: []Func{validVM},
			impl:     &b.Undefine,
		},
		{
			name:        "start",
			description: "Starts a VM (nothing to do when it runs already). Its undo forces it off again, if this step started it.",
			inputs:      []sdk.Attr{vmIn},
			outputs:     []sdk.Attr{sdk.Bool("started", "Whether this step started it."), sdk.String("state", "Its state afterwards.")},
			validate:    []Func{validVM},
			undo:        true,
			impl:        &b.Start,
		},
		{
			name: "shutdown",
			description: "Asks the guest to power off (ACPI, the guest agent, or both) and waits; when the step's timeout is near it fails clearly, leaving the VM running. " +
				"A VM that is off already is nothing to do. Its undo starts the VM again, if this step shut it down.",
			inputs: []sdk.Attr{
				vmIn,
				sdk.String("mode", "auto (agent, else ACPI), acpi or agent.").Default("auto"),
			},
			outputs:  []sdk.Attr{sdk.String("state", "Its state afterwards."), sdk.Bool("stopped", "Whether this step shut it down.")},
			validate: []Func{validVM, validMode},
			undo:     true,
			impl:     &b.Shutdown,
		},
		{
			name:        "destroy",
			description: "Forces a VM off at once, like pulling the plug (nothing to do when it is off).",
			inputs:      []sdk.Attr{vmIn},
			outputs:     []sdk.Attr{sdk.Bool("was_running", "Whether it was running.")},
			validate:    []Func{validVM},
			impl:        &b.Destroy,
		},
		{
			name:        "reboot",
			description: "Asks the guest to reboot (ACPI or the guest agent).",
			inputs: []sdk.Attr{
				vmIn,
				sdk.String("mode", "auto, acpi or agent.").Default("auto"),
			},
			validate: []Func{validVM},
			impl:     &b.Reboot,
		},
		{
			name: "suspend",
			description: "Pauses a running VM: its CPUs stop, its memory and devices stay (for a consistent backup of its disks). Nothing to do when it is paused or shut off. " +
				"Its undo resumes it, if this step paused it.",
			inputs:   []sdk.Attr{vmIn},
			outputs:  []sdk.Attr{sdk.Bool("suspended", "Whether this step paused it.")},
			validate: []Func{validVM},
			undo:     true,
			impl:     &b.Suspend,
		},
		{
			name:        "resume",
			description: "Resumes a paused VM. Nothing to do when it is not paused.",
			inputs:      []sdk.Attr{vmIn},
			outputs:     []sdk.Attr{sdk.Bool("resumed", "Whether this step resumed it.")},
			validate:    []Func{validVM},
			impl:        &b.Resume,
		},
		{
			name:        "state",
			description: "Reports whether a VM exists, its state, its UUID and, when it runs, its IPv4 address if that is known at once (one look, as wait_ip looks, without waiting).",
			inputs:      []sdk.Attr{vmIn},
			outputs: []sdk.Attr{
				sdk.Bool("exists", "Whether the VM is defined."),
				sdk.String("state", "running, shut off, paused, crashed, …; \"\" when it does not exist."),
				sdk.String("uuid", "Its UUID."),
				sdk.String("ip", "Its IPv4 address while it runs, when known; else \"\"."),
			},
			validate: []Func{validVM},
			impl:     &b.State,
		},
		{
			name:        "list",
			description: "Lists VMs, optionally those whose names start with a prefix.",
			inputs:      []sdk.Attr{sdk.String("prefix", "Only names starting with this.").Default("")},
			outputs: []sdk.Attr{
				sdk.StringList("names", "VM names, sorted."),
				sdk.StringMap("states", "Each VM's state."),
			},
			impl: &b.List,
		},
		{
			name: "ensure_absent",
			description: "Checks that a VM and volumes do not exist, before a task makes them: it fails with one error that names everything that does exist " +
				"(\"VM demo exists (running); volumes demo-var, demo-boot exist\"), and changes nothing.",
			inputs: []sdk.Attr{
				sdk.String("vm", "A VM name, or \"\" to check only volumes.").Default(""),
				sdk.StringList("volumes", "Volume names.").Default([]string{}),
			},
			outputs:  []sdk.Attr{sdk.StringList("checked", "What was checked: \"VM <name>\" and \"volume <name>\", in order.")},
			validate: []Func{validOptionalVM, ValidNames("volumes", "volume")},
			impl:     &b.EnsureAbsent,
		},
		{
			name:        "wait_ip",
			description: "Waits for the VM's IPv4 address, found by its MAC, until the step's timeout: then it fails, saying what it looked at; it never returns a placeholder.",
			inputs: []sdk.Attr{
				vmIn,
			},
			outputs: []sdk.Attr{
				sdk.String("ip", "The IPv4 address."),
				sdk.String("mac", "The MAC it belongs to."),
				sdk.String("source", "Who told: agent, lease or arp."),
			},
			validate: []Func{validVM},
			impl:     &b.WaitIP,
		},
		{
			name: "guest_exec",
			description: "Runs a command inside a running guest through the guest agent (no network or SSH needed) and waits for it; stdout, stderr and the exit code are outputs. " +
				"A non-zero exit fails the step unless allow_failure is set.",
			inputs: []sdk.Attr{
				vmIn,
				sdk.StringList("argv", "The command and its arguments, run as they are in the guest.").Required(),
				sdk.String("stdin", "Text fed to the command's standard input."),
				sdk.Bool("allow_failure", "Do not fail on a non-zero exit code.").Default(false),
			},
			outputs: []sdk.Attr{
				sdk.String("stdout", "Standard output."),
				sdk.String("stderr", "Standard error."),
				sdk.Number("exit_code", "The exit status."),
			},
			validate: []Func{validVM, validArgv},
			impl:     &b.GuestExec,
		},
		{
			name:        "console",
			description: "Attaches the VM's serial console to your terminal, both ways, until you press Ctrl-] (or the console closes).",
			inputs: []sdk.Attr{
				vmIn,
				sdk.Bool("force", "Take the console over from another session.").Default(false),
			},
			validate:    []Func{validVM},
			interactive: true,
			impl:        &b.Console,
		},

		// Snapshots.
		{
			name:        "snapshot_create",
			description: "Takes a snapshot of a VM's disks (its writable /var disk at least), with its memory when it runs. A duplicate name is refused. Its undo deletes it.",
			inputs:      []sdk.Attr{vmIn, snapIn, sdk.String("description", "A note kept with the snapshot.").Default("")},
			outputs:     []sdk.Attr{sdk.String("snapshot", "The snapshot's name."), sdk.String("state", "The VM's state when it was taken.")},
			validate:    []Func{validVM, ValidSnapshot},
			undo:        true,
			impl:        &b.SnapshotCreate,
		},
		{
			name:        "snapshot_list",
			description: "Lists a VM's snapshots, oldest first.",
			inputs:      []sdk.Attr{vmIn},
			outputs: []sdk.Attr{
				sdk.StringList("names", "Snapshot names, oldest first."),
				sdk.Attribute("snapshots", sdk.ListOf(SnapshotInfoType), "Each snapshot: name, created (RFC 3339), state (running: with memory, or shutoff), description."),
			},
			validate: []Func{validVM},
			impl:     &b.SnapshotList,
		},
		{
			name: "snapshot_revert",
			description: "Reverts a VM to a snapshot: its disks and definition, and its memory when the snapshot has it (the VM then runs; else it is shut off). " +
				"An unknown snapshot is an error that lists the snapshots there are, and changes nothing.",
			inputs:   []sdk.Attr{vmIn, snapIn},
			outputs:  []sdk.Attr{sdk.String("state", "The VM's state after the revert.")},
			validate: []Func{validVM, ValidSnapshot},
			impl:     &b.SnapshotRevert,
		},
		{
			name:        "snapshot_delete",
			description: "Deletes a snapshot.",
			inputs:      []sdk.Attr{vmIn, snapIn, sdk.Bool("missing_ok", "Succeed when there is no such snapshot.").Default(false)},
			outputs:     []sdk.Attr{sdk.Bool("deleted", "Whether a snapshot was deleted.")},
			validate:    []Func{validVM, ValidSnapshot},
			impl:        &b.SnapshotDelete,
		},
	}
}

// Actions returns every action of the contract with b's implementations.
// It panics when b leaves an action without Run, or gives an Undo to an
// action the contract declares without one, or none to one that has one:
// a bug in the plugin, found the first time it starts.
func Actions(b Backend) []*sdk.Action {
	specs := contract(&b)
	out := make([]*sdk.Action, len(specs))
	for i, s := range specs {
		switch {
		case s.impl.Run == nil:
			panic(fmt.Sprintf("hypervisor: action %s has no Run", s.name))
		case s.undo && s.impl.Undo == nil:
			panic(fmt.Sprintf("hypervisor: action %s has no Undo; the contract declares one", s.name))
		case !s.undo && s.impl.Undo != nil:
			panic(fmt.Sprintf("hypervisor: action %s has an Undo; the contract declares none", s.name))
		}
		out[i] = s.action()
	}
	return out
}

// Declared returns the contract alone: every action as Actions declares
// it, with a Run (and Undo) that only fail. Tests compare plugins with it.
func Declared() []*sdk.Action {
	notImplemented := func(ctx context.Context, r *sdk.Request) error {
		return fmt.Errorf("the hypervisor contract alone implements nothing")
	}
	specs := contract(&Backend{})
	out := make([]*sdk.Action, len(specs))
	for i, s := range specs {
		s.impl.Run = notImplemented
		if s.undo {
			s.impl.Undo = notImplemented
		}
		out[i] = s.action()
	}
	return out
}

// action builds the sdk.Action: the contract's declaration, the backend's
// note, the contract's checks then the backend's, and its Run and Undo.
func (s spec) action() *sdk.Action {
	description := s.description
	if s.impl.Note != "" {
		description += " " + s.impl.Note
	}
	checks := s.validate
	if s.impl.Validate != nil {
		checks = append(checks[:len(checks):len(checks)], s.impl.Validate)
	}
	var validate Func
	switch len(checks) {
	case 0:
	case 1:
		validate = checks[0]
	default:
		validate = Checks(checks...)
	}
	return &sdk.Action{
		Name:        s.name,
		Description: description,
		Inputs:      s.inputs,
		Outputs:     s.outputs,
		Validate:    validate,
		Run:         s.impl.Run,
		Undo:        s.impl.Undo,
		Plan:        s.impl.Plan,
		Interactive: s.interactive,
		Timeout:     Timeout(s.name),
	}
}
