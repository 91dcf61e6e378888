package main

import (
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// The definition passes each device through as a managed PCI hostdev.
func TestDomainXMLPassesPCIDevices(t *testing.T) {
	a, _ := hypervisor.ParsePCI("0000:01:00.0")
	b, _ := hypervisor.ParsePCI("01:00.1")
	doc, err := domainXML(defineSpec{name: "gpu", domType: "kvm", memoryMiB: 1024, vcpus: 1, boot: "/b", bootFormat: "qcow2", firmware: "uefi", network: "none", pci: []hypervisor.PCIAddress{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	got := domainPCI(&x)
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("hostdevs %v in\n%s", got, doc)
	}
	for _, want := range []string{`<hostdev mode="subsystem" type="pci" managed="yes">`, `<address domain="0x0000" bus="0x01" slot="0x00" function="0x1"></address>`} {
		if !strings.Contains(doc, want) {
			t.Errorf("the XML lacks %s:\n%s", want, doc)
		}
	}
}

// On the real libvirtd: a defined VM holds its device (running or not),
// so another is refused it, by define and by host_check; host_check
// refuses what this host cannot give, from libvirt's own node devices
// (no device here has an IOMMU group: a VM has no IOMMU).
func TestPCIPassthroughOnLibvirtd(t *testing.T) {
	h := newHarness(t, "qemu:///system")
	first, second := uniqueName("vmflow-pci"), uniqueName("vmflow-pci2")
	h.run("volume_create", map[string]any{"name": first + "-boot", "size": "64M"})
	t.Cleanup(func() { h.removeGuest(first); h.removeGuest(second) })
	h.run("define", map[string]any{"name": first, "boot_volume": first + "-boot", "firmware": "uefi", "network": "none", "memory": 128, "pci_devices": []string{"00:01.0"}})
	x, doc, err := h.domainXML(first)
	if err != nil || len(domainPCI(&x)) != 1 || domainPCI(&x)[0].String() != "0000:00:01.0" {
		t.Fatalf("libvirt's definition has no hostdev 0000:00:01.0: %v\n%s", err, doc)
	}
	// Redefining the same VM with its own device is fine.
	h.run("define", map[string]any{"name": first, "boot_volume": first + "-boot", "firmware": "uefi", "network": "none", "memory": 128, "pci_devices": []string{"0000:00:01.0"}})

	given := `0000:00:01.0 is passed through to VM "` + first + `" already`
	h.fails("define", map[string]any{"name": second, "boot_volume": first + "-boot", "network": "none", "pci_devices": []string{"0000:00:01.0"}}, given)
	if s := h.run("state", map[string]any{"name": second}); s.GetAttr("exists").True() {
		t.Fatalf("the refused define left %s defined", second)
	}
	h.fails("host_check", map[string]any{"name": second, "pci_devices": []string{"0000:00:01.0"}}, given)

	// What the host cannot give.
	h.fails("host_check", map[string]any{"name": second, "memory": 1 << 30}, "MiB is more than this host has")
	h.fails("host_check", map[string]any{"name": second, "vcpus": 100000}, "CPUs are more than this host has")
	h.fails("host_check", map[string]any{"name": second, "pci_devices": []string{"0000:7f:1f.7"}}, "there is no PCI device 0000:7f:1f.7 on this host")
	h.fails("host_check", map[string]any{"name": second, "pci_devices": []string{"0000:00:02.0"}}, "0000:00:02.0 (class")
	h.fails("host_check", map[string]any{"name": second, "pci_devices": []string{"1:2:3"}}, "invalid PCI address")

	out := h.run("host_check", map[string]any{"name": second, "memory": 256, "vcpus": 1})
	if num(out, "host_memory") < 256 || num(out, "host_cpus") < 1 {
		t.Fatalf("host_check outputs: %#v", out)
	}
}
