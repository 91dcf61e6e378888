package builtin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/internal/plugintest"
)

// harness runs built-in actions in process, configured with a state dir.
type harness struct {
	t      *testing.T
	p      protocol.Conn
	schema *protocol.Schema
	state  string
	work   string // the task file's folder: relative paths start there
	runs   int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	p, err := sdk.InProcess(New(map[string]string{"PATH": os.Getenv("PATH"), "HOME": t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	state, work := t.TempDir(), t.TempDir()
	if d, err := p.Configure(context.Background(), cty.EmptyObjectVal, protocol.Env{StateDir: state, WorkDir: work}); err != nil || d.HasErrors() {
		t.Fatalf("configure: %v %v", err, d)
	}
	s, err := p.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, p: p, schema: s, state: state, work: work}
}

// run runs an action, each call a step of a run of its own; it returns
// its outputs, or the error text.
func (h *harness) run(action string, args map[string]any) (cty.Value, string) {
	h.t.Helper()
	h.runs++
	return h.attempt(fmt.Sprintf("r%d", h.runs), "s", action, args)
}

// attempt runs an action as step step of run runID: called twice with the
// same run and step, it is a step run again after vmflow was killed
// during its first attempt.
func (h *harness) attempt(runID, step, action string, args map[string]any) (cty.Value, string) {
	h.t.Helper()
	in := plugintest.Inputs(h.t, h.schema, action, args)
	if d, err := h.p.Validate(context.Background(), action, in); err != nil || d.HasErrors() {
		if err != nil {
			return cty.NilVal, err.Error()
		}
		return cty.NilVal, d.Err().Error()
	}
	out, d, err := h.p.Run(context.Background(), protocol.RunRequest{Action: action, Inputs: in, RunID: runID, Step: step}, func(protocol.Event) {})
	if err != nil {
		return cty.NilVal, err.Error()
	}
	if d.HasErrors() {
		return cty.NilVal, d.Err().Error()
	}
	return out, ""
}

func (h *harness) must(action string, args map[string]any) cty.Value {
	h.t.Helper()
	out, msg := h.run(action, args)
	if msg != "" {
		h.t.Fatalf("%s: %s", action, msg)
	}
	return out
}

func (h *harness) undo(action string, args map[string]any, out cty.Value) {
	h.t.Helper()
	h.undoStep("r", "s", action, args, out)
}

// undoStep undoes step step of run runID; out null is the undo of an
// interrupted Run (vmflow resume --undo).
func (h *harness) undoStep(runID, step, action string, args map[string]any, out cty.Value) {
	h.t.Helper()
	in := plugintest.Inputs(h.t, h.schema, action, args)
	d, err := h.p.Undo(context.Background(), protocol.UndoRequest{Action: action, Inputs: in, Outputs: out, RunID: runID, Step: step}, func(protocol.Event) {})
	if err != nil || d.HasErrors() {
		h.t.Fatalf("undo %s: %v %v", action, err, d)
	}
}

func attr(v cty.Value, path ...string) cty.Value {
	for _, p := range path {
		v = v.GetAttr(p)
	}
	return v
}

func TestRecordLifecycle(t *testing.T) {
	h := newHarness(t)
	coll := "machines/libvirt"
	create := map[string]any{
		"collection": coll, "name": "demo", "mode": "create",
		"values": cty.ObjectVal(map[string]cty.Value{
			"memory":   cty.NumberIntVal(2048),
			"profiles": cty.TupleVal([]cty.Value{cty.StringVal("core"), cty.StringVal("dev")}),
		}),
		"secrets":  map[string]string{"token": "s3cret"},
		"generate": map[string]string{"uuid": "uuid", "machine_id": "machine_id", "mac": "mac"},
	}
	out := h.must("record_write", create)
	vals := out.GetAttr("values")
	if !attr(out, "created").True() {
		t.Error("created = false for a new record")
	}
	if got := vals.GetAttr("memory"); !got.RawEquals(cty.NumberIntVal(2048)) {
		t.Errorf("memory = %#v", got)
	}
	for attrName, re := range map[string]string{
		"uuid":       `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`,
		"machine_id": `^[0-9a-f]{32}$`,
		"mac":        `^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$`,
	} {
		if s := vals.GetAttr(attrName).AsString(); !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("%s = %q, want %s", attrName, s, re)
		}
	}
	dir := filepath.Join(h.state, "machines", "libvirt", "demo")
	if got := attr(out, "path").AsString(); got != dir {
		t.Errorf("path = %q, want %q", got, dir)
	}
	for f, want := range map[string]os.FileMode{"record.json": 0o644, "secrets.json": 0o600, ".": 0o700} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", f, fi.Mode().Perm(), want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "record.json")); strings.Contains(string(b), "s3cret") {
		t.Error("the secret is in record.json")
	}
	// No temporary files are left next to the record.
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("record dir holds %d entries, want 2", len(ents))
	}

	// create refuses an existing record and leaves it alone.
	if _, msg := h.run("record_write", create); !strings.Contains(msg, "already exists") {
		t.Errorf("second create: %q", msg)
	}

	// update merges, keeps generated identities and secrets.
	upd := map[string]any{"collection": coll, "name": "demo", "mode": "update",
		"values":   cty.ObjectVal(map[string]cty.Value{"memory": cty.NumberIntVal(4096)}),
		"generate": map[string]string{"uuid": "uuid"}}
	uout := h.must("record_write", upd)
	if !uout.GetAttr("values").GetAttr("uuid").RawEquals(vals.GetAttr("uuid")) {
		t.Error("update generated a new uuid although the record had one")
	}
	read := h.must("record_read", map[string]any{"collection": coll, "name": "demo"})
	rv := read.GetAttr("values")
	if !rv.GetAttr("memory").RawEquals(cty.NumberIntVal(4096)) || rv.GetAttr("profiles").LengthInt() != 2 {
		t.Errorf("after update: %#v", rv)
	}
	if s := read.GetAttr("secrets").Index(cty.StringVal("token")).AsString(); s != "s3cret" {
		t.Errorf("secret after update = %q", s)
	}

	// The update's undo puts the earlier record back.
	h.undo("record_write", upd, uout)
	read = h.must("record_read", map[string]any{"collection": coll, "name": "demo"})
	if !read.GetAttr("values").GetAttr("memory").RawEquals(cty.NumberIntVal(2048)) {
		t.Errorf("after undo memory = %#v", read.GetAttr("values").GetAttr("memory"))
	}

	// update of a missing record is refused; read of one names the others.
	if _, msg := h.run("record_write", map[string]any{"collection": coll, "name": "other", "mode": "update"}); !strings.Contains(msg, "no record for other") {
		t.Errorf("update missing: %q", msg)
	}
	if _, msg := h.run("record_read", map[string]any{"collection": coll, "name": "other"}); !strings.Contains(msg, "there are: demo") {
		t.Errorf("read missing: %q", msg)
	}
	miss := h.must("record_read", map[string]any{"collection": coll, "name": "other", "missing_ok": true})
	if miss.GetAttr("exists").True() {
		t.Error("missing record exists")
	}

	list := h.must("record_list", map[string]any{"collection": coll})
	if n := list.GetAttr("names"); n.LengthInt() != 1 || n.Index(cty.NumberIntVal(0)).AsString() != "demo" {
		t.Errorf("names = %#v", n)
	}
	if !list.GetAttr("records").GetAttr("demo").GetAttr("memory").RawEquals(cty.NumberIntVal(2048)) {
		t.Error("list lacks demo's values")
	}

	// values = false lists the names without reading a record: a damaged
	// one is still listed, where reading the values names its file.
	other := filepath.Join(filepath.Dir(dir), "zz")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "record.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	names := h.must("record_list", map[string]any{"collection": coll, "values": false})
	if n := names.GetAttr("names"); n.LengthInt() != 2 || n.Index(cty.NumberIntVal(1)).AsString() != "zz" {
		t.Errorf("names only: names = %#v", n)
	}
	if r := names.GetAttr("records"); r.LengthInt() != 0 {
		t.Errorf("names only: records = %#v, want none", r)
	}
	if _, msg := h.run("record_list", map[string]any{"collection": coll}); !strings.Contains(msg, filepath.Join(other, "record.json")) {
		t.Errorf("list of a damaged record: %q, want its path", msg)
	}
	if err := os.RemoveAll(other); err != nil {
		t.Fatal(err)
	}

	// The create's undo removes the record.
	h.undo("record_write", create, out)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("record dir after undo of create: %v", err)
	}
	if _, msg := h.run("record_delete", map[string]any{"collection": coll, "name": "demo"}); !strings.Contains(msg, "no record for demo") {
		t.Errorf("delete missing: %q", msg)
	}
}

