package profiles_test

// The per-VM settings core.nix reads from /var/identity (issue 16): inbound
// ports, DNS servers, /etc/hosts lines, CA certificates and passwords. The
// configuration is evaluated with the real lib (what the image would hold),
// and the scripts the units run are run for real: the ports loader with nft
// in network namespaces, the others on files in a temporary directory.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSettingsConfiguration(t *testing.T) {
	var got struct {
		Etc       map[string]etcEntry `json:"etc"`
		Passwords map[string]string   `json:"passwords"`
		FwContent string              `json:"fw"`
		Input     string              `json:"input"`
		Ports     map[string]any      `json:"ports"`
		HostsCAs  map[string]any      `json:"hostsCAs"`
	}
	eval(t, "nixosConfigurations.core.config", `c: {
		etc = builtins.mapAttrs (n: e: { inherit (e) enable target mode; source = toString e.source; })
			(builtins.intersectAttrs (builtins.listToAttrs (map (n: { name = n; value = null; }) [ "hosts" "vmflow-hosts" "ssl/certs/ca-certificates.crt" "ssl/certs/ca-bundle.crt" "pki/tls/certs/ca-bundle.crt" "vmflow-ssl-certs-ca-certificates.crt" "vmflow-ssl-certs-ca-bundle.crt" "vmflow-pki-tls-certs-ca-bundle.crt" ])) c.environment.etc);
		passwords = builtins.mapAttrs (n: u: u.hashedPasswordFile or null) (builtins.removeAttrs c.users.users (builtins.filter (n: !c.users.users.${n}.isNormalUser) (builtins.attrNames c.users.users)));
		fw = c.networking.nftables.tables."nixos-fw".content;
		input = c.networking.firewall.extraInputRules;
		ports = { inherit (c.systemd.services.vmflow-ports) after partOf requires; exec = c.systemd.services.vmflow-ports.serviceConfig.ExecStart; watch = c.systemd.paths.vmflow-ports.pathConfig.PathChanged; };
		hostsCAs = { inherit (c.systemd.services.vmflow-hosts-cas) before wantedBy; exec = c.systemd.services.vmflow-hosts-cas.serviceConfig.ExecStart; };
	}`, &got)

	// /etc/hosts and the three CA bundle paths are links into /run/vmflow;
	// NixOS' own entries stay defined (their source is the base) but off.
	for _, name := range []string{"hosts", "ssl/certs/ca-certificates.crt", "ssl/certs/ca-bundle.crt", "pki/tls/certs/ca-bundle.crt"} {
		if e, ok := got.Etc[name]; !ok || e.Enable {
			t.Errorf("NixOS' /etc/%s should be defined and not installed: %+v", name, e)
		}
	}
	links := map[string][2]string{
		"vmflow-hosts":                         {"hosts", "/run/vmflow/hosts"},
		"vmflow-ssl-certs-ca-certificates.crt": {"ssl/certs/ca-certificates.crt", "/run/vmflow/ca-certificates.crt"},
		"vmflow-ssl-certs-ca-bundle.crt":       {"ssl/certs/ca-bundle.crt", "/run/vmflow/ca-certificates.crt"},
		"vmflow-pki-tls-certs-ca-bundle.crt":   {"pki/tls/certs/ca-bundle.crt", "/run/vmflow/ca-certificates.crt"},
	}
	for name, want := range links {
		e := got.Etc[name]
		if !e.Enable || e.Target != want[0] || e.Source != want[1] || e.Mode != "direct-symlink" {
			t.Errorf("/etc/%s: %+v, want a direct-symlink to %s", want[0], e, want[1])
		}
	}
	// The unit builds from the image's own files: NixOS' hosts and bundle.
	start := fmt.Sprint(got.HostsCAs["exec"])
	if !strings.Contains(start, " /var/identity /run/vmflow ") || !strings.Contains(start, "-hosts ") || !strings.HasSuffix(start, "nss-cacert/etc/ssl/certs/ca-bundle.crt") {
		t.Errorf("vmflow-hosts-cas ExecStart: %s", start)
	}
	if !strings.Contains(fmt.Sprint(got.HostsCAs["before"]), "nss-lookup.target") {
		t.Errorf("vmflow-hosts-cas must run before name lookups: %v", got.HostsCAs["before"])
	}

	// Passwords: every normal user's hash is read from /var/identity.
	if len(got.Passwords) != 2 || got.Passwords["admin"] != "/var/identity/passwords/admin" || got.Passwords["user"] != "/var/identity/passwords/user" {
		t.Errorf("hashedPasswordFile of the normal users: %v", got.Passwords)
	}

	// Ports: two sets in the firewall's table, accepted by input-allow,
	// filled by a unit that follows nftables.service.
	for _, want := range []string{"set vmflow_tcp {", "set vmflow_udp {", "type inet_service"} {
		if !strings.Contains(got.FwContent, want) {
			t.Errorf("nixos-fw content lacks %q:\n%s", want, got.FwContent)
		}
	}
	for _, want := range []string{"tcp dport @vmflow_tcp accept", "udp dport @vmflow_udp accept"} {
		if !strings.Contains(got.Input, want) {
			t.Errorf("extraInputRules lacks %q:\n%s", want, got.Input)
		}
	}
	if fmt.Sprint(got.Ports["partOf"]) != "[nftables.service]" || !strings.HasSuffix(fmt.Sprint(got.Ports["exec"]), " /var/identity 'inet nixos-fw'") {
		t.Errorf("vmflow-ports: %v", got.Ports)
	}
	if w := fmt.Sprint(got.Ports["watch"]); !strings.Contains(w, "/var/identity/tcp-ports") || !strings.Contains(w, "/var/identity/udp-ports") {
		t.Errorf("vmflow-ports.path watches %s", w)
	}
}

