package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/vmflow/vmflow/core/sdk"
)

// PCI passthrough: define's pci_devices are host PCI addresses, written as
// lspci -D prints them (0000:01:00.0: domain, bus, device, function); the
// domain may be left out (01:00.0 is 0000:01:00.0).

// PCIDoc is how a PCI address is written, in docs and errors.
const PCIDoc = "a host PCI address as lspci -D prints it, such as 0000:01:00.0 (the 0000: may be left out)"

var pciPattern = regexp.MustCompile(`^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$`)

// PCIAddress is one PCI function of the host.
type PCIAddress struct {
	Domain, Bus, Slot, Function uint
}

// String is the address as lspci -D and sysfs write it: 0000:01:00.0.
func (a PCIAddress) String() string {
	return fmt.Sprintf("%04x:%02x:%02x.%x", a.Domain, a.Bus, a.Slot, a.Function)
}

// ParsePCI reads a PCI address: [DDDD:]BB:SS.F in hex, the slot at most
// 1f and the function at most 7.
func ParsePCI(s string) (PCIAddress, error) {
	m := pciPattern.FindStringSubmatch(s)
	if m == nil {
		return PCIAddress{}, fmt.Errorf("invalid PCI address %q: use %s", s, PCIDoc)
	}
	hex := func(h string) uint {
		if h == "" {
			return 0
		}
		v, _ := strconv.ParseUint(h, 16, 32)
		return uint(v)
	}
	return PCIAddress{Domain: hex(m[1]), Bus: hex(m[2]), Slot: hex(m[3]), Function: hex(m[4])}, nil
}

// PCIDevices reads the pci_devices input: each address parsed, none twice.
func PCIDevices(r *sdk.Request) ([]PCIAddress, error) {
	if !r.IsSet("pci_devices") {
		return nil, nil
	}
	var out []PCIAddress
	seen := map[PCIAddress]bool{}
	for _, s := range r.Strings("pci_devices") {
		a, err := ParsePCI(s)
		if err != nil {
			return nil, sdk.ArgError("pci_devices", "%v", err)
		}
		if seen[a] {
			return nil, sdk.ArgError("pci_devices", "%s is named twice", a)
		}
		seen[a] = true
		out = append(out, a)
	}
	return out, nil
}

// ValidPCIDevices checks pci_devices, once known: addresses, none twice.
func ValidPCIDevices(ctx context.Context, r *sdk.Request) error {
	if !r.Known("pci_devices") {
		return nil
	}
	_, err := PCIDevices(r)
	return err
}

// PCIDevice is what host_check knows of one PCI function of the host.
type PCIDevice struct {
	Addr         PCIAddress
	Class        uint   // PCI class code: 0x030000 is a VGA display controller
	IDs          string // vendor:device, 10de:2684
	Group        int    // IOMMU group; -1 when there is none (no IOMMU)
	GroupMembers []PCIAddress
}

// Display reports whether the device is a display controller.
func (p PCIDevice) Display() bool { return p.Class>>16 == 0x03 }

// Bridge reports whether the device is a host or PCI bridge, which may
// stay behind when the rest of its IOMMU group is passed through.
func (p PCIDevice) Bridge() bool { return p.Class>>8 == 0x0600 || p.Class>>8 == 0x0604 }

func (p PCIDevice) String() string {
	return fmt.Sprintf("%s (class %06x, %s)", p.Addr, p.Class, p.IDs)
}

// CheckPassthrough decides, from the host's devices, whether addrs can be
// passed through together: each exists, has an IOMMU group whose other
// members go along or are bridges, and the host keeps a display.
func CheckPassthrough(host map[PCIAddress]PCIDevice, addrs []PCIAddress) error {
	given := map[PCIAddress]bool{}
	for _, a := range addrs {
		given[a] = true
	}
	kept := 0
	for a, d := range host {
		if d.Display() && !given[a] {
			kept++
		}
	}
	var errs []error
	for _, a := range addrs {
		d, ok := host[a]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("there is no PCI device %s on this host (lspci -D lists them)", a))
			continue
		case d.Group < 0:
			errs = append(errs, fmt.Errorf("%s has no IOMMU group: passthrough needs the IOMMU on (VT-d or AMD-Vi in the firmware, intel_iommu=on or amd_iommu=on on the host's kernel command line)", d))
			continue
		case d.Display() && kept == 0:
			errs = append(errs, fmt.Errorf("%s is the host's last display: passing it through leaves the host without one", d))
			continue
		}
		var left []string
		for _, m := range d.GroupMembers {
			if m == a || given[m] {
				continue
			}
			o, ok := host[m]
			switch {
			case ok && o.Bridge():
				continue
			case ok:
				left = append(left, o.String())
			default:
				left = append(left, m.String())
			}
		}
		if len(left) > 0 {
			sort.Strings(left)
			errs = append(errs, fmt.Errorf("%s shares IOMMU group %d with %s: a group goes to one VM whole, so pass those too (or none of them)", d, d.Group, strings.Join(left, ", ")))
		}
	}
	if len(errs) > 0 {
		return sdk.ArgError("pci_devices", "%v", errors.Join(errs...))
	}
	return nil
}

// Host is what a backend knows of the host a VM would run on, for
// host_check.
type Host struct {
	Where     string // "this host", "node pve": how errors name it
	MemoryMiB int64
	CPUs      int64
	// PCI lists the host's PCI functions; it is asked only when devices
	// are named.
	PCI func() (map[PCIAddress]PCIDevice, error)
	// GivenElsewhere refuses a device another VM than name has.
	GivenElsewhere func(name string, addrs []PCIAddress) error
}

// HostCheckKnown reports whether host_check's arguments are all known:
// before that (a value from an earlier step, at Prepare) there is
// nothing to ask the host yet.
func HostCheckKnown(r *sdk.Request) bool {
	return r.Known("memory") && r.Known("vcpus") && r.Known("pci_devices") && r.Known("name")
}

// CheckHost is host_check's decision for a backend's host: memory and
// CPUs, then each PCI device. It returns the devices as the host names
// them. Arguments not yet known (a value from an earlier step, checked
// at Prepare) pass; the Run checks them again.
func CheckHost(r *sdk.Request, h Host) ([]string, error) {
	if !HostCheckKnown(r) {
		return nil, nil
	}
	if r.IsSet("memory") && r.Int("memory") > h.MemoryMiB {
		return nil, sdk.ArgError("memory", "%d MiB is more than %s has (%d MiB)", r.Int("memory"), h.Where, h.MemoryMiB)
	}
	if r.IsSet("vcpus") && r.Int("vcpus") > h.CPUs {
		return nil, sdk.ArgError("vcpus", "%d CPUs are more than %s has (%d)", r.Int("vcpus"), h.Where, h.CPUs)
	}
	addrs, err := PCIDevices(r)
	if err != nil || len(addrs) == 0 {
		return nil, err
	}
	if err := h.GivenElsewhere(r.String("name"), addrs); err != nil {
		return nil, err
	}
	devs, err := h.PCI()
	if err != nil {
		return nil, err
	}
	if err := CheckPassthrough(devs, addrs); err != nil {
		return nil, err
	}
	var names []string
	for _, a := range addrs {
		names = append(names, devs[a].String())
	}
	return names, nil
}
