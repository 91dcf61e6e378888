package faults

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The invariants, each a named check that says exactly what it found.

type violation struct {
	check string
	msg   string
}

type checker struct {
	e  *env
	vs []violation
}

func (c *checker) fail(check, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, v := range c.vs {
		if v.check == check && v.msg == msg {
			return // found again by a later check
		}
	}
	c.vs = append(c.vs, violation{check, msg})
	figures.violation(check)
	c.e.note("  VIOLATION %s: %s", check, msg)
}

// expect checks a command's exit code.
func (c *checker) expect(r cmdResult, code int, check, why string) bool {
	if r.code == code && !r.hung {
		return true
	}
	c.fail(check, "%s, want exit %d (%s)\n%s", r, code, why, r.tail())
	return false
}

// ownerOf is the stub's rule (plugins/proxmox-stub/state.go): a volume
// belongs to the VM its name is for, the name up to its last '-'.
func ownerOf(volume string) string {
	if i := strings.LastIndexByte(volume, '-'); i > 0 {
		return volume[:i]
	}
	return volume
}

// orphans: every VM and volume in the stub's state belongs to a machine
// record.
func (c *checker) orphans(s *snapshot) {
	for _, name := range sortedKeys(s.stub.VMs) {
		if _, ok := s.records[name]; !ok {
			v := s.stub.VMs[name]
			c.fail("orphans", "VM %s (VMID %d, %s) exists without a machine record", name, v.VMID, v.Status)
		}
	}
	vmByID := map[int]string{}
	for name, v := range s.stub.VMs {
		vmByID[v.VMID] = name
	}
	for _, id := range sortedKeys(s.stub.Volumes) {
		v := s.stub.Volumes[id]
		if v.Name == "" {
			if _, ok := vmByID[v.VMID]; !ok {
				c.fail("orphans", "disk %s (an EFI disk of VMID %d) belongs to no VM", id, v.VMID)
			}
			continue
		}
		if _, ok := s.records[ownerOf(v.Name)]; !ok {
			c.fail("orphans", "volume %s (%s) belongs to %s, which has no machine record", v.Name, id, ownerOf(v.Name))
		}
	}
}

// whole: every record's VM is whole, its volumes exist and it has no
// others; or it is destroyed (no VM, no volume: recreate brings it back).
func (c *checker) whole(s *snapshot) {
	byName := map[string]*volume{}
	for _, v := range s.stub.Volumes {
		if v.Name != "" {
			byName[v.Name] = v
		}
	}
	for _, name := range sortedKeys(s.records) {
		vals := s.values[name]
		if vals == nil {
			c.fail("whole", "record %s: its directory holds no readable record.json", name)
			continue
		}
		want := map[string]bool{name + "-boot": true, name + "-var": true}
		if b, _ := vals["base_volume"].(string); b != "" {
			want[b] = true
		}
		if k, _ := vals["kernel"].(string); k != "" {
			want[name+"-kernel"], want[name+"-initrd"] = true, true
		}
		var have, missing, stray []string
		for vn := range byName {
			if ownerOf(vn) == name {
				have = append(have, vn)
				if !want[vn] {
					stray = append(stray, vn)
				}
			}
		}
		for vn := range want {
			if byName[vn] == nil {
				missing = append(missing, vn)
			}
		}
		sort.Strings(have)
		sort.Strings(missing)
		sort.Strings(stray)
		gen := fmt.Sprint(vals["generation"])
		v := s.stub.VMs[name]
		if v == nil {
			if len(have) > 0 {
				c.fail("whole", "record %s (generation %s): no VM, yet volumes %v exist (half made or half removed)", name, gen, have)
			}
			continue
		}
		if len(missing) > 0 {
			c.fail("whole", "record %s (generation %s, base_volume %v): VM %s is %s but volumes %v are missing", name, gen, vals["base_volume"], name, v.Status, missing)
		}
		if len(stray) > 0 {
			c.fail("whole", "record %s (generation %s): volumes %v are left beside its VM (not its boot, var, base, kernel or initrd)", name, gen, stray)
		}
		if b := byName[name+"-boot"]; b != nil && v.Boot != b.VolID {
			c.fail("whole", "VM %s boots from %s, not from %s-boot (%s)", name, v.Boot, name, b.VolID)
		}
		if b := byName[name+"-var"]; b != nil && v.Var != b.VolID {
			c.fail("whole", "VM %s has /var on %s, not on %s-var (%s)", name, v.Var, name, b.VolID)
		}
		if vs, _ := vals["var_size"].(string); byName[name+"-var"] != nil && sizeOf(vs) != 0 && sizeOf(vs) != byName[name+"-var"].Size {
			c.fail("whole", "VM %s's /var (%s) holds %d bytes, its record says var_size %s", name, name+"-var", byName[name+"-var"].Size, vs)
		}
		if u, _ := vals["uuid"].(string); u != v.UUID {
			c.fail("whole", "VM %s has UUID %s, its record %s", name, v.UUID, u)
		}
		if m, _ := vals["mac"].(string); !strings.EqualFold(m, v.MAC) {
			c.fail("whole", "VM %s has MAC %s, its record %s", name, v.MAC, m)
		}
	}
}

