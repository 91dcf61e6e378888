package faults

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/vmflow/vmflow/internal/testbin"
	"github.com/vmflow/vmflow/internal/testenv"
	"github.com/vmflow/vmflow/internal/testlibvirt"
)

// TestLibvirtSample is a small sample of the suite on qemu:///system with
// the Debian test guest: create and upgrade, vmflow or the libvirt plugin
// killed, then undone or resumed; every domain and volume belongs to a
// record and every record's VM is whole, and /var keeps its content (the
// sha256 of a file written before, read through the guest agent).
func TestLibvirtSample(t *testing.T) {
	if !testlibvirt.Up() {
		testenv.Unavailable(t, "libvirtd is not running (make test starts it)")
	}
	guest := filepath.Join(testbin.Repo(), ".cache", "guest")
	if b, err := exec.Command(filepath.Join(testbin.Repo(), "testdata", "guest", "build.sh"), guest).CombinedOutput(); err != nil {
		t.Fatalf("building the test guest: %v\n%s", err, b)
	}
	figures.cases.Add(1)
	e := newEnv(t, t.TempDir())
	e.plugin = "vmflow-plugin-libvirt"
	lv := newLibvirt(t, e)
	c := &checker{e: e}
	// Unique to the state dir: two runs of the suite never share a VM.
	vm := "vmflow-fault-" + strings.TrimPrefix(lv.pool, "vmflow-")[:6]
	commits := map[string][]string{"upgrade": {"save"}}
	defer func() {
		if len(c.vs) > 0 {
			var b strings.Builder
			for _, v := range c.vs {
				b.WriteString("  [" + v.check + "] " + v.msg + "\n")
			}
			t.Errorf("%d violation(s):\n%show it went (VMFLOW_STATE_DIR=%s):\n%s", len(c.vs), b.String(), e.state, e.transcript.String())
		}
	}()

	create := []string{"--json", "create", vm, "--memory", "512", "--var_size", "1G",
		"--var", "kernel=" + filepath.Join(guest, "vmlinuz"), "--var", "initrd=" + filepath.Join(guest, "initrd.img"),
		"--var=cmdline=console=ttyS0 vmflow.stay=1", "--yes"}
	upgrade := []string{"--json", "upgrade", vm, "--yes"}
	runID := func(r cmdResult) string {
		for _, ev := range r.events {
			if ev.Run != "" {
				return ev.Run
			}
		}
		c.fail("runs", "%s printed no run id", r)
		return ""
	}

	// 1. create, vmflow killed right after var claimed its volume; --undo
	// leaves nothing.
	e.note("# 1. create, vmflow killed right after step var claimed; resume --undo")
	r, _ := e.runKilled(create, "vmflow", point{name: "claim-vm/var", claim: "vm/var"})
	if id := runID(r); id != "" {
		c.expect(e.vmflow("--json", "resume", id, "--undo"), 0, "recovery", "resume --undo of the interrupted create")
	}
	lv.nothing(c, vm)

	// 2. create, the plugin killed right after define claimed the domain:
	// vmflow fails the step and undoes it all.
	e.note("# 2. create, the libvirt plugin killed right after step define claimed")
	r, _ = e.runKilled(create, "plugin", point{name: "claim-vm/machine/define", claim: "vm/machine/define"})
	c.expect(r, 1, "recovery", "the step whose plugin was killed fails, and the run is undone")
	lv.nothing(c, vm)

	// 3. create for real, and a file on /var.
	e.note("# 3. create, and a file on /var")
	if !c.expect(e.vmflow(create...), 0, "recovery", "create after the undone runs") {
		return
	}
	want := lv.volumes()
	lv.whole(c, vm, 1, true)
	w := e.vmflow("exec", vm, "--", "sh", "-c", "mkdir -p /var/data && head -c 1048576 /dev/urandom > /var/data/blob && sync && sha256sum /var/data/blob")
	sum := shaRE.FindString(w.stdout)
	if !c.expect(w, 0, "var", "writing a file on /var") || sum == "" {
		return
	}
	checkVar := func(when string) {
		r := e.vmflow("exec", vm, "sha256sum", "/var/data/blob")
		if got := shaRE.FindString(r.stdout); r.code != 0 || got != sum {
			c.fail("var", "%s: /var/data/blob has sha256 %q, it had %s before\n%s", when, got, sum, r.tail())
		}
	}

	// 4. upgrade, vmflow killed once the swap began; --undo brings the VM
	// back as it was.
	e.note("# 4. upgrade, vmflow killed right after swap[boot] started; resume --undo")
	r, _ = e.runKilled(upgrade, "vmflow", point{name: "started-swap[boot]", event: "started-swap[boot]"})
	if id := runID(r); id != "" {
		c.expect(e.vmflow("--json", "resume", id, "--undo"), 0, "recovery", "resume --undo of the interrupted upgrade")
	}
	lv.whole(c, vm, 1, true)
	if got := lv.volumes(); !equalStrings(got, want) {
		c.fail("end-state", "after the upgrade was undone the volumes are %v, they were %v", got, want)
	}
	checkVar("after the upgrade was undone")

	// 5. upgrade, vmflow killed right after save (its commit point): --undo
	// is refused, resume finishes it.
	e.note("# 5. upgrade, vmflow killed right after save (the commit point); --undo refused, resume")
	r, _ = e.runKilled(upgrade, "vmflow", point{name: "done-save", event: "done-save"})
	generation := 2
	if id := runID(r); id != "" {
		if u := e.vmflow("--json", "resume", id, "--undo"); u.code != 2 {
			c.fail("commit", "%s: run %s had completed its commit point save, yet resume --undo was not refused (exit 2)\n%s", u, id, u.tail())
			if u.code == 0 {
				generation = 1 // rolled back: the VM must at least be whole
			}
		} else {
			c.expect(e.vmflow("--json", "resume", id), 0, "recovery", "resume of the committed upgrade")
		}
	}
	lv.whole(c, vm, generation, true)
	checkVar("after the upgrade was resumed")

	// 6. upgrade, the plugin killed right after define claimed: vmflow
	// fails the step and undoes the upgrade.
	e.note("# 6. upgrade, the libvirt plugin killed right after step define claimed")
	want = lv.volumes()
	r, _ = e.runKilled(upgrade, "plugin", point{name: "claim-vm/define", claim: "vm/define"})
	c.expect(r, 1, "recovery", "the step whose plugin was killed fails, and the upgrade is undone")
	lv.whole(c, vm, generation, true)
	if got := lv.volumes(); !equalStrings(got, want) {
		c.fail("end-state", "after the failed upgrade the volumes are %v, they were %v", got, want)
	}
	checkVar("after the failed upgrade")

	c.tmp()
	c.plugins("after the runs")
	c.expect(e.vmflow("purge", vm, "--yes"), 0, "purge", "purge "+vm)
	lv.nothing(c, vm)
	c.claims(c.runs(), commits, true)
}

