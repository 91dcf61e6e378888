// Package conformance runs the same scenarios against every hypervisor
// plugin: it starts the real plugin binary the way vmflow does (core/host:
// go-plugin, gRPC, the handshake), configures it, and calls Validate, Run
// and Undo per step. What a backend legitimately does differently is
// declared once, in the differences table below, with the reason.
package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/host"
	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/internal/plugintest"
	"github.com/vmflow/vmflow/internal/testbin"
	"github.com/vmflow/vmflow/internal/testlibvirt"
	"github.com/vmflow/vmflow/internal/testssh"
)

// binDir holds the plugin binaries, built once for the test binary.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m.Run, &binDir, map[string]string{
		"vmflow-plugin-libvirt":      "./plugins/libvirt",
		"vmflow-plugin-proxmox-stub": "./plugins/proxmox-stub",
	}))
}

// target is one plugin binary with one config.
type target struct {
	name   string // the subtest, and the key of its declared differences
	plugin string // runs bin/vmflow-plugin-<plugin>
	// config builds the plugin block's config; prefix is unique to the
	// run (for a libvirt pool of the test's own).
	config func(prefix string, e targetEnv) map[string]cty.Value
	// sshd: the target reaches libvirtd through a real sshd on 127.0.0.1
	// (internal/testssh), whose URI config gets in targetEnv.
	sshd bool
	// tls: the target reaches libvirtd over qemu+tls:// with a client
	// certificate (internal/testlibvirt.TLSProxy), URI in targetEnv.
	tls bool
	// libvirtd: the target needs a reachable libvirtd.
	libvirtd bool
	// guest: the target boots real guests, so VMs get the Debian test
	// guest's kernel, an ext4 /var and a network.
	guest bool
	// cleanup removes what a failed run may have left on the host.
	cleanup func(t *testing.T, prefix string)
	// filesIn reads the files vmflow wrote into a volume's filesystem, as
	// a user of the backend would check them; nil where the target cannot
	// hold them.
	filesIn func(s *suite, volume string) map[string]fsFile
}

// fsFile is a file in a volume's filesystem: its permission bits ("0644")
// and, where the target keeps contents, its content.
type fsFile struct {
	mode    string
	content string
	known   bool // content is known
}

var targets = []target{
	{
		name:    "proxmox-stub",
		plugin:  "proxmox-stub",
		config:  func(string, targetEnv) map[string]cty.Value { return nil },
		filesIn: stubFiles,
	},
	{
		name:   "libvirt-test",
		plugin: "libvirt",
		config: func(string, targetEnv) map[string]cty.Value {
			return map[string]cty.Value{"uri": cty.StringVal("test:///default")}
		},
		libvirtd: true,
	},
	{
		name:   "libvirt-qemu",
		plugin: "libvirt",
		config: func(prefix string, _ targetEnv) map[string]cty.Value {
			return map[string]cty.Value{
				"uri":       cty.StringVal("qemu:///system"),
				"pool":      cty.StringVal("vmflow-" + prefix + "conformance"),
				"virt_type": cty.StringVal(testlibvirt.VirtType()),
			}
		},
		libvirtd: true,
		guest:    true,
		cleanup:  cleanQEMU,
		filesIn:  qemuFiles,
	},
	{
		// The same daemon as libvirt-qemu, reached as a remote host is:
		// qemu+ssh://root@127.0.0.1:PORT/system, through a real sshd, with
		// the host key checked against a known_hosts file. The guest's
		// kernel and disks are uploaded through libvirt streams.
		name:     "libvirt-ssh",
		plugin:   "libvirt",
		config:   remoteQEMU(func(e targetEnv) string { return e.sshURI }),
		libvirtd: true,
		sshd:     true,
		guest:    true,
		cleanup:  cleanQEMU,
		// The test reads the volume's file on the host, which is this one.
		filesIn: qemuFiles,
	},
	{
		// The same daemon again, reached over qemu+tls://127.0.0.1:PORT/system
		// with a client certificate: a TLS endpoint on 127.0.0.1 that
		// checks it, as a remote host's libvirtd does, and carries the
		// connection to the daemon's socket (testlibvirt.TLSProxy).
		name:     "libvirt-tls",
		plugin:   "libvirt",
		config:   remoteQEMU(func(e targetEnv) string { return e.tlsURI }),
		libvirtd: true,
		tls:      true,
		guest:    true,
		cleanup:  cleanQEMU,
		filesIn:  qemuFiles,
	},
}

// remoteQEMU is the config of a target that reaches the machine's
// qemu:///system as a remote host, at the URI the suite's setup gives.
func remoteQEMU(uri func(targetEnv) string) func(string, targetEnv) map[string]cty.Value {
	return func(prefix string, e targetEnv) map[string]cty.Value {
		return map[string]cty.Value{
			"uri":       cty.StringVal(uri(e)),
			"pool":      cty.StringVal("vmflow-" + prefix + "conformance"),
			"virt_type": cty.StringVal(testlibvirt.VirtType()),
		}
	}
}