// stray: no temporary file of an atomic write is left (a process killed
// between writing it and renaming it leaves one; whoever writes there next
// should clear it).
func (c *checker) stray(s *snapshot) {
	if len(s.stray) > 0 {
		c.fail("stray", "temporary files left in the state dir: %s", strings.Join(s.stray, ", "))
	}
}

// paused: no VM is left paused.
func (c *checker) paused(s *snapshot) {
	for _, name := range sortedKeys(s.stub.VMs) {
		if s.stub.VMs[name].Paused {
			c.fail("paused", "VM %s is left paused", name)
		}
	}
}

// tmp: nothing is left in <state>/tmp/.
func (c *checker) tmp() {
	var left []string
	_ = filepath.Walk(filepath.Join(c.e.state, "tmp"), func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(c.e.state, p)
		if rel == "tmp" {
			return nil
		}
		if info.IsDir() {
			rel += "/"
		} else {
			rel += fmt.Sprintf(" (%d bytes)", info.Size())
		}
		left = append(left, rel)
		return nil
	})
	if len(left) > 0 {
		c.fail("tmp", "left in the state dir: %s", strings.Join(left, ", "))
	}
}

// runInfo is a run as `vmflow runs --json` shows it, with its steps'
// last statuses from its journal.
type runInfo struct {
	ID     string `json:"id"`
	Task   string `json:"task"`
	Status string `json:"status"`
	Error  string `json:"error"`
	steps  map[string]string
	// succeeded: the steps that completed at some point (a later undo
	// changes their last status).
	succeeded map[string]bool
	// undone: some step was undone or its undo failed.
	undone bool
}

// runs lists the state dir's runs by id, as the user sees them.
func (c *checker) runs() map[string]*runInfo {
	r := c.e.vmflow("runs", "--json")
	var list []*runInfo
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		c.fail("runs", "`vmflow runs --json` printed no list: %v\n%s", err, r.tail())
		return nil
	}
	out := map[string]*runInfo{}
	for _, ri := range list {
		ri.steps, ri.succeeded = map[string]string{}, map[string]bool{}
		f, err := os.Open(filepath.Join(c.e.state, "runs", ri.ID, "journal.jsonl"))
		if err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<26)
			for sc.Scan() {
				var rec struct{ Step, Status string }
				if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Step != "" {
					ri.steps[rec.Step] = rec.Status
					if rec.Status == "succeeded" {
						ri.succeeded[rec.Step] = true
					}
					if rec.Status == "undone" || rec.Status == "undo_failed" {
						ri.undone = true
					}
				}
			}
			f.Close()
		}
		out[ri.ID] = ri
	}
	return out
}

// committed names a commit step the run completed, if any.
func (ri *runInfo) committed(commit []string) string {
	for _, s := range commit {
		if ri.succeeded[s] {
			return s
		}
	}
	return ""
}

// committing names a commit step the run was interrupted in, or that
// failed (its plugin was killed), if any: its change may be made, and may
// have no undo.
func (ri *runInfo) committing(commit []string) string {
	for _, s := range commit {
		if st := ri.steps[s]; st == "running" || st == "failed" {
			return s
		}
	}
	return ""
}

