package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// PCI passthrough on libvirt: define writes a managed <hostdev> per
// device (libvirt detaches it from its host driver at start and gives it
// back at stop); host_check asks libvirt's node devices, which work the
// same for a remote host, whether each device can go.

// listNodeDevicesPCI is VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV.
const listNodeDevicesPCI = 1 << 1

// hostdevs are the <hostdev> elements for the devices.
func hostdevs(addrs []hypervisor.PCIAddress) []libvirtxml.DomainHostdev {
	var out []libvirtxml.DomainHostdev
	for _, a := range addrs {
		d, b, s, f := a.Domain, a.Bus, a.Slot, a.Function
		out = append(out, libvirtxml.DomainHostdev{
			Managed: "yes",
			SubsysPCI: &libvirtxml.DomainHostdevSubsysPCI{
				Source: &libvirtxml.DomainHostdevSubsysPCISource{
					Address: &libvirtxml.DomainAddressPCI{Domain: &d, Bus: &b, Slot: &s, Function: &f},
				},
			},
		})
	}
	return out
}

// domainPCI lists the PCI devices a domain definition passes through.
func domainPCI(x *libvirtxml.Domain) []hypervisor.PCIAddress {
	if x.Devices == nil {
		return nil
	}
	var out []hypervisor.PCIAddress
	for _, h := range x.Devices.Hostdevs {
		if h.SubsysPCI == nil || h.SubsysPCI.Source == nil || h.SubsysPCI.Source.Address == nil {
			continue
		}
		a := h.SubsysPCI.Source.Address
		out = append(out, hypervisor.PCIAddress{Domain: deref(a.Domain), Bus: deref(a.Bus), Slot: deref(a.Slot), Function: deref(a.Function)})
	}
	return out
}

func deref(p *uint) uint {
	if p == nil {
		return 0
	}
	return *p
}

// pciGivenElsewhere refuses a device another domain (running or not)
// passes through already: libvirt would only find out when both run.
func pciGivenElsewhere(conn libvirtConn, name string, addrs []hypervisor.PCIAddress) error {
	if len(addrs) == 0 {
		return nil
	}
	doms, _, err := conn.ConnectListAllDomains(1, 0)
	if err != nil {
		return err
	}
	want := map[hypervisor.PCIAddress]bool{}
	for _, a := range addrs {
		want[a] = true
	}
	for _, dom := range doms {
		if dom.Name == name {
			continue
		}
		doc, err := conn.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive)
		if err != nil {
			if isCode(err, libvirt.ErrNoDomain) {
				continue // undefined meanwhile
			}
			return err
		}
		var x libvirtxml.Domain
		if err := x.Unmarshal(doc); err != nil {
			continue
		}
		for _, a := range domainPCI(&x) {
			if want[a] {
				return sdk.ArgError("pci_devices", "%s is passed through to VM %q already: a device serves one VM at a time (vmflow configure %s --pci_devices '[]' frees it)", a, dom.Name, dom.Name)
			}
		}
	}
	return nil
}

// hostPCI reads every PCI function of the host from libvirt's node
// devices.
func hostPCI(conn libvirtConn) (map[hypervisor.PCIAddress]hypervisor.PCIDevice, error) {
	devs, _, err := conn.ConnectListAllNodeDevices(1, listNodeDevicesPCI)
	if err != nil {
		return nil, fmt.Errorf("listing the host's PCI devices: %w", err)
	}
	out := map[hypervisor.PCIAddress]hypervisor.PCIDevice{}
	for _, nd := range devs {
		x, err := parseXML[libvirtxml.NodeDevice](conn.NodeDeviceGetXMLDesc(nd.Name, 0))
		if err != nil {
			continue // gone meanwhile (hot unplug), or unreadable
		}
		if x.Capability.PCI == nil {
			continue
		}
		if p, ok := parsePCICapability(x.Capability.PCI); ok {
			out[p.Addr] = p
		}
	}
	return out, nil
}

func parsePCICapability(c *libvirtxml.NodeDevicePCICapability) (hypervisor.PCIDevice, bool) {
	if c.Bus == nil || c.Slot == nil || c.Function == nil {
		return hypervisor.PCIDevice{}, false
	}
	p := hypervisor.PCIDevice{
		Addr:  hypervisor.PCIAddress{Domain: deref(c.Domain), Bus: *c.Bus, Slot: *c.Slot, Function: *c.Function},
		IDs:   strings.TrimPrefix(c.Vendor.ID, "0x") + ":" + strings.TrimPrefix(c.Product.ID, "0x"),
		Group: -1,
	}
	fmt.Sscanf(c.Class, "0x%x", &p.Class)
	if c.IOMMUGroup != nil {
		p.Group = c.IOMMUGroup.Number
		for _, a := range c.IOMMUGroup.Address {
			p.GroupMembers = append(p.GroupMembers, hypervisor.PCIAddress{Domain: deref(a.Domain), Bus: deref(a.Bus), Slot: deref(a.Slot), Function: deref(a.Function)})
		}
	}
	return p, true
}

// validateHostCheck is host_check's Validate.
func (d *driver) validateHostCheck(ctx context.Context, r *sdk.Request) error {
	return d.hostCheck(r, false)
}

// runHostCheck is host_check's Run.
func (d *driver) runHostCheck(ctx context.Context, r *sdk.Request) error {
	return d.hostCheck(r, true)
}

// hostCheck is host_check on libvirt: the host's memory and CPUs from
// its node information, its PCI devices from its node devices. Validate
// runs it once the arguments are known (before the run); Run runs it
// again and gives the outputs.
func (d *driver) hostCheck(r *sdk.Request, outputs bool) error {
	if !hypervisor.HostCheckKnown(r) {
		return nil // checked when the run gets there
	}
	conn, err := d.client()
	if err != nil {
		return err
	}
	_, memKiB, cpus, _, _, _, _, _, err := conn.NodeGetInfo()
	if err != nil {
		return fmt.Errorf("asking the host for its memory and CPUs: %w", err)
	}
	h := hypervisor.Host{
		Where: "this host", MemoryMiB: int64(memKiB / 1024), CPUs: int64(cpus),
		PCI: func() (map[hypervisor.PCIAddress]hypervisor.PCIDevice, error) { return hostPCI(conn) },
		GivenElsewhere: func(name string, addrs []hypervisor.PCIAddress) error {
			return pciGivenElsewhere(conn, name, addrs)
		},
	}
	names, err := hypervisor.CheckHost(r, h)
	if err != nil || !outputs {
		return err
	}
	return errors.Join(r.Set("host_memory", h.MemoryMiB), r.Set("host_cpus", h.CPUs), r.Set("pci_devices", names))
}