// targetEnv is what a target's config may use of the suite's setup.
type targetEnv struct {
	sshURI string // the URI of libvirtd through the suite's sshd
	tlsURI string // the URI of libvirtd through the suite's TLS endpoint
}

// difference is something a target legitimately does differently: the
// check must fail there with an error containing want. It is checked, not
// skipped, so an entry that stops being true fails the suite.
type difference struct {
	target, check, want, reason string
}

// differences is the one place where targets may differ from the common
// contract.
var differences = []difference{
	{"libvirt-test", "resize/grow", "virStorageVolResize",
		"libvirt's test driver cannot resize volumes (virStorageVolResize is unsupported)"},
	{"libvirt-test", "volumes/import", "virStorageVolUpload",
		"libvirt's test driver cannot upload into a volume (virStorageVolUpload is unsupported)"},
	{"libvirt-test", "volumes/ext4", "virStorageVolUpload",
		"a fresh filesystem is uploaded into the volume, which libvirt's test driver cannot do"},
	{"libvirt-test", "lifecycle/guest_exec", "guest agent",
		"libvirt's test driver runs no guest, so no guest agent answers"},
	{"proxmox-stub", "lifecycle/guest_exec", "guest_exec is not supported by the proxmox-stub",
		"the stub runs no guest; it refuses rather than invent output"},
	{"proxmox-stub", "lifecycle/console", "cannot attach a console",
		"the stub runs no guest, so there is no console to attach (a real Proxmox: qm terminal)"},
	{"proxmox-stub", "names/underscore", "invalid VM name",
		"Proxmox VM names are DNS names: no '_' (libvirt accepts it)"},
	{"libvirt-test", "files/create", "virStorageVolUpload",
		"a filesystem with files is uploaded into the volume, which libvirt's test driver cannot do"},
	{"libvirt-test", "files/edit", "virStorageVolDownload",
		"volume_edit downloads the volume to edit it, which libvirt's test driver cannot do (virStorageVolDownload is unsupported)"},
	{"libvirt-test", "files/edit-no-ext4", "virStorageVolDownload",
		"volume_edit finds the filesystem in the downloaded volume, which libvirt's test driver cannot download"},
	{"libvirt-test", "files/export", "virStorageVolDownload",
		"volume_export downloads the volume, which libvirt's test driver cannot do"},
	{"libvirt-test", "files/swap", "its file is not on this machine",
		"volume_swap exchanges the volumes' files in the pool's directory, and libvirt's test driver keeps no files"},
	{"libvirt-ssh", "files/swap", "is not this machine: run vmflow on the host itself",
		"volume_swap renames files in the pool's directory on the host, which a remote connection cannot do in one step; it refuses rather than copy"},
	{"libvirt-tls", "files/swap", "is not this machine: run vmflow on the host itself",
		"volume_swap renames files in the pool's directory on the host, which a remote connection cannot do in one step; it refuses rather than copy"},
}

// suite is one target's plugin process, as vmflow runs it.
type suite struct {
	*plugintest.Harness
	tg     *target
	p      *host.Process
	prefix string          // unique to the run: every VM and volume name starts with it
	files  string          // a directory of local files (kernels, images)
	state  string          // the state directory vmflow gave the plugin
	used   map[string]bool // declared differences that were checked
}

