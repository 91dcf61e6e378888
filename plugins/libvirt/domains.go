package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/core/sdk"
)

// domain looks up a domain by name.
func (d *driver) domain(name string) (*libvirt.Libvirt, libvirt.Domain, error) {
	conn, err := d.connect()
	if err != nil {
		return nil, libvirt.Domain{}, err
	}
	dom, err := conn.DomainLookupByName(name)
	if isCode(err, libvirt.ErrNoDomain) {
		return conn, dom, fmt.Errorf("no domain %q on %s", name, d.uri)
	}
	if err != nil {
		return conn, dom, fmt.Errorf("domain %q: %w", name, err)
	}
	return conn, dom, nil
}

func isNoDomain(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "no domain") }

var stateNames = map[libvirt.DomainState]string{
	libvirt.DomainNostate:     "no state",
	libvirt.DomainRunning:     "running",
	libvirt.DomainBlocked:     "blocked",
	libvirt.DomainPaused:      "paused",
	libvirt.DomainShutdown:    "shutting down",
	libvirt.DomainShutoff:     "shut off",
	libvirt.DomainCrashed:     "crashed",
	libvirt.DomainPmsuspended: "suspended",
}

func (d *driver) state(conn *libvirt.Libvirt, dom libvirt.Domain) (string, error) {
	st, _, err := conn.DomainGetState(dom, 0)
	if err != nil {
		return "", err
	}
	return stateNames[libvirt.DomainState(st)], nil
}

// macFor derives a stable MAC address from a domain name, in QEMU's
// locally administered 52:54:00 range, so redefining keeps the address.
func macFor(name string) string {
	s := sha256.Sum256([]byte("vmflow-mac:" + name))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", s[0], s[1], s[2])
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
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
func (d *driver) ensureNetwork(conn *libvirt.Libvirt, network string, r *sdk.Request) error {
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
		f, _, err := imageInfo(ref)
		if err != nil && d.isLocal() {
			return "", "", sdk.ArgError(field, "%v", err)
		}
		if f == "" {
			f = "qcow2"
		}
		return ref, f, nil
	}
	conn, _, vol, err := d.volume(ref)
	if err != nil {
		return "", "", sdk.ArgError(field, "%v", err)
	}
	vi, err := d.volInfo(conn, vol)
	if err != nil {
		return "", "", err
	}
	return vi.path, vi.format, nil
}

func validNetwork(ctx context.Context, r *sdk.Request) error {
	if !r.Known("network") {
		return nil
	}
	n := r.String("network")
	if n == "nat" || n == "none" {
		return nil
	}
	if br, ok := strings.CutPrefix(n, "bridge:"); ok && checkName("bridge", br) == nil {
		return nil
	}
	return sdk.ArgError("network", "network must be nat, none or bridge:<name>, got %q", n)
}

func validFirmware(ctx context.Context, r *sdk.Request) error {
	if !r.Known("firmware") {
		return nil
	}
	switch r.String("firmware") {
	case "uefi":
	case "kernel":
		if r.Known("kernel") && !r.IsSet("kernel") {
			return sdk.ArgError("kernel", "firmware = \"kernel\" (direct kernel boot) needs kernel, and usually initrd and cmdline")
		}
	default:
		return sdk.ArgError("firmware", "firmware must be uefi or kernel, got %q", r.String("firmware"))
	}
	return nil
}

func validMAC(ctx context.Context, r *sdk.Request) error {
	if !r.Known("mac") || !r.IsSet("mac") {
		return nil
	}
	if hw, err := net.ParseMAC(r.String("mac")); err != nil || len(hw) != 6 || hw[0]&1 == 1 {
		return sdk.ArgError("mac", "invalid MAC address %q: write six hex bytes, 52:54:00:12:34:56, not a multicast address", r.String("mac"))
	}
	return nil
}

