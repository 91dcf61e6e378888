package hypervisor

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
)

// The contract's actions, in order, and those with an undo. A change here
// is a change of every hypervisor plugin's contract: task files depend on
// it.
var (
	wantActions = []string{
		"volume_create", "volume_overlay", "volume_resize", "volume_delete", "volumes_delete", "volume_copy", "volume_import", "volume_export", "volume_edit", "volume_swap", "volume_info", "volume_list",
		"define", "host_check", "undefine", "start", "shutdown", "destroy", "reboot", "suspend", "resume", "state", "list", "ensure_absent", "wait_ip", "guest_exec", "console",
		"snapshot_create", "snapshot_list", "snapshot_revert", "snapshot_delete",
	}
	wantUndo = []string{"volume_create", "volume_overlay", "volume_copy", "volume_import", "volume_export", "volume_swap",
		"define", "start", "shutdown", "suspend", "snapshot_create"}
	wantInteractive = []string{"console"}
)

func ok(context.Context, *sdk.Request) error { return nil }

// fullBackend implements every action with ok, and an undo where the
// contract has one; edit changes it before use.
func fullBackend(edit func(b *Backend)) Backend {
	var b Backend
	for _, s := range contract(&b) {
		s.impl.Run = ok
		if s.undo {
			s.impl.Undo = ok
		}
	}
	if edit != nil {
		edit(&b)
	}
	return b
}

func inProcess(t *testing.T, actions []*sdk.Action) (protocol.Conn, *protocol.Schema) {
	t.Helper()
	p, err := sdk.InProcess(&sdk.Plugin{Name: "hypervisor-test", Version: "0", Actions: actions})
	if err != nil {
		t.Fatal(err)
	}
	schema, err := p.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p, schema
}

func TestContract(t *testing.T) {
	_, schema := inProcess(t, Declared())
	var names, undo, interactive []string
	for _, a := range schema.Actions {
		names = append(names, a.Name)
		if a.HasUndo {
			undo = append(undo, a.Name)
		}
		if a.Interactive {
			interactive = append(interactive, a.Name)
		}
		if a.Description == "" {
			t.Errorf("%s has no description", a.Name)
		}
		for _, at := range append(slices.Clone(a.Inputs), a.Outputs...) {
			if at.Description == "" {
				t.Errorf("%s.%s has no description", a.Name, at.Name)
			}
		}
	}
	if !slices.Equal(names, wantActions) {
		t.Errorf("actions:\n got %v\nwant %v", names, wantActions)
	}
	if !slices.Equal(undo, wantUndo) {
		t.Errorf("actions with an undo:\n got %v\nwant %v", undo, wantUndo)
	}
	if !slices.Equal(interactive, wantInteractive) {
		t.Errorf("interactive actions: got %v, want %v", interactive, wantInteractive)
	}
	// Every action has a default timeout but the console, which lasts as
	// long as the user stays; waiting for a guest gets what a slow boot
	// needs, moving a disk's data hours.
	for _, a := range schema.Actions {
		want := map[string]time.Duration{"console": 0, "wait_ip": 3 * time.Minute, "shutdown": 2 * time.Minute, "guest_exec": time.Minute,
			"volume_import": 2 * time.Hour, "volume_export": 2 * time.Hour, "define": 5 * time.Minute}[a.Name]
		switch {
		case a.Name == "console" || want > 0:
			if a.Timeout != want {
				t.Errorf("%s: default timeout %s, want %s", a.Name, a.Timeout, want)
			}
		case a.Timeout <= 0:
			t.Errorf("%s has no default timeout", a.Name)
		}
	}
}

// TestActionsIsDeclared: a backend's actions are the contract, with its
// notes added to the descriptions.
func TestActionsIsDeclared(t *testing.T) {
	b := fullBackend(func(b *Backend) {
		b.Start.Note = "It also waves."
		b.Start.Plan = func(context.Context, *sdk.Request) ([]string, error) { return []string{"wave"}, nil }
	})
	p, got := inProcess(t, Actions(b))
	in, _ := got.Actions[slices.IndexFunc(got.Actions, func(a protocol.Action) bool { return a.Name == "start" })].Inputs.ApplyDefaults(cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("x")}))
	if lines, diags, err := p.Plan(context.Background(), "start", in); err != nil || diags.HasErrors() || !slices.Equal(lines, []string{"wave"}) {
		t.Errorf("start's plan: %v %v %v", lines, diags, err)
	}
	_, want := inProcess(t, Declared())
	for i, a := range got.Actions {
		w := want.Actions[i]
		if a.Name != w.Name || a.HasUndo != w.HasUndo || a.Interactive != w.Interactive || len(a.Inputs) != len(w.Inputs) || len(a.Outputs) != len(w.Outputs) {
			t.Errorf("%s differs from the contract: %+v, want %+v", a.Name, a, w)
		}
		switch {
		case a.Name == "start" && a.Description != w.Description+" It also waves.":
			t.Errorf("start's description: %q", a.Description)
		case a.Name != "start" && a.Description != w.Description:
			t.Errorf("%s's description: %q, want %q", a.Name, a.Description, w.Description)
		}
	}
}

