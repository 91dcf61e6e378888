package main

import (
	"crypto/rand"
	"encoding/hex"
	"maps"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"
)

func uniqueName(prefix string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// guestDisks are the test guest's kernel and initrd, imported into the
// pool (where qemu, running as its own user, can read them), its boot
// overlay and a fresh ext4 /var disk.
type guestDisks struct {
	kernel, initrd, boot, varPath string
}

// setupGuest makes the guestDisks of the domain prefix; varInputs are
// more inputs of the /var disk's volume_create (its files, say).
func setupGuest(t *testing.T, h *harness, prefix string, varInputs map[string]any) guestDisks {
	t.Helper()
	dir := guestDir(t)
	g := guestDisks{
		kernel: str(h.run("volume_import", map[string]any{"path": dir + "/vmlinuz", "name": prefix + "-vmlinuz"}), "path"),
		initrd: str(h.run("volume_import", map[string]any{"path": dir + "/initrd.img", "name": prefix + "-initrd"}), "path"),
	}
	h.run("volume_create", map[string]any{"name": prefix + "-base", "size": "64M"})
	ov := h.run("volume_overlay", map[string]any{"name": prefix + "-boot", "backing": prefix + "-base"})
	g.boot = str(ov, "path")
	in := map[string]any{"name": prefix + "-var", "size": "1G", "filesystem": "ext4", "label": "var"}
	maps.Copy(in, varInputs)
	g.varPath = str(h.run("volume_create", in), "path")
	return g
}

// newGuest is a harness on qemu:///system and the test guest's disks for
// a domain named uniqueName(prefix); the domain and its volumes are
// removed (and checked gone) when the test ends.
func newGuest(t *testing.T, prefix string) (*harness, string, guestDisks) {
	t.Helper()
	h := newHarness(t, "qemu:///system")
	name := uniqueName(prefix)
	g := setupGuest(t, h, name, nil)
	t.Cleanup(func() { h.removeGuest(name, g.boot, g.varPath) })
	return h, name, g
}

func (h *harness) defineGuest(name string, g guestDisks, cmdline, network string) {
	h.t.Helper()
	h.run("define", map[string]any{
		"name": name, "memory": 512, "boot_volume": name + "-boot", "var_volume": name + "-var",
		"firmware": "kernel", "kernel": g.kernel, "initrd": g.initrd,
		"cmdline": "console=ttyS0 panic=-1 " + cmdline, "network": network,
	})
}

// domainXML is the domain's live definition, as libvirt gives it and
// parsed (with the parse's error).
func (h *harness) domainXML(name string) (libvirtxml.Domain, string, error) {
	h.t.Helper()
	conn, dom, err := h.d.domain(name)
	if err != nil {
		h.t.Fatal(err)
	}
	doc, _ := conn.DomainGetXMLDesc(dom, 0)
	var x libvirtxml.Domain
	err = x.Unmarshal(doc)
	return x, doc, err
}

// waitOff waits for the guest to power itself off.
func (h *harness) waitOff(name string) {
	h.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if str(h.run("state", map[string]any{"name": name}), "state") == "shut off" {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	h.t.Fatalf("%s did not power off within 3 minutes", name)
}

// removeGuest undefines the domain and deletes its volumes, then checks
// that nothing is left: no domain, no volume, no file.
func (h *harness) removeGuest(name string, files ...string) {
	h.t.Helper()
	h.run("undefine", map[string]any{"name": name, "force": true, "missing_ok": true})
	for _, v := range []string{"-boot", "-base", "-var", "-vmlinuz", "-initrd"} {
		h.run("volume_delete", map[string]any{"name": name + v, "missing_ok": true})
		if i := h.run("volume_info", map[string]any{"name": name + v}); i.GetAttr("exists").True() {
			h.t.Errorf("volume %s%s is still there", name, v)
		}
	}
	if s := h.run("state", map[string]any{"name": name}); s.GetAttr("exists").True() {
		h.t.Errorf("domain %s is still defined", name)
	}
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			h.t.Errorf("%s is still on disk", f)
		}
	}
}

