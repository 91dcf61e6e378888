package faults

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/vmflow/vmflow/internal/testbin"
)

// Faults of issue 10 §3 that are not kills: a damaged state file, drift
// between the teardown lists, and which error comes first.

// TestDamagedState (§3.7): a damaged stub state file gives a clear error
// naming the file, never a panic.
func TestDamagedState(t *testing.T) {
	e := newEnv(t, t.TempDir())
	dir := filepath.Join(e.state, "proxmox-stub")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "cluster.json")
	if err := os.WriteFile(file, []byte(`{"vms":{"p1":null},"volumes":{"x":null},"vmids":{}}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{createK(), {"purge", "p1"}} {
		r := e.vmflow(setupArgs(cmd)...)
		if r.code == 0 || strings.Contains(r.stderr, "panic") || !strings.Contains(r.stderr, file) {
			t.Errorf("%s with a damaged %s: want a failure naming the file, and no panic\n%s", r, file, r.tail())
		}
	}
}

// TestTeardownLists (§3.8): every task that tears a VM's volumes down
// names the same volumes (or finds them by the same pattern).
func TestTeardownLists(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testbin.Repo(), "tasks.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	lists := teardownLists(string(b))
	if len(lists) < 3 {
		t.Fatalf("found the teardown lists of %v only; want destroy, purge and restore-backup at least", sortedKeys(lists))
	}
	var first string
	for _, task := range sortedKeys(lists) {
		if first == "" {
			first = task
			continue
		}
		a, b := lists[first], lists[task]
		var missing, extra []string
		for k := range a {
			if !b[k] {
				missing = append(missing, k)
			}
		}
		for k := range b {
			if !a[k] {
				extra = append(extra, k)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		if len(missing)+len(extra) > 0 {
			t.Errorf("task %s tears down other volumes than %s: it leaves out %v, and adds %v", task, first, missing, extra)
		}
	}
}

var (
	taskLineRE = regexp.MustCompile(`(?m)^task "([^"]+)"`)
	namesRE    = regexp.MustCompile(`(?s)action\s*=\s*hypervisor\.volumes_delete\s*\n\s*names\s*=\s*(compact\(\[(.*?)\]\)|step\.([a-z_]+)\.names)`)
	stepRefRE  = regexp.MustCompile(`step\.[a-z_]+\.`)
)

// teardownLists maps each task with a volumes_delete step to what it
// deletes: the names it lists (the expressions, with step names made
// alike), or the pattern of the volume_list step it takes the names from.
func teardownLists(hcl string) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	idx := taskLineRE.FindAllStringSubmatchIndex(hcl, -1)
	for i, m := range idx {
		end := len(hcl)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		body := hcl[m[0]:end]
		nm := namesRE.FindStringSubmatch(body)
		if nm == nil {
			continue
		}
		set := map[string]bool{}
		if nm[3] != "" {
			// names = step.X.names, X a volume_list step: its pattern.
			listRE := regexp.MustCompile(`(?s)step "` + nm[3] + `" \{\s*action\s*=\s*hypervisor\.volume_list\b.*?\n\s*pattern\s*=\s*("(?:[^"\\]|\\.)*")`)
			if lm := listRE.FindStringSubmatch(body); lm != nil {
				set["pattern "+lm[1]] = true
			} else {
				set["names from step "+nm[3]+", not a volume_list with a pattern"] = true
			}
			out[hcl[m[2]:m[3]]] = set
			continue
		}
		// Entries are separated by commas outside quotes and brackets.
		depth, inQuote, cur := 0, false, strings.Builder{}
		flush := func() {
			s := strings.TrimSpace(stepRefRE.ReplaceAllString(cur.String(), "step.X."))
			if s != "" {
				set[s] = true
			}
			cur.Reset()
		}
		for _, r := range nm[2] {
			switch {
			case r == '"':
				inQuote = !inQuote
			case !inQuote && (r == '(' || r == '{' || r == '['):
				depth++
			case !inQuote && (r == ')' || r == '}' || r == ']'):
				depth--
			case !inQuote && depth == 0 && r == ',':
				flush()
				continue
			}
			if r != '\n' {
				cur.WriteRune(r)
			}
		}
		flush()
		out[hcl[m[2]:m[3]]] = set
	}
	return out
}

// TestCreateExistingMessage (§3.9): create of a name whose VM runs says
// first that the VM exists. Which of the parallel checks fails first
// varies, so it tries a few times.
func TestCreateExistingMessage(t *testing.T) {
	e := newEnv(t, t.TempDir())
	if r := e.vmflow(setupArgs(createK())...); r.code != 0 {
		t.Fatalf("%s\n%s", r, r.tail())
	}
	defer e.vmflow(setupArgs([]string{"purge", "k"})...)
	wrong := 0
	var last cmdResult
	const tries = 6
	for i := 0; i < tries; i++ {
		r := e.vmflow(setupArgs(createK())...)
		first := ""
		for _, l := range strings.Split(r.stderr, "\n") {
			if strings.HasPrefix(l, "Error:") {
				first = l
				break
			}
		}
		if r.code == 0 || !strings.Contains(first, "VM k exists (running)") {
			wrong++
			last = r
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d creates of k (running) put another error first; the last one:\n%s", wrong, tries, last.tail())
	}
}
