package main

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// lastBoot is the console log of the domain's last boot: from its last
// VMFLOW-BOOTED on.
func lastBoot(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("/var/log/libvirt/qemu/" + name + "-console.log")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.LastIndex(s, "VMFLOW-BOOTED")
	if i < 0 {
		t.Fatalf("the guest never booted:\n%s", s)
	}
	return s[i:]
}

// boot starts the guest, which prints /var/vmflow (vmflow.files=1) and
// powers off, and returns its console lines.
func (h *harness) boot(name string, g guestDisks) string {
	h.t.Helper()
	h.defineGuest(name, g, "vmflow.files=1", "none")
	h.run("start", map[string]any{"name": name})
	h.waitOff(name)
	return lastBoot(h.t, name)
}

func wantLines(t *testing.T, console string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(console, l+"\r\n") && !strings.Contains(console, l+"\n") {
			t.Fatalf("the guest did not print %q:\n%s", l, console)
		}
	}
}

// wantFiles checks the files in an image: paths, modes, root's, contents.
func wantFiles(t *testing.T, image string, want map[string]fsEntry) {
	t.Helper()
	got := readFiles(t, image)
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		t.Fatalf("%s holds %v, want %v", image, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for p, w := range want {
		if g := got[p]; g.mode != w.mode || g.owner != "0:0" || g.content != w.content {
			t.Fatalf("%s in %s: mode %o, owner %s, content %q; want mode %o, root's, %q", p, image, g.mode, g.owner, g.content, w.mode, w.content)
		}
	}
}

var dir0755 = fsEntry{mode: 0o40755}

func file0644(c string) fsEntry { return fsEntry{mode: 0o100644, content: c} }
func file0600(c string) fsEntry { return fsEntry{mode: 0o100600, content: c} }

// Files written by volume_create and volume_edit are there for the guest
// and for a user reading the disk; an edit refuses a disk under a running
// guest and replays an unclean journal; a swapped /var is what the guest
// boots; an export is the volume's qcow2, hashed.
func TestVolumeFilesEditSwapExport(t *testing.T) {
	h := newHarness(t, "qemu:///system")
	name := uniqueName("vmflow-files")
	g := setupGuest(t, h, name, map[string]any{
		"files":        map[string]string{"vmflow/marker": "created", "identity/hostname": "alpha\n", "odd \"name\" here": "quoted"},
		"secret_files": map[string]string{"vmflow/key": "s3cret"},
	})
	t.Cleanup(func() {
		h.run("volume_delete", map[string]any{"name": name + "-var2", "missing_ok": true})
		h.removeGuest(name, g.boot, g.varPath)
		os.Remove("/var/log/libvirt/qemu/" + name + "-console.log")
		os.Remove("/var/log/libvirt/qemu/" + name + ".log")
	})

	// On the host, and in the guest.
	wantFiles(t, g.varPath, map[string]fsEntry{
		"vmflow": dir0755, "vmflow/marker": file0644("created"), "vmflow/key": file0600("s3cret"),
		"identity": dir0755, "identity/hostname": file0644("alpha\n"), `odd "name" here`: file0644("quoted"),
	})
	wantLines(t, h.boot(name, g), "VMFLOW-VAR-BEFORE: created", "VMFLOW-FILE: key "+sha("s3cret"), "VMFLOW-FILE: marker "+sha("created"))

	// Not under a running guest. Forced off, it leaves a journal to replay.
	h.defineGuest(name, g, "vmflow.marker=running vmflow.stay=1", "none")
	h.run("start", map[string]any{"name": name})
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(lastBoot(t, name), "VMFLOW-MARKER: running") {
		if time.Now().After(deadline) {
			t.Fatalf("the guest did not mount /var:\n%s", lastBoot(t, name))
		}
		time.Sleep(200 * time.Millisecond)
	}
	h.fails("volume_edit", map[string]any{"name": name + "-var", "remove": []string{"vmflow/key"}}, "is running; shut it down first")
	h.fails("volume_swap", map[string]any{"name": name + "-base", "with": name + "-var"}, `volume "`+name+`-base" is in use by domain`)
	h.run("destroy", map[string]any{"name": name})
	if f := features(t, g.varPath); !strings.Contains(f, "needs_recovery") {
		t.Fatalf("forced off, /var should have a journal to replay; its features: %s", f)
	}

	edit := h.run("volume_edit", map[string]any{
		"name":         name + "-var",
		"files":        map[string]string{"vmflow/marker": "edited"},
		"secret_files": map[string]string{"identity/ssh/ssh_host_ed25519_key": "NEW KEY"},
		"remove":       []string{"vmflow/key", "identity/host*", "odd*", "nosuch/*"},
	})
	if w, r := strs(edit, "written"), strs(edit, "removed"); !slices.Equal(w, []string{"identity/ssh/ssh_host_ed25519_key", "vmflow/marker"}) ||
		!slices.Equal(r, []string{"identity/hostname", `odd "name" here`, "vmflow/key"}) {
		t.Fatalf("volume_edit: written %q, removed %q", w, r)
	}
	wantFiles(t, g.varPath, map[string]fsEntry{
		"vmflow": dir0755, "vmflow/marker": file0644("edited"),
		"identity": dir0755, "identity/ssh": dir0755, "identity/ssh/ssh_host_ed25519_key": file0600("NEW KEY"),
	})
	if i := h.run("volume_info", map[string]any{"name": name + "-var"}); num(i, "capacity") != 1<<30 || str(i, "format") != "qcow2" || str(i, "path") != g.varPath {
		t.Fatalf("after volume_edit: %#v", i)
	}
	wantLines(t, h.boot(name, g), "VMFLOW-VAR-BEFORE: edited", "VMFLOW-FILE: marker "+sha("edited"))
	h.fails("volume_edit", map[string]any{"name": name + "-base", "remove": []string{"x"}}, "holds no ext4 filesystem")
	h.fails("volume_edit", map[string]any{"name": name + "-boot", "remove": []string{"x"}}, "is an overlay on")

	// A VM's snapshot lives in its /var: an edit would drop it.
	h.run("snapshot_create", map[string]any{"name": name, "snapshot": "keep"})
	h.fails("volume_edit", map[string]any{"name": name + "-var", "remove": []string{"x"}}, "internal snapshot")
	h.run("snapshot_delete", map[string]any{"name": name, "snapshot": "keep"})

	// Swapped in, another /var is what the guest boots; the undo swaps back.
	h.run("volume_create", map[string]any{"name": name + "-var2", "size": "2G", "filesystem": "ext4", "label": "var", "files": map[string]string{"vmflow/marker": "other"}})
	swap := map[string]any{"name": name + "-var", "with": name + "-var2"}
	out := h.run("volume_swap", swap)
	if i := h.run("volume_info", map[string]any{"name": name + "-var"}); num(i, "capacity") != 2<<30 || str(i, "path") != g.varPath {
		t.Fatalf("after volume_swap: %#v", i)
	}
	wantLines(t, h.boot(name, g), "VMFLOW-VAR-BEFORE: other")
	h.undo("volume_swap", swap, out)
	wantLines(t, h.boot(name, g), "VMFLOW-VAR-BEFORE: edited")

	// An export is the qcow2 as the pool keeps it: compact, hashed, and
	// readable as it is.
	path := filepath.Join(t.TempDir(), "var.qcow2")
	exp := map[string]any{"name": name + "-var", "path": path}
	out = h.run("volume_export", exp)
	sum, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if str(out, "sha256") != strings.Fields(string(sum))[0] || int64(num(out, "size")) != st.Size() || str(out, "format") != "qcow2" || str(out, "path") != path {
		t.Fatalf("volume_export: %#v; sha256sum says %s, the file has %d bytes", out, sum, st.Size())
	}
	if st.Size() > 16<<20 || st.Mode().Perm() != 0o600 {
		t.Fatalf("the export of a 1G /var holding two files is %d bytes, mode %o", st.Size(), st.Mode().Perm())
	}
	if b, err := exec.Command("qemu-img", "check", path).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check: %v\n%s", err, b)
	}
	if m := readFiles(t, path)["vmflow/marker"].content; m != "edited" {
		t.Fatalf("the export's marker: %q", m)
	}
	h.fails("volume_export", exp, "exists")
	h.undo("volume_export", exp, out)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("volume_export's undo left the file: %v", err)
	}
}