func newSuite(t *testing.T, tg *target) *suite {
	t.Helper()
	if tg.libvirtd {
		testlibvirt.Require(t)
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	prefix := "cf" + hex.EncodeToString(b[:]) + "-"
	if tg.cleanup != nil {
		t.Cleanup(func() { tg.cleanup(t, prefix) })
	}
	var env targetEnv
	if tg.sshd {
		env.sshURI = testssh.Start(t).URI("/system")
	}
	if tg.tls {
		px, err := testlibvirt.StartTLSProxy(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(px.Stop)
		env.tlsURI = px.URI("/system")
	}
	p, err := host.Start(context.Background(), filepath.Join(binDir, "vmflow-plugin-"+tg.plugin), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	cfg := cty.EmptyObjectVal
	if c := tg.config(prefix, env); len(c) > 0 {
		cfg = cty.ObjectVal(c)
	}
	if cfg, err = p.Schema.Config.ApplyDefaults(cfg); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	diags, err := p.Configure(context.Background(), cfg, protocol.Env{StateDir: state, WorkDir: state})
	if err != nil || diags.HasErrors() {
		t.Fatalf("configure %s: %v %v", tg.name, err, diags.Err())
	}
	h := &plugintest.Harness{T: t, Conn: p, Schema: p.Schema, RunID: newRunID, Explain: p.CallError}
	return &suite{Harness: h, tg: tg, p: p, prefix: prefix, files: t.TempDir(), state: state, used: map[string]bool{}}
}

// in returns the suite for a subtest.
func (s *suite) in(t *testing.T) *suite {
	c, h := *s, *s.Harness
	h.T = t
	c.Harness = &h
	return &c
}

// name makes a VM or volume name unique to the run.
func (s *suite) name(parts ...string) string {
	return s.prefix + strings.Join(parts, "-")
}

// calls numbers the actions the suites run.
var calls atomic.Int64

// newRunID makes each call a step of a run of its own, as two vmflow runs
// are: a claim of one (sdk.Request.Claim) is never seen by another.
func newRunID() string {
	return fmt.Sprintf("conformance-%d", calls.Add(1))
}

// declared returns the difference declared for a check on this target.
func (s *suite) declared(check string) (difference, bool) {
	for _, d := range differences {
		if d.target == s.tg.name && d.check == check {
			s.used[check] = true
			return d, true
		}
	}
	return difference{}, false
}

// expectDeclared checks that err is the declared difference's error.
func (s *suite) expectDeclared(d difference, action string, err error) {
	s.T.Helper()
	if err == nil || !strings.Contains(err.Error(), d.want) {
		s.T.Fatalf("%s: declared difference %s (%s): %s should fail with %q, got %v", s.tg.name, d.check, d.reason, action, d.want, err)
	}
	s.T.Logf("declared difference %s: %s", d.check, d.reason)
}

// check runs an action that must succeed, unless a difference is declared
// for this check: then it must fail as declared, and ok is false.
func (s *suite) check(check, action string, args map[string]any) (out cty.Value, ok bool) {
	s.T.Helper()
	out, err := s.Try(action, args)
	if d, isDeclared := s.declared(check); isDeclared {
		s.expectDeclared(d, action, err)
		return cty.NilVal, false
	}
	if err != nil {
		s.T.Fatalf("%s: %s %v: %v", check, action, args, err)
	}
	return out, true
}

// refused runs an action that must fail with an error containing every
// one of want (or as a declared difference says).
func (s *suite) refused(check, action string, args map[string]any, want ...string) {
	s.T.Helper()
	_, err := s.Try(action, args)
	if d, isDeclared := s.declared(check); isDeclared {
		s.expectDeclared(d, action, err)
		return
	}
	if err == nil {
		s.T.Fatalf("%s: %s %v succeeded; it must be refused (%q)", check, action, args, want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			s.T.Fatalf("%s: %s %v: error %q, want one containing %q", check, action, args, err, w)
		}
	}
	s.T.Logf("%s: refused: %v", check, err)
}

func str(v cty.Value, attr string) string { return v.GetAttr(attr).AsString() }

func num(v cty.Value, attr string) uint64 {
	n, _ := v.GetAttr(attr).AsBigFloat().Uint64()
	return n
}

func strs(v cty.Value, attr string) []string {
	var out []string
	for _, e := range v.GetAttr(attr).AsValueSlice() {
		out = append(out, e.AsString())
	}
	return out
}

// guestDir builds the Debian test guest once (cached in .cache/guest).
func guestDir(t *testing.T) string {
	t.Helper()
	out := filepath.Join(testbin.Repo(), ".cache", "guest")
	cmd := exec.Command(filepath.Join(testbin.Repo(), "testdata", "guest", "build.sh"), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the test guest: %v\n%s", err, b)
	}
	return out
}

// cleanQEMU removes, from qemu:///system, the run's domains and its pool
// with whatever is left in it, so the suite leaves nothing on the host.
func cleanQEMU(t *testing.T, prefix string) {
	conn, err := testlibvirt.Connect()
	if err != nil {
		t.Errorf("cleaning up: %v", err)
		return
	}
	defer conn.Disconnect()
	doms, _, _ := conn.ConnectListAllDomains(1, 0)
	for _, d := range doms {
		if strings.HasPrefix(d.Name, prefix) {
			_ = conn.DomainDestroy(d)
			_ = conn.DomainUndefineFlags(d, libvirt.DomainUndefineManagedSave|libvirt.DomainUndefineSnapshotsMetadata|libvirt.DomainUndefineNvram)
		}
	}
	if err := testlibvirt.RemovePool(conn, "vmflow-"+prefix+"conformance"); err != nil {
		t.Errorf("removing the pool: %v", err)
	}
}

func TestConformance(t *testing.T) {
	for i := range targets {
		tg := &targets[i]
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			s := newSuite(t, tg)
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.run(s.in(t)) })
			}
			if t.Failed() {
				return
			}
			for _, d := range differences {
				if d.target == tg.name && !s.used[d.check] {
					t.Errorf("declared difference %s of %s was never checked: remove it, or check it", d.check, d.target)
				}
			}
		})
	}
}

// TestDifferencesNameTargets keeps the table honest: every entry names a
// target and gives a reason.
func TestDifferencesNameTargets(t *testing.T) {
	known := map[string]bool{}
	for _, tg := range targets {
		known[tg.name] = true
	}
	seen := map[string]bool{}
	for _, d := range differences {
		key := fmt.Sprintf("%s %s", d.target, d.check)
		switch {
		case !known[d.target]:
			t.Errorf("difference %s: no target %q", key, d.target)
		case d.reason == "" || d.want == "":
			t.Errorf("difference %s: give the reason and the error it expects", key)
		case seen[key]:
			t.Errorf("difference %s is declared twice", key)
		}
		seen[key] = true
	}
}
