package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/internal/plugintest"
	"github.com/vmflow/vmflow/internal/testlibvirt"
)

// requireLibvirtd is testlibvirt.Require (tcp_test.go and ssh_test.go
// call it by this name).
var requireLibvirtd = testlibvirt.Require

// harness drives the plugin the way vmflow does (Configure, then Validate
// and Run per step), in process, against a real libvirtd.
type harness struct {
	t        *testing.T
	p        protocol.Conn
	d        *driver
	schema   *protocol.Schema
	stateDir string
}

func newHarness(t *testing.T, uri string) *harness {
	t.Helper()
	return newHarnessConfig(t, map[string]cty.Value{"uri": cty.StringVal(uri)})
}

// newHarnessConfig is newHarness with more of the plugin's config
// (pool_path for a daemon that runs as another user).
func newHarnessConfig(t *testing.T, config map[string]cty.Value) *harness {
	t.Helper()
	testlibvirt.Require(t)
	uri := config["uri"].AsString()
	d := &driver{}
	p, err := sdk.InProcess(newPlugin(d))
	if err != nil {
		t.Fatal(err)
	}
	schema, _ := p.Describe(context.Background())
	h := &harness{t: t, p: p, d: d, schema: schema, stateDir: t.TempDir()}
	config["virt_type"] = cty.StringVal(testlibvirt.VirtType())
	cfg, err := schema.Config.ApplyDefaults(cty.ObjectVal(config))
	if err != nil {
		t.Fatal(err)
	}
	diags, err := p.Configure(context.Background(), cfg, protocol.Env{StateDir: h.stateDir, WorkDir: h.stateDir})
	if err != nil || diags.HasErrors() {
		t.Fatalf("configure %s: %v %v", uri, err, diags.Err())
	}
	t.Cleanup(h.removePool)
	return h
}

// removePool deletes the test's pool with whatever is left in it, so tests
// leave nothing behind on the host.
func (h *harness) removePool() {
	conn, err := h.d.connect()
	if err != nil {
		return
	}
	defer h.d.close()
	_ = testlibvirt.RemovePool(conn, h.d.poolName)
}

// shared is the harness's plugin in the harness the plugins' tests and
// the conformance suite share.
func (h *harness) shared() *plugintest.Harness {
	return &plugintest.Harness{T: h.t, Conn: h.p, Schema: h.schema}
}

func (h *harness) inputs(action string, args map[string]any) cty.Value {
	return plugintest.Inputs(h.t, h.schema, action, args)
}

// try validates and runs an action; the error carries the diagnostics.
func (h *harness) try(action string, args map[string]any) (cty.Value, error) {
	h.t.Helper()
	return h.shared().Try(action, args)
}

// runFor runs an action as vmflow does, limited by its step timeout.
func (h *harness) runFor(runID, step, action string, in cty.Value, limit time.Duration) (cty.Value, error) {
	h.t.Helper()
	return h.shared().RunFor(runID, step, action, in, limit)
}

// run is try that must succeed.
func (h *harness) run(action string, args map[string]any) cty.Value {
	h.t.Helper()
	return h.shared().Run(action, args)
}

// fails runs an action that must fail with an error containing want.
func (h *harness) fails(action string, args map[string]any, want string) {
	h.t.Helper()
	h.shared().Fails(action, args, want)
}

func (h *harness) undo(action string, args map[string]any, outputs cty.Value) {
	h.t.Helper()
	h.shared().Undo(action, args, outputs)
}

// undoStep undoes step step of run runID; outputs null is the undo of an
// interrupted Run (vmflow resume --undo).
func (h *harness) undoStep(runID, step, action string, args map[string]any, outputs cty.Value) {
	h.t.Helper()
	h.shared().UndoStep(runID, step, action, args, outputs)
}

// mustAttempt runs an action as step step of run runID; it must succeed.
func (h *harness) mustAttempt(runID, step, action string, args map[string]any) cty.Value {
	h.t.Helper()
	return h.shared().MustAttempt(runID, step, action, args)
}

// attemptFails runs an action as step step of run runID; it must fail
// with an error containing want.
func (h *harness) attemptFails(runID, step, action string, args map[string]any, want string) {
	h.t.Helper()
	h.shared().AttemptFails(runID, step, action, args, want)
}

func str(v cty.Value, attr string) string { return v.GetAttr(attr).AsString() }

func num(v cty.Value, attr string) uint64 {
	n, _ := v.GetAttr(attr).AsBigFloat().Uint64()
	return n
}

// guestDir builds the Debian test guest once (cached in .cache/guest).
func guestDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	out := filepath.Join(repo, ".cache", "guest")
	cmd := exec.Command(filepath.Join(repo, "testdata", "guest", "build.sh"), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the test guest: %v\n%s", err, b)
	}
	return out
}

// readMarker reads /vmflow/marker from an ext4 qcow2 disk on this host,
// the way a user would check it: convert to raw, then debugfs.
func readMarker(t *testing.T, qcow2 string) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "var.raw")
	if b, err := exec.Command("qemu-img", "convert", "-U", "-O", "raw", qcow2, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, b)
	}
	b, err := exec.Command("debugfs", "-R", "cat /vmflow/marker", raw).Output()
	if err != nil {
		t.Fatalf("debugfs: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// fsEntry is a file or directory in an ext4 image, as debugfs lists it.
type fsEntry struct {
	mode    uint32 // with the file type bits
	owner   string // uid:gid
	content string // a file's
}

// readFiles reads every file and directory of the ext4 filesystem in an
// image on this host (lost+found aside), the way a user would check it:
// qemu-img convert to raw, e2fsck -fn (it must be clean), then debugfs.
func readFiles(t *testing.T, image string) map[string]fsEntry {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if b, err := exec.Command("qemu-img", "convert", "-U", "-O", "raw", image, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, b)
	}
	if b, err := exec.Command("e2fsck", "-fn", raw).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn %s: %v\n%s", image, err, b)
	}
	quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	out := map[string]fsEntry{}
	var walk func(dir string)
	walk = func(dir string) {
		b, err := exec.Command("debugfs", "-R", "ls -p "+quote("/"+dir), raw).Output()
		if err != nil {
			t.Fatalf("debugfs ls %s: %v", dir, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(strings.TrimSpace(line), "/")
			if len(f) != 8 || f[5] == "." || f[5] == ".." || (dir == "" && f[5] == "lost+found") {
				continue
			}
			p := strings.TrimPrefix(dir+"/"+f[5], "/")
			mode, _ := strconv.ParseUint(f[2], 8, 32)
			e := fsEntry{mode: uint32(mode), owner: f[3] + ":" + f[4]}
			if mode&0o170000 == 0o040000 {
				walk(p)
			} else {
				c, err := exec.Command("debugfs", "-R", "cat "+quote("/"+p), raw).Output()
				if err != nil {
					t.Fatalf("debugfs cat %s: %v", p, err)
				}
				e.content = string(c)
			}
			out[p] = e
		}
	}
	walk("")
	return out
}
