package main

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/internal/testlibvirt"
)

// testUser is the unprivileged user, in the libvirt group, that
// scripts/test-user.sh makes (make test runs it).
const testUser = "vmflow-test"

// requireTestUser skips (fails, in CI) a test that runs a libvirtd of its
// own as the test user, where there is no libvirtd, no such user or no
// root to become it.
func requireTestUser(t *testing.T) {
	t.Helper()
	requireLibvirtd(t)
	if _, err := user.Lookup(testUser); err != nil || os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("running a libvirtd as %s needs root and the user (scripts/test-user.sh): %v", testUser, err)
		}
		t.Skipf("running a libvirtd as %s needs root and the user (scripts/test-user.sh)", testUser)
	}
}

// startTCPDaemon starts the test user's libvirtd on qemu+tcp:// for the
// test (where requireTestUser lets it), stopped when the test ends.
func startTCPDaemon(t *testing.T) *testlibvirt.TCPDaemon {
	t.Helper()
	requireTestUser(t)
	lv, err := testlibvirt.StartTCP(testUser)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lv.Stop)
	return lv
}

// TestTCP reaches a libvirtd over qemu+tcp:// on 127.0.0.1: a session
// daemon of the unprivileged test user that the test runs with a config of
// its own (the machine's daemon is not reconfigured), so the pool it makes
// is that user's.
func TestTCP(t *testing.T) {
	lv := startTCPDaemon(t)

	d := &driver{}
	poolPath := filepath.Join(lv.Dir, "pool")
	if err := d.configure(lv.URI, "", "vmflow-tcp-test", poolPath, "auto", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	conn, pool, err := d.storagePool()
	if err != nil {
		t.Fatal(err)
	}
	uri, err := conn.ConnectGetUri()
	if err != nil || uri != "qemu:///session" {
		t.Fatalf("the daemon reached over tcp opened %q (%v), want qemu:///session", uri, err)
	}
	// The pool's directory was made by that daemon, as the test user.
	st, err := os.Stat(poolPath)
	if err != nil {
		t.Fatalf("the pool defined over tcp has no directory: %v", err)
	}
	u, _ := user.Lookup(testUser)
	if got := st.Sys().(*syscall.Stat_t).Uid; u == nil || u.Uid != strconv.FormatUint(uint64(got), 10) {
		t.Fatalf("the pool directory is owned by uid %d, want %s's", got, testUser)
	}
	_ = conn.StoragePoolDestroy(pool)
	_ = conn.StoragePoolUndefine(pool)

	// Nothing listening: the error names the address.
	lv.Stop()
	d2 := &driver{}
	err = d2.configure(lv.URI, "", "", "", "auto", t.TempDir())
	wantErr(t, err, "cannot connect to "+lv.URI, "127.0.0.1:"+lv.Port, "connection refused")
}

// TestListHosts lists the VMs of other hosts with this one's: each host
// is asked on its own connection, and one that does not answer is named
// with the reason instead of failing the list.
func TestListHosts(t *testing.T) {
	lv := startTCPDaemon(t)
	h := newHarness(t, "qemu:///system")
	gone := "qemu+tcp://127.0.0.1:1/session"
	out := h.run("list", map[string]any{"hosts": map[string]any{"tcp": lv.URI, "gone": gone}})
	byHost, unreachable := out.GetAttr("by_host"), out.GetAttr("unreachable")
	if !byHost.Type().IsMapType() || byHost.LengthInt() != 1 || !byHost.HasIndex(cty.StringVal("tcp")).True() {
		t.Fatalf("by_host = %#v, want the one host that answered, tcp", byHost)
	}
	if n := byHost.Index(cty.StringVal("tcp")).LengthInt(); n != 0 {
		t.Errorf("the test user's new session daemon lists %d VMs, want none", n)
	}
	if unreachable.LengthInt() != 1 || !unreachable.HasIndex(cty.StringVal("gone")).True() {
		t.Fatalf("unreachable = %#v, want gone", unreachable)
	}
	why := unreachable.Index(cty.StringVal("gone")).AsString()
	for _, want := range []string{"cannot connect to " + gone, "connection refused"} {
		if !strings.Contains(why, want) {
			t.Errorf("why gone did not answer: %q lacks %q", why, want)
		}
	}
	// Without hosts, list is as it was: nothing of other hosts.
	out = h.run("list", map[string]any{})
	if out.GetAttr("by_host").LengthInt() != 0 || out.GetAttr("unreachable").LengthInt() != 0 {
		t.Errorf("list without hosts reports other hosts: %#v", out)
	}
}
