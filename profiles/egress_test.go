package profiles_test

// The egress block for real: the ruleset the claude profile's
// configuration generates (modules/egress-block.nix, evaluated with the
// real lib), loaded with nft into a network namespace that plays the VM,
// and real connections from it to stand-in hosts in another namespace.
//
//	vm  (the VM; the table is loaded here)      net (everything outside)
//	  eth0 192.0.2.2/24 2001:db8::2/64  <veth>    eth0 192.0.2.1/24 2001:db8::1/64 fe80::1
//	  docker0 172.17.0.1/16  <veth>  ctr           lo: the stand-in hosts (hosts below)
//	                                 eth0 172.17.0.2/16 (a container)
//
// Every address is assigned inside namespaces the test makes, and they
// are deleted at the end: nothing reaches the machine's own network.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const helperEnv = "VMFLOW_PROFILES_TEST_HELPER"

// Addresses on the lo of the `net` namespace.
var hosts = []string{
	"203.0.113.10/32",    // public stand-in
	"198.51.100.10/32",   // public stand-in
	"10.20.0.53/32",      // the VM's resolver (private)
	"10.20.0.80/32",      // another private host
	"10.30.0.5/32",       // a private host the allow-list lets through
	"169.254.169.254/32", // cloud metadata
	"100.64.0.10/32",     // shared address space
	"198.18.0.10/32",     // benchmarking
	"192.168.1.10/32",    // RFC 1918
	"172.31.0.10/32",     // RFC 1918
	"2001:db8:1::10/128", // public stand-in (documentation range)
	"fd00::53/128",       // the VM's IPv6 resolver (unique local)
	"fd00::80/128",       // another unique local host
}

type probe struct {
	from, network, addr string
	blocked             bool
}

var probes = []probe{
	{"vm", "tcp", "203.0.113.10:80", false},
	{"vm", "tcp", "198.51.100.10:80", false},
	{"vm", "tcp", "[2001:db8:1::10]:80", false},
	{"vm", "udp", "10.20.0.53:53", false},
	{"vm", "tcp", "10.20.0.53:53", false},
	{"vm", "udp", "[fd00::53]:53", false},
	{"vm", "tcp", "10.30.0.5:80", false},      // listed in egress-allow
	{"vm", "tcp", "172.17.0.2:80", false},     // the VM's own container, over docker0
	{"vm", "tcp", "127.0.0.1:80", false},      // loopback
	{"vm", "udp", "10.20.0.80:53", true},      // port 53, but not a resolver of the VM
	{"vm", "tcp", "10.20.0.80:53", true},      // the same over TCP
	{"vm", "tcp", "10.20.0.80:80", true},      // RFC 1918
	{"vm", "tcp", "10.20.0.53:80", true},      // the resolver, not on port 53
	{"vm", "tcp", "192.168.1.10:80", true},    // RFC 1918
	{"vm", "tcp", "172.31.0.10:80", true},     // RFC 1918
	{"vm", "tcp", "169.254.169.254:80", true}, // metadata
	{"vm", "tcp", "100.64.0.10:80", true},     // shared address space
	{"vm", "tcp", "198.18.0.10:80", true},     // benchmarking
	{"vm", "tcp", "[fd00::80]:80", true},      // unique local
	{"vm", "udp", "[fd00::80]:53", true},      // unique local, port 53
	{"vm", "tcp", "[fe80::1%eth0]:80", true},  // link-local
	{"ctr", "tcp", "203.0.113.10:80", false},  // a container: the forward hook
	{"ctr", "udp", "10.20.0.53:53", false},
	{"ctr", "tcp", "10.20.0.80:80", true},
	{"ctr", "tcp", "169.254.169.254:80", true},
	{"ctr", "udp", "10.20.0.80:53", true},
}

