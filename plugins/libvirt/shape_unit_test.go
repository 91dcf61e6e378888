package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// Unit tests of define's schema check, once per document shape (shape.go).

// validated is, define by define since the last call, whether libvirt was
// asked to check the document against its schema.
func validated(f *fakeLibvirt) []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bool
	for _, fl := range f.defineFlags {
		out = append(out, fl&libvirt.DomainDefineValidate != 0)
	}
	f.defineFlags = nil
	return out
}

func wantValidated(t *testing.T, f *fakeLibvirt, what string, want ...bool) {
	t.Helper()
	got := validated(f)
	if len(got) != len(want) {
		t.Fatalf("%s: %d defines, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: define %d validated %v, want %v (all: %v)", what, i+1, got[i], want[i], got)
		}
	}
}

// The first define of a shape is checked by libvirt; the next ones of the
// same shape (other names, UUIDs, MACs, disks) are not; a define of
// another shape (other memory, a /var disk, direct kernel boot) is.
func TestUnitDefineValidatesOncePerShape(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	withVolumes(t, h, "b1", "b2", "b3", "b4", "v1")
	def := func(name, boot string, more map[string]any) {
		t.Helper()
		args := map[string]any{"name": name, "boot_volume": boot, "network": "none"}
		for k, v := range more {
			args[k] = v
		}
		h.run("define", args)
	}
	def("vm1", "b1", nil)
	def("vm2", "b2", nil)
	def("vm3", "b3", map[string]any{"uuid": "6f1c0e3a-5d8e-4f7b-9a44-0123456789ab", "mac": "52:54:00:aa:bb:cc"})
	wantValidated(t, f, "same shape", true, false, false)

	def("vm4", "b4", map[string]any{"memory": 2048})
	def("vm5", "b1", map[string]any{"memory": 2048})
	def("vm6", "b1", map[string]any{"var_volume": "v1"})
	def("vm7", "b2", map[string]any{"var_volume": "v1"})
	wantValidated(t, f, "memory, a /var disk", true, false, true, false)

	def("vm8", "b1", map[string]any{"firmware": "kernel", "kernel": "/k1", "cmdline": "console=ttyS0"})
	def("vm9", "b2", map[string]any{"firmware": "kernel", "kernel": "/boot/k2", "cmdline": "root=/dev/vda quiet"})
	def("vm10", "b2", map[string]any{"firmware": "kernel", "kernel": "/boot/k2"}) // no cmdline: another shape
	wantValidated(t, f, "direct kernel boot", true, false, true)

	// A redefinition of the same shape is not checked again either.
	def("vm1", "b2", nil)
	wantValidated(t, f, "redefinition", false)
}

// A value libvirt's schema would refuse, although vmflow's own rules let it
// through, still goes to libvirt's check after its shape was accepted, and
// fails with libvirt's error as before.
func TestUnitDefineChecksValuesTheSchemaRefuses(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	withVolumes(t, h, "b1")
	f.networks["default"] = &fakeNetwork{net: libvirt.Network{Name: "default"}, active: true}
	const refusal = "XML document failed to validate against schema: Unable to validate doc against /usr/share/libvirt/schemas/domain.rng\nExtra element devices in interleave\nElement domain failed to validate content"
	f.schema = func(doc string) error {
		if strings.Contains(doc, "52-54-00") || strings.Contains(doc, "6f1c0e3a5d8e-") {
			return lvErr(libvirt.ErrXMLError, refusal)
		}
		return nil
	}
	h.run("define", map[string]any{"name": "vm1", "boot_volume": "b1"})
	h.run("define", map[string]any{"name": "vm2", "boot_volume": "b1"})
	wantValidated(t, f, "nat", true, false)

	h.fails("define", map[string]any{"name": "vm3", "boot_volume": "b1", "mac": "52-54-00-01-02-03"}, `defining domain "vm3": `+refusal)
	h.fails("define", map[string]any{"name": "vm4", "boot_volume": "b1", "uuid": "6f1c0e3a5d8e-4f7b-9a44-0123456789ab"}, `defining domain "vm4": `+refusal)
	wantValidated(t, f, "values the schema refuses", true, true)
	if f.domains["vm3"] != nil || f.domains["vm4"] != nil {
		t.Fatal("a document the schema refused was defined")
	}
	// The shape stays accepted.
	h.run("define", map[string]any{"name": "vm5", "boot_volume": "b1", "mac": "52:54:00:01:02:03"})
	wantValidated(t, f, "after the refusals", false)
}

