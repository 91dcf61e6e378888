package hypervisor

import (
	"strings"
	"testing"
)

func TestParsePCI(t *testing.T) {
	for in, want := range map[string]string{
		"0000:01:00.0": "0000:01:00.0",
		"01:00.1":      "0000:01:00.1",
		"0001:AF:1f.7": "0001:af:1f.7",
	} {
		a, err := ParsePCI(in)
		if err != nil || a.String() != want {
			t.Errorf("ParsePCI(%q) = %v %v, want %s", in, a, err, want)
		}
	}
	for _, bad := range []string{"", "1:00.0", "01:00", "01:20.0", "01:00.8", "0000:01:00.0,pcie=1", "pci_0000_01_00_0"} {
		if _, err := ParsePCI(bad); err == nil || !strings.Contains(err.Error(), "lspci -D") {
			t.Errorf("ParsePCI(%q): %v, want a refusal that says how to write one", bad, err)
		}
	}
}

// A workstation: a host bridge, a root port, the integrated display, a GPU
// and its audio function in the root port's IOMMU group, a NIC without a
// group (no IOMMU for it).
func workstation() map[PCIAddress]PCIDevice {
	host := map[PCIAddress]PCIDevice{}
	add := func(addr string, class uint, group int, members ...string) {
		a, _ := ParsePCI(addr)
		d := PCIDevice{Addr: a, Class: class, IDs: "1234:5678", Group: group}
		for _, m := range members {
			ma, _ := ParsePCI(m)
			d.GroupMembers = append(d.GroupMembers, ma)
		}
		host[a] = d
	}
	add("00:00.0", 0x060000, 0, "00:00.0")
	add("00:01.0", 0x060400, 1, "00:01.0", "01:00.0", "01:00.1")
	add("00:02.0", 0x030000, 2, "00:02.0")
	add("01:00.0", 0x030000, 1, "00:01.0", "01:00.0", "01:00.1")
	add("01:00.1", 0x040300, 1, "00:01.0", "01:00.0", "01:00.1")
	add("02:00.0", 0x020000, -1)
	return host
}

func TestCheckPassthrough(t *testing.T) {
	host := workstation()
	addrs := func(ss ...string) []PCIAddress {
		var out []PCIAddress
		for _, s := range ss {
			a, _ := ParsePCI(s)
			out = append(out, a)
		}
		return out
	}
	// The GPU with its audio: the root port (a bridge) may stay.
	if err := CheckPassthrough(host, addrs("01:00.0", "01:00.1")); err != nil {
		t.Errorf("the GPU and its audio: %v", err)
	}
	for _, c := range []struct {
		devs []string
		want string
	}{
		{[]string{"01:00.0"}, "0000:01:00.0 (class 030000, 1234:5678) shares IOMMU group 1 with 0000:01:00.1 (class 040300, 1234:5678): a group goes to one VM whole"},
		{[]string{"05:00.0"}, "there is no PCI device 0000:05:00.0 on this host"},
		{[]string{"02:00.0"}, "0000:02:00.0 (class 020000, 1234:5678) has no IOMMU group: passthrough needs the IOMMU on"},
		{[]string{"00:02.0", "01:00.0", "01:00.1"}, "0000:00:02.0 (class 030000, 1234:5678) is the host's last display"},
	} {
		err := CheckPassthrough(host, addrs(c.devs...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.devs, err, c.want)
		}
	}
	// One display of two may go.
	if err := CheckPassthrough(host, addrs("00:02.0")); err != nil {
		t.Errorf("the integrated display while the GPU stays: %v", err)
	}
}