type etcEntry struct {
	Enable bool   `json:"enable"`
	Target string `json:"target"`
	Mode   string `json:"mode"`
	Source string `json:"source"`
}

// The ports the VM lists are open and the others are not: the firewall's
// table (NixOS' chains as firewall-nftables.nix writes them, with the sets
// and rules core.nix adds) loaded into a namespace that plays the VM, the
// loader run on files as vmflow writes them, and real connections from
// another namespace.
func TestPortsInNamespaces(t *testing.T) {
	need(t, "nft", "ip", "bash")
	needRoot(t, "the ports test makes network namespaces")
	var fw struct {
		Content string `json:"content"`
		Input   string `json:"input"`
	}
	eval(t, "nixosConfigurations.core.config", `c: { content = c.networking.nftables.tables."nixos-fw".content; input = c.networking.firewall.extraInputRules; }`, &fw)
	// The NixOS 25.05 firewall's own part of the table (its input chain
	// drops what input-allow does not accept; SSH is core.nix's one
	// allowedTCPPorts entry). A stand-in: the module is not in the lib.
	nixos := `
  chain input {
    type filter hook input priority filter; policy drop;
    ct state vmap { invalid : drop, established : accept, related : accept, new : jump input-allow, untracked : jump input-allow }
  }
  chain input-allow {
    tcp dport { 22 } accept
    icmp type echo-request accept
` + fw.Input + `
  }
`
	ruleset := "table inet nixos-fw\ndelete table inet nixos-fw\ntable inet nixos-fw {\n" + fw.Content + nixos + "}\n"
	dir := t.TempDir()
	rules := filepath.Join(dir, "ruleset.nft")
	os.WriteFile(rules, []byte(ruleset), 0o644)

	suffix := fmt.Sprint(os.Getpid())
	ns := map[string]string{"vm": "vmf-pvm-" + suffix, "net": "vmf-pnet-" + suffix}
	for _, n := range ns {
		mustRun(t, "ip", "netns", "add", n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
	}
	in := func(name string, args ...string) { mustRun(t, "ip", append([]string{"-n", ns[name]}, args...)...) }
	in("vm", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", ns["net"])
	in("vm", "addr", "add", "192.0.2.2/24", "dev", "eth0")
	in("net", "addr", "add", "192.0.2.1/24", "dev", "eth0")
	for _, name := range []string{"vm", "net"} {
		in(name, "link", "set", "lo", "up")
		in(name, "link", "set", "eth0", "up")
	}
	serve(t, ns["vm"]) // TCP 80 and 53, UDP 53

	nft := func(args ...string) string {
		return mustRun(t, "ip", append([]string{"netns", "exec", ns["vm"], "nft"}, args...)...)
	}
	nft("-c", "-f", rules)
	nft("-f", rules)

	identity := filepath.Join(dir, "identity")
	os.MkdirAll(identity, 0o755)
	script, _ := filepath.Abs(filepath.Join("modules", "scripts", "ports.sh"))
	load := func() string {
		return mustRun(t, "ip", "netns", "exec", ns["vm"], "bash", script, identity, "inet nixos-fw")
	}
	check := func(when string, want map[string]bool) {
		t.Helper()
		var ps []probe
		for _, target := range []string{"tcp 192.0.2.2:80", "tcp 192.0.2.2:53", "udp 192.0.2.2:53"} {
			network, addr, _ := strings.Cut(target, " ")
			ps = append(ps, probe{from: "net", network: network, addr: addr, blocked: !want[target]})
		}
		for _, r := range dial(t, ns, ps) {
			if open := r.result == "ok"; open == r.blocked {
				t.Errorf("%s: %s %s: %s, want open=%v", when, r.network, r.addr, r.result, !r.blocked)
			}
		}
	}

	// No files: only SSH is open (nothing listens on 22 here).
	if out := load(); !strings.Contains(out, "open: TCP none beyond SSH; UDP none") {
		t.Errorf("ports.sh without files: %s", out)
	}
	check("no files", map[string]bool{})

	// As vmflow writes them: one port a line; a comment, a range and a bad
	// line, which is skipped and reported.
	os.WriteFile(filepath.Join(identity, "tcp-ports"), []byte("80\n# web\n8000-8010\n70000\n"), 0o644)
	os.WriteFile(filepath.Join(identity, "udp-ports"), []byte("53\n"), 0o644)
	out := load()
	if !strings.Contains(out, "open: TCP 80, 8000-8010; UDP 53") || !strings.Contains(out, "skipping 70000") {
		t.Errorf("ports.sh: %s", out)
	}
	check("80 and 53/udp listed", map[string]bool{"tcp 192.0.2.2:80": true, "udp 192.0.2.2:53": true})

	// A change replaces the sets: 80 is closed again.
	os.WriteFile(filepath.Join(identity, "tcp-ports"), []byte("53\n"), 0o644)
	os.Remove(filepath.Join(identity, "udp-ports"))
	load()
	check("53/tcp listed instead", map[string]bool{"tcp 192.0.2.2:53": true})
	if t.Failed() {
		t.Logf("ruleset:\n%s\nnow:\n%s", ruleset, nft("list", "table", "inet", "nixos-fw"))
	}
}

// /etc/hosts and the CA bundle: the image's files, then the VM's additions;
// bad lines and incomplete certificates are left out and reported.
func TestHostsAndCAs(t *testing.T) {
	need(t, "bash", "awk", "grep")
	dir := t.TempDir()
	identity, out := filepath.Join(dir, "identity"), filepath.Join(dir, "run")
	os.MkdirAll(identity, 0o755)
	baseHosts, baseCAs := filepath.Join(dir, "hosts"), filepath.Join(dir, "bundle.crt")
	os.WriteFile(baseHosts, []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644)
	os.WriteFile(baseCAs, []byte(testCert("PUBLIC")), 0o644)
	script, _ := filepath.Abs(filepath.Join("modules", "scripts", "hosts-cas.sh"))
	run := func() string {
		t.Helper()
		b, err := exec.Command("bash", script, identity, out, baseHosts, baseCAs).CombinedOutput()
		if err != nil {
			t.Fatalf("hosts-cas.sh: %v\n%s", err, b)
		}
		return string(b)
	}
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(out, name))
		return string(b)
	}

	// Nothing in /var/identity: the image's files as they are.
	run()
	if read("hosts") != "127.0.0.1 localhost\n::1 localhost\n" || read("ca-certificates.crt") != testCert("PUBLIC") {
		t.Errorf("without additions: hosts %q, bundle %q", read("hosts"), read("ca-certificates.crt"))
	}

	os.WriteFile(filepath.Join(identity, "hosts"), []byte("10.0.0.5 git.lab git\n# comment\n  fd00::7   cache.lab\nnot-an-address foo\n10.0.0.6\n"), 0o644)
	os.WriteFile(filepath.Join(identity, "ca-certificates.pem"), []byte(testCert("LAB")+"-----BEGIN CERTIFICATE-----\ncut short\n"), 0o644)
	log := run()
	hosts := read("hosts")
	for _, want := range []string{"127.0.0.1 localhost\n::1 localhost\n", "10.0.0.5 git.lab git\n", "fd00::7   cache.lab\n"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("hosts lacks %q:\n%s", want, hosts)
		}
	}
	if strings.Contains(hosts, "not-an-address") || strings.Contains(hosts, "10.0.0.6\n") {
		t.Errorf("hosts holds a bad line:\n%s", hosts)
	}
	bundle := read("ca-certificates.crt")
	if !strings.HasPrefix(bundle, testCert("PUBLIC")) || !strings.Contains(bundle, testCert("LAB")) || strings.Contains(bundle, "cut short") {
		t.Errorf("bundle:\n%s", bundle)
	}
	for _, want := range []string{"hosts: 2 line(s)", "CA certificates: 1 added", "skipping a line of", "not-an-address"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}

