package faults

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// What the suite reads of a state directory: the proxmox-stub's cluster
// (plugins/proxmox-stub/state.go: <state>/proxmox-stub/cluster.json), the
// machine records (<state>/machines/proxmox-stub/<name>/record.json), and
// every other file but the runs' journals, locks and claims.

// cluster mirrors the stub's state file, the fields the checks read.
type cluster struct {
	VMIDs   map[string]int     `json:"vmids"`
	VMs     map[string]*vm     `json:"vms"`
	Volumes map[string]*volume `json:"volumes"`
}

type vm struct {
	VMID     int    `json:"vmid"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	Paused   bool   `json:"paused"`
	EFIDisk  string `json:"efidisk"`
	UUID     string `json:"uuid"`
	MAC      string `json:"mac"`
	Boot     string `json:"boot"`
	Var      string `json:"var"`
	Firmware string `json:"firmware"`
	Kernel   string `json:"kernel"`
	Initrd   string `json:"initrd"`
}

type volume struct {
	VolID   string `json:"volid"`
	Name    string `json:"name"`
	VMID    int    `json:"vmid"`
	Size    uint64 `json:"size"`
	Backing string `json:"backing"`
}

// snapshot is a state directory at one moment.
type snapshot struct {
	dir string
	// raw is cluster.json as generic JSON (nil: no file), stub typed.
	raw  any
	stub *cluster
	// records by name: the record file as generic JSON, and its values.
	records map[string]any
	values  map[string]map[string]any
	// files: every other file (relative path → sha256), and the
	// directories under tmp/.
	files map[string]string
	// stray: temporary files of atomic writes (dot files) left behind.
	stray []string
	err   error
}

const backend = "proxmox-stub"

func takeSnapshot(state string) *snapshot {
	s := &snapshot{dir: state, stub: &cluster{}, records: map[string]any{}, values: map[string]map[string]any{}, files: map[string]string{}}
	var errs []error
	if b, err := os.ReadFile(filepath.Join(state, "proxmox-stub", "cluster.json")); err == nil {
		if err := json.Unmarshal(b, &s.raw); err != nil {
			errs = append(errs, fmt.Errorf("the stub's cluster.json: %v", err))
		}
		if err := json.Unmarshal(b, s.stub); err != nil {
			errs = append(errs, fmt.Errorf("the stub's cluster.json: %v", err))
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if s.stub.VMs == nil {
		s.stub.VMs = map[string]*vm{}
	}
	if s.stub.Volumes == nil {
		s.stub.Volumes = map[string]*volume{}
	}
	if s.stub.VMIDs == nil {
		s.stub.VMIDs = map[string]int{}
	}
	recDir := filepath.Join(state, "machines", backend)
	ents, _ := os.ReadDir(recDir)
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(recDir, e.Name(), "record.json"))
		if err != nil {
			// A record directory without its record: reported by the
			// whole check as a half-made record.
			s.records[e.Name()] = nil
			continue
		}
		var rec struct {
			Values map[string]any `json:"values"`
		}
		var raw any
		if err := errors.Join(json.Unmarshal(b, &raw), json.Unmarshal(b, &rec)); err != nil {
			errs = append(errs, fmt.Errorf("record %s: %v", e.Name(), err))
			continue
		}
		s.records[e.Name()], s.values[e.Name()] = raw, rec.Values
	}
	_ = filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(state, p)
		if rel == "." {
			return nil
		}
		first, _, _ := strings.Cut(rel, string(filepath.Separator))
		if d.IsDir() {
			if first == "runs" || first == "locks" || first == "claims" {
				return filepath.SkipDir
			}
			if first == "tmp" && rel != "tmp" {
				s.files[rel+"/"] = "dir"
			}
			return nil
		}
		if strings.HasPrefix(filepath.Base(rel), ".") {
			// A temporary file of an atomic write (the stub's cluster, a
			// record, an archive): the stray check reports those left.
			s.stray = append(s.stray, rel)
			return nil
		}
		if strings.HasSuffix(rel, ".lock") || rel == filepath.Join("proxmox-stub", "cluster.json") ||
			(first == "machines" && filepath.Base(rel) == "record.json") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			s.files[rel] = "unreadable: " + err.Error()
			return nil
		}
		sum := sha256.Sum256(b)
		s.files[rel] = hex.EncodeToString(sum[:8])
		return nil
	})
	s.err = errors.Join(errs...)
	return s
}

// exact is the snapshot as it is, for "exactly the state before".
func (s *snapshot) exact() map[string]any {
	files := map[string]any{}
	for k, v := range s.files {
		files[k] = v
	}
	// No state file is an empty cluster (the stub writes one on its first
	// change and keeps it).
	cl := s.raw
	if cl == nil {
		cl = map[string]any{}
	}
	return map[string]any{"cluster": cl, "records": s.records, "files": files}
}

var (
	// A run id (20261206-194848-68e2: time and random suffix), or a time
	// stamp alone (backups' names).
	stampRE   = regexp.MustCompile(`\d{8}-\d{6}(-[0-9a-f]{4}\b)?`)
	tempRE    = regexp.MustCompile(`-\d{6,}\b`)
	timeRE    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}`)
	generated = []string{"uuid", "mac", "machine_id"}
)

