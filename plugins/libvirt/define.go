package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// macFor derives a stable MAC address from a domain name, in QEMU's
// locally administered 52:54:00 range, so redefining keeps the address.
func macFor(name string) string {
	s := sha256.Sum256([]byte("vmflow-mac:" + name))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", s[0], s[1], s[2])
}

type defineSpec struct {
	name, uuid, mac, domType string
	memoryMiB, vcpus         uint
	boot, bootFormat         string
	bootReadOnly             bool
	varDisk, varFormat       string
	firmware                 string
	kernel, initrd, cmdline  string
	network                  string
	consoleLog               string
	pci                      []hypervisor.PCIAddress
}

func diskXML(path, format, dev string, readOnly bool) libvirtxml.DomainDisk {
	disk := libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}},
		Target: &libvirtxml.DomainDiskTarget{Dev: dev, Bus: "virtio"},
	}
	if readOnly {
		disk.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
	}
	return disk
}

// domainXML builds the domain document. Nothing here is a string
// template: every element is a libvirtxml struct.
func domainXML(s defineSpec) (string, error) {
	x := libvirtxml.Domain{
		Type:        s.domType,
		Name:        s.name,
		UUID:        s.uuid,
		Memory:      &libvirtxml.DomainMemory{Value: s.memoryMiB, Unit: "MiB"},
		VCPU:        &libvirtxml.DomainVCPU{Value: s.vcpus},
		OnPoweroff:  "destroy",
		OnReboot:    "restart",
		OnCrash:     "destroy",
		Features:    &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		OS:          &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "q35", Type: "hvm"}},
		Devices:     &libvirtxml.DomainDeviceList{},
		Description: "managed by vmflow",
	}
	if s.domType == "test" {
		x.OS.Type.Machine = ""
	}
	switch s.firmware {
	case "uefi":
		x.OS.Firmware = "efi"
	case "kernel":
		x.OS.Kernel, x.OS.Initrd, x.OS.Cmdline = s.kernel, s.initrd, s.cmdline
	}
	dv := x.Devices
	dv.Disks = append(dv.Disks, diskXML(s.boot, s.bootFormat, "vda", s.bootReadOnly))
	if s.varDisk != "" {
		dv.Disks = append(dv.Disks, diskXML(s.varDisk, s.varFormat, "vdb", false))
	}
	iface := libvirtxml.DomainInterface{
		MAC:   &libvirtxml.DomainInterfaceMAC{Address: s.mac},
		Model: &libvirtxml.DomainInterfaceModel{Type: "virtio"},
	}
	switch {
	case s.network == "nat":
		iface.Source = &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: "default"}}
	case strings.HasPrefix(s.network, "bridge:"):
		iface.Source = &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: strings.TrimPrefix(s.network, "bridge:")}}
	}
	dv.Hostdevs = hostdevs(s.pci)
	if s.network != "none" {
		dv.Interfaces = append(dv.Interfaces, iface)
	}
	if s.domType != "test" {
		// The guest agent's channel; libvirt picks the socket path.
		dv.Channels = append(dv.Channels, libvirtxml.DomainChannel{
			Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
			Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: "org.qemu.guest_agent.0"}},
		})
		// The serial console, logged to a file (libvirt adds the
		// matching <console> itself).
		serial := libvirtxml.DomainSerial{
			Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
		}
		if s.consoleLog != "" {
			serial.Log = &libvirtxml.DomainChardevLog{File: s.consoleLog, Append: "on"}
		}
		dv.Serials = append(dv.Serials, serial)
		dv.RNGs = append(dv.RNGs, libvirtxml.DomainRNG{Model: "virtio", Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}}})
	}
	return x.Marshal()
}

// ensureNetwork starts libvirt's default NAT network when it is defined
// but inactive.
func (d *driver) ensureNetwork(conn libvirtConn, network string, r *sdk.Request) error {
	if network != "nat" {
		return nil
	}
	nw, err := conn.NetworkLookupByName("default")
	if err != nil {
		return sdk.ArgError("network", "libvirt's \"default\" network is not there (%v): define it (virsh net-define), or use bridge:<name>", err)
	}
	active, err := conn.NetworkIsActive(nw)
	if err != nil {
		return err
	}
	if active == 0 {
		r.Log("starting libvirt's default network")
		if err := conn.NetworkCreate(nw); err != nil {
			return fmt.Errorf("starting libvirt's default network: %w", err)
		}
	}
	return nil
}

// resolveDisk turns a volume name (or an absolute path) into a path and
// format.
func (d *driver) resolveDisk(field, ref string) (path, format string, err error) {
	if strings.HasPrefix(ref, "/") {
		f, _, err := hypervisor.ImageInfo(ref)
		if err != nil && d.isLocal() {
			return "", "", sdk.ArgError(field, "%v", err)
		}
		if f == "" {
			f = "qcow2"
		}
		return ref, f, nil
	}
	_, _, vi, err := d.volumeArgInfo(field, ref)
	if err != nil {
		return "", "", err
	}
	return vi.path, vi.format, nil
}