// A shape whose first document libvirt refused is not taken as accepted:
// the next define of that shape is checked again, with libvirt's error.
func TestUnitDefineRefusedShapeIsCheckedAgain(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	withVolumes(t, h, "b1")
	refuse := true
	f.schema = func(string) error {
		if refuse {
			return lvErr(libvirt.ErrXMLError, "XML document failed to validate against schema: Element domain failed to validate content")
		}
		return nil
	}
	def := map[string]any{"name": "vm1", "boot_volume": "b1", "network": "none"}
	h.fails("define", def, `defining domain "vm1": XML document failed to validate against schema: Element domain failed to validate content`)
	h.fails("define", def, `defining domain "vm1": XML document failed to validate against schema`)
	refuse = false
	h.run("define", def)
	h.run("define", def)
	wantValidated(t, f, "refused, then accepted", true, true, true, false)
}

// Defines of one shape at the same time: one is checked, the others wait
// for its answer; if libvirt refused it, the next one is checked.
func TestUnitDefineConcurrentSameShape(t *testing.T) {
	d := &driver{}
	s := defineSpec{name: "a", uuid: hypervisor.NewUUID(), mac: macFor("a"), domType: "qemu", memoryMiB: 1024, vcpus: 1,
		boot: "/pool/a", bootFormat: "qcow2", firmware: "uefi", network: "none", consoleLog: "/log/a"}
	ctx := context.Background()
	flags, finish := d.defineFlags(ctx, s)
	if flags != libvirt.DomainDefineValidate {
		t.Fatalf("first define: flags %v", flags)
	}
	type answer struct {
		flags  libvirt.DomainDefineFlags
		finish func(error)
	}
	second := make(chan answer, 1)
	s2 := s
	s2.name, s2.uuid, s2.boot = "b", hypervisor.NewUUID(), "/pool/b"
	go func() {
		f, fin := d.defineFlags(ctx, s2)
		second <- answer{f, fin}
	}()
	select {
	case a := <-second:
		t.Fatalf("the second define did not wait for the first's check (flags %v)", a.flags)
	case <-time.After(50 * time.Millisecond):
	}
	finish(errors.New("refused"))
	a := <-second
	if a.flags != libvirt.DomainDefineValidate {
		t.Fatalf("after a refusal the next define was not checked: flags %v", a.flags)
	}
	a.finish(nil)
	if flags, _ := d.defineFlags(ctx, s); flags != 0 {
		t.Fatalf("after an accepted check: flags %v", flags)
	}
	// A cancelled define does not wait.
	s3 := s
	s3.memoryMiB = 4096
	_, finish3 := d.defineFlags(ctx, s3)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if flags, _ := d.defineFlags(cancelled, s3); flags != libvirt.DomainDefineValidate {
		t.Fatalf("a cancelled define: flags %v", flags)
	}
	finish3(nil)
}