var shaRE = regexp.MustCompile(`[0-9a-f]{64}`)

// lvState is what the sample reads of libvirtd: the state dir's pool
// (testlibvirt.PoolName) and the domains of its VMs.
type lvState struct {
	t    *testing.T
	e    *env
	conn *libvirt.Libvirt
	pool string
}

func newLibvirt(t *testing.T, e *env) *lvState {
	conn, err := testlibvirt.Connect()
	if err != nil {
		t.Fatalf("connecting to libvirtd: %v", err)
	}
	lv := &lvState{t: t, e: e, conn: conn, pool: testlibvirt.PoolName(e.state)}
	t.Cleanup(func() {
		// Whatever a failure left: the sample's domains and its pool.
		doms, _, _ := conn.ConnectListAllDomains(1, 0)
		for _, d := range doms {
			if d.Name == "vmflow-fault-"+strings.TrimPrefix(lv.pool, "vmflow-")[:6] {
				_ = conn.DomainDestroy(d)
				_ = conn.DomainUndefineFlags(d, libvirt.DomainUndefineNvram|libvirt.DomainUndefineSnapshotsMetadata)
			}
		}
		_ = testlibvirt.RemovePool(conn, lv.pool)
		conn.Disconnect()
	})
	return lv
}

func (lv *lvState) volumes() []string {
	pool, err := lv.conn.StoragePoolLookupByName(lv.pool)
	if err != nil {
		return nil
	}
	_ = lv.conn.StoragePoolRefresh(pool, 0)
	vols, _, err := lv.conn.StoragePoolListAllVolumes(pool, 1, 0)
	if err != nil {
		lv.t.Fatalf("listing pool %s: %v", lv.pool, err)
	}
	var out []string
	for _, v := range vols {
		out = append(out, v.Name)
	}
	sort.Strings(out)
	return out
}

// domain: whether it exists, and whether it runs.
func (lv *lvState) domain(name string) (exists, running bool) {
	d, err := lv.conn.DomainLookupByName(name)
	if err != nil {
		return false, false
	}
	st, _, err := lv.conn.DomainGetState(d, 0)
	return true, err == nil && libvirt.DomainState(st) == libvirt.DomainRunning
}

func (lv *lvState) record(name string) map[string]any {
	b, err := os.ReadFile(filepath.Join(lv.e.state, "machines", "libvirt", name, "record.json"))
	if err != nil {
		return nil
	}
	var rec struct {
		Values map[string]any `json:"values"`
	}
	if json.Unmarshal(b, &rec) != nil {
		return nil
	}
	return rec.Values
}

// nothing: no domain, no volume, no record of the VM.
func (lv *lvState) nothing(c *checker, vm string) {
	if exists, _ := lv.domain(vm); exists {
		c.fail("orphans", "domain %s exists", vm)
	}
	if vols := lv.volumes(); len(vols) > 0 {
		c.fail("orphans", "volumes left in pool %s: %v", lv.pool, vols)
	}
	if _, err := os.Stat(filepath.Join(lv.e.state, "machines", "libvirt", vm)); err == nil {
		c.fail("orphans", "the record of %s is left", vm)
	}
}

// whole: the VM runs, its record has the generation, and the pool holds
// exactly its volumes.
func (lv *lvState) whole(c *checker, vm string, generation int, running bool) {
	vals := lv.record(vm)
	if vals == nil {
		c.fail("whole", "%s has no readable record", vm)
		return
	}
	if g, _ := vals["generation"].(float64); int(g) != generation {
		c.fail("whole", "the record of %s has generation %v, want %d", vm, vals["generation"], generation)
	}
	want := []string{vm + "-boot", vm + "-var"}
	if b, _ := vals["base_volume"].(string); b != "" {
		want = append(want, b)
	}
	if k, _ := vals["kernel"].(string); k != "" {
		want = append(want, vm+"-kernel", vm+"-initrd")
	}
	sort.Strings(want)
	if got := lv.volumes(); !equalStrings(got, want) {
		c.fail("whole", "pool %s holds %v; the record of %s (generation %d) calls for %v", lv.pool, got, vm, generation, want)
	}
	if exists, run := lv.domain(vm); !exists || run != running {
		c.fail("whole", "domain %s: exists %v, running %v; want running %v", vm, exists, run, running)
	}
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}