// Boot the Debian test guest: it writes a marker to /var and powers off;
// read it back on the host. Snapshot, boot with a new marker, revert: the
// old marker is back. An unknown snapshot changes nothing.
func TestGuestMarkerSnapshotRevert(t *testing.T) {
	h, name, g := newGuest(t, "vmflow-t")

	// A thin overlay costs almost nothing before boot.
	info := h.run("volume_info", map[string]any{"name": name + "-boot"})
	if alloc := num(info, "allocation"); alloc >= 1<<20 || str(info, "backing") == "" {
		t.Fatalf("overlay allocation %d bytes, backing %q", alloc, str(info, "backing"))
	}
	if st, err := os.Stat(g.boot); err != nil || st.Size() >= 1<<20 {
		t.Fatalf("overlay file: %v, %d bytes", err, st.Size())
	}

	h.defineGuest(name, g, "vmflow.marker=first", "none")
	h.run("start", map[string]any{"name": name})
	h.waitOff(name)
	if m := readMarker(t, g.varPath); m != "first" {
		t.Fatalf("marker on /var = %q, want first", m)
	}
	log, _ := os.ReadFile("/var/log/libvirt/qemu/" + name + "-console.log")
	if !strings.Contains(string(log), "VMFLOW-MARKER: first") {
		t.Fatalf("console log lacks the marker:\n%s", log)
	}

	h.run("snapshot_create", map[string]any{"name": name, "snapshot": "before"})
	h.defineGuest(name, g, "vmflow.marker=second", "none")
	h.run("start", map[string]any{"name": name})
	h.waitOff(name)
	if m := readMarker(t, g.varPath); m != "second" {
		t.Fatalf("marker after the second boot = %q", m)
	}

	h.fails("snapshot_revert", map[string]any{"name": name, "snapshot": "nosuch"}, `no snapshot "nosuch"`)
	if m := readMarker(t, g.varPath); m != "second" {
		t.Fatalf("a failed revert changed /var: %q", m)
	}
	h.run("snapshot_revert", map[string]any{"name": name, "snapshot": "before"})
	if m := readMarker(t, g.varPath); m != "first" {
		t.Fatalf("marker after revert = %q, want first", m)
	}

	// A full copy of /var (what clone and backup use) holds the same data,
	// and is not an overlay.
	cp := h.run("volume_copy", map[string]any{"source": name + "-var", "name": name + "-copy"})
	t.Cleanup(func() { h.run("volume_delete", map[string]any{"name": name + "-copy", "missing_ok": true}) })
	if m := readMarker(t, str(cp, "path")); m != "first" {
		t.Fatalf("marker in the copy = %q", m)
	}
	if ci := h.run("volume_info", map[string]any{"name": name + "-copy"}); str(ci, "backing") != "" {
		t.Fatalf("the copy has a backing file: %#v", ci)
	}

	// Growing /var works with the VM off; shrinking is refused.
	grown := h.run("volume_resize", map[string]any{"name": name + "-var", "size": "2G"})
	if num(grown, "capacity") != 2<<30 {
		t.Fatalf("resize: %d", num(grown, "capacity"))
	}
	h.fails("volume_resize", map[string]any{"name": name + "-var", "size": "1G"}, "refused")
}