func TestActionsRefusesAWrongBackend(t *testing.T) {
	for name, edit := range map[string]func(b *Backend){
		"define has no Run":           func(b *Backend) { b.Define.Run = nil },
		"volume_copy has no Undo":     func(b *Backend) { b.VolumeCopy.Undo = nil },
		"snapshot_revert has an Undo": func(b *Backend) { b.SnapshotRevert.Undo = ok },
		"console has an Undo":         func(b *Backend) { b.Console.Undo = ok },
		"volume_resize has an Undo":   func(b *Backend) { b.VolumeResize.Undo = ok },
		"volume_edit has an Undo":     func(b *Backend) { b.VolumeEdit.Undo = ok },
		"shutdown has no Undo":        func(b *Backend) { b.Shutdown.Undo = nil },
		"ensure_absent has no Run":    func(b *Backend) { b.EnsureAbsent.Run = nil },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Actions accepted a backend where %s", name)
				}
			}()
			Actions(fullBackend(edit))
		})
	}
}

// validate runs an action's Validate through the SDK, as vmflow does, and
// returns the diagnostics' summaries by attribute.
func validate(t *testing.T, p protocol.Conn, schema *protocol.Schema, action string, args map[string]cty.Value) map[string][]string {
	t.Helper()
	a, found := schema.Action(action)
	if !found {
		t.Fatalf("no action %s", action)
	}
	in, err := a.Inputs.ApplyDefaults(cty.ObjectVal(args))
	if err != nil {
		t.Fatal(err)
	}
	diags, err := p.Validate(context.Background(), action, in)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, d := range diags {
		out[protocol.FormatPath(d.Path)] = append(out[protocol.FormatPath(d.Path)], d.Summary)
	}
	return out
}