// docShape: the same for documents that differ only in their names, UUIDs,
// MACs and paths; different when anything else differs; not ok when a
// value is not of a kind the schema accepts where it goes.
func TestUnitDocShape(t *testing.T) {
	base := defineSpec{name: "vm1", uuid: "6f1c0e3a-5d8e-4f7b-9a44-0123456789ab", mac: "52:54:00:01:02:03", domType: "qemu",
		memoryMiB: 1024, vcpus: 1, boot: "/pool/b1", bootFormat: "qcow2", bootReadOnly: true, varDisk: "/pool/v1", varFormat: "qcow2",
		firmware: "kernel", kernel: "/k", initrd: "/i", cmdline: "console=ttyS0", network: "nat", consoleLog: "/log/vm1.log"}
	key, ok := docShape(base)
	if !ok {
		t.Fatal("base: not ok")
	}
	same := base
	same.name, same.uuid, same.mac = "other-vm", "6F1C0E3A5D8E4F7B9A440123456789AB", "52:54:00:fe:dc:ba"
	same.boot, same.varDisk, same.kernel, same.initrd = "/else/b", "/else/v", "/else/k", "/else/i"
	same.cmdline, same.consoleLog = "root=/dev/vda ro", "/var/log/x.log"
	if k, ok := docShape(same); !ok || k != key {
		t.Fatalf("other values of the same kinds: ok %v, same shape %v", ok, k == key)
	}
	for what, change := range map[string]func(*defineSpec){
		"domain type":  func(s *defineSpec) { s.domType = "kvm" },
		"memory":       func(s *defineSpec) { s.memoryMiB = 2048 },
		"vcpus":        func(s *defineSpec) { s.vcpus = 2 },
		"boot format":  func(s *defineSpec) { s.bootFormat = "raw" },
		"read-only":    func(s *defineSpec) { s.bootReadOnly = false },
		"no /var disk": func(s *defineSpec) { s.varDisk = "" },
		"firmware":     func(s *defineSpec) { s.firmware, s.kernel, s.initrd, s.cmdline = "uefi", "", "", "" },
		"no initrd":    func(s *defineSpec) { s.initrd = "" },
		"no cmdline":   func(s *defineSpec) { s.cmdline = "" },
		"network":      func(s *defineSpec) { s.network = "bridge:br0" },
		"no console":   func(s *defineSpec) { s.consoleLog = "" },
		"a PCI device": func(s *defineSpec) { s.pci = []hypervisor.PCIAddress{{Bus: 1}} },
	} {
		s := base
		change(&s)
		if k, ok := docShape(s); !ok || k == key {
			t.Errorf("%s: ok %v, same shape %v", what, ok, k == key)
		}
	}
	br0, br1 := base, base
	br0.network, br1.network = "bridge:br0", "bridge:br1"
	k0, _ := docShape(br0)
	if k1, _ := docShape(br1); k0 == k1 {
		t.Error("two bridges: same shape")
	}
	for what, change := range map[string]func(*defineSpec){
		"MAC with dashes":     func(s *defineSpec) { s.mac = "52-54-00-01-02-03" },
		"multicast MAC":       func(s *defineSpec) { s.mac = "53:54:00:01:02:03" },
		"UUID, odd dashes":    func(s *defineSpec) { s.uuid = "6f1c0e3a5d8e-4f7b-9a44-0123456789ab" },
		"name with a newline": func(s *defineSpec) { s.name = "vm\n1" },
		"relative boot path":  func(s *defineSpec) { s.boot = "pool/b1" },
		"boot path /":         func(s *defineSpec) { s.boot = "/" },
		"relative /var path":  func(s *defineSpec) { s.varDisk = "v1" },
		"relative kernel":     func(s *defineSpec) { s.kernel = "k" },
		"initrd with a tab":   func(s *defineSpec) { s.initrd = "/i\t" },
		"cmdline newline":     func(s *defineSpec) { s.cmdline = "a\nb" },
		"relative console":    func(s *defineSpec) { s.consoleLog = "vm1.log" },
		"no UUID":             func(s *defineSpec) { s.uuid = "" },
	} {
		s := base
		change(&s)
		if _, ok := docShape(s); ok {
			t.Errorf("%s: ok", what)
		}
	}
}