func validUUID(ctx context.Context, r *sdk.Request) error {
	if !r.Known("uuid") || !r.IsSet("uuid") {
		return nil
	}
	u := strings.ReplaceAll(r.String("uuid"), "-", "")
	if len(u) != 32 || strings.Trim(strings.ToLower(u), "0123456789abcdef") != "" {
		return sdk.ArgError("uuid", "invalid UUID %q", r.String("uuid"))
	}
	return nil
}

func positive(field string) func(ctx context.Context, r *sdk.Request) error {
	return func(ctx context.Context, r *sdk.Request) error {
		if r.Known(field) && r.IsSet(field) && r.Int(field) < 1 {
			return sdk.ArgError(field, "must be at least 1")
		}
		return nil
	}
}

// waitState polls until the domain reaches one of the states or ctx ends.
func waitState(ctx context.Context, conn *libvirt.Libvirt, dom libvirt.Domain, timeout time.Duration, want ...libvirt.DomainState) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, _, err := conn.DomainGetState(dom, 0)
		if err != nil {
			return false, err
		}
		for _, w := range want {
			if libvirt.DomainState(st) == w {
				return true, nil
			}
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

const undefineFlags = libvirt.DomainUndefineManagedSave | libvirt.DomainUndefineSnapshotsMetadata |
	libvirt.DomainUndefineNvram | libvirt.DomainUndefineCheckpointsMetadata

func (d *driver) undefine(conn *libvirt.Libvirt, dom libvirt.Domain) error {
	err := conn.DomainUndefineFlags(dom, undefineFlags)
	if err != nil && d.uri.Scheme == "test" {
		// The test driver knows no NVRAM or checkpoints.
		err = conn.DomainUndefineFlags(dom, libvirt.DomainUndefineSnapshotsMetadata|libvirt.DomainUndefineManagedSave)
	}
	return err
}

func domainActions(d *driver) []*sdk.Action {
	nameIn := sdk.String("name", "Domain name: "+NamePatternDoc+".").Required()
	return []*sdk.Action{
		{
			Name: "define",
			Description: "Defines (or redefines, when shut off) a domain: virtio boot disk (read-only by default) and /var disk, UEFI or direct kernel boot, " +
				"NAT or bridged network with a fixed MAC, a guest-agent channel, and the serial console logged to a file. " +
				"Refuses to redefine a running domain. Its undo restores the previous definition, or removes the new one.",
			Inputs: []sdk.Attr{
				nameIn,
				sdk.String("uuid", "A fixed UUID. Default: the existing domain's, else a new random one."),
				sdk.Number("memory", "Memory in MiB.").Default(1024),
				sdk.Number("vcpus", "Virtual CPUs.").Default(1),
				sdk.String("boot_volume", "The boot disk (vda): a volume name in vmflow's pool, or an absolute path.").Required(),
				sdk.Bool("boot_readonly", "Attach the boot disk read-only.").Default(true),
				sdk.String("var_volume", "The /var disk (vdb), read-write: a volume name or an absolute path."),
				sdk.String("firmware", "uefi (OVMF, per-VM NVRAM) or kernel (direct kernel boot).").Default("uefi"),
				sdk.String("kernel", "Direct kernel boot: the kernel's path on the libvirt host."),
				sdk.String("initrd", "Direct kernel boot: the initrd's path."),
				sdk.String("cmdline", "Direct kernel boot: the kernel command line."),
				sdk.String("network", "nat (libvirt's default network, started if inactive), bridge:<name>, or none.").Default("nat"),
				sdk.String("mac", "A fixed MAC address. Default: derived from the name, so it never changes."),
				sdk.String("console_log", "Where the serial console is logged on the libvirt host. Default: /var/log/libvirt/qemu/<name>-console.log."),
			},
			Outputs: []sdk.Attr{
				sdk.String("name", "The domain name."),
				sdk.String("uuid", "Its UUID."),
				sdk.String("mac", "Its MAC address."),
				sdk.String("domain_type", "kvm, or qemu (TCG) when KVM is not usable."),
				sdk.String("console_log", "The console log file."),
				sdk.String("previous_xml", "The definition it replaced, if any (for the undo)."),
			},
			Validate: checks(validName("name", "domain"), validNetwork, validFirmware, validMAC, validUUID, positive("memory"), positive("vcpus")),
			Run: func(ctx context.Context, r *sdk.Request) error {
				name := r.String("name")
				conn, err := d.connect()
				if err != nil {
					return err
				}
				spec := defineSpec{
					name: name, uuid: r.String("uuid"), mac: r.String("mac"),
					memoryMiB: uint(r.Int("memory")), vcpus: uint(r.Int("vcpus")),
					bootReadOnly: r.Bool("boot_readonly"), firmware: r.String("firmware"),
					kernel: r.String("kernel"), initrd: r.String("initrd"), cmdline: r.String("cmdline"),
					network: r.String("network"), consoleLog: r.String("console_log"),
				}
				previous := ""
				if dom, err := conn.DomainLookupByName(name); err == nil {
					active, err := conn.DomainIsActive(dom)
					if err != nil {
						return err
					}
					if active != 0 {
						return sdk.ArgError("name", "domain %q is running; stop it before redefining it", name)
					}
					if previous, err = conn.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive); err != nil {
						return err
					}
					var old libvirtxml.Domain
					if err := old.Unmarshal(previous); err == nil && spec.uuid == "" {
						spec.uuid = old.UUID
					}
				} else if !isCode(err, libvirt.ErrNoDomain) {
					return err
				}
				if spec.uuid == "" {
					spec.uuid = newUUID()
				}
				if spec.mac == "" {
					spec.mac = macFor(name)
				}
				if spec.consoleLog == "" && d.uri.Scheme != "test" {
					spec.consoleLog = "/var/log/libvirt/qemu/" + name + "-console.log"
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
				if err := d.ensureNetwork(conn, spec.network, r); err != nil {
					return err
				}
				doc, err := domainXML(spec)
				if err != nil {
					return err
				}
				if _, err := conn.DomainDefineXMLFlags(doc, libvirt.DomainDefineValidate); err != nil {
					return fmt.Errorf("defining domain %q: %w", name, err)
				}
				r.Log("defined %s (%s, uuid %s, mac %s)", name, spec.domType, spec.uuid, spec.mac)
				for k, v := range map[string]string{"name": name, "uuid": spec.uuid, "mac": spec.mac, "domain_type": spec.domType, "console_log": spec.consoleLog, "previous_xml": previous} {
					if err := r.Set(k, v); err != nil {
						return err
					}
				}
				return nil
			},
			Undo: func(ctx context.Context, r *sdk.Request) error {
				conn, dom, err := d.domain(r.OutputString("name"))
				if isNoDomain(err) {
					return nil
				}
				if err != nil {
					return err
				}
				if prev := r.OutputString("previous_xml"); prev != "" {
					_, err := conn.DomainDefineXMLFlags(prev, 0)
					return err
				}
				_ = conn.DomainDestroyFlags(dom, 0)
				return d.undefine(conn, dom)
			},
		},
		{
			Name:        "undefine",
			Description: "Removes a domain's definition with its NVRAM, snapshot and checkpoint metadata. Its disks stay (volume_delete removes them). Refuses a running domain unless force is set.",
			Inputs: []sdk.Attr{
				nameIn,
				sdk.Bool("force", "Force a running domain off first.").Default(false),
				sdk.Bool("missing_ok", "Succeed when the domain does not exist.").Default(false),
			},
			Outputs:  []sdk.Attr{sdk.Bool("undefined", "Whether a domain was removed.")},
			Validate: validName("name", "domain"),
			Run: func(ctx context.Context, r *sdk.Request) error {
				conn, dom, err := d.domain(r.String("name"))
				if isNoDomain(err) && r.Bool("missing_ok") {
					return r.Set("undefined", false)
				}
				if err != nil {
					return sdk.ArgError("name", "%v", err)
				}
				active, err := conn.DomainIsActive(dom)
				if err != nil {
					return err
				}
				if active != 0 {
					if !r.Bool("force") {
						return sdk.ArgError("name", "domain %q is running; stop it first, or set force = true", r.String("name"))
					}
					if err := conn.DomainDestroyFlags(dom, 0); err != nil {
						return fmt.Errorf("forcing %q off: %w", r.String("name"), err)
					}
				}
				if err := d.undefine(conn, dom); err != nil {
					return fmt.Errorf("undefining %q: %w", r.String("name"), err)
				}
				return r.Set("undefined", true)
			},
		},
		{
			Name:        "start",
			Description: "Starts a domain (nothing to do when it runs already). Its undo forces it off again.",
			Inputs:      []sdk.Attr{nameIn},
			Outputs:     []sdk.Attr{sdk.Bool("started", "Whether this step started it."), sdk.String("state", "Its state afterwards.")},
			Validate:    validName("name", "domain"),
			Run: func(ctx context.Context, r *sdk.Request) error {
				conn, dom, err := d.domain(r.String("name"))
				if err != nil {
					return sdk.ArgError("name", "%v", err)
				}
				active, err := conn.DomainIsActive(dom)
				if err != nil {
					return err
				}
				started := false
				if active == 0 {
					now := time.Now()
					if _, err := conn.DomainCreateWithFlags(dom, 0); err != nil {
						return fmt.Errorf("starting %q: %w", r.String("name"), err)
					}
					started = true
					if err := markStarted(conn, dom, now); err != nil {
						r.Logger().Warn("cannot record the start time; wait_ip may take an old lease", "error", err)
					}
				}
				st, err := d.state(conn, dom)
				if err != nil {
					return err
				}
				if err := r.Set("state", st); err != nil {
					return err
				}
				return r.Set("started", started)
			},
			Undo: func(ctx context.Context, r *sdk.Request) error {
				if v := r.Output("started"); v.IsNull() || v.False() {
					return nil
				}
				conn, dom, err := d.domain(r.String("name"))
				if isNoDomain(err) {
					return nil
				}
				if err != nil {
					return err
				}
				if active, _ := conn.DomainIsActive(dom); active != 0 {
					return conn.DomainDestroyFlags(dom, 0)
				}
				return nil
			},
		},
		{
			Name:        "shutdown",
			Description: "Asks the guest to power off (ACPI, the guest agent, or both) and waits; after the timeout it fails clearly, leaving the domain running.",
			Inputs: []sdk.Attr{
				nameIn,
				sdk.String("mode", "auto (agent, else ACPI), acpi or agent.").Default("auto"),
				sdk.Number("timeout", "Seconds to wait.").Default(120),
			},
			Outputs: []sdk.Attr{sdk.String("state", "Its state afterwards.")},
			Validate: checks(validName("name", "domain"), positive("timeout"), func(ctx context.Context, r *sdk.Request) error {
				if r.Known("mode") {
					switch r.String("mode") {
					case "auto", "acpi", "agent":
					default:
						return sdk.ArgError("mode", "mode must be auto, acpi or agent")
					}
				}
				return nil
			}),
			Run: func(ctx context.Context, r *sdk.Request) error {
				name := r.String("name")
				conn, dom, err := d.domain(name)
				if err != nil {
					return sdk.ArgError("name", "%v", err)
				}
				if active, err := conn.DomainIsActive(dom); err != nil {
					return err
				} else if active == 0 {
					return r.Set("state", "shut off")
				}
				flags := map[string]libvirt.DomainShutdownFlagValues{
					"auto":  0,
					"acpi":  libvirt.DomainShutdownAcpiPowerBtn,
					"agent": libvirt.DomainShutdownGuestAgent,
				}[r.String("mode")]
				if err := conn.DomainShutdownFlags(dom, flags); err != nil {
					return fmt.Errorf("shutting %q down: %w", name, err)
				}
				timeout := time.Duration(r.Int("timeout")) * time.Second
				ok, err := waitState(ctx, conn, dom, timeout, libvirt.DomainShutoff, libvirt.DomainCrashed)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("domain %q did not shut down within %s (mode %s); it is still running. Check the guest, or force it off with the destroy action", name, timeout, r.String("mode"))
				}
				return r.Set("state", "shut off")
			},
		},
		{
			Name:        "destroy",
			Description: "Forces a domain off at once, like pulling the plug (nothing to do when it is off).",
			Inputs:      []sdk.Attr{nameIn},
			Outputs:     []sdk.Attr{sdk.Bool("was_running", "Whether it was running.")},
			Validate:    validName("name", "domain"),
			Run: func(ctx context.Context, r *sdk.Request) error {
				conn, dom, err := d.domain(r.String("name"))
				if err != nil {
					return sdk.ArgError("name", "%v", err)
				}
				active, err := conn.DomainIsActive(dom)
				if err != nil {
					return err
				}
				if active != 0 {
					if err := conn.DomainDestroyFlags(dom, 0); err != nil {
						return fmt.Errorf("forcing %q off: %w", r.String("name"), err)
					}
				}
				return r.Set("was_running", active != 0)
			},
		},
		{
			Name:        "reboot",
			Description: "Asks the guest to reboot (ACPI or the guest agent).",
			Inputs: []sdk.Attr{
				nameIn,
				sdk.String("mode", "auto, acpi or agent.").Default("auto"),
			},
			Validate: validName("name", "domain"),
			Run: func(ctx context.Context, r *sdk.Request) error {
				conn, dom, err := d.domain(r.String("name"))
				if err != nil {
					return sdk.ArgError("name", "%v", err)
				}
				flags := map[string]libvirt.DomainRebootFlagValues{
					"auto":  0,
					"acpi":  libvirt.DomainRebootAcpiPowerBtn,
					"agent": libvirt.DomainRebootGuestAgent,
				}[r.String("mode")]
				if err := conn.DomainReboot(dom, flags); err != nil {
					return fmt.Errorf("rebooting %q: %w", r.String("name"), err)
				}
				return nil
			},
		},
		{
			Name:        "state",
			Description: "Reports whether a domain exists and its state.",
			Inputs:      []sdk.Attr{nameIn},
			Outputs: []sdk.Attr{
				sdk.Bool("exists", "Whether the domain is defined."),
				sdk.String("state", "running, shut off, paused, crashed, …; \"\" when it does not exist."),
				sdk.String("uuid", "Its UUID."),
			},
			Validate: validName("name", "domain"),
			Run: func(ctx context.Context, r *sdk.Request) error {
				conn, dom, err := d.domain(r.String("name"))
				if isNoDomain(err) {
					return errors.Join(r.Set("exists", false), r.Set("state", ""), r.Set("uuid", ""))
				}
				if err != nil {
					return err
				}
				st, err := d.state(conn, dom)
				if err != nil {
					return err
				}
				return errors.Join(r.Set("exists", true), r.Set("state", st), r.Set("uuid", formatUUID(dom.UUID)))
			},
		},
		{
			Name:        "list",
			Description: "Lists domains, optionally those whose names start with a prefix.",
			Inputs:      []sdk.Attr{sdk.String("prefix", "Only names starting with this.").Default("")},
			Outputs: []sdk.Attr{
				sdk.StringList("names", "Domain names, sorted."),
				sdk.StringMap("states", "Each domain's state."),
			},
			Run: func(ctx context.Context, r *sdk.Request) error {
				conn, err := d.connect()
				if err != nil {
					return err
				}
				doms, _, err := conn.ConnectListAllDomains(1, 0)
				if err != nil {
					return err
				}
				names := []string{}
				states := map[string]string{}
				for _, dom := range doms {
					if !strings.HasPrefix(dom.Name, r.String("prefix")) {
						continue
					}
					st, err := d.state(conn, dom)
					if err != nil {
						continue // it went away meanwhile
					}
					names = append(names, dom.Name)
					states[dom.Name] = st
				}
				sort.Strings(names)
				return errors.Join(r.Set("names", names), r.Set("states", states))
			},
		},
		waitIPAction(d),
		guestExecAction(d),
		consoleAction(d),
	}
}

func formatUUID(u libvirt.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