// wait_ip finds the guest's DHCP address on libvirt's NAT network; a guest
// that has none gives a clear timeout error. Agent shutdown works; an ACPI
// shutdown the guest ignores fails after its timeout.
func TestWaitIPAndShutdown(t *testing.T) {
	h, name, g := newGuest(t, "vmflow-ip")

	h.defineGuest(name, g, "vmflow.marker=ip", "nat")
	h.run("start", map[string]any{"name": name})
	// This guest does no DHCP and powers off: no address, a clear error.
	h.fails("wait_ip", map[string]any{"name": name, "timeout": 1}, "has no IPv4 address after 1s")
	h.waitOff(name)

	h.defineGuest(name, g, "vmflow.marker=ip vmflow.stay=1", "nat")
	h.run("start", map[string]any{"name": name})
	out := h.run("wait_ip", map[string]any{"name": name, "timeout": 120})
	ip := net.ParseIP(str(out, "ip"))
	conn, _ := h.d.connect()
	nw, err := conn.NetworkLookupByName("default")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := conn.NetworkGetXMLDesc(nw, 0)
	var nx libvirtxml.Network
	if err := nx.Unmarshal(doc); err != nil || len(nx.IPs) == 0 {
		t.Fatalf("default network: %v", err)
	}
	_, subnet, _ := net.ParseCIDR(nx.IPs[0].Address + "/" + nx.IPs[0].Netmask)
	if subnet == nil {
		subnet = &net.IPNet{IP: net.ParseIP(nx.IPs[0].Address).Mask(net.IPv4Mask(255, 255, 255, 0)), Mask: net.IPv4Mask(255, 255, 255, 0)}
	}
	if ip == nil || !subnet.Contains(ip) || str(out, "mac") != macFor(name) {
		t.Fatalf("wait_ip = %#v, want an address in %s", out, subnet)
	}

	// The guest agent runs commands inside; a snapshot of the running
	// guest (memory included) brings back what was there.
	cat := map[string]any{"name": name, "argv": []string{"cat", "/var/vmflow/marker"}}
	if got := str(h.run("guest_exec", cat), "stdout"); strings.TrimSpace(got) != "ip" {
		t.Fatalf("marker through the agent = %q", got)
	}
	h.fails("guest_exec", map[string]any{"name": name, "argv": []string{"sh", "-c", "echo oops >&2; exit 3"}}, "exited with status 3")
	h.run("snapshot_create", map[string]any{"name": name, "snapshot": "live"})
	h.run("guest_exec", map[string]any{"name": name, "argv": []string{"sh", "-c", "echo changed > /var/vmflow/marker && sync"}})
	if got := str(h.run("guest_exec", cat), "stdout"); strings.TrimSpace(got) != "changed" {
		t.Fatalf("marker after writing = %q", got)
	}
	if st := h.run("snapshot_revert", map[string]any{"name": name, "snapshot": "live"}); str(st, "state") != "running" {
		t.Fatalf("after reverting to a running snapshot: %#v", st)
	}
	if got := str(h.run("guest_exec", cat), "stdout"); strings.TrimSpace(got) != "ip" {
		t.Fatalf("marker after revert = %q", got)
	}

	h.fails("shutdown", map[string]any{"name": name, "mode": "acpi", "timeout": 3}, "did not shut down within 3s")
	if s := h.run("shutdown", map[string]any{"name": name, "mode": "agent", "timeout": 60}); str(s, "state") != "shut off" {
		t.Fatalf("agent shutdown: %#v", s)
	}
}

// A UEFI domain gets its own NVRAM file; undefine removes it.
func TestUEFIDomainNVRAM(t *testing.T) {
	h := newHarness(t, "qemu:///system")
	name := uniqueName("vmflow-efi")
	h.run("volume_create", map[string]any{"name": name + "-boot", "size": "64M"})
	t.Cleanup(func() { h.removeGuest(name) })
	h.run("define", map[string]any{"name": name, "boot_volume": name + "-boot", "firmware": "uefi", "network": "none", "memory": 256})
	h.run("start", map[string]any{"name": name})
	x, doc, err := h.domainXML(name)
	if err != nil || x.OS.NVRam == nil || x.OS.Loader == nil {
		t.Fatalf("no loader/NVRAM in the live definition: %v\n%s", err, doc)
	}
	nvram := x.OS.NVRam.NVRam
	if _, err := os.Stat(nvram); err != nil {
		t.Fatalf("NVRAM file: %v", err)
	}
	h.run("undefine", map[string]any{"name": name, "force": true})
	if _, err := os.Stat(nvram); !os.IsNotExist(err) {
		t.Fatalf("undefine left the NVRAM file %s (%v)", nvram, err)
	}
}

// A bridged NIC is attached to the named bridge (here the NAT network's
// own virbr0, the one bridge every test machine has).
func TestBridgeNetwork(t *testing.T) {
	h := newHarness(t, "qemu:///system")
	name := uniqueName("vmflow-br")
	h.run("volume_create", map[string]any{"name": name + "-boot", "size": "64M"})
	t.Cleanup(func() { h.removeGuest(name) })
	h.fails("define", map[string]any{"name": name, "boot_volume": name + "-boot", "network": "bridge:no/such"}, "network must be nat, none or bridge:<name>")
	out := h.run("define", map[string]any{"name": name, "boot_volume": name + "-boot", "network": "bridge:virbr0", "mac": "52:54:00:aa:bb:cc"})
	x, doc, err := h.domainXML(name)
	if err != nil || len(x.Devices.Interfaces) != 1 {
		t.Fatalf("%v\n%s", err, doc)
	}
	ifc := x.Devices.Interfaces[0]
	if ifc.Source == nil || ifc.Source.Bridge == nil || ifc.Source.Bridge.Bridge != "virbr0" || ifc.MAC.Address != "52:54:00:aa:bb:cc" || str(out, "mac") != "52:54:00:aa:bb:cc" {
		t.Fatalf("interface: %#v", ifc)
	}
}
