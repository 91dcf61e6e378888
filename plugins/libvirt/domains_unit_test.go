package main

import (
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// Unit tests of the domain actions' logic, on fakeLibvirt: no libvirtd.

// parseDomain reads a domain document back.
func parseDomain(t *testing.T, doc string) libvirtxml.Domain {
	t.Helper()
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return x
}

// domainXML for a qemu guest: q35, UEFI, the read-only boot disk and the
// /var disk on virtio, the NAT network with the MAC given, the guest
// agent's channel, the serial console logged, a virtio RNG.
func TestUnitDomainXMLForQEMU(t *testing.T) {
	doc, err := domainXML(defineSpec{
		name: "vm", uuid: "6f1c0e3a-5d8e-4f7b-9a44-0123456789ab", mac: "52:54:00:01:02:03", domType: "kvm",
		memoryMiB: 2048, vcpus: 2, boot: "/pool/boot", bootFormat: "qcow2", bootReadOnly: true,
		varDisk: "/pool/var", varFormat: "raw", firmware: "uefi", network: "nat", consoleLog: "/log/vm.log",
	})
	if err != nil {
		t.Fatal(err)
	}
	x := parseDomain(t, doc)
	if x.Type != "kvm" || x.OS.Type.Machine != "q35" || x.OS.Firmware != "efi" || x.Memory.Value != 2048 || x.Memory.Unit != "MiB" || x.VCPU.Value != 2 {
		t.Fatalf("domain: %s", doc)
	}
	disks := x.Devices.Disks
	if len(disks) != 2 || disks[0].Target.Dev != "vda" || disks[0].ReadOnly == nil || disks[0].Source.File.File != "/pool/boot" || disks[0].Driver.Type != "qcow2" ||
		disks[1].Target.Dev != "vdb" || disks[1].ReadOnly != nil || disks[1].Driver.Type != "raw" || disks[1].Target.Bus != "virtio" {
		t.Fatalf("disks: %s", doc)
	}
	ifs := x.Devices.Interfaces
	if len(ifs) != 1 || ifs[0].MAC.Address != "52:54:00:01:02:03" || ifs[0].Source.Network == nil || ifs[0].Source.Network.Network != "default" || ifs[0].Model.Type != "virtio" {
		t.Fatalf("interface: %s", doc)
	}
	if len(x.Devices.Channels) != 1 || x.Devices.Channels[0].Target.VirtIO.Name != "org.qemu.guest_agent.0" {
		t.Fatalf("no guest agent channel: %s", doc)
	}
	if len(x.Devices.Serials) != 1 || x.Devices.Serials[0].Log == nil || x.Devices.Serials[0].Log.File != "/log/vm.log" || len(x.Devices.RNGs) != 1 {
		t.Fatalf("serial and rng: %s", doc)
	}
}

// domainXML for libvirt's test driver, direct kernel boot and a bridge:
// no machine type and no devices the test driver does not know; "none"
// has no interface at all; PCI devices are managed hostdevs.
func TestUnitDomainXMLVariants(t *testing.T) {
	doc, err := domainXML(defineSpec{name: "t", domType: "test", boot: "/b", bootFormat: "qcow2", firmware: "kernel",
		kernel: "/k", initrd: "/i", cmdline: "console=ttyS0", network: "bridge:br0", mac: "52:54:00:00:00:01"})
	if err != nil {
		t.Fatal(err)
	}
	x := parseDomain(t, doc)
	if x.OS.Type.Machine != "" || x.OS.Kernel != "/k" || x.OS.Initrd != "/i" || x.OS.Cmdline != "console=ttyS0" || x.OS.Firmware != "" {
		t.Fatalf("os: %s", doc)
	}
	if len(x.Devices.Channels)+len(x.Devices.Serials)+len(x.Devices.RNGs) != 0 || len(x.Devices.Disks) != 1 {
		t.Fatalf("test driver devices: %s", doc)
	}
	if ifs := x.Devices.Interfaces; len(ifs) != 1 || ifs[0].Source.Bridge == nil || ifs[0].Source.Bridge.Bridge != "br0" {
		t.Fatalf("bridge: %s", doc)
	}
	doc, err = domainXML(defineSpec{name: "n", domType: "qemu", boot: "/b", network: "none",
		pci: []hypervisor.PCIAddress{{Domain: 0, Bus: 0x3b, Slot: 0, Function: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	x = parseDomain(t, doc)
	if len(x.Devices.Interfaces) != 0 {
		t.Fatalf("network none has an interface: %s", doc)
	}
	if got := domainPCI(&x); len(got) != 1 || got[0] != (hypervisor.PCIAddress{Bus: 0x3b, Function: 1}) || x.Devices.Hostdevs[0].Managed != "yes" {
		t.Fatalf("hostdevs: %v in %s", got, doc)
	}
}

// withVolumes makes a fake with vmflow's pool holding the volumes.
func withVolumes(t *testing.T, h *harness, names ...string) {
	t.Helper()
	for _, n := range names {
		h.run("volume_create", map[string]any{"name": n, "size": "1G"})
	}
}

// define on qemu:///system: the volumes resolved to their paths and
// formats, the MAC from the name, the console log's default path, the
// virt_type, libvirt's default network started; a redefinition keeps the
// UUID and returns the definition it replaced.
func TestUnitDefine(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	withVolumes(t, h, "boot", "var")
	f.networks["default"] = &fakeNetwork{net: libvirt.Network{Name: "default"}}
	def := map[string]any{"name": "vm1", "boot_volume": "boot", "var_volume": "var", "memory": 2048}
	out := h.run("define", def)
	if f.count("NetworkCreate") != 1 || !f.networks["default"].active {
		t.Fatal("the inactive default network was not started")
	}
	x := parseDomain(t, f.domains["vm1"].xml)
	if x.Type != "qemu" || x.Devices.Disks[0].Source.File.File != "/pool/boot" || x.Devices.Disks[1].Source.File.File != "/pool/var" ||
		x.Devices.Interfaces[0].MAC.Address != macFor("vm1") || x.Devices.Serials[0].Log.File != "/var/log/libvirt/qemu/vm1-console.log" {
		t.Fatalf("defined: %s", f.domains["vm1"].xml)
	}
	if str(out, "uuid") != x.UUID || str(out, "mac") != macFor("vm1") || str(out, "domain_type") != "qemu" || str(out, "previous_xml") != "" {
		t.Fatalf("outputs: %#v", out)
	}
	first := f.domains["vm1"].xml
	again := h.run("define", def)
	if str(again, "uuid") != str(out, "uuid") || str(again, "previous_xml") != first {
		t.Fatalf("redefinition: uuid %s, was %s; previous_xml %q", str(again, "uuid"), str(out, "uuid"), str(again, "previous_xml"))
	}
	// Its undo puts the replaced definition back.
	h.undo("define", def, again)
	if f.domains["vm1"].xml != first {
		t.Fatal("define's undo did not restore the previous definition")
	}
	h.undo("define", def, out)
	if f.domains["vm1"] != nil {
		t.Fatal("the undo of a new domain's define left it")
	}
}

// What define refuses, and how libvirt's refusals reach the user.
func TestUnitDefineRefusals(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	withVolumes(t, h, "boot")
	def := map[string]any{"name": "vm1", "boot_volume": "boot"}
	h.fails("define", def, `libvirt's "default" network is not there`)
	h.fails("define", map[string]any{"name": "vm1", "boot_volume": "nosuch", "network": "none"}, `no volume "nosuch" in pool vmflow-unit`)
	def["network"] = "none"
	h.run("define", def)
	f.domains["vm1"].state = libvirt.DomainRunning
	h.fails("define", def, `domain "vm1" is running; stop it before redefining it`)
	f.domains["vm1"].state = libvirt.DomainShutoff
	f.failNext("DomainDefineXMLFlags", lvErr(libvirt.ErrXMLError, "XML error: bad"))
	h.fails("define", def, `defining domain "vm1": XML error: bad`)
	f.failNext("DomainLookupByName", lvErr(libvirt.ErrInternalError, "internal error: boom"))
	h.fails("define", def, "internal error: boom")
}

// define run again after a kill reports, and undoes to, what its first
// attempt replaced, not the definition that attempt made.
func TestUnitDefineRunAgainKeepsWhatItReplaced(t *testing.T) {
	h, f := newFakeHarness(t, "test:///default")
	withVolumes(t, h, "boot")
	def := map[string]any{"name": "vm1", "boot_volume": "boot", "network": "none", "firmware": "kernel", "kernel": "/k"}
	h.mustAttempt("run1", "define", "define", def)
	out := h.mustAttempt("run1", "define", "define", def)
	if str(out, "previous_xml") != "" {
		t.Fatalf("the second attempt replaced %q, want the new domain's nothing", str(out, "previous_xml"))
	}
	h.undoStep("run1", "define", "define", def, nullOutputs)
	if f.domains["vm1"] != nil {
		t.Fatal("the undo of the interrupted define left the domain it made")
	}
	// Another run's interrupted define claimed nothing: its undo leaves
	// the domain alone.
	h.run("define", def)
	h.undoStep("run2", "define", "define", def, nullOutputs)
	if f.domains["vm1"] == nil {
		t.Fatal("an undo removed a domain its step never claimed")
	}
}

// undefine: missing_ok, a running domain refused unless forced, and
// libvirt's no-domain error as the user sees it.
func TestUnitUndefine(t *testing.T) {
	h, f := newFakeHarness(t, "test:///default")
	h.fails("undefine", map[string]any{"name": "vm1"}, `no domain "vm1" on test:///default`)
	if out := h.run("undefine", map[string]any{"name": "vm1", "missing_ok": true}); out.GetAttr("undefined").True() {
		t.Fatal("undefined a missing domain")
	}
	f.addDomain("<domain><name>vm1</name></domain>", libvirt.DomainRunning)
	h.fails("undefine", map[string]any{"name": "vm1"}, `domain "vm1" is running; stop it first, or set force = true`)
	f.failNext("DomainDestroyFlags", lvErr(libvirt.ErrOperationFailed, "operation failed: stuck"))
	h.fails("undefine", map[string]any{"name": "vm1", "force": true}, `forcing "vm1" off: operation failed: stuck`)
	if out := h.run("undefine", map[string]any{"name": "vm1", "force": true}); !out.GetAttr("undefined").True() || f.domains["vm1"] != nil {
		t.Fatalf("undefine force: %#v", out)
	}
}

// On the test driver, which knows no NVRAM, undefine tries again with
// the flags it knows.
func TestUnitUndefineOnTheTestDriverDropsNVRAM(t *testing.T) {
	h, f := newFakeHarness(t, "test:///default")
	f.addDomain("<domain><name>vm1</name></domain>", libvirt.DomainShutoff)
	f.failNext("DomainUndefineFlags", lvErr(libvirt.ErrNoSupport, "unsupported flags (0x4)"))
	h.run("undefine", map[string]any{"name": "vm1"})
	if f.count("DomainUndefineFlags") != 2 || f.domains["vm1"] != nil {
		t.Fatalf("calls: %v", f.calls)
	}
}

// start records the boot in the domain's metadata, does nothing to a
// running domain, and its undo forces off only what it started.
func TestUnitStart(t *testing.T) {
	h, f := newFakeHarness(t, "test:///default")
	f.addDomain("<domain><name>vm1</name></domain>", libvirt.DomainShutoff)
	before := time.Now().Add(-time.Second)
	out := h.run("start", map[string]any{"name": "vm1"})
	if !out.GetAttr("started").True() || str(out, "state") != "running" {
		t.Fatalf("start: %#v", out)
	}
	conn, dom, _ := h.d.domain("vm1")
	if at := startedAt(conn, dom); at.Before(before) || at.After(time.Now()) {
		t.Fatalf("the boot time recorded is %v (metadata %q)", at, f.domains["vm1"].metadata)
	}
	again := h.run("start", map[string]any{"name": "vm1"})
	if again.GetAttr("started").True() {
		t.Fatal("started a running domain")
	}
	h.undo("start", map[string]any{"name": "vm1"}, again)
	if f.domains["vm1"].state != libvirt.DomainRunning {
		t.Fatal("the undo of a start that started nothing stopped the domain")
	}
	h.undo("start", map[string]any{"name": "vm1"}, out)
	if f.domains["vm1"].state != libvirt.DomainShutoff {
		t.Fatal("start's undo left the domain running")
	}
	f.failNext("DomainCreateWithFlags", lvErr(libvirt.ErrOperationFailed, "operation failed: no memory"))
	h.fails("start", map[string]any{"name": "vm1"}, `starting "vm1": operation failed: no memory`)
	h.fails("start", map[string]any{"name": "nosuch"}, `no domain "nosuch"`)
}

// A start run again after a kill that found the domain running owns
// that start (for its undo and wait_ip's lease).
func TestUnitStartRunAgainOwnsTheStart(t *testing.T) {
	h, f := newFakeHarness(t, "test:///default")
	f.addDomain("<domain><name>vm1</name></domain>", libvirt.DomainShutoff)
	h.mustAttempt("run1", "start", "start", map[string]any{"name": "vm1"})
	if out := h.mustAttempt("run1", "start", "start", map[string]any{"name": "vm1"}); !out.GetAttr("started").True() {
		t.Fatal("the second attempt does not own the first one's start")
	}
	if out := h.mustAttempt("run2", "start", "start", map[string]any{"name": "vm1"}); out.GetAttr("started").True() {
		t.Fatal("another run owns a start it did not make")
	}
}

// shutdown: a guest that stops; one stopped already; libvirt refusing
// the first request; a guest that never stops, within the step's limit.
func TestUnitShutdown(t *testing.T) {
	h, f := newFakeHarness(t, "test:///default")
	f.addDomain("<domain><name>vm1</name></domain>", libvirt.DomainRunning)
	out := h.run("shutdown", map[string]any{"name": "vm1"})
	if !out.GetAttr("stopped").True() || str(out, "state") != "shut off" {
		t.Fatalf("shutdown: %#v", out)
	}
	if out := h.run("shutdown", map[string]any{"name": "vm1"}); out.GetAttr("stopped").True() {
		t.Fatal("a stopped domain was stopped again")
	}
	f.domains["vm1"].state = libvirt.DomainRunning
	f.failNext("DomainShutdownFlags", lvErr(libvirt.ErrAgentUnresponsive, "Guest agent is not responding"))
	h.fails("shutdown", map[string]any{"name": "vm1", "mode": "agent"}, `shutting "vm1" down: Guest agent is not responding`)

	f.guestStops = false
	_, err := h.runFor("", "", "shutdown", h.inputs("shutdown", map[string]any{"name": "vm1"}), 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), `domain "vm1" did not shut down within 1s (mode auto); it is still running`) {
		t.Fatalf("a guest that does not stop: %v", err)
	}
}

// shutdown's undo starts what it stopped, and only that.
func TestUnitShutdownUndo(t *testing.T) {
	h, f := newFakeHarness(t, "test:///default")
	f.addDomain("<domain><name>vm1</name></domain>", libvirt.DomainRunning)
	out := h.run("shutdown", map[string]any{"name": "vm1"})
	h.undo("shutdown", map[string]any{"name": "vm1"}, out)
	if f.domains["vm1"].state != libvirt.DomainRunning || f.domains["vm1"].metadata == "" {
		t.Fatalf("after the undo: %v, metadata %q", f.domains["vm1"].state, f.domains["vm1"].metadata)
	}
	f.domains["vm1"].state = libvirt.DomainShutoff
	out = h.run("shutdown", map[string]any{"name": "vm1"})
	h.undo("shutdown", map[string]any{"name": "vm1"}, out)
	if f.domains["vm1"].state != libvirt.DomainShutoff {
		t.Fatal("the undo of a shutdown that stopped nothing started the domain")
	}
}

// suspend pauses a running domain only, its undo resumes it; resume
// resumes a paused one only; their failures name the domain.
func TestUnitSuspendResume(t *testing.T) {
	h, f := newFakeHarness(t, "test:///default")
	f.addDomain("<domain><name>vm1</name></domain>", libvirt.DomainShutoff)
	if out := h.run("suspend", map[string]any{"name": "vm1"}); out.GetAttr("suspended").True() {
		t.Fatal("paused a stopped domain")
	}
	f.domains["vm1"].state = libvirt.DomainRunning
	out := h.run("suspend", map[string]any{"name": "vm1"})
	if !out.GetAttr("suspended").True() || f.domains["vm1"].state != libvirt.DomainPaused {
		t.Fatalf("suspend: %#v", out)
	}
	h.undo("suspend", map[string]any{"name": "vm1"}, out)
	if f.domains["vm1"].state != libvirt.DomainRunning {
		t.Fatal("suspend's undo did not resume")
	}
	if out := h.run("resume", map[string]any{"name": "vm1"}); out.GetAttr("resumed").True() {
		t.Fatal("resumed a running domain")
	}
	f.domains["vm1"].state = libvirt.DomainPaused
	f.failNext("DomainResume", lvErr(libvirt.ErrOperationFailed, "operation failed: io error"))
	h.fails("resume", map[string]any{"name": "vm1"}, `resuming "vm1": operation failed: io error`)
	f.domains["vm1"].state = libvirt.DomainRunning
	f.failNext("DomainSuspend", lvErr(libvirt.ErrOperationFailed, "operation failed: no"))
	h.fails("suspend", map[string]any{"name": "vm1"}, `pausing "vm1": operation failed: no`)
}

// destroy, reboot, state, list and ensure_absent, as the user sees them.
func TestUnitStateListDestroyReboot(t *testing.T) {
	h, f := newFakeHarness(t, "test:///default")
	if out := h.run("state", map[string]any{"name": "vm1"}); out.GetAttr("exists").True() || str(out, "state") != "" {
		t.Fatalf("state of a missing domain: %#v", out)
	}
	f.failNext("DomainLookupByName", lvErr(libvirt.ErrInternalError, "internal error: boom"))
	h.fails("state", map[string]any{"name": "vm1"}, `domain "vm1": internal error: boom`)
	f.addDomain("<domain><name>vm1</name><uuid>6f1c0e3a-5d8e-4f7b-9a44-0123456789ab</uuid></domain>", libvirt.DomainPaused)
	f.addDomain("<domain><name>vm2</name></domain>", libvirt.DomainShutoff)
	f.addDomain("<domain><name>other</name></domain>", libvirt.DomainRunning)
	out := h.run("state", map[string]any{"name": "vm1"})
	if str(out, "state") != "paused" || str(out, "uuid") != "6f1c0e3a-5d8e-4f7b-9a44-0123456789ab" || str(out, "ip") != "" {
		t.Fatalf("state: %#v", out)
	}
	// No VM of the prefix: an empty list, not null (a caller iterates it).
	if none := h.run("list", map[string]any{"prefix": "nosuch"}); none.GetAttr("names").IsNull() || none.GetAttr("names").LengthInt() != 0 {
		t.Fatalf("list of no VMs: names = %#v, want []", none.GetAttr("names"))
	}
	list := h.run("list", map[string]any{"prefix": "vm"})
	if got := strings.Join(strs(list, "names"), " "); got != "vm1 vm2" || list.GetAttr("states").Index(cty.StringVal("vm2")).AsString() != "shut off" {
		t.Fatalf("list: %#v", list)
	}
	if out := h.run("destroy", map[string]any{"name": "vm1"}); !out.GetAttr("was_running").True() || f.domains["vm1"].state != libvirt.DomainShutoff {
		t.Fatalf("destroy: %#v", out)
	}
	if out := h.run("destroy", map[string]any{"name": "vm1"}); out.GetAttr("was_running").True() {
		t.Fatal("destroy of a stopped domain")
	}
	h.fails("reboot", map[string]any{"name": "vm1"}, `rebooting "vm1": Requested operation is not valid`)
	withVolumes(t, h, "var")
	h.fails("ensure_absent", map[string]any{"vm": "vm2", "volumes": []string{"nosuch", "var"}}, "VM vm2 exists (shut off); volume var exists; nothing was changed")
	if out := h.run("ensure_absent", map[string]any{"vm": "vm3", "volumes": []string{"nosuch"}}); len(strs(out, "checked")) != 2 {
		t.Fatalf("ensure_absent: %#v", out)
	}
}

// virt_type auto on a daemon elsewhere: libvirtd offers KVM wherever
// /dev/kvm opens, also where it is not backed by VT-x or AMD-V (the
// paravirtual kvm_pvm of some cloud sandboxes), and a stock guest kernel
// dies there at once ("KVM internal error. Suberror: 1, emulation
// failure"). So KVM is picked only when the host's CPU, its model
// expanded (AMD's models hold svm), has vmx or svm.
func TestUnitDomainTypeOfARemoteHost(t *testing.T) {
	for _, c := range []struct {
		name, host, expanded, want string
	}{
		{"no VT-x or AMD-V", `<cpu><arch>x86_64</arch><model>Broadwell</model><vendor>Intel</vendor><feature name='hypervisor'/></cpu>`,
			`<cpu mode='custom' match='exact'><model fallback='forbid'>Broadwell</model><vendor>Intel</vendor><feature policy='require' name='hypervisor'/><feature policy='require' name='sse2'/></cpu>`, "qemu"},
		{"VT-x", `<cpu><arch>x86_64</arch><model>Skylake-Client-IBRS</model><vendor>Intel</vendor><feature name='vmx'/></cpu>`,
			`<cpu mode='custom' match='exact'><model fallback='forbid'>Skylake-Client-IBRS</model><vendor>Intel</vendor><feature policy='require' name='vmx'/></cpu>`, "kvm"},
		{"AMD-V, in the model", `<cpu><arch>x86_64</arch><model>EPYC</model><vendor>AMD</vendor><feature name='topoext'/></cpu>`,
			`<cpu mode='custom' match='exact'><model fallback='forbid'>EPYC</model><vendor>AMD</vendor><feature policy='require' name='svm'/><feature policy='require' name='topoext'/></cpu>`, "kvm"},
		{"AMD-V, disabled", `<cpu><arch>x86_64</arch><model>EPYC</model><vendor>AMD</vendor></cpu>`,
			`<cpu mode='custom' match='exact'><model fallback='forbid'>EPYC</model><vendor>AMD</vendor><feature policy='disable' name='svm'/></cpu>`, "qemu"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeLibvirt()
			f.hostCPU, f.expanded = c.host, c.expanded
			d := &driver{fake: f}
			if err := d.configure("qemu+ssh://root@build1/system", "", "", "", "auto", t.TempDir()); err != nil {
				t.Fatal(err)
			}
			got, err := d.domainType(f)
			if err != nil || got != c.want {
				t.Errorf("domainType = %q, %v; want %q", got, err, c.want)
			}
			if f.count("ConnectBaselineCPU") != 1 {
				t.Errorf("ConnectBaselineCPU called %d times, want 1", f.count("ConnectBaselineCPU"))
			}
		})
	}
	// A daemon that cannot expand the CPU is taken on its word that it
	// runs KVM, as before.
	f := newFakeLibvirt()
	f.hostCPU = `<cpu><arch>x86_64</arch><model>Broadwell</model><vendor>Intel</vendor></cpu>`
	f.failNext("ConnectBaselineCPU", lvErr(libvirt.ErrNoSupport, "this function is not supported by the connection driver: virConnectBaselineCPU"))
	d := &driver{fake: f}
	if err := d.configure("qemu+tls://build1/system", "", "", "", "auto", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if got, err := d.domainType(f); err != nil || got != "kvm" {
		t.Errorf("domainType without an answer = %q, %v; want kvm", got, err)
	}
}
