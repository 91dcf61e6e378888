package main

import (
	"context"
	"errors"
	"strings"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// The stub's node hardware, as `pvesh get /nodes/NODE/status` and
// `pvesh get /nodes/NODE/hardware/pci` would report it: a workstation with
// 64 GiB, 16 CPUs, an integrated display (the host's console) and one
// NVIDIA GPU with its audio function, in an IOMMU group with the PCIe
// root port above them. Fixed, like its two storages, so that every
// refusal of host_check can be seen on it.
const (
	nodeMemoryMiB = 65536
	nodeCPUs      = 16
)

var nodePCI = func() map[hypervisor.PCIAddress]hypervisor.PCIDevice {
	devs := []struct {
		addr  string
		class uint
		ids   string
		group int
	}{
		{"0000:00:00.0", 0x060000, "8086:3e30", 0}, // host bridge
		{"0000:00:01.0", 0x060400, "8086:1901", 1}, // PCIe root port of the GPU
		{"0000:00:02.0", 0x030000, "8086:3e92", 2}, // integrated display: the host's console
		{"0000:01:00.0", 0x030000, "10de:2684", 1}, // NVIDIA GPU
		{"0000:01:00.1", 0x040300, "10de:22ba", 1}, // its HDMI audio
		{"0000:02:00.0", 0x020000, "8086:15f3", 3}, // the node's ethernet
	}
	out := map[hypervisor.PCIAddress]hypervisor.PCIDevice{}
	groups := map[int][]hypervisor.PCIAddress{}
	for _, d := range devs {
		a, _ := hypervisor.ParsePCI(d.addr)
		out[a] = hypervisor.PCIDevice{Addr: a, Class: d.class, IDs: d.ids, Group: d.group}
		groups[d.group] = append(groups[d.group], a)
	}
	for a, d := range out {
		d.GroupMembers = groups[d.Group]
		out[a] = d
	}
	return out
}()

// hostpci are a VM's hostpciN options: each device as a PCIe device of
// the q35 machine.
func hostpci(pci []string) []opt {
	var o []opt
	for i, a := range pci {
		o = append(o, opt{"hostpci" + itoa(i), a + ",pcie=1"})
	}
	return o
}

// pciGivenElsewhere refuses a device another VM of the cluster has.
func pciGivenElsewhere(c *cluster, name string, addrs []hypervisor.PCIAddress) error {
	for _, v := range c.VMs {
		if v.Name == name {
			continue
		}
		for _, p := range v.PCI {
			for _, a := range addrs {
				if p == a.String() {
					return sdk.ArgError("pci_devices", "%s is passed through to VM %d (%s) already: a device serves one VM at a time (vmflow configure %s --pci_devices '[]' frees it)", a, v.VMID, v.Name, v.Name)
				}
			}
		}
	}
	return nil
}

func nodeActions(d *driver, b *hypervisor.Backend) {
	check := func(r *sdk.Request, outputs bool) error {
		h := hypervisor.Host{
			Where: "node " + d.node, MemoryMiB: nodeMemoryMiB, CPUs: nodeCPUs,
			PCI: func() (map[hypervisor.PCIAddress]hypervisor.PCIDevice, error) { return nodePCI, nil },
			GivenElsewhere: func(name string, addrs []hypervisor.PCIAddress) error {
				return d.st.view(func(c *cluster) error { return pciGivenElsewhere(c, name, addrs) })
			},
		}
		names, err := hypervisor.CheckHost(r, h)
		if err != nil || !outputs {
			return err
		}
		r.Log("pvesh get /nodes/%s/status  # %d MiB, %d CPUs", d.node, nodeMemoryMiB, nodeCPUs)
		if len(names) > 0 {
			r.Log("pvesh get /nodes/%s/hardware/pci  # %s", d.node, strings.Join(names, "; "))
		}
		return errors.Join(r.Set("host_memory", int64(nodeMemoryMiB)), r.Set("host_cpus", int64(nodeCPUs)), r.Set("pci_devices", names))
	}
	b.HostCheck = hypervisor.Impl{
		Note:     "The stub's node has 64 GiB, 16 CPUs and a fixed set of PCI devices: 0000:00:02.0 (its display), 0000:01:00.0 (a GPU) and 0000:01:00.1 (its audio, in the GPU's IOMMU group), and bridges.",
		Validate: func(ctx context.Context, r *sdk.Request) error { return check(r, false) },
		Run:      func(ctx context.Context, r *sdk.Request) error { return check(r, true) },
	}
}
