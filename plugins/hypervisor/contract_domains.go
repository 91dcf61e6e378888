package hypervisor

import "github.com/vmflow/vmflow/core/sdk"

// domainsDefined are the actions that define and remove a VM, and the
// check of the host that define asks of it.
func (c *shared) domainsDefined(b *Backend) []spec {
	return []spec{
		{
			name: "define",
			description: "Defines (or redefines, when shut off) a VM: a virtio boot disk (read-only by default) and /var disk, UEFI or direct kernel boot, " +
				"a NAT or bridged network with a fixed MAC, a guest-agent channel and a serial console. " +
				"Refuses to redefine a running VM. Its undo restores the previous definition, or removes the new VM.",
			inputs: []sdk.Attr{
				sdk.String("name", "VM name: "+c.vmName.Doc+".").Required(),
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
			validate: []Func{c.validVM, ValidNetwork, ValidFirmware, ValidMAC(c.macExample), ValidUUID, AtLeast("memory", c.minMemory), Positive("vcpus"), ValidPCIDevices},
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
				c.vmIn,
				sdk.Bool("force", "Force a running VM off first.").Default(false),
				sdk.Bool("missing_ok", "Succeed when the VM does not exist.").Default(false),
			},
			outputs:  []sdk.Attr{sdk.Bool("undefined", "Whether a VM was removed.")},
			validate: []Func{c.validVM},
			impl:     &b.Undefine,
		},
	}
}

// domainsSeen are the actions that only look at VMs.
func (c *shared) domainsSeen(b *Backend) []spec {
	return []spec{
		{
			name:        "state",
			description: "Reports whether a VM exists, its state, its UUID and, when it runs, its IPv4 address if that is known at once (one look, as wait_ip looks, without waiting).",
			inputs:      []sdk.Attr{c.vmIn},
			outputs: []sdk.Attr{
				sdk.Bool("exists", "Whether the VM is defined."),
				sdk.String("state", "running, shut off, paused, crashed, …; \"\" when it does not exist."),
				sdk.String("uuid", "Its UUID."),
				sdk.String("ip", "Its IPv4 address while it runs, when known; else \"\"."),
			},
			validate: []Func{c.validVM},
			impl:     &b.State,
		},
		{
			name:        "list",
			description: "Lists VMs, optionally those whose names start with a prefix; with hosts, those of other hosts too, each host asked on its own, so one that does not answer is named, with the reason, and fails nothing.",
			inputs: []sdk.Attr{
				sdk.String("prefix", "Only names starting with this.").Default(""),
				sdk.StringMap("hosts", "Other hosts to list as well, NAME = where the backend reaches it (libvirt: a URI; proxmox-stub: a cluster name, \"\" for the default one).").Default(map[string]string{}),
			},
			outputs: []sdk.Attr{
				sdk.StringList("names", "VM names, sorted."),
				sdk.StringMap("states", "Each VM's state."),
				sdk.Attribute("by_host", sdk.MapOf(sdk.MapOf(sdk.TypeString)), "For each host of hosts that answered: each of its VMs' state."),
				sdk.StringMap("unreachable", "For each host of hosts that did not answer: why."),
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
			validate: []Func{c.validOptionalVM, ValidNames("volumes", "volume")},
			impl:     &b.EnsureAbsent,
		},
	}
}