func testCert(name string) string {
	return "-----BEGIN CERTIFICATE-----\nMIIB" + name + "\n-----END CERTIFICATE-----\n"
}

// DNS servers from /var/identity/resolvers replace the network's, with a
// static address or with DHCP; the gateway is the DNS server only when the
// VM lists none.
func TestNetworkResolvers(t *testing.T) {
	need(t, "bash")
	script, _ := filepath.Abs(filepath.Join("modules", "scripts", "network.sh"))
	for _, c := range []struct {
		name, static, resolvers string
		want, not               []string
	}{
		{"dhcp", "", "", []string{"DHCP=yes", "UseHostname=no"}, []string{"DNS=", "UseDNS"}},
		{"static", "192.168.122.50/24", "", []string{"Address=192.168.122.50/24", "Gateway=192.168.122.1", "DNS=192.168.122.1"}, []string{"UseDNS"}},
		{"dhcp+resolvers", "", "1.1.1.1\n# two\n2606:4700:4700::1111\nbogus\n", []string{"DHCP=yes", "DNS=1.1.1.1\nDNS=2606:4700:4700::1111\n", "[DHCPv4]\nUseHostname=no\nUseDNS=no", "[DHCPv6]\nUseDNS=no", "[IPv6AcceptRA]\nUseDNS=no"}, []string{"bogus"}},
		{"static+resolvers", "192.168.122.50/24", "1.0.0.1\n", []string{"Gateway=192.168.122.1", "DNS=1.0.0.1"}, []string{"DNS=192.168.122.1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.static != "" {
				os.WriteFile(filepath.Join(dir, "static-ip"), []byte(c.static+"\n"), 0o644)
			}
			if c.resolvers != "" {
				os.WriteFile(filepath.Join(dir, "resolvers"), []byte(c.resolvers), 0o644)
			}
			out := filepath.Join(dir, "out", "10-vmflow.network")
			log, err := exec.Command("bash", script, dir, out).CombinedOutput()
			if err != nil {
				t.Fatalf("network.sh: %v\n%s", err, log)
			}
			b, _ := os.ReadFile(out)
			for _, w := range c.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("lacks %q:\n%s", w, b)
				}
			}
			for _, w := range c.not {
				if strings.Contains(string(b), w) {
					t.Errorf("holds %q:\n%s", w, b)
				}
			}
			if strings.Contains(c.resolvers, "bogus") && !strings.Contains(string(log), "ignoring bogus") {
				t.Errorf("a bad resolver line is not reported: %s", log)
			}
		})
	}
}