func TestEgressBlockInNamespaces(t *testing.T) {
	need(t, "nft", "ip", "bash")
	needRoot(t, "the egress test makes network namespaces")

	// The ruleset, from the module as the claude profile configures it.
	var tables map[string]struct {
		Enable  bool   `json:"enable"`
		Name    string `json:"name"`
		Family  string `json:"family"`
		Content string `json:"content"`
	}
	eval(t, "nixosConfigurations.claude.config.networking.nftables.tables", "", &tables)
	tbl, ok := tables["vmflow-egress"]
	if !ok || !tbl.Enable || tbl.Family != "inet" || tbl.Name != "vmflow-egress" {
		t.Fatalf("claude's nftables tables: %+v", tables)
	}
	// As NixOS' nftables.nix writes each table into the ruleset: made,
	// deleted (so a reload starts clean), then made with its content.
	t1 := tbl.Family + " " + tbl.Name
	ruleset := fmt.Sprintf("table %s\ndelete table %s\ntable %s {\n%s\n}\n", t1, t1, t1, tbl.Content)
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "ruleset.nft")
	os.WriteFile(rulesFile, []byte(ruleset), 0o644)

	suffix := fmt.Sprint(os.Getpid())
	ns := map[string]string{"vm": "vmf-vm-" + suffix, "net": "vmf-net-" + suffix, "ctr": "vmf-ctr-" + suffix}
	for _, name := range []string{"vm", "net", "ctr"} {
		mustRun(t, "ip", "netns", "add", ns[name])
		n := ns[name]
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
	}
	in := func(name string, args ...string) { mustRun(t, "ip", append([]string{"-n", ns[name]}, args...)...) }
	for _, name := range []string{"vm", "net", "ctr"} {
		in(name, "link", "set", "lo", "up")
	}
	in("vm", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", ns["net"])
	in("vm", "link", "add", "docker0", "type", "veth", "peer", "name", "eth0", "netns", ns["ctr"])
	in("vm", "addr", "add", "192.0.2.2/24", "dev", "eth0")
	in("vm", "addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad")
	in("vm", "addr", "add", "172.17.0.1/16", "dev", "docker0")
	in("net", "addr", "add", "192.0.2.1/24", "dev", "eth0")
	in("net", "addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad")
	in("net", "addr", "add", "fe80::1/64", "dev", "eth0", "nodad")
	in("ctr", "addr", "add", "172.17.0.2/16", "dev", "eth0")
	for _, name := range []string{"vm", "net", "ctr"} {
		in(name, "link", "set", "eth0", "up")
	}
	in("vm", "link", "set", "docker0", "up")
	for _, h := range hosts {
		in("net", "addr", "add", h, "dev", "lo")
	}
	in("vm", "route", "add", "default", "via", "192.0.2.1")
	in("vm", "-6", "route", "add", "default", "via", "2001:db8::1")
	in("net", "route", "add", "172.17.0.0/16", "via", "192.0.2.2")
	in("ctr", "route", "add", "default", "via", "172.17.0.1")
	mustRun(t, "ip", "netns", "exec", ns["vm"], "sh", "-c",
		"echo 1 >/proc/sys/net/ipv4/ip_forward && echo 1 >/proc/sys/net/ipv6/conf/all/forwarding"+
			// The block's refusals are ICMP errors the kernel sends to the VM's
			// own address; with the default rate limit (1/s per destination)
			// the parallel probes below would wait for SYN retransmissions.
			" && echo 0 >/proc/sys/net/ipv4/icmp_ratelimit && echo 0 >/proc/sys/net/ipv6/icmp/ratelimit")

	// Servers: the world, the container and the VM's loopback.
	serve(t, ns["net"])
	serve(t, ns["ctr"])
	serve(t, ns["vm"])

	// Without the table every probe connects: what the block stops below
	// is reachable, so the block is what stops it.
	for _, r := range dial(t, ns, probes) {
		if r.result != "ok" {
			t.Fatalf("without the egress table, %s %s from %s: %s", r.network, r.addr, r.from, r.result)
		}
	}

	// Load the table as nftables.service would (checked first, as NixOS'
	// build does), then the two loaders with what the VM would have.
	nft := func(args ...string) string {
		return mustRun(t, "ip", append([]string{"netns", "exec", ns["vm"], "nft"}, args...)...)
	}
	nft("-c", "-f", rulesFile)
	nft("-f", rulesFile)
	resolv := filepath.Join(dir, "resolv.conf")
	os.WriteFile(resolv, []byte("# as systemd-resolved writes /run/systemd/resolve/resolv.conf\nnameserver 10.20.0.53\nnameserver fd00::53\nnameserver 127.0.0.53\nsearch .\n"), 0o644)
	allow := filepath.Join(dir, "egress-allow")
	os.WriteFile(allow, []byte("# lab network\n10.30.0.0/24\nnot-a-cidr\n"), 0o644)
	scripts, _ := filepath.Abs(filepath.Join("modules", "scripts"))
	out := mustRun(t, "ip", "netns", "exec", ns["vm"], "bash", filepath.Join(scripts, "egress-dns.sh"), resolv, "inet vmflow-egress")
	if !strings.Contains(out, "DNS allowed to 2 resolver(s)") {
		t.Errorf("egress-dns.sh: %s", out)
	}
	out = mustRun(t, "ip", "netns", "exec", ns["vm"], "bash", filepath.Join(scripts, "egress-allow.sh"), allow, "inet vmflow-egress")
	if !strings.Contains(out, "allowed 1 network(s)") || !strings.Contains(out, "skipped 1") {
		t.Errorf("egress-allow.sh: %s", out)
	}

	for _, r := range dial(t, ns, probes) {
		want := "ok"
		if r.blocked {
			want = "unreachable (refused at once)"
		}
		// The reject's ICMPv6 error to the VM's own link-local address is not
		// routed back, so the SYN is dropped without an answer: still blocked
		// (the run without the table connected), only slower to notice.
		if r.blocked && strings.HasPrefix(r.addr, "[fe80:") && strings.HasPrefix(r.result, "dial tcp") && strings.Contains(r.result, "i/o timeout") {
			continue
		}
		if r.result != want {
			t.Errorf("%s %s from %s: %s, want %s", r.network, r.addr, r.from, r.result, want)
		}
	}

	// The sets hold every range of issue 12, IPv4-mapped forms included.
	listed := nft("list", "table", "inet", "vmflow-egress")
	for _, want := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
		"fc00::/7", "fe80::/10", "::ffff:0.0.0.0/104", "::ffff:10.0.0.0/104", "::ffff:100.64.0.0/106",
		"::ffff:127.0.0.0/104", "::ffff:169.254.0.0/112", "::ffff:172.16.0.0/108", "::ffff:192.0.0.0/120",
		"::ffff:192.168.0.0/112", "::ffff:198.18.0.0/111", "::ffff:224.0.0.0/100", "::ffff:240.0.0.0/100",
		"10.20.0.53", "fd00::53", "10.30.0.0/24",
	} {
		if !strings.Contains(listed, want) {
			t.Errorf("the loaded table lacks %s:\n%s", want, listed)
		}
	}
	if t.Failed() {
		t.Logf("the ruleset loaded:\n%s\nthe table now:\n%s", ruleset, listed)
	}
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// serve runs this test binary in the namespace as a server (runHelper):
// TCP 80 and 53, UDP 53, on every address.
func serve(t *testing.T, netns string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", netns, self)
	cmd.Env = append(os.Environ(), helperEnv+"=serve")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("server in %s: %q %v", netns, line, err)
	}
}