// features are the ext4 features of an image on this host (dumpe2fs -h).
func features(t *testing.T, image string) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if b, err := exec.Command("qemu-img", "convert", "-U", "-O", "raw", image, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, b)
	}
	b, err := exec.Command("dumpe2fs", "-h", raw).Output()
	if err != nil {
		t.Fatalf("dumpe2fs: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f, ok := strings.CutPrefix(l, "Filesystem features:"); ok {
			return strings.TrimSpace(f)
		}
	}
	return ""
}

func strs(v cty.Value, attr string) []string {
	out := []string{}
	for _, e := range v.GetAttr(attr).AsValueSlice() {
		out = append(out, e.AsString())
	}
	return out
}

// volume_swap refreshes the pool after its exchange, and libvirt refuses
// a refresh while another job (here a copy) runs in the pool: the swap
// waits for it rather than fail.
func TestSwapWhileThePoolIsBusy(t *testing.T) {
	h := newHarness(t, "qemu:///system")
	img := filepath.Join(t.TempDir(), "big.raw")
	if err := os.WriteFile(img, make([]byte, 1<<30), 0o644); err != nil {
		t.Fatal(err)
	}
	h.run("volume_import", map[string]any{"name": "big", "path": img})
	os.Remove(img)
	h.run("volume_create", map[string]any{"name": "a", "size": "64M"})
	h.run("volume_create", map[string]any{"name": "b", "size": "128M"})
	conn, pool, err := h.d.storagePool()
	if err != nil {
		t.Fatal(err)
	}
	// The copy runs in a plugin of its own, on the same pool, as a step of
	// another run would.
	other := newHarness(t, "qemu:///system")
	other.d.close()
	if err := other.d.configure("qemu:///system", "", h.d.poolName, h.d.poolPath, "auto", h.stateDir); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := other.try("volume_copy", map[string]any{"source": "big", "name": "big-copy"})
		done <- err
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		err := conn.StoragePoolRefresh(pool, 0)
		if err != nil && strings.Contains(err.Error(), "asynchronous jobs running") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pool never became busy while a 1 GiB copy ran (last: %v)", err)
		}
	}
	h.run("volume_swap", map[string]any{"name": "a", "with": "b"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if i := h.run("volume_info", map[string]any{"name": "a"}); num(i, "capacity") != 128<<20 {
		t.Fatalf("after the swap: %#v", i)
	}
}