// The initrd's identity script makes a missing password "!" (no password),
// keeps one vmflow wrote, and leaves both readable by root alone. Run in a
// UTS namespace of its own, since it also sets the hostname.
func TestIdentityPasswords(t *testing.T) {
	need(t, "bash", "unshare")
	needRoot(t, "the identity script sets owners and the hostname")
	root := t.TempDir()
	identity := filepath.Join(root, "var", "identity")
	os.MkdirAll(filepath.Join(identity, "passwords"), 0o755)
	hash := "$6$saltsalt$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ./abcdefghijklmnopqrstuvwxyz0123\n"
	os.WriteFile(filepath.Join(identity, "passwords", "user"), []byte(hash), 0o644)
	os.WriteFile(filepath.Join(identity, "hostname"), []byte("pw-test\n"), 0o644)
	script, _ := filepath.Abs(filepath.Join("modules", "scripts", "identity.sh"))
	out, err := exec.Command("unshare", "--uts", "bash", script, root, "/var/home/admin", "1000:100", "/var/home/user", "1001:100").CombinedOutput()
	if err != nil {
		t.Fatalf("identity.sh: %v\n%s", err, out)
	}
	for user, want := range map[string]string{"admin": "!\n", "user": hash} {
		p := filepath.Join(identity, "passwords", user)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != want {
			t.Errorf("%s's password file: %q %v, want %q", user, b, err, want)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s's password file mode: %v %v", user, fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(filepath.Join(identity, "passwords")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("passwords directory: %v %v", fi.Mode(), err)
	}
}