// normal is the snapshot with what differs between two equal runs made
// the same: generated ids (UUID, MAC, machine-id: by the name whose they
// are), timestamps, temporary names, Proxmox volume ids (by vmflow's
// volume names) and VMIDs (by their VM's name).
func (s *snapshot) normal() map[string]any {
	repl := []string{s.dir, "<state>"}
	for name, vals := range s.values {
		for _, g := range generated {
			if v, ok := vals[g].(string); ok && v != "" {
				repl = append(repl, v, fmt.Sprintf("<%s of %s>", g, name))
			}
		}
	}
	idName := map[int]string{}
	for name, id := range s.stub.VMIDs {
		idName[id] = name
	}
	volName := map[string]string{}
	for id, v := range s.stub.Volumes {
		if v.Name != "" {
			volName[id] = v.Name
		} else {
			volName[id] = "efidisk of " + idName[v.VMID]
		}
	}
	// Longer volume ids first: local-lvm:vm-100-disk-1 before …-disk-10
	// could clash otherwise.
	ids := make([]string, 0, len(volName))
	for id := range volName {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return len(ids[i]) > len(ids[j]) })
	for _, id := range ids {
		repl = append(repl, id, "<volume "+volName[id]+">")
	}
	r := strings.NewReplacer(repl...)
	str := func(v string) string {
		v = r.Replace(v)
		if timeRE.MatchString(v) {
			return "<time>"
		}
		return tempRE.ReplaceAllString(stampRE.ReplaceAllString(v, "<stamp>"), "-<temp>")
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case string:
			return str(x)
		case map[string]any:
			out := map[string]any{}
			for k, e := range x {
				if k == "vmid" {
					if f, ok := e.(float64); ok {
						out[k] = "<vmid of " + idName[int(f)] + ">"
						continue
					}
				}
				out[str(k)] = walk(e)
			}
			return out
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = walk(e)
			}
			return out
		}
		return v
	}
	cl := map[string]any{}
	if m, ok := s.raw.(map[string]any); ok {
		cl = walk(m).(map[string]any)
		// VMIDs are numbers in a map of names: only which names hold one
		// counts.
		if ids, ok := m["vmids"].(map[string]any); ok {
			held := map[string]any{}
			for name := range ids {
				held[name] = true
			}
			cl["vmids"] = held
		}
	}
	files := map[string]any{}
	for k := range s.files {
		files[str(k)] = true
	}
	return map[string]any{"cluster": cl, "records": walk(s.records), "files": files}
}

// diff lists how b differs from a, as path: a → b lines (at most max).
func diff(a, b map[string]any, max int) []string {
	fa, fb := map[string]string{}, map[string]string{}
	flatten("", a, fa)
	flatten("", b, fb)
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var out []string
	for _, k := range sortedKeys(keys) {
		va, ina := fa[k]
		vb, inb := fb[k]
		switch {
		case ina && !inb:
			out = append(out, fmt.Sprintf("- %s = %s", k, va))
		case !ina && inb:
			out = append(out, fmt.Sprintf("+ %s = %s", k, vb))
		case va != vb:
			out = append(out, fmt.Sprintf("~ %s: %s → %s", k, va, vb))
		}
	}
	if len(out) > max {
		out = append(out[:max], fmt.Sprintf("… and %d more", len(out)-max))
	}
	return out
}

func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			return
		}
		for k, e := range x {
			flatten(prefix+"/"+k, e, out)
		}
	case []any:
		if len(x) == 0 {
			out[prefix] = "[]"
			return
		}
		for i, e := range x {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), e, out)
		}
	case nil:
		out[prefix] = "null"
	default:
		b, _ := json.Marshal(x)
		out[prefix] = string(b)
	}
}