// finished: the run can be neither resumed nor undone any more.
func (ri *runInfo) finished(commit []string) bool {
	switch ri.Status {
	case "succeeded", "rolled_back", "superseded":
		return true
	case "failed", "cancelled":
		return ri.committed(commit) == "" || ri.undone
	}
	return false
}

// claims: no claims of a finished run are left; at the end, no run is
// left unfinished either.
func (c *checker) claims(runs map[string]*runInfo, commit map[string][]string, end bool) {
	dirs, _ := filepath.Glob(filepath.Join(c.e.state, "claims", "*", "*"))
	for _, d := range dirs {
		id := filepath.Base(d)
		ri := runs[id]
		if ri == nil {
			c.fail("claims", "%s: claims of run %s, which vmflow runs does not list", rel(c.e.state, d), id)
			continue
		}
		if ri.finished(commit[ri.Task]) {
			var keys []string
			_ = filepath.Walk(d, func(p string, info os.FileInfo, err error) error {
				if err == nil && !info.IsDir() {
					keys = append(keys, rel(d, p))
				}
				return nil
			})
			c.fail("claims", "%s: claims of run %s (%s, %s) are left: %v", rel(c.e.state, d), id, ri.Task, ri.Status, keys)
		}
	}
	if !end {
		return
	}
	for _, id := range sortedKeys(runs) {
		ri := runs[id]
		if !ri.finished(commit[ri.Task]) {
			c.fail("runs", "run %s of %s is left %s after the recovery", id, ri.Task, ri.Status)
		}
	}
}

// plugins: no plugin process of the case is left (within five seconds).
func (c *checker) plugins(when string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := pluginsOf(c.e.state)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.fail("plugins", "%s: plugin processes are left: %v", when, left)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// endState: the state is what the task and the recovery call for.
func (c *checker) endState(got *snapshot, want map[string]any, what string, normal bool) {
	g := got.exact()
	if normal {
		g = got.normal()
	}
	if d := diff(want, g, 25); len(d) > 0 {
		c.fail("end-state", "%s (- want, + got):\n    %s", what, strings.Join(d, "\n    "))
	}
}

// purge: purging every VM the state knows leaves nothing in the stub and
// no record.
func (c *checker) purge(names []string) {
	s := takeSnapshot(c.e.state)
	all := map[string]bool{}
	for _, n := range names {
		all[n] = true
	}
	for n := range s.stub.VMs {
		all[n] = true
	}
	for n := range s.records {
		all[n] = true
	}
	for _, v := range s.stub.Volumes {
		if v.Name != "" {
			all[ownerOf(v.Name)] = true
		}
	}
	for _, n := range sortedKeys(all) {
		r := c.e.vmflow("--var", "backend="+backend, "purge", n, "--yes")
		c.expect(r, 0, "purge", "purge "+n)
	}
	s = takeSnapshot(c.e.state)
	var left []string
	for _, n := range sortedKeys(s.stub.VMs) {
		left = append(left, "VM "+n)
	}
	for _, id := range sortedKeys(s.stub.Volumes) {
		v := s.stub.Volumes[id]
		left = append(left, fmt.Sprintf("volume %s (%s)", v.Name, id))
	}
	for _, n := range sortedKeys(s.stub.VMIDs) {
		left = append(left, fmt.Sprintf("VMID %d of %s", s.stub.VMIDs[n], n))
	}
	for _, n := range sortedKeys(s.records) {
		left = append(left, "record "+n)
	}
	if len(left) > 0 {
		c.fail("purge", "after purge of %v, left: %s", sortedKeys(all), strings.Join(left, ", "))
	}
}

// sizeOf reads a size as tasks write it (512M, 10G, 2T, or a bare number
// of GiB); 0 when it cannot.
func sizeOf(s string) uint64 {
	mult := uint64(1 << 30)
	switch {
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		s = strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "T"):
		mult, s = 1<<40, strings.TrimSuffix(s, "T")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return n * mult
}

func rel(base, p string) string {
	r, err := filepath.Rel(base, p)
	if err != nil {
		return p
	}
	return r
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
