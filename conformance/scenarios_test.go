package conformance

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zclconf/go-cty/cty"
)

// scenarios run in order against each target; each uses names of its own.
var scenarios = []struct {
	name string
	run  func(s *suite)
}{
	{"lifecycle", lifecycle},
	{"volumes", volumes},
	{"files", volumeFiles},
	{"snapshots", snapshots},
	{"resize", resize},
	{"undo", undos},
	{"names", names},
}

// vm makes the disks of a VM the way tasks.hcl does (<vm>-base, a thin
// <vm>-boot on it, <vm>-var) and returns define's arguments for it.
func (s *suite) vm(name string) map[string]any {
	s.T.Helper()
	s.Run("volume_create", map[string]any{"name": name + "-base", "size": "64M"})
	boot := s.Run("volume_overlay", map[string]any{"name": name + "-boot", "backing": name + "-base"})
	if num(boot, "capacity") != 64<<20 || str(boot, "name") != name+"-boot" || str(boot, "path") == "" {
		s.T.Fatalf("volume_overlay: %#v", boot)
	}
	args := map[string]any{
		"name": name, "memory": 256, "boot_volume": str(boot, "name"), "var_volume": name + "-var",
		"firmware": "kernel", "network": "nat",
	}
	fs := ""
	if s.tg.guest {
		// A real guest: it mounts an ext4 /var, writes the marker there,
		// takes a DHCP lease and runs the guest agent.
		g := guestDir(s.T)
		fs = "ext4"
		args["memory"] = 512
		args["kernel"] = filepath.Join(g, "vmlinuz")
		args["initrd"] = filepath.Join(g, "initrd.img")
		args["cmdline"] = "console=ttyS0 panic=-1 vmflow.marker=conformance vmflow.stay=1"
	} else {
		kernel := filepath.Join(s.files, "vmlinuz")
		if err := os.WriteFile(kernel, []byte("not really a kernel"), 0o644); err != nil {
			s.T.Fatal(err)
		}
		args["kernel"] = kernel
	}
	v := s.Run("volume_create", map[string]any{"name": name + "-var", "size": "1G", "filesystem": fs, "label": "var"})
	if num(v, "capacity") != 1<<30 {
		s.T.Fatalf("volume_create: %#v", v)
	}
	return args
}

// removeVM undefines a VM and deletes its disks, checking that nothing is
// left.
func (s *suite) removeVM(name string) {
	s.T.Helper()
	if out := s.Run("undefine", map[string]any{"name": name, "force": true}); !out.GetAttr("undefined").True() {
		s.T.Fatalf("undefine %s: %#v", name, out)
	}
	if _, err := s.Try("volumes_delete", map[string]any{"names": []string{name + "-never-made"}}); err == nil || !strings.Contains(err.Error(), name+"-never-made") {
		s.T.Fatalf("volumes_delete of a missing volume without missing_ok: %v", err)
	}
	// One step deletes a VM's disks, an overlay before its base; a name
	// that does not exist is skipped with missing_ok.
	names := []string{name + "-boot", name + "-never-made", name + "-base", name + "-var"}
	out := s.Run("volumes_delete", map[string]any{"names": names, "missing_ok": true})
	if got, want := strs(out, "deleted"), []string{name + "-boot", name + "-base", name + "-var"}; !slices.Equal(got, want) {
		s.T.Fatalf("volumes_delete deleted %v, want %v", got, want)
	}
	for _, v := range []string{"-boot", "-base", "-var"} {
		if i := s.Run("volume_info", map[string]any{"name": name + v}); i.GetAttr("exists").True() {
			s.T.Fatalf("volume %s is still there", name+v)
		}
	}
	if st := s.Run("state", map[string]any{"name": name}); st.GetAttr("exists").True() || str(st, "state") != "" {
		s.T.Fatalf("%s is still defined: %#v", name, st)
	}
	if l := s.Run("list", map[string]any{"prefix": s.prefix}); slices.Contains(strs(l, "names"), name) {
		s.T.Fatalf("list still shows %s", name)
	}
}

func (s *suite) wantState(name, want string) {
	s.T.Helper()
	st := s.Run("state", map[string]any{"name": name})
	if !st.GetAttr("exists").True() || str(st, "state") != want {
		s.T.Fatalf("state of %s: %#v, want %q", name, st, want)
	}
	l := s.Run("list", map[string]any{"prefix": s.prefix})
	if got := l.GetAttr("states").Index(cty.StringVal(name)); got.AsString() != want {
		s.T.Fatalf("list: %s is %q, want %q", name, got.AsString(), want)
	}
}