type dialResult struct {
	probe
	result string
}

// dial runs the probes, each from its namespace, through this test binary
// as a client (runHelper).
func dial(t *testing.T, ns map[string]string, ps []probe) []dialResult {
	t.Helper()
	self, _ := os.Executable()
	var results []dialResult
	var froms []string
	for _, p := range ps {
		if !slices.Contains(froms, p.from) {
			froms = append(froms, p.from)
		}
	}
	for _, from := range froms {
		var targets []string
		var mine []probe
		for _, p := range ps {
			if p.from == from {
				targets = append(targets, p.network+" "+p.addr)
				mine = append(mine, p)
			}
		}
		cmd := exec.Command("ip", "netns", "exec", ns[from], self)
		cmd.Env = append(os.Environ(), helperEnv+"=dial", "VMFLOW_DIAL="+strings.Join(targets, ","))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("dialing from %s: %v", from, err)
		}
		var got []string
		if err := json.Unmarshal(out, &got); err != nil || len(got) != len(mine) {
			t.Fatalf("dialing from %s: %s %v", from, out, err)
		}
		for i, p := range mine {
			results = append(results, dialResult{p, got[i]})
		}
	}
	return results
}

func runHelper(mode string) int {
	switch mode {
	case "serve":
		return helperServe()
	case "dial":
		return helperDial(strings.Split(os.Getenv("VMFLOW_DIAL"), ","))
	}
	return 2
}

func helperServe() int {
	for _, port := range []string{":80", ":53"} {
		l, err := net.Listen("tcp", port)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("ok\n"))
				c.Close()
			}
		}()
	}
	// UDP: one socket per address, so that each reply comes from the
	// address it was sent to.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, a := range addrs {
		ip := a.(*net.IPNet).IP
		if ip.IsLinkLocalUnicast() {
			continue
		}
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip.String(), "53"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() {
			buf := make([]byte, 512)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo([]byte("ok\n"), from)
			}
		}()
	}
	fmt.Println("ready")
	select {}
}

// helperDial prints, as a JSON list, one result per target: "ok" (a
// connection and the server's reply), "unreachable (refused at once)" (an
// ICMP unreachable/prohibited, or a send refused, within 2 s: the block's
// reject; an IPv6 SYN's first error can arrive while connect() holds the
// socket and only counts at the retransmission after 1 s), or
// what else happened.
func helperDial(targets []string) int {
	results := make([]string, len(targets))
	var wg sync.WaitGroup
	for i, target := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			network, addr, _ := strings.Cut(target, " ")
			results[i] = dialOne(network, addr)
		}()
	}
	wg.Wait()
	json.NewEncoder(os.Stdout).Encode(results)
	return 0
}

func dialOne(network, addr string) string {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if network == "udp" {
			_, err = c.Write([]byte("q"))
		}
		if err == nil {
			var buf [8]byte
			var n int
			n, err = io.ReadAtLeast(c, buf[:], 3)
			if err == nil && string(buf[:n]) == "ok\n" {
				return "ok"
			}
		}
	}
	// TCP gets the ICMP error (EHOSTUNREACH; EACCES for IPv6); a UDP send
	// the output hook rejects fails at once with EPERM.
	if (errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)) &&
		time.Since(start) < 2*time.Second {
		return "unreachable (refused at once)"
	}
	return fmt.Sprintf("%v after %v", err, time.Since(start).Round(time.Millisecond))
}
