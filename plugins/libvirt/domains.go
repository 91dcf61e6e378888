package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// domain looks up a domain by name.
func (d *driver) domain(name string) (libvirtConn, libvirt.Domain, error) {
	conn, err := d.client()
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

func (d *driver) state(conn libvirtConn, dom libvirt.Domain) (string, error) {
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

// waitState polls until the domain reaches one of the states or ctx ends.
func waitState(ctx context.Context, conn libvirtConn, dom libvirt.Domain, timeout time.Duration, want ...libvirt.DomainState) (bool, error) {
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
		if !time.Now().Before(deadline) {
			return false, nil
		}
		if err := sleepUntil(ctx, 200*time.Millisecond, deadline); err != nil {
			return false, err
		}
	}
}

// shutdownRetry is how often shutdown asks the guest again.
const shutdownRetry = 5 * time.Second

const undefineFlags = libvirt.DomainUndefineManagedSave | libvirt.DomainUndefineSnapshotsMetadata |
	libvirt.DomainUndefineNvram | libvirt.DomainUndefineCheckpointsMetadata

func (d *driver) undefine(conn libvirtConn, dom libvirt.Domain) error {
	err := conn.DomainUndefineFlags(dom, undefineFlags)
	if err != nil && d.uri.Scheme == "test" {
		// The test driver knows no NVRAM or checkpoints.
		err = conn.DomainUndefineFlags(dom, libvirt.DomainUndefineSnapshotsMetadata|libvirt.DomainUndefineManagedSave)
	}
	return err
}

// startDomain starts a domain and records when, for wait_ip.
func startDomain(conn libvirtConn, dom libvirt.Domain, r *sdk.Request) error {
	now := time.Now()
	if _, err := conn.DomainCreateWithFlags(dom, 0); err != nil {
		return fmt.Errorf("starting %q: %w", dom.Name, err)
	}
	if err := markStarted(conn, dom, now); err != nil {
		r.Logger().Warn("cannot record the start time; wait_ip may take an old lease", "error", err)
	}
	return nil
}

// domainState reads a domain's state as libvirt numbers it.
func domainState(conn libvirtConn, dom libvirt.Domain) (libvirt.DomainState, error) {
	st, _, err := conn.DomainGetState(dom, 0)
	return libvirt.DomainState(st), err
}

// currentIP is the domain's IPv4 address if one look finds it (the guest
// agent, this boot's lease, ARP: as wait_ip, without waiting); "" when the
// domain does not run or nobody knows yet.
func currentIP(conn libvirtConn, dom libvirt.Domain) string {
	if st, err := domainState(conn, dom); err != nil || st != libvirt.DomainRunning {
		return ""
	}
	n, err := domainNIC(conn, dom)
	if err != nil {
		return ""
	}
	ip, _, _ := findIP(conn, dom, n, startedAt(conn, dom))
	return ip
}

// domainActions implements the contract's VM actions on libvirt domains.
func domainActions(d *driver, b *hypervisor.Backend) {
	b.HostCheck = hypervisor.Impl{
		Note:     "libvirt's node information and node devices, which answer for a remote host too; a device of another domain, running or not, counts as given.",
		Validate: func(ctx context.Context, r *sdk.Request) error { return d.hostCheck(r, false) },
		Run:      func(ctx context.Context, r *sdk.Request) error { return d.hostCheck(r, true) },
	}
	b.Define = hypervisor.Impl{
		Note: "A libvirt domain: vda is the boot disk and vdb the /var disk, each a volume of vmflow's pool or an absolute path on the libvirt host; kernel and initrd are paths on that host; UEFI is OVMF with per-VM NVRAM; nat is libvirt's default network, started if inactive; the MAC is in QEMU's 52:54:00 range; the serial console is logged to console_log (default /var/log/libvirt/qemu/<name>-console.log). The UUID stays across redefinitions, and previous_xml is the replaced domain XML.",
		Run: func(ctx context.Context, r *sdk.Request) error {
			name := r.String("name")
			conn, err := d.client()
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
			if spec.pci, err = hypervisor.PCIDevices(r); err != nil {
				return err
			}
			if err := pciGivenElsewhere(conn, name, spec.pci); err != nil {
				return err
			}
			previous := ""
			var earlier domainClaim
			claimed := r.Claimed(defineClaim(name), &earlier)
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
			if claimed {
				// An interrupted attempt of this step may have defined the
				// domain already: what it replaced is what this step
				// replaces (none: the domain is new, and the undo removes
				// it).
				if earlier.PreviousXML != previous {
					r.Log("%s was defined by an interrupted attempt of this step; redefining it", name)
				}
				previous = earlier.PreviousXML
			} else if err := r.Claim(defineClaim(name), domainClaim{PreviousXML: previous}); err != nil {
				return err
			}
			if spec.uuid == "" {
				spec.uuid = hypervisor.NewUUID()
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
			name, prev := r.OutputString("name"), r.OutputString("previous_xml")
			if r.Interrupted() {
				var earlier domainClaim
				if name = r.String("name"); !r.Claimed(defineClaim(name), &earlier) {
					return nil
				}
				prev = earlier.PreviousXML
			}
			conn, dom, err := d.domain(name)
			if isNoDomain(err) {
				return nil
			}
			if err != nil {
				return err
			}
			if prev != "" {
				_, err := conn.DomainDefineXMLFlags(prev, 0)
				return err
			}
			_ = conn.DomainDestroyFlags(dom, 0)
			return d.undefine(conn, dom)
		},
	}
	b.Undefine = hypervisor.Impl{
		Note: "NVRAM, snapshot and checkpoint metadata go with the definition; force destroys a running domain first.",
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
	}
	b.Start = hypervisor.Impl{
		Note: "It records the boot time in the domain's metadata, so that wait_ip takes only this boot's DHCP lease.",
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
			var earlier powerClaim
			if active == 0 {
				now := time.Now()
				if err := r.Claim(startClaim(dom.Name), powerClaim{At: now}); err != nil {
					return err
				}
				if err := startDomain(conn, dom, r); err != nil {
					return err
				}
				started = true
			} else if r.Claimed(startClaim(dom.Name), &earlier) && !earlier.At.IsZero() {
				// An interrupted attempt of this step started it: it is
				// this step's start, for the undo and for wait_ip.
				r.Log("%s was started by an interrupted attempt of this step", dom.Name)
				started = true
				if err := markStarted(conn, dom, earlier.At); err != nil {
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
			if !r.Changed("started", startClaim(r.String("name"))) {
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
	}
	b.Shutdown = hypervisor.Impl{
		Note: "Its undo starts the domain as start does.",
		Run: func(ctx context.Context, r *sdk.Request) error {
			name := r.String("name")
			conn, dom, err := d.domain(name)
			if err != nil {
				return sdk.ArgError("name", "%v", err)
			}
			if active, err := conn.DomainIsActive(dom); err != nil {
				return err
			} else if active == 0 {
				// Off already: by an interrupted attempt of this step
				// (which claimed it running), or before the step.
				stopped := r.Claimed(shutdownClaim(name), nil)
				if stopped {
					r.Log("%s was shut down by an interrupted attempt of this step", name)
				}
				return errors.Join(r.Set("state", "shut off"), r.Set("stopped", stopped))
			}
			if err := r.Claim(shutdownClaim(name), powerClaim{At: time.Now()}); err != nil {
				return err
			}
			flags := map[string]libvirt.DomainShutdownFlagValues{
				"auto":  0,
				"acpi":  libvirt.DomainShutdownAcpiPowerBtn,
				"agent": libvirt.DomainShutdownGuestAgent,
			}[r.String("mode")]
			// A guest still booting misses the request: its ACPI handler
			// or guest agent may not be up yet. Ask again every few
			// seconds until the step's deadline.
			deadline := stepDeadline(r)
			timeout := time.Until(deadline).Round(time.Second)
			ok := false
			for asked := 0; !ok && time.Now().Before(deadline); asked++ {
				if err := conn.DomainShutdownFlags(dom, flags); err != nil {
					if active, aerr := conn.DomainIsActive(dom); aerr == nil && active == 0 {
						ok = true
						break
					}
					if asked == 0 {
						return fmt.Errorf("shutting %q down: %w", name, err)
					}
				}
				wait := min(shutdownRetry, time.Until(deadline))
				var err error
				if ok, err = waitState(ctx, conn, dom, wait, libvirt.DomainShutoff, libvirt.DomainCrashed); err != nil {
					return err
				}
				if !ok && asked == 0 {
					r.Log("%s has not shut down yet; asking again every %s", name, shutdownRetry)
				}
			}
			if !ok {
				return fmt.Errorf("domain %q did not shut down within %s (mode %s); it is still running. Check the guest, or force it off with the destroy action", name, timeout, r.String("mode"))
			}
			return errors.Join(r.Set("state", "shut off"), r.Set("stopped", true))
		},
		Undo: func(ctx context.Context, r *sdk.Request) error {
			interrupted := r.Interrupted()
			if !r.Changed("stopped", shutdownClaim(r.String("name"))) {
				return nil
			}
			conn, dom, err := d.domain(r.String("name"))
			if isNoDomain(err) {
				return nil
			}
			if err != nil {
				return err
			}
			if interrupted {
				// The interrupted attempt may have asked the guest to
				// power off, and it may still be on its way down: nothing
				// tells. Take it all the way (asking again does no harm),
				// then start it, so that it does not go off after this
				// undo. A guest that will not stop keeps running.
				if active, err := conn.DomainIsActive(dom); err == nil && active != 0 {
					flags := map[string]libvirt.DomainShutdownFlagValues{"acpi": libvirt.DomainShutdownAcpiPowerBtn, "agent": libvirt.DomainShutdownGuestAgent}[r.String("mode")]
					r.Log("%s may be shutting down after the interrupted attempt: waiting for it to stop, to start it again", r.String("name"))
					deadline := stepDeadline(r)
					for off := false; !off && time.Now().Before(deadline); {
						_ = conn.DomainShutdownFlags(dom, flags)
						if off, err = waitState(ctx, conn, dom, min(shutdownRetry, time.Until(deadline)), libvirt.DomainShutoff, libvirt.DomainCrashed); err != nil {
							return err
						}
					}
				}
			}
			if active, err := conn.DomainIsActive(dom); err != nil || active != 0 {
				return err
			}
			r.Log("starting %s again", r.String("name"))
			return startDomain(conn, dom, r)
		},
	}
	b.Suspend = hypervisor.Impl{
		Note: "virDomainSuspend: QEMU stops the guest's CPUs and drains its disks' I/O; its undo is virDomainResume.",
		Run: func(ctx context.Context, r *sdk.Request) error {
			conn, dom, err := d.domain(r.String("name"))
			if err != nil {
				return sdk.ArgError("name", "%v", err)
			}
			st, err := domainState(conn, dom)
			if err != nil {
				return err
			}
			if st != libvirt.DomainRunning && st != libvirt.DomainBlocked {
				if st == libvirt.DomainPaused && r.Claimed(suspendClaim(r.String("name")), nil) {
					// An interrupted attempt of this step paused it: the
					// pause is this step's, for the undo.
					r.Log("%s was paused by an interrupted attempt of this step", r.String("name"))
					return r.Set("suspended", true)
				}
				r.Log("%s is %s: nothing to pause", r.String("name"), stateNames[st])
				return r.Set("suspended", false)
			}
			if err := r.Claim(suspendClaim(r.String("name")), nil); err != nil {
				return err
			}
			if err := conn.DomainSuspend(dom); err != nil {
				return fmt.Errorf("pausing %q: %w", r.String("name"), err)
			}
			r.Log("paused %s", r.String("name"))
			return r.Set("suspended", true)
		},
		Undo: func(ctx context.Context, r *sdk.Request) error {
			if !r.Changed("suspended", suspendClaim(r.String("name"))) {
				return nil
			}
			conn, dom, err := d.domain(r.String("name"))
			if isNoDomain(err) {
				return nil
			}
			if err != nil {
				return err
			}
			if st, err := domainState(conn, dom); err != nil || st != libvirt.DomainPaused {
				return err
			}
			r.Log("resuming %s", r.String("name"))
			return conn.DomainResume(dom)
		},
	}
	b.Resume = hypervisor.Impl{
		Note: "virDomainResume.",
		Run: func(ctx context.Context, r *sdk.Request) error {
			conn, dom, err := d.domain(r.String("name"))
			if err != nil {
				return sdk.ArgError("name", "%v", err)
			}
			st, err := domainState(conn, dom)
			if err != nil {
				return err
			}
			if st != libvirt.DomainPaused {
				r.Log("%s is %s: nothing to resume", r.String("name"), stateNames[st])
				return r.Set("resumed", false)
			}
			if err := conn.DomainResume(dom); err != nil {
				return fmt.Errorf("resuming %q: %w", r.String("name"), err)
			}
			r.Log("resumed %s", r.String("name"))
			return r.Set("resumed", true)
		},
	}
	b.Destroy = hypervisor.Impl{
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
	}
	b.Reboot = hypervisor.Impl{
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
	}
	b.State = hypervisor.Impl{
		Note: "The state is libvirt's word for it; the address comes from the guest agent, else this boot's DHCP lease, else (bridged guests) ARP.",
		Run: func(ctx context.Context, r *sdk.Request) error {
			conn, dom, err := d.domain(r.String("name"))
			if isNoDomain(err) {
				return errors.Join(r.Set("exists", false), r.Set("state", ""), r.Set("uuid", ""), r.Set("ip", ""))
			}
			if err != nil {
				return err
			}
			st, err := d.state(conn, dom)
			if err != nil {
				return err
			}
			return errors.Join(r.Set("exists", true), r.Set("state", st), r.Set("uuid", formatUUID(dom.UUID)), r.Set("ip", currentIP(conn, dom)))
		},
	}
	b.List = hypervisor.Impl{
		Run: func(ctx context.Context, r *sdk.Request) error {
			conn, err := d.client()
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
	}
	b.EnsureAbsent = hypervisor.Impl{
		Note: "It looks the domain up on the connection, and the volumes in vmflow's pool.",
		Run: func(ctx context.Context, r *sdk.Request) error {
			vm, vols := r.String("vm"), r.Strings("volumes")
			checked := []string{}
			state := ""
			if vm != "" {
				checked = append(checked, "VM "+vm)
				conn, dom, err := d.domain(vm)
				switch {
				case isNoDomain(err):
				case err != nil:
					return err
				default:
					if state, err = d.state(conn, dom); err != nil {
						return err
					}
				}
			}
			var found []string
			for _, v := range vols {
				checked = append(checked, "volume "+v)
				exists, err := d.volumeExists(v)
				if err != nil {
					return err
				}
				if exists {
					found = append(found, v)
				}
			}
			if err := hypervisor.AbsentError(vm, state, found); err != nil {
				return err
			}
			return r.Set("checked", checked)
		},
	}
	b.VolumeList = volumeListAction(d)
	b.WaitIP = waitIPAction(d)
	b.GuestExec = guestExecAction(d)
	b.Console = consoleAction(d)
}

func formatUUID(u libvirt.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