func TestValidation(t *testing.T) {
	p, schema := inProcess(t, Declared())
	s := cty.StringVal
	for _, c := range []struct {
		action string
		args   map[string]cty.Value
		want   map[string]string // attribute → part of its error; nil: valid
	}{
		{"volume_create", map[string]cty.Value{"name": s("demo-var"), "size": s("10G"), "filesystem": s("ext4")}, nil},
		{"volume_create", map[string]cty.Value{"name": s("../x"), "size": s("10 G"), "filesystem": s("xfs")},
			map[string]string{"name": "invalid volume name", "size": "invalid size", "filesystem": "unsupported filesystem"}},
		{"volume_create", map[string]cty.Value{"name": s("x"), "size": s("1G"), "label": s("seventeen-chars-x")}, map[string]string{"label": "at most 16"}},
		{"volume_create", map[string]cty.Value{"name": cty.UnknownVal(cty.String), "size": cty.UnknownVal(cty.String)}, nil},
		{"volume_copy", map[string]cty.Value{"source": s("a b"), "name": s("c/d")}, map[string]string{"source": "invalid volume name", "name": "invalid volume name"}},
		{"volume_import", map[string]cty.Value{"path": s("/nonexistent/image"), "name": s("img")}, map[string]string{"path": "no such file"}},
		{"volume_import", map[string]cty.Value{"path": s("/"), "name": s("img")}, map[string]string{"path": "not a regular file"}},
		{"define", map[string]cty.Value{"name": s("web_1"), "boot_volume": s("b"), "kernel": s("/k")}, nil},
		{"define", map[string]cty.Value{"name": s("a b"), "boot_volume": s("b"), "network": s("bridge:a b"), "firmware": s("bios"),
			"mac": s("01:00:5e:00:00:01"), "uuid": s("nope"), "memory": cty.NumberIntVal(0), "vcpus": cty.NumberIntVal(0)},
			map[string]string{"name": "invalid VM name", "network": "network must be", "firmware": "firmware must be",
				"mac": "52:54:00:12:34:56", "uuid": "invalid UUID", "memory": "at least 1", "vcpus": "at least 1"}},
		{"define", map[string]cty.Value{"name": s("x"), "boot_volume": s("b"), "firmware": s("kernel")}, map[string]string{"kernel": "needs kernel"}},
		{"shutdown", map[string]cty.Value{"name": s("x"), "mode": s("hard")}, map[string]string{"mode": "mode must be"}},
		{"guest_exec", map[string]cty.Value{"name": s("x"), "argv": cty.ListValEmpty(cty.String)}, map[string]string{"argv": "must name a command"}},
		{"snapshot_revert", map[string]cty.Value{"name": s("x"), "snapshot": s("current")}, map[string]string{"snapshot": "invalid snapshot name"}},
		{"list", map[string]cty.Value{}, nil},
		// Files in a new filesystem, and in an existing one.
		{"volume_create", map[string]cty.Value{"name": s("v"), "size": s("1G"), "filesystem": s("ext4"),
			"files": cty.MapVal(map[string]cty.Value{"identity/hostname": s("web-1\n")}), "secret_files": cty.MapVal(map[string]cty.Value{"identity/ssh/key": s("k")})}, nil},
		{"volume_create", map[string]cty.Value{"name": s("v"), "size": s("1G"),
			"files": cty.MapVal(map[string]cty.Value{"identity/hostname": s("x")}), "secret_files": cty.MapVal(map[string]cty.Value{"k": s("k")})},
			map[string]string{"files": `needs filesystem = "ext4"`, "secret_files": `needs filesystem = "ext4"`}},
		{"volume_create", map[string]cty.Value{"name": s("v"), "size": s("1G"), "filesystem": s("ext4"),
			"files": cty.MapVal(map[string]cty.Value{"../etc/passwd": s("x"), "/abs": s("x"), "a//b": s("x"), "ok": s("x"), "tab\tname": s("x")})},
			map[string]string{`files["../etc/passwd"]`: `has ".."`, `files["/abs"]`: "is absolute", `files["a//b"]`: "is not clean", `files["tab\tname"]`: "control character"}},
		{"volume_create", map[string]cty.Value{"name": s("v"), "size": s("1G"), "filesystem": s("ext4"),
			"files": cty.MapVal(map[string]cty.Value{"a": s("x"), "a/b": s("y")}), "secret_files": cty.MapVal(map[string]cty.Value{"b": s("x")}),
		}, map[string]string{`files["a"]`: `"a" is a file, and "a/b" needs it to be a directory`}},
		{"volume_create", map[string]cty.Value{"name": s("v"), "size": s("1G"), "filesystem": cty.UnknownVal(cty.String),
			"files": cty.MapVal(map[string]cty.Value{"x": s("x")})}, nil},
		{"volume_edit", map[string]cty.Value{"name": s("v"), "files": cty.MapVal(map[string]cty.Value{"x": s("1")}), "secret_files": cty.MapVal(map[string]cty.Value{"x": s("2")}),
			"remove": cty.ListVal([]cty.Value{s("identity/ssh/*"), s("../x"), s("a/[b"), s("")})},
			map[string]string{`secret_files["x"]`: "is in files too", "remove[1]": `has ".."`, "remove[2]": "not a valid glob", "remove[3]": "empty path"}},
		{"volume_edit", map[string]cty.Value{"name": s("v"), "remove": cty.ListVal([]cty.Value{s("identity/ssh/ssh_host_*_key*"), s("nosuch")})}, nil},
		{"volume_swap", map[string]cty.Value{"name": s("a"), "with": s("a")}, map[string]string{"with": "not swapped with itself"}},
		{"volume_swap", map[string]cty.Value{"name": s("a"), "with": s("b/c")}, map[string]string{"with": "invalid volume name"}},
		{"volume_export", map[string]cty.Value{"name": s("a"), "path": s("/")}, map[string]string{"path": "exists"}},
		{"volume_export", map[string]cty.Value{"name": s("a"), "path": s("/nonexistent/dir/backup.qcow2")}, map[string]string{"path": "its directory"}},
		{"ensure_absent", map[string]cty.Value{"vm": s(""), "volumes": cty.ListVal([]cty.Value{s("ok"), s("not ok")})}, map[string]string{"volumes[1]": "invalid volume name"}},
		{"ensure_absent", map[string]cty.Value{"vm": s("a b")}, map[string]string{"vm": "invalid VM name"}},
		{"ensure_absent", map[string]cty.Value{}, nil},
		{"suspend", map[string]cty.Value{"name": s("a/b")}, map[string]string{"name": "invalid VM name"}},
	} {
		got := validate(t, p, schema, c.action, c.args)
		if len(got) != len(c.want) {
			t.Errorf("%s %v: errors %v, want errors at %v", c.action, c.args, got, c.want)
			continue
		}
		for attr, want := range c.want {
			if len(got[attr]) != 1 || !strings.Contains(got[attr][0], want) {
				t.Errorf("%s: %s: errors %q, want one containing %q", c.action, attr, got[attr], want)
			}
		}
	}
}