// lifecycle: define, start, stop, state, the guest, and removal; every
// action run again after it succeeded.
func lifecycle(s *suite) {
	name := s.name("life")
	def := s.vm(name)
	d := s.Run("define", def)
	if str(d, "name") != name || str(d, "uuid") == "" || str(d, "mac") == "" || str(d, "previous_xml") != "" {
		s.T.Fatalf("define: %#v", d)
	}
	s.wantState(name, "shut off")
	// Defining again (a stopped VM) keeps its identity.
	if again := s.Run("define", def); str(again, "uuid") != str(d, "uuid") || str(again, "mac") != str(d, "mac") || str(again, "previous_xml") == "" {
		s.T.Fatalf("define again: %#v, first %#v", again, d)
	}
	// A stopped VM has no console to attach.
	s.refused("lifecycle/console", "console", map[string]any{"name": name}, "is not running")

	st := s.Run("start", map[string]any{"name": name})
	if !st.GetAttr("started").True() || str(st, "state") != "running" {
		s.T.Fatalf("start: %#v", st)
	}
	s.wantState(name, "running")
	if again := s.Run("start", map[string]any{"name": name}); again.GetAttr("started").True() || str(again, "state") != "running" {
		s.T.Fatalf("start again: %#v", again)
	}
	s.refused("lifecycle/define-running", "define", def, "is running")
	s.refused("lifecycle/undefine-running", "undefine", map[string]any{"name": name}, "is running", "force")

	timeout := 5
	if s.tg.guest {
		timeout = 180
	}
	if ip, ok := s.check("lifecycle/wait_ip", "wait_ip", map[string]any{"name": name, "timeout": timeout}); ok {
		if a := net.ParseIP(str(ip, "ip")); a == nil || a.To4() == nil || !strings.EqualFold(str(ip, "mac"), str(d, "mac")) {
			s.T.Fatalf("wait_ip: %#v", ip)
		}
	}
	if out, ok := s.check("lifecycle/guest_exec", "guest_exec", map[string]any{"name": name, "argv": []string{"cat", "/var/vmflow/marker"}, "timeout": timeout}); ok {
		if got := str(out, "stdout"); got != "conformance\n" {
			s.T.Fatalf("guest_exec: stdout %q", got)
		}
	}
	// state reports the address wait_ip found, at once.
	ip := s.Run("wait_ip", map[string]any{"name": name, "timeout": timeout})
	if st := s.Run("state", map[string]any{"name": name}); str(st, "ip") != str(ip, "ip") {
		s.T.Fatalf("state's ip %q, wait_ip's %q", str(st, "ip"), str(ip, "ip"))
	}

	// Nothing changes the disks under a running VM; ensure_absent names
	// everything there is.
	s.refused("lifecycle/edit-running", "volume_edit", map[string]any{"name": name + "-var", "remove": []string{"x"}}, "name:", "running")
	// The base of its boot disk is in use too.
	s.refused("lifecycle/swap-running", "volume_swap", map[string]any{"name": name + "-base", "with": name + "-var"}, "name:", "running")
	s.refused("lifecycle/ensure_absent", "ensure_absent", map[string]any{"vm": name, "volumes": []string{name + "-var", s.name("nosuch"), name + "-boot"}},
		fmt.Sprintf("VM %s exists (running); volumes %s-var, %s-boot exist", name, name, name))

	// Pause and resume, as a backup does around its export.
	sus := map[string]any{"name": name}
	out := s.Run("suspend", sus)
	if !out.GetAttr("suspended").True() {
		s.T.Fatalf("suspend: %#v", out)
	}
	s.wantState(name, "paused")
	if st := s.Run("state", map[string]any{"name": name}); str(st, "ip") != "" {
		s.T.Fatalf("a paused VM's state has ip %q", str(st, "ip"))
	}
	if again := s.Run("suspend", sus); again.GetAttr("suspended").True() {
		s.T.Fatalf("suspend of a paused VM: %#v", again)
	}
	s.Undo("suspend", sus, out)
	s.wantState(name, "running")
	s.Run("suspend", sus)
	if r := s.Run("resume", sus); !r.GetAttr("resumed").True() {
		s.T.Fatalf("resume: %#v", r)
	}
	s.wantState(name, "running")
	if r := s.Run("resume", sus); r.GetAttr("resumed").True() {
		s.T.Fatalf("resume of a running VM: %#v", r)
	}

	// shutdown's undo starts the VM it stopped.
	down := map[string]any{"name": name, "timeout": 60}
	out = s.Run("shutdown", down)
	if str(out, "state") != "shut off" || !out.GetAttr("stopped").True() {
		s.T.Fatalf("shutdown: %#v", out)
	}
	s.wantState(name, "shut off")
	if st := s.Run("state", map[string]any{"name": name}); str(st, "ip") != "" {
		s.T.Fatalf("a stopped VM's state has ip %q", str(st, "ip"))
	}
	s.Undo("shutdown", down, out)
	s.wantState(name, "running")
	if s.tg.guest {
		// Let the guest boot, and its agent come up, before it is asked to
		// power off.
		s.Run("guest_exec", map[string]any{"name": name, "argv": []string{"true"}, "timeout": timeout})
	}
	if out := s.Run("shutdown", down); str(out, "state") != "shut off" || !out.GetAttr("stopped").True() {
		s.T.Fatalf("shutdown: %#v", out)
	}
	s.wantState(name, "shut off")
	out = s.Run("shutdown", map[string]any{"name": name})
	if str(out, "state") != "shut off" || out.GetAttr("stopped").True() {
		s.T.Fatalf("shutdown again: %#v", out)
	}
	s.Undo("shutdown", map[string]any{"name": name}, out) // it stopped nothing: nothing to start
	s.wantState(name, "shut off")
	if out := s.Run("suspend", sus); out.GetAttr("suspended").True() {
		s.T.Fatalf("suspend of a stopped VM: %#v", out)
	}
	if out := s.Run("destroy", map[string]any{"name": name}); out.GetAttr("was_running").True() {
		s.T.Fatalf("destroy of a stopped VM: %#v", out)
	}

	s.removeVM(name)
	if out := s.Run("ensure_absent", map[string]any{"vm": name, "volumes": []string{name + "-var", name + "-boot"}}); !slices.Equal(strs(out, "checked"), []string{"VM " + name, "volume " + name + "-var", "volume " + name + "-boot"}) {
		s.T.Fatalf("ensure_absent: %#v", out)
	}
	s.refused("lifecycle/undefine-again", "undefine", map[string]any{"name": name}, "name:", name)
	if out := s.Run("undefine", map[string]any{"name": name, "missing_ok": true}); out.GetAttr("undefined").True() {
		s.T.Fatalf("undefine of a missing VM: %#v", out)
	}
	s.refused("lifecycle/start-missing", "start", map[string]any{"name": name}, "name:", name)
	s.refused("lifecycle/snapshots-of-missing", "snapshot_list", map[string]any{"name": name}, "name:", name)
}

