package main

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// Unit tests of the guest actions' logic (guest agent, addresses, host
// check), on fakeLibvirt: no libvirtd.

const withNIC = `<domain><name>vm1</name><devices>
<interface type="network"><mac address="52:54:00:AA:BB:CC"/><source network="default"/></interface>
</devices></domain>`

// guestAgent answers guest-exec with pid 7 and guest-exec-status with
// the result given.
func guestAgent(status string) func(cmd string) (string, error) {
	return func(cmd string) (string, error) {
		switch {
		case strings.Contains(cmd, `"guest-exec-status"`):
			return `{"return":` + status + `}`, nil
		case strings.Contains(cmd, `"guest-exec"`):
			return `{"return":{"pid":7}}`, nil
		}
		return "", fmt.Errorf("unexpected agent command %s", cmd)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// guest_exec waits for an agent that is not up yet, then gives the
// command's output; a failing command is an error naming its last line
// of stderr, unless allow_failure; a signal is 128+n.
func TestUnitGuestExec(t *testing.T) {
	h, f := newFakeHarness(t, "test:///default")
	f.addDomain(withNIC, libvirt.DomainRunning)
	f.failNext("QEMUDomainAgentCommand", lvErr(libvirt.ErrAgentUnresponsive, "Guest agent is not responding"), lvErr(libvirt.ErrAgentUnresponsive, "Guest agent is not responding"))
	f.agent = guestAgent(`{"exited":true,"exitcode":0,"out-data":"` + b64("hello\n") + `"}`)
	out := h.run("guest_exec", map[string]any{"name": "vm1", "argv": []string{"echo", "hello"}})
	if str(out, "stdout") != "hello\n" || num(out, "exit_code") != 0 || f.count("QEMUDomainAgentCommand") != 4 {
		t.Fatalf("guest_exec: %#v after %d agent calls", out, f.count("QEMUDomainAgentCommand"))
	}

	f.agent = guestAgent(`{"exited":true,"exitcode":3,"err-data":"` + b64("first\nlast line\n") + `"}`)
	h.fails("guest_exec", map[string]any{"name": "vm1", "argv": []string{"false"}}, "false exited with status 3 in vm1: last line")
	if out := h.run("guest_exec", map[string]any{"name": "vm1", "argv": []string{"false"}, "allow_failure": true}); num(out, "exit_code") != 3 || str(out, "stderr") != "first\nlast line\n" {
		t.Fatalf("allow_failure: %#v", out)
	}
	f.agent = guestAgent(`{"exited":true,"exitcode":0,"signal":9}`)
	if out := h.run("guest_exec", map[string]any{"name": "vm1", "argv": []string{"x"}, "allow_failure": true}); num(out, "exit_code") != 137 {
		t.Fatalf("killed by a signal: %#v", out)
	}
	f.agent = func(string) (string, error) {
		return `{"error":{"class":"GenericError","desc":"Failed to execute child process"}}`, nil
	}
	h.fails("guest_exec", map[string]any{"name": "vm1", "argv": []string{"nosuch"}}, "guest agent guest-exec: Failed to execute child process")
	// An agent that never comes up: the step's limit, and a hint.
	f.agent = nil
	_, err := h.runFor("", "", "guest_exec", h.inputs("guest_exec", map[string]any{"name": "vm1", "argv": []string{"x"}}), time.Second)
	if err == nil || !strings.Contains(err.Error(), "(is the guest up and qemu-guest-agent running?)") {
		t.Fatalf("no agent: %v", err)
	}
}

// markStarted and startedAt agree; a domain started some other way has
// no boot time.
func TestUnitBootTimeInTheMetadata(t *testing.T) {
	f := newFakeLibvirt()
	fd, _ := f.addDomain(withNIC, libvirt.DomainRunning)
	if at := startedAt(f, fd.dom); !at.IsZero() {
		t.Fatalf("no metadata, boot time %v", at)
	}
	at := time.Unix(1700000000, 0)
	if err := markStarted(f, fd.dom, at); err != nil {
		t.Fatal(err)
	}
	if got := startedAt(f, fd.dom); !got.Equal(at) {
		t.Fatalf("boot time %v, want %v (metadata %q)", got, at, fd.metadata)
	}
	fd.metadata = `<vmflow:started xmlns:vmflow="` + metadataURI + `">1700000001</vmflow:started>`
	if got := startedAt(f, fd.dom); got.Unix() != 1700000001 {
		t.Fatalf("a bare element: %v", got)
	}
}

// findIP: the agent's address for the MAC wins; without it, a DHCP lease
// counts only if it was granted after this boot began (a lease of the
// same MAC from before is a recreated VM's); the lease's length comes
// from the network, dnsmasq's hour by default.
func TestUnitFindIP(t *testing.T) {
	f := newFakeLibvirt()
	fd, _ := f.addDomain(withNIC, libvirt.DomainRunning)
	f.networks["default"] = &fakeNetwork{net: libvirt.Network{Name: "default"}, active: true,
		xml: `<network><name>default</name><ip address="192.168.122.1"><dhcp><range start="192.168.122.2" end="192.168.122.254"><lease expiry="2" unit="hours"/></range></dhcp></ip></network>`}
	conn := libvirtConn(f)
	n, err := domainNIC(conn, fd.dom)
	if err != nil || n.mac != "52:54:00:aa:bb:cc" || n.network != "default" {
		t.Fatalf("nic %+v %v", n, err)
	}
	if s := leaseSeconds(conn, libvirt.Network{Name: "default"}); s != 7200 {
		t.Fatalf("lease of 2 hours: %d s", s)
	}
	started := time.Now().Add(-time.Minute)
	f.failNext("DomainInterfaceAddresses", lvErr(libvirt.ErrAgentUnresponsive, "Guest agent is not responding"))
	stale := libvirt.NetworkDhcpLease{Mac: libvirt.OptString{n.mac}, Ipaddr: "192.168.122.50", Expirytime: started.Add(7200*time.Second - 10*time.Second).Unix()}
	f.networks["default"].leases = []libvirt.NetworkDhcpLease{stale}
	if ip, _, why := findIP(conn, fd.dom, n, started); ip != "" || why["agent"] == nil {
		t.Fatalf("a lease granted before the boot was taken: %q (%v)", ip, why)
	}
	fresh := stale
	fresh.Ipaddr, fresh.Expirytime = "192.168.122.51", started.Add(7200*time.Second+10*time.Second).Unix()
	f.networks["default"].leases = append(f.networks["default"].leases, fresh)
	if ip, src, _ := findIP(conn, fd.dom, n, started); ip != "192.168.122.51" || src != "lease" {
		t.Fatalf("fresh lease: %q from %q", ip, src)
	}
	f.addrs[uint32(libvirt.DomainInterfaceAddressesSrcAgent)] = []libvirt.DomainInterface{
		{Name: "lo", Hwaddr: libvirt.OptString{"00:00:00:00:00:00"}, Addrs: []libvirt.DomainIPAddr{{Type: int32(libvirt.IPAddrTypeIpv4), Addr: "127.0.0.1"}}},
		{Name: "eth0", Hwaddr: libvirt.OptString{"52:54:00:AA:BB:CC"}, Addrs: []libvirt.DomainIPAddr{{Type: int32(libvirt.IPAddrTypeIpv6), Addr: "fe80::1"}, {Type: int32(libvirt.IPAddrTypeIpv4), Addr: "10.0.0.5"}}},
	}
	if ip, src, _ := findIP(conn, fd.dom, n, started); ip != "10.0.0.5" || src != "agent" {
		t.Fatalf("agent: %q from %q", ip, src)
	}
}

// wait_ip: the address and where it came from; a domain that does not
// run has none, at once; one that never gets an address fails at the
// step's limit saying what the agent said.
func TestUnitWaitIP(t *testing.T) {
	h, f := newFakeHarness(t, "test:///default")
	f.addDomain(withNIC, libvirt.DomainShutoff)
	h.fails("wait_ip", map[string]any{"name": "vm1"}, `domain "vm1" is not running, so it has no address`)
	f.domains["vm1"].state = libvirt.DomainRunning
	f.networks["default"] = &fakeNetwork{net: libvirt.Network{Name: "default"}, active: true}
	_, err := h.runFor("", "", "wait_ip", h.inputs("wait_ip", map[string]any{"name": "vm1"}), 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), `domain "vm1" (mac 52:54:00:aa:bb:cc) has no IPv4 address after 1s`) {
		t.Fatalf("no address: %v", err)
	}
	// With a console log, the failure says where to see how far the
	// guest got.
	f.addDomain(`<domain><name>vm2</name><devices>
<interface type="network"><mac address="52:54:00:AA:BB:CD"/><source network="default"/></interface>
<serial type="pty"><log file="/var/log/libvirt/qemu/vm2-console.log" append="on"/><target port="0"/></serial>
</devices></domain>`, libvirt.DomainRunning)
	_, err = h.runFor("", "", "wait_ip", h.inputs("wait_ip", map[string]any{"name": "vm2"}), 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), `has no IPv4 address after 1s`) || !strings.Contains(err.Error(), "its console log: /var/log/libvirt/qemu/vm2-console.log") {
		t.Fatalf("no address, with a console log: %v", err)
	}
	f.networks["default"].leases = []libvirt.NetworkDhcpLease{{Mac: libvirt.OptString{"52:54:00:aa:bb:cc"}, Ipaddr: "192.168.122.9", Expirytime: time.Now().Add(time.Hour).Unix()}}
	out := h.run("wait_ip", map[string]any{"name": "vm1"})
	if str(out, "ip") != "192.168.122.9" || str(out, "source") != "lease" || str(out, "mac") != "52:54:00:aa:bb:cc" {
		t.Fatalf("wait_ip: %#v", out)
	}
	if s := h.run("state", map[string]any{"name": "vm1"}); str(s, "ip") != "192.168.122.9" {
		t.Fatalf("state's address: %#v", s)
	}
}

// host_check compares with the host's node information and names the
// host's limits in its refusals.
func TestUnitHostCheck(t *testing.T) {
	h, f := newFakeHarness(t, "qemu:///system")
	out := h.run("host_check", map[string]any{"name": "vm1", "memory": 1024, "vcpus": 2})
	if num(out, "host_memory") != 8192 || num(out, "host_cpus") != 4 {
		t.Fatalf("host_check: %#v", out)
	}
	h.fails("host_check", map[string]any{"name": "vm1", "memory": 16384}, "16384 MiB is more than this host has (8192 MiB)")
	h.fails("host_check", map[string]any{"name": "vm1", "vcpus": 8}, "8 CPUs are more than this host has (4)")
	f.failNext("NodeGetInfo", lvErr(libvirt.ErrInternalError, "internal error: boom"))
	h.fails("host_check", map[string]any{"name": "vm1"}, "asking the host for its memory and CPUs: internal error: boom")
}