// define is define's Run: the domain XML built from the arguments, and
// defined over the domain of that name if there is one (it must not run).
func (d *driver) define(ctx context.Context, r *sdk.Request) error {
	name := r.String("name")
	conn, err := d.client()
	if err != nil {
		return err
	}
	spec := defineSpecOf(r)
	if spec.pci, err = hypervisor.PCIDevices(r); err != nil {
		return err
	}
	if err := pciGivenElsewhere(conn, name, spec.pci); err != nil {
		return err
	}
	previous, err := d.claimDefinition(conn, r, &spec)
	if err != nil {
		return err
	}
	if err := d.completeSpec(conn, r, &spec); err != nil {
		return err
	}
	if err := d.ensureNetwork(conn, spec.network, r); err != nil {
		return err
	}
	doc, err := domainXML(spec)
	if err != nil {
		return err
	}
	flags, checked := d.defineFlags(ctx, spec)
	_, err = conn.DomainDefineXMLFlags(doc, flags)
	checked(err)
	if err != nil {
		return fmt.Errorf("defining domain %q: %w", name, err)
	}
	r.Log("defined %s (%s, uuid %s, mac %s)", name, spec.domType, spec.uuid, spec.mac)
	for k, v := range map[string]string{"name": name, "uuid": spec.uuid, "mac": spec.mac, "domain_type": spec.domType, "console_log": spec.consoleLog, "previous_xml": previous} {
		if err := r.Set(k, v); err != nil {
			return err
		}
	}
	return nil
}

// defineSpecOf is define's arguments as they are given.
func defineSpecOf(r *sdk.Request) defineSpec {
	return defineSpec{
		name: r.String("name"), uuid: r.String("uuid"), mac: r.String("mac"),
		memoryMiB: uint(r.Int("memory")), vcpus: uint(r.Int("vcpus")),
		bootReadOnly: r.Bool("boot_readonly"), firmware: r.String("firmware"),
		kernel: r.String("kernel"), initrd: r.String("initrd"), cmdline: r.String("cmdline"),
		network: r.String("network"), consoleLog: r.String("console_log"),
	}
}

// claimDefinition reads the definition define replaces ("" for a new
// domain), refusing a running domain, and keeps its UUID unless one is
// given; then claims the name with it. An attempt run again after an
// interruption takes what the first attempt replaced from its claim.
func (d *driver) claimDefinition(conn libvirtConn, r *sdk.Request, spec *defineSpec) (string, error) {
	name := spec.name
	previous := ""
	var earlier domainClaim
	claimed := r.Claimed(defineClaim(name), &earlier)
	if dom, err := conn.DomainLookupByName(name); err == nil {
		active, err := conn.DomainIsActive(dom)
		if err != nil {
			return "", err
		}
		if active != 0 {
			return "", sdk.ArgError("name", "domain %q is running; stop it before redefining it", name)
		}
		if previous, err = conn.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive); err != nil {
			return "", err
		}
		var old libvirtxml.Domain
		if err := old.Unmarshal(previous); err == nil && spec.uuid == "" {
			spec.uuid = old.UUID
		}
	} else if !isCode(err, libvirt.ErrNoDomain) {
		return "", err
	}
	if claimed {
		// An interrupted attempt of this step may have defined the
		// domain already: what it replaced is what this step replaces
		// (none: the domain is new, and the undo removes it).
		if earlier.PreviousXML != previous {
			r.Log("%s was defined by an interrupted attempt of this step; redefining it", name)
		}
		return earlier.PreviousXML, nil
	}
	return previous, r.Claim(defineClaim(name), domainClaim{PreviousXML: previous})
}

// completeSpec fills in what define works out itself: a new UUID, the
// MAC from the name, the console log's path, the domain type and the
// disks' paths and formats.
func (d *driver) completeSpec(conn libvirtConn, r *sdk.Request, spec *defineSpec) error {
	var err error
	if spec.uuid == "" {
		spec.uuid = hypervisor.NewUUID()
	}
	if spec.mac == "" {
		spec.mac = macFor(spec.name)
	}
	if spec.consoleLog == "" && d.uri.Scheme != "test" {
		spec.consoleLog = "/var/log/libvirt/qemu/" + spec.name + "-console.log"
	}
	if spec.domType, err = d.domainType(conn); err != nil {
		return err
	}
	if spec.boot, spec.bootFormat, err = d.resolveDisk("boot_volume", r.String("boot_volume")); err != nil {
		return err
	}
	if r.IsSet("var_volume") {
		if spec.varDisk, spec.varFormat, err = d.resolveDisk("var_volume", r.String("var_volume")); err != nil {
			return err
		}
	}
	return nil
}

// undoDefine is define's Undo.
func (d *driver) undoDefine(ctx context.Context, r *sdk.Request) error {
	name, prev := r.OutputString("name"), r.OutputString("previous_xml")
	if r.Interrupted() {
		var earlier domainClaim
		if name = r.String("name"); !r.Claimed(defineClaim(name), &earlier) {
			return nil
		}
		prev = earlier.PreviousXML
	}
	conn, dom, err := d.domain(name)
	if err != nil {
		return ignoreNoDomain(err)
	}
	if prev != "" {
		_, err := conn.DomainDefineXMLFlags(prev, 0)
		return err
	}
	_ = conn.DomainDestroyFlags(dom, 0)
	return d.undefine(conn, dom)
}