// volumes: overlays, imports, copies, and running each again.
func volumes(s *suite) {
	base := s.name("vol", "base")
	s.Run("volume_create", map[string]any{"name": base, "size": "1G"})
	s.refused("volumes/create-again", "volume_create", map[string]any{"name": base, "size": "1G"}, "already exists")
	over := s.name("vol", "over")
	ov := s.Run("volume_overlay", map[string]any{"name": over, "backing": base})
	if num(ov, "capacity") != 1<<30 {
		s.T.Fatalf("volume_overlay: %#v", ov)
	}
	s.refused("volumes/overlay-again", "volume_overlay", map[string]any{"name": over, "backing": base}, "already exists")
	info := s.Run("volume_info", map[string]any{"name": over})
	if !info.GetAttr("exists").True() || str(info, "path") != str(ov, "path") || num(info, "capacity") != 1<<30 || str(info, "backing") == "" {
		s.T.Fatalf("volume_info of an overlay: %#v", info)
	}
	cp := s.name("vol", "copy")
	if c := s.Run("volume_copy", map[string]any{"source": base, "name": cp}); num(c, "capacity") != 1<<30 || str(c, "path") == str(ov, "path") {
		s.T.Fatalf("volume_copy: %#v", c)
	}
	s.refused("volumes/copy-again", "volume_copy", map[string]any{"source": base, "name": cp}, "already exists")
	s.refused("volumes/overlay-on-missing", "volume_overlay", map[string]any{"name": s.name("vol", "orphan"), "backing": s.name("vol", "nosuch")}, "backing:", "no volume")

	ext4 := s.name("vol", "ext4")
	if _, ok := s.check("volumes/ext4", "volume_create", map[string]any{"name": ext4, "size": "256M", "filesystem": "ext4", "label": "var"}); ok {
		s.Run("volume_delete", map[string]any{"name": ext4})
	}

	img := filepath.Join(s.files, "image.raw")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		s.T.Fatal(err)
	}
	imported := s.name("vol", "image")
	if im, ok := s.check("volumes/import", "volume_import", map[string]any{"path": img, "name": imported}); ok {
		if num(im, "capacity") != 1<<20 || str(im, "format") != "raw" || str(im, "path") == "" {
			s.T.Fatalf("volume_import: %#v", im)
		}
		s.refused("volumes/import-again", "volume_import", map[string]any{"path": img, "name": imported}, "already exists")
		s.Run("volume_delete", map[string]any{"name": imported})
	}
	// Whether it worked or not, no half-made volume is left.
	if i := s.Run("volume_info", map[string]any{"name": imported}); i.GetAttr("exists").True() {
		s.T.Fatalf("%s is there after its import and delete", imported)
	}
	s.refused("volumes/import-missing-file", "volume_import", map[string]any{"path": filepath.Join(s.files, "nosuch"), "name": s.name("vol", "none")}, "path:")

	for _, v := range []string{over, cp, base} {
		if out := s.Run("volume_delete", map[string]any{"name": v}); !out.GetAttr("deleted").True() {
			s.T.Fatalf("volume_delete %s: %#v", v, out)
		}
	}
	s.refused("volumes/delete-again", "volume_delete", map[string]any{"name": base}, "name:", "no volume")
	if out := s.Run("volume_delete", map[string]any{"name": base, "missing_ok": true}); out.GetAttr("deleted").True() {
		s.T.Fatalf("volume_delete of a missing volume: %#v", out)
	}
}