func TestRecordFromFile(t *testing.T) {
	h := newHarness(t)
	out := h.must("record_write", map[string]any{"collection": "machines/x", "name": "a",
		"values": cty.ObjectVal(map[string]cty.Value{"var_size": cty.StringVal("3G"), "memory": cty.NumberIntVal(512)})})
	src := filepath.Join(attr(out, "path").AsString(), "record.json")
	h.must("record_write", map[string]any{"collection": "machines/x", "name": "b", "from_file": src,
		"values": cty.ObjectVal(map[string]cty.Value{"memory": cty.NumberIntVal(1024)})})
	b := h.must("record_read", map[string]any{"collection": "machines/x", "name": "b"}).GetAttr("values")
	if b.GetAttr("var_size").AsString() != "3G" || !b.GetAttr("memory").RawEquals(cty.NumberIntVal(1024)) {
		t.Errorf("b = %#v", b)
	}
}

func TestRecordBadInput(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"collection": "../etc", "name": "a"}, "collection"},
		{map[string]any{"collection": "m", "name": "a/b"}, "record name"},
		{map[string]any{"collection": "m", "name": "a", "mode": "upsert"}, "unknown mode"},
		{map[string]any{"collection": "m", "name": "a", "generate": map[string]string{"x": "serial"}}, "unknown kind"},
		{map[string]any{"collection": "m", "name": "a", "values": cty.StringVal("x")}, "must be an object"},
	} {
		if _, msg := h.run("record_write", c.args); !strings.Contains(msg, c.want) {
			t.Errorf("%v: %q, want %q", c.args, msg, c.want)
		}
	}
	if ents, _ := os.ReadDir(h.state); len(ents) != 0 {
		t.Errorf("bad input wrote %d entries to the state dir", len(ents))
	}
}