// TestBackendRules: a backend's VM name rule, least memory and MAC
// example are the contract's checks; its own Validate runs after them.
func TestBackendRules(t *testing.T) {
	noUnderscore := NameRule{Doc: "no underscores", Check: func(name string) error {
		if strings.Contains(name, "_") {
			return errors.New("invalid VM name: no underscores")
		}
		return nil
	}}
	b := fullBackend(func(b *Backend) {
		b.VMName, b.MinMemory, b.MACExample = noUnderscore, 16, "BC:24:11:12:34:56"
		b.Define.Validate = func(ctx context.Context, r *sdk.Request) error {
			return sdk.ArgError("boot_volume", "the backend's own check")
		}
	})
	p, schema := inProcess(t, Actions(b))
	if a, _ := schema.Action("define"); !strings.Contains(a.Inputs[0].Description, "no underscores") {
		t.Errorf("define's name is documented as %q", a.Inputs[0].Description)
	}
	got := validate(t, p, schema, "define", map[string]cty.Value{
		"name": cty.StringVal("web_1"), "boot_volume": cty.StringVal("b"), "kernel": cty.StringVal("/k"),
		"memory": cty.NumberIntVal(8), "mac": cty.StringVal("zz"),
	})
	want := map[string]string{"name": "no underscores", "memory": "at least 16", "mac": "BC:24:11:12:34:56", "boot_volume": "the backend's own check"}
	if len(got) != len(want) {
		t.Fatalf("errors %v, want errors at %v", got, want)
	}
	for attr, w := range want {
		if len(got[attr]) != 1 || !strings.Contains(got[attr][0], w) {
			t.Errorf("%s: errors %q, want one containing %q", attr, got[attr], w)
		}
	}
	for _, action := range []string{"start", "snapshot_list", "wait_ip", "console"} {
		if got := validate(t, p, schema, action, map[string]cty.Value{"name": cty.StringVal("web_1")}); len(got["name"]) != 1 {
			t.Errorf("%s: the VM name rule was not applied: %v", action, got)
		}
	}
}

func TestAbsentError(t *testing.T) {
	for _, c := range []struct {
		vm, state string
		volumes   []string
		want      string
	}{
		{"demo", "running", []string{"demo-var", "demo-boot"}, "VM demo exists (running); volumes demo-var, demo-boot exist; "},
		{"demo", "", []string{"demo-var"}, "volume demo-var exists; "},
		{"demo", "shut off", nil, "VM demo exists (shut off); "},
	} {
		err := AbsentError(c.vm, c.state, c.volumes)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("AbsentError(%q, %q, %q) = %v, want %q…", c.vm, c.state, c.volumes, err, c.want)
		}
	}
	if err := AbsentError("demo", "", nil); err != nil {
		t.Errorf("nothing exists, yet: %v", err)
	}
}

func TestMatchRemovals(t *testing.T) {
	paths := ExpandPaths([]string{"identity/hostname", "identity/ssh/ssh_host_ed25519_key", "identity/ssh/ssh_host_ed25519_key.pub", "vmflow/marker"})
	for _, c := range []struct {
		patterns, want []string
	}{
		{[]string{"identity/ssh/*"}, []string{"identity/ssh/ssh_host_ed25519_key", "identity/ssh/ssh_host_ed25519_key.pub"}},
		{[]string{"identity/ssh/*", "identity"}, []string{"identity"}},
		{[]string{"*/marker", "nosuch/*", "identity/ssh/*.pub"}, []string{"identity/ssh/ssh_host_ed25519_key.pub", "vmflow/marker"}},
		{[]string{"*"}, []string{"identity", "vmflow"}},
		{nil, nil},
	} {
		if got := MatchRemovals(c.patterns, paths); !slices.Equal(got, c.want) {
			t.Errorf("MatchRemovals(%q) = %q, want %q", c.patterns, got, c.want)
		}
	}
}

// TestDocsListTheContract: docs/plugins.md's table names every action of
// the contract, in order, with every input and output.
func TestDocsListTheContract(t *testing.T) {
	b, err := os.ReadFile("../../docs/plugins.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "## The hypervisor contract")
	if !ok {
		t.Fatal("docs/plugins.md has no section on the hypervisor contract")
	}
	var rows []string
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "| `") {
			rows = append(rows, line)
		}
	}
	_, schema := inProcess(t, Declared())
	if len(rows) != len(schema.Actions) {
		t.Fatalf("docs/plugins.md lists %d actions, the contract has %d", len(rows), len(schema.Actions))
	}
	for i, a := range schema.Actions {
		if !strings.HasPrefix(rows[i], "| `"+a.Name+"`") {
			t.Errorf("row %d of docs/plugins.md is not %s: %s", i, a.Name, rows[i])
			continue
		}
		cells := strings.Split(rows[i], "|")
		for _, dir := range []struct {
			cell  string
			attrs protocol.Attributes
		}{{cells[2], a.Inputs}, {cells[3], a.Outputs}} {
			for _, at := range dir.attrs {
				if !strings.Contains(dir.cell, "`"+at.Name+"`") {
					t.Errorf("docs/plugins.md: %s lacks %s", a.Name, at.Name)
				}
			}
		}
	}
}