// snapshots: create, list, revert, delete, an unknown one, and each again.
func snapshots(s *suite) {
	name := s.name("snap")
	s.Run("define", s.vm(name))
	snap := func(n, desc string) {
		out := s.Run("snapshot_create", map[string]any{"name": name, "snapshot": n, "description": desc})
		if str(out, "snapshot") != n || str(out, "state") != "shut off" {
			s.T.Fatalf("snapshot_create %s: %#v", n, out)
		}
	}
	snap("first", "the first")
	s.refused("snapshots/create-again", "snapshot_create", map[string]any{"name": name, "snapshot": "first"}, "already has a snapshot \"first\"")
	snap("second", "")
	l := s.Run("snapshot_list", map[string]any{"name": name})
	if got := strs(l, "names"); !slices.Equal(got, []string{"first", "second"}) {
		s.T.Fatalf("snapshot_list names: %q", got)
	}
	first := l.GetAttr("snapshots").Index(cty.NumberIntVal(0))
	if str(first, "name") != "first" || str(first, "description") != "the first" || str(first, "state") != "shutoff" || str(first, "created") == "" {
		s.T.Fatalf("snapshot_list: %#v", first)
	}

	for range 2 { // reverting again changes nothing
		if out := s.Run("snapshot_revert", map[string]any{"name": name, "snapshot": "first"}); str(out, "state") != "shut off" {
			s.T.Fatalf("snapshot_revert: %#v", out)
		}
	}
	s.refused("snapshots/revert-unknown", "snapshot_revert", map[string]any{"name": name, "snapshot": "nope"}, "snapshot:", `no snapshot "nope"`, "it has: first, second")
	s.wantState(name, "shut off")

	if out := s.Run("snapshot_delete", map[string]any{"name": name, "snapshot": "second"}); !out.GetAttr("deleted").True() {
		s.T.Fatalf("snapshot_delete: %#v", out)
	}
	s.refused("snapshots/delete-again", "snapshot_delete", map[string]any{"name": name, "snapshot": "second"}, "snapshot:", `no snapshot "second"`, "it has: first")
	if out := s.Run("snapshot_delete", map[string]any{"name": name, "snapshot": "second", "missing_ok": true}); out.GetAttr("deleted").True() {
		s.T.Fatalf("snapshot_delete of a missing snapshot: %#v", out)
	}
	// A running VM's snapshot, and back to it.
	s.Run("start", map[string]any{"name": name})
	if s.tg.guest {
		// Let the guest boot before its memory is saved.
		s.Run("wait_ip", map[string]any{"name": name, "timeout": 180})
	}
	if out := s.Run("snapshot_create", map[string]any{"name": name, "snapshot": "live"}); str(out, "state") != "running" {
		s.T.Fatalf("snapshot_create of a running VM: %#v", out)
	}
	if out := s.Run("snapshot_revert", map[string]any{"name": name, "snapshot": "first"}); str(out, "state") != "shut off" {
		s.T.Fatalf("revert to a stopped snapshot: %#v", out)
	}
	if out := s.Run("snapshot_revert", map[string]any{"name": name, "snapshot": "live"}); str(out, "state") != "running" {
		s.T.Fatalf("revert to a running snapshot: %#v", out)
	}
	s.wantState(name, "running")
	s.removeVM(name)
}