func TestAssert(t *testing.T) {
	h := newHarness(t)
	if _, msg := h.run("assert", map[string]any{"condition": false, "message": "the VM must be shut off"}); !strings.Contains(msg, "the VM must be shut off") {
		t.Errorf("false: %q", msg)
	}
	h.must("assert", map[string]any{"condition": true, "message": "x"})
}

func TestAuthorizedKeys(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	k1 := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@host"
	k2 := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbBf1hxjrB4xH2kz8rbsRZyhP8vZ2nbX7t1t2bYyDk+ bob"
	f := filepath.Join(dir, "keys.pub")
	if err := os.WriteFile(f, []byte("# team\n"+k1+"\n"+k2+"\n"+k1+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := h.must("authorized_keys", map[string]any{"files": []string{f}, "agent": false})
	if n, _ := out.GetAttr("count").AsBigFloat().Int64(); n != 2 {
		t.Errorf("count = %d, want 2 (duplicates dropped)", n)
	}
	if got := out.GetAttr("keys").AsString(); got != k1+"\n"+k2+"\n" {
		t.Errorf("keys = %q", got)
	}
	// A relative file is the task file's, as every other path a builtin
	// action takes (not the one of wherever vmflow was started).
	if err := os.WriteFile(filepath.Join(h.work, "team.pub"), []byte(k2+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = h.must("authorized_keys", map[string]any{"files": []string{"team.pub"}, "agent": false})
	if got := out.GetAttr("keys").AsString(); got != k2+"\n" {
		t.Errorf("relative file: keys = %q", got)
	}
	bad := filepath.Join(dir, "bad.pub")
	os.WriteFile(bad, []byte("not a key\n"), 0o644)
	if _, msg := h.run("authorized_keys", map[string]any{"files": []string{bad}, "agent": false}); !strings.Contains(msg, "not an SSH public key") {
		t.Errorf("bad key: %q", msg)
	}
	if _, msg := h.run("authorized_keys", map[string]any{"agent": false, "require": true}); !strings.Contains(msg, "no SSH public key") {
		t.Errorf("require: %q", msg)
	}
}

func TestTerminal(t *testing.T) {
	h := newHarness(t)
	if _, msg := h.run("terminal", map[string]any{"argv": []string{"sh", "-c", "exit 3"}}); !strings.Contains(msg, "sh exited with status 3") {
		t.Errorf("exit 3: %q", msg)
	}
	out := h.must("terminal", map[string]any{"argv": []string{"sh", "-c", "exit 3"}, "allow_failure": true})
	if n, _ := out.GetAttr("exit_code").AsBigFloat().Int64(); n != 3 {
		t.Errorf("exit_code = %d", n)
	}
	if _, msg := h.run("terminal", map[string]any{"argv": []string{"no-such-command-here"}}); !strings.Contains(msg, `command "no-such-command-here" not found`) {
		t.Errorf("missing command: %q", msg)
	}
}

// record_write run again for the same run and step, after an attempt that
// wrote the record and was never reported: mode create does not call its
// own record "already exists", update does not merge into its own write,
// and the undo restores or removes the record as it was before the step.
func TestRecordWriteRetried(t *testing.T) {
	h := newHarness(t)
	coll := "machines/libvirt"
	create := map[string]any{"collection": coll, "name": "demo", "mode": "create", "values": cty.ObjectVal(map[string]cty.Value{"memory": cty.NumberIntVal(1024)}), "generate": map[string]string{"uuid": "uuid"}}
	h.attempt("run-1", "record", "record_write", create)
	out, msg := h.attempt("run-1", "record", "record_write", create)
	if msg != "" {
		t.Fatalf("the retried create: %s", msg)
	}
	if !attr(out, "created").True() || attr(out, "previous").AsString() != "" {
		t.Fatalf("the retried create does not call the record new: %#v", out)
	}
	if _, msg := h.attempt("run-2", "record", "record_write", create); !strings.Contains(msg, "a record for demo already exists") {
		t.Fatalf("another run's create: %q", msg)
	}
	if _, msg := h.attempt("run-1", "other", "record_write", create); !strings.Contains(msg, "a record for demo already exists") {
		t.Fatalf("another step's create: %q", msg)
	}
	uuid := attr(out, "values", "uuid").AsString()

	// update, twice: the second attempt reports (and undoes to) the record
	// from before the step, not the first attempt's write.
	update := map[string]any{"collection": coll, "name": "demo", "mode": "update", "values": cty.ObjectVal(map[string]cty.Value{"memory": cty.NumberIntVal(2048)})}
	h.attempt("run-3", "save", "record_write", update)
	up, msg := h.attempt("run-3", "save", "record_write", update)
	if msg != "" {
		t.Fatal(msg)
	}
	if p := attr(up, "previous").AsString(); !strings.Contains(p, "1024") || strings.Contains(p, "2048") {
		t.Fatalf("the retried update's previous record: %s", p)
	}
	h.undo("record_write", update, up)
	rd := h.must("record_read", map[string]any{"collection": coll, "name": "demo"})
	if m, _ := attr(rd, "values", "memory").AsBigFloat().Int64(); m != 1024 || attr(rd, "values", "uuid").AsString() != uuid {
		t.Fatalf("after the undo: %#v", rd)
	}

	// The undo of an interrupted update (no outputs) restores the record
	// as the step found it; of an interrupted create, removes it.
	h.attempt("run-4", "save", "record_write", update)
	h.undoStep("run-4", "save", "record_write", update, cty.NullVal(cty.DynamicPseudoType))
	rd = h.must("record_read", map[string]any{"collection": coll, "name": "demo"})
	if m, _ := attr(rd, "values", "memory").AsBigFloat().Int64(); m != 1024 {
		t.Fatalf("after the undo of the interrupted update: %#v", rd)
	}
	h.undoStep("run-9", "record", "record_write", create, cty.NullVal(cty.DynamicPseudoType))
	if rd := h.must("record_read", map[string]any{"collection": coll, "name": "demo", "missing_ok": true}); !attr(rd, "exists").True() {
		t.Fatal("the undo of a step that claimed nothing removed the record")
	}
	h.undoStep("run-1", "record", "record_write", create, cty.NullVal(cty.DynamicPseudoType))
	if rd := h.must("record_read", map[string]any{"collection": coll, "name": "demo", "missing_ok": true}); attr(rd, "exists").True() {
		t.Fatal("the undo of the interrupted create left the record")
	}
}