// resize: a grow, a shrink refused, the same size again.
func resize(s *suite) {
	v := s.name("rs", "var")
	s.Run("volume_create", map[string]any{"name": v, "size": "1G"})
	if out, ok := s.check("resize/grow", "volume_resize", map[string]any{"name": v, "size": "2G"}); ok {
		if num(out, "capacity") != 2<<30 {
			s.T.Fatalf("volume_resize: %#v", out)
		}
		if out := s.Run("volume_resize", map[string]any{"name": v, "size": "2G"}); num(out, "capacity") != 2<<30 {
			s.T.Fatalf("volume_resize to the same size: %#v", out)
		}
		s.refused("resize/shrink", "volume_resize", map[string]any{"name": v, "size": "1G"}, "size:", "shrinking it to 1G is refused")
	} else {
		s.refused("resize/shrink", "volume_resize", map[string]any{"name": v, "size": "512M"}, "size:", "shrinking it to 512M is refused")
	}
	if i := s.Run("volume_info", map[string]any{"name": v}); num(i, "capacity") < 1<<30 {
		s.T.Fatalf("a refused shrink changed the volume: %#v", i)
	}
	s.refused("resize/missing", "volume_resize", map[string]any{"name": s.name("rs", "nosuch"), "size": "2G"}, "name:", "no volume")
	s.Run("volume_delete", map[string]any{"name": v})
}

// undos reverse what each undoable action did.
func undos(s *suite) {
	v := s.name("undo", "scratch")
	args := map[string]any{"name": v, "size": "1G"}
	s.Undo("volume_create", args, s.Run("volume_create", args))
	if i := s.Run("volume_info", map[string]any{"name": v}); i.GetAttr("exists").True() {
		s.T.Fatal("volume_create's undo left the volume")
	}

	name := s.name("undo")
	def := s.vm(name)
	out := s.Run("define", def)
	s.Undo("define", def, out)
	if st := s.Run("state", map[string]any{"name": name}); st.GetAttr("exists").True() {
		s.T.Fatal("define's undo left the VM")
	}
	s.Run("define", def)
	redef := maps.Clone(def)
	redef["memory"] = 384
	s.Undo("define", redef, s.Run("define", redef))
	if st := s.Run("state", map[string]any{"name": name}); !st.GetAttr("exists").True() {
		s.T.Fatal("the undo of a redefinition removed the VM")
	}

	start := map[string]any{"name": name}
	s.Undo("start", start, s.Run("start", start))
	s.wantState(name, "shut off")

	snap := map[string]any{"name": name, "snapshot": "undone"}
	s.Undo("snapshot_create", snap, s.Run("snapshot_create", snap))
	if l := s.Run("snapshot_list", map[string]any{"name": name}); len(strs(l, "names")) != 0 {
		s.T.Fatalf("snapshot_create's undo left %q", strs(l, "names"))
	}
	s.removeVM(name)
}

// names: the rules for VM, volume and snapshot names, checked before
// anything runs.
func names(s *suite) {
	for _, bad := range []string{"bad/name", "..", "has space", "-x", "semi;colon", strings.Repeat("a", 129)} {
		s.refused("names/volume", "volume_create", map[string]any{"name": bad, "size": "1G"}, "name:", "invalid volume name")
		s.refused("names/vm", "define", map[string]any{"name": bad, "boot_volume": "whatever"}, "name:", "invalid")
	}
	s.refused("names/ensure_absent", "ensure_absent", map[string]any{"vm": "bad/name", "volumes": []string{"ok", "has space"}}, "vm:", "volumes[1]:", "invalid")
	s.refused("names/swap", "volume_swap", map[string]any{"name": "..", "with": "ok"}, "name:", "invalid volume name")
	s.refused("names/edit", "volume_edit", map[string]any{"name": "ok", "remove": []string{"../etc"}}, "remove[0]:", `has ".."`)
	s.refused("names/suspend", "suspend", map[string]any{"name": "bad/name"}, "name:", "invalid")
	s.refused("names/size", "volume_create", map[string]any{"name": s.name("size"), "size": "1.5G"}, "size:", `invalid size "1.5G"`)
	name := s.name("names")
	def := s.vm(name)
	for _, bad := range []string{"1st", "current", "a.b", "has space", "x" + strings.Repeat("y", 40)} {
		s.refused("names/snapshot", "snapshot_create", map[string]any{"name": name, "snapshot": bad}, "snapshot:", "invalid snapshot name")
	}
	// Names one backend may refuse where another takes them.
	under := s.prefix + "a_b"
	underDef := maps.Clone(def)
	underDef["name"] = under
	if _, ok := s.check("names/underscore", "define", underDef); ok {
		s.Run("undefine", map[string]any{"name": under})
	}
	s.Run("define", def)
	s.removeVM(name)
}
