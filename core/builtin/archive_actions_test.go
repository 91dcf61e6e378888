package builtin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	archivefmt "github.com/vmflow/vmflow/core/archive"
	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
	at "github.com/vmflow/vmflow/internal/archivetest"
	"github.com/vmflow/vmflow/internal/plugintest"
)

// backups runs the archive actions in process, the way vmflow does:
// Configure with a state directory, then Validate and Run per step.
type backups struct {
	tb       testing.TB
	p        protocol.Conn
	schema   *protocol.Schema
	state    string
	work     string
	progress int
	// Each call is a step of its own (its claims its own), as in a run;
	// last names each action's latest, which undo undoes.
	calls int
	last  map[string]string
}

func newBackups(tb testing.TB, stateDir string) *backups {
	tb.Helper()
	p, err := sdk.InProcess(New(nil))
	if err != nil {
		tb.Fatal(err)
	}
	work := tb.TempDir()
	if d, err := p.Configure(context.Background(), cty.EmptyObjectVal, protocol.Env{StateDir: stateDir, WorkDir: work}); err != nil || d.HasErrors() {
		tb.Fatalf("configure: %v %v", err, d.Err())
	}
	s, err := p.Describe(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return &backups{tb: tb, p: p, schema: s, state: stateDir, work: work}
}

func (b *backups) try(action string, args map[string]any) (cty.Value, error) {
	b.tb.Helper()
	in := plugintest.Inputs(b.tb, b.schema, action, args)
	d, err := b.p.Validate(context.Background(), action, in)
	if err == nil {
		err = d.Err()
	}
	if err != nil {
		return cty.NilVal, err
	}
	b.calls++
	if b.last == nil {
		b.last = map[string]string{}
	}
	b.last[action] = fmt.Sprintf("%s-%d", action, b.calls)
	out, d, err := b.p.Run(context.Background(), protocol.RunRequest{Action: action, Inputs: in, RunID: "r", Step: b.last[action]}, func(e protocol.Event) {
		if e.Kind == protocol.EventProgress {
			b.progress++
		}
	})
	if err == nil {
		err = d.Err()
	}
	return out, err
}

func (b *backups) ok(action string, args map[string]any) cty.Value {
	b.tb.Helper()
	out, err := b.try(action, args)
	if err != nil {
		b.tb.Fatalf("%s: %v", action, err)
	}
	return out
}

// fails runs an action that must fail with an error holding every want.
func (b *backups) fails(action string, args map[string]any, want ...string) string {
	b.tb.Helper()
	_, err := b.try(action, args)
	if err == nil {
		b.tb.Fatalf("%s %v succeeded, want an error", action, args)
	}
	b.tb.Logf("%s: %v", action, err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			b.tb.Fatalf("%s: error %q, want one containing %q", action, err, w)
		}
	}
	return err.Error()
}

func (b *backups) undo(action string, args map[string]any, out cty.Value) {
	b.tb.Helper()
	in := plugintest.Inputs(b.tb, b.schema, action, args)
	d, err := b.p.Undo(context.Background(), protocol.UndoRequest{Action: action, Inputs: in, Outputs: out, RunID: "r", Step: b.last[action]}, func(protocol.Event) {})
	if err == nil {
		err = d.Err()
	}
	if err != nil {
		b.tb.Fatalf("undo %s: %v", action, err)
	}
}

func strOut(v cty.Value, name string) string { return v.GetAttr(name).AsString() }

func listOut(v cty.Value, name string) []string {
	var out []string
	for _, e := range v.GetAttr(name).AsValueSlice() {
		out = append(out, e.AsString())
	}
	return out
}

func mapOut(v cty.Value, name string) map[string]string {
	out := map[string]string{}
	for k, e := range v.GetAttr(name).AsValueMap() {
		out[k] = e.AsString()
	}
	return out
}

func TestArchiveRoundTrip(t *testing.T) {
	b := newBackups(t, t.TempDir())
	src := t.TempDir()
	small := []byte("hello, backup\n")
	files := map[string]string{
		"disk.img":        at.SparseFile(t, filepath.Join(src, "disk.img")),
		"config/vm.json":  at.WriteFile(t, filepath.Join(src, "vm.json"), []byte(`{"name":"vm1"}`), 0o640),
		"config/note.txt": at.WriteFile(t, filepath.Join(src, "note.txt"), small, 0o600),
		"empty":           at.WriteFile(t, filepath.Join(src, "empty"), nil, 0o644),
	}
	want := map[string]string{}
	for name, p := range files {
		want[name] = at.FileSum(t, p)
	}
	// A relative path is taken from the task file's directory.
	out := b.ok("archive_create", map[string]any{
		"path":     "backups/vm1.tar.zst",
		"files":    files,
		"metadata": map[string]string{"vm": "vm1", "backend": "libvirt"},
	})
	archive := filepath.Join(b.work, "backups", "vm1.tar.zst")
	if strOut(out, "path") != archive {
		t.Fatalf("path = %s, want %s", strOut(out, "path"), archive)
	}
	if got := listOut(out, "members"); !slices.Equal(got, []string{"config/note.txt", "config/vm.json", "disk.img", "empty"}) {
		t.Fatalf("members = %v", got)
	}
	if strOut(out, "sha256") != at.FileSum(t, archive) {
		t.Fatal("sha256 output is not the archive's sum")
	}
	fi, _ := os.Stat(archive)
	if size, _ := out.GetAttr("size").AsBigFloat().Int64(); size != fi.Size() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("size output %d, file %d bytes mode %v", size, fi.Size(), fi.Mode())
	}
	if di, _ := os.Stat(filepath.Dir(archive)); di.Mode().Perm() != 0o700 {
		t.Fatalf("archive directory mode %v, want 0700", di.Mode())
	}
	if fi.Size() > 4<<20 {
		t.Fatalf("a mostly empty 64 MiB file compressed to %d bytes", fi.Size())
	}
	if b.progress == 0 {
		t.Fatal("no progress reported")
	}
	side, _ := os.ReadFile(archive + archivefmt.SumExt)
	if string(side) != strOut(out, "sha256")+"  vm1.tar.zst\n" {
		t.Fatalf("sidecar = %q", side)
	}
	if left := at.Tree(t, filepath.Dir(archive)); !slices.Equal(left, []string{"vm1.tar.zst", "vm1.tar.zst.sha256"}) {
		t.Fatalf("archive directory holds %v", left)
	}

	m := at.Must(archivefmt.ReadManifest(archive))

	v := b.ok("archive_verify", map[string]any{"path": archive})
	if strOut(v, "path") != archive {
		t.Fatalf("verify path = %s", strOut(v, "path"))
	}
	if got := listOut(v, "members"); len(got) != 4 || mapOut(v, "metadata")["backend"] != "libvirt" || strOut(v, "created") != m.Created {
		t.Fatalf("verify outputs %#v", v)
	}
	if size, _ := v.GetAttr("size").AsBigFloat().Int64(); size != fi.Size() {
		t.Fatalf("verify size %d", size)
	}

	x := b.ok("archive_extract", map[string]any{"path": archive})
	dir := strOut(x, "dir")
	if filepath.Dir(dir) != TempDir(b.state, "r") {
		t.Fatalf("extracted into %s, want a directory under <state>/tmp/<run>", dir)
	}
	got := mapOut(x, "files")
	for name, sum := range want {
		if got[name] != filepath.Join(dir, filepath.FromSlash(name)) || at.FileSum(t, got[name]) != sum {
			t.Fatalf("extracted %s at %q", name, got[name])
		}
	}
	if fi, _ := os.Stat(got["config/vm.json"]); fi.Mode().Perm() != 0o640 {
		t.Fatalf("extracted mode %v", fi.Mode())
	}
	if mapOut(x, "metadata")["vm"] != "vm1" {
		t.Fatal("extract lost the metadata")
	}

	// A second archive at the same path is refused, and nothing changes.
	b.fails("archive_create", map[string]any{"path": archive, "files": files}, "already exists")
	if at.FileSum(t, archive) != strOut(out, "sha256") {
		t.Fatal("a refused create changed the archive")
	}
}

func TestArchiveCreateRefusesBadMemberNames(t *testing.T) {
	b := newBackups(t, t.TempDir())
	src := at.WriteFile(t, filepath.Join(t.TempDir(), "f"), []byte("x"), 0o644)
	out := filepath.Join(t.TempDir(), "out")
	for _, name := range []string{"../escape", "a/../../b", "a/../b", "/etc/passwd", "./a", "a//b", "", ".", "MANIFEST.json", "a/.."} {
		b.fails("archive_create", map[string]any{"path": filepath.Join(out, "x.tar.zst"), "files": map[string]string{name: src}}, fmt.Sprintf("files[%q]", name))
	}
	b.fails("archive_create", map[string]any{"path": filepath.Join(out, "x.tar.zst"), "files": map[string]string{}}, "files", "at least one")
	b.fails("archive_create", map[string]any{"path": filepath.Join(out, "x.tar.zst"), "files": map[string]string{"a": filepath.Join(out, "missing")}}, `files["a"]`, "no such file")
	b.fails("archive_create", map[string]any{"path": filepath.Join(out, "x.tar.zst"), "files": map[string]string{"a": t.TempDir()}}, `files["a"]`, "not a regular file")
	if left := at.Tree(t, out); len(left) != 0 {
		t.Fatalf("refused creates left %v", left)
	}
}

// archiveOf makes a real archive of small files a, b, c and sub/d.
func archiveOf(t *testing.T, b *backups, archive string) map[string]string {
	t.Helper()
	src := t.TempDir()
	files := map[string]string{}
	for _, n := range []string{"a", "b", "c", "sub/d"} {
		files[n] = at.WriteFile(t, filepath.Join(src, n), bytes.Repeat([]byte("content of "+n+"\n"), 1000), 0o644)
	}
	b.ok("archive_create", map[string]any{"path": archive, "files": files})
	return files
}

func TestArchiveVerifyDetectsAFlippedByte(t *testing.T) {
	b := newBackups(t, t.TempDir())
	archive := filepath.Join(t.TempDir(), "x.tar.zst")
	archiveOf(t, b, archive)
	recorded := strings.Fields(string(at.Must(os.ReadFile(archive + archivefmt.SumExt))))[0]
	data := at.Must(os.ReadFile(archive))
	data[len(data)/2] ^= 0x01
	at.WriteFile(t, archive, data, 0o600)
	b.fails("archive_verify", map[string]any{"path": archive}, archive, recorded, at.SumOf(data), "x.tar.zst.sha256")

	os.Remove(archive + archivefmt.SumExt)
	b.fails("archive_verify", map[string]any{"path": archive}, archive, "x.tar.zst.sha256", "missing")
}

func TestArchiveExtractRefusesAndCleansUp(t *testing.T) {
	b := newBackups(t, t.TempDir())
	dir := t.TempDir()
	archive := filepath.Join(dir, "x.tar.zst")
	archiveOf(t, b, archive)
	at.Tamper(t, archive, "sub/d") // the last member: a, b and c are written first

	// Into a directory of the user's: their file stays, ours go.
	into := t.TempDir()
	at.WriteFile(t, filepath.Join(into, "keep.txt"), []byte("mine"), 0o644)
	b.fails("archive_extract", map[string]any{"path": archive, "dir": into}, archive, `member "sub/d"`, "sha256")
	if left := at.Tree(t, into); !slices.Equal(left, []string{"keep.txt"}) {
		t.Fatalf("after a failed extract the directory holds %v", left)
	}
	// Into a directory of its own, under the state directory.
	b.fails("archive_extract", map[string]any{"path": archive}, `member "sub/d"`)
	if left := at.Tree(t, TempDir(b.state, "r")); len(left) != 0 {
		t.Fatalf("after a failed extract <state>/tmp/<run> holds %v", left)
	}
	// Into a directory it had to create.
	fresh := filepath.Join(t.TempDir(), "new")
	b.fails("archive_extract", map[string]any{"path": archive, "dir": fresh}, `member "sub/d"`)
	if _, err := os.Stat(fresh); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed extract left the directory it made: %v", err)
	}

	// The sidecar is checked before anything is written.
	good := filepath.Join(dir, "good.tar.zst")
	archiveOf(t, b, good)
	data := at.Must(os.ReadFile(good))
	data[len(data)-100] ^= 0x01
	at.WriteFile(t, good, data, 0o600)
	b.fails("archive_extract", map[string]any{"path": good, "dir": into}, "its sha256 is")
	if left := at.Tree(t, into); !slices.Equal(left, []string{"keep.txt"}) {
		t.Fatalf("extract of a damaged archive wrote %v", left)
	}

	// Members never replace files already there.
	good = filepath.Join(dir, "good2.tar.zst")
	archiveOf(t, b, good)
	into = t.TempDir()
	at.WriteFile(t, filepath.Join(into, "c"), []byte("mine"), 0o644)
	b.fails("archive_extract", map[string]any{"path": good, "dir": into}, `member "c"`, "already exists")
	if left := at.Tree(t, into); !slices.Equal(left, []string{"c"}) || string(at.Must(os.ReadFile(filepath.Join(into, "c")))) != "mine" {
		t.Fatalf("extract over an existing file left %v", left)
	}
}

func TestArchiveListNewestFirst(t *testing.T) {
	b := newBackups(t, t.TempDir())
	dir := t.TempDir()
	made := func(name, created, vm string) {
		at.HandMade(t, filepath.Join(dir, name), &archivefmt.Manifest{Format: archivefmt.Format, Created: created, Metadata: map[string]string{"vm": vm}}, nil)
	}
	made("vm1-a.tar.zst", "2024-01-01T00:00:00Z", "vm1")
	made("vm1-b.tar.zst", "2025-03-01T00:00:00Z", "vm1")
	made("vm2-a.tar.zst", "2024-06-01T00:00:00Z", "vm2")
	os.Remove(filepath.Join(dir, "vm2-a.tar.zst"+archivefmt.SumExt))
	at.WriteFile(t, filepath.Join(dir, "vm1-notes.txt"), []byte("not an archive"), 0o644)
	at.WriteFile(t, filepath.Join(dir, "vm1-junk.tar.zst"), []byte("not zstd"), 0o644)

	out := b.ok("archive_list", map[string]any{"dir": dir})
	names := func(v cty.Value) []string {
		var n []string
		for _, p := range listOut(v, "paths") {
			n = append(n, filepath.Base(p))
		}
		return n
	}
	if got := names(out); !slices.Equal(got, []string{"vm1-b.tar.zst", "vm2-a.tar.zst", "vm1-a.tar.zst"}) {
		t.Fatalf("paths = %v", got)
	}
	arch := out.GetAttr("archives").AsValueSlice()
	if len(arch) != 3 {
		t.Fatalf("archives = %#v", arch)
	}
	first := arch[0]
	fi, _ := os.Stat(filepath.Join(dir, "vm1-b.tar.zst"))
	if size, _ := first.GetAttr("size").AsBigFloat().Int64(); size != fi.Size() ||
		first.GetAttr("name").AsString() != "vm1-b.tar.zst" ||
		first.GetAttr("path").AsString() != filepath.Join(dir, "vm1-b.tar.zst") ||
		first.GetAttr("created").AsString() != "2025-03-01T00:00:00Z" ||
		first.GetAttr("metadata").Index(cty.StringVal("vm")).AsString() != "vm1" ||
		!first.GetAttr("verified").True() {
		t.Fatalf("first archive = %#v", first)
	}
	if arch[1].GetAttr("verified").True() {
		t.Fatal("an archive without a sidecar is listed as verified")
	}

	if got := names(b.ok("archive_list", map[string]any{"dir": dir, "prefix": "vm1-"})); !slices.Equal(got, []string{"vm1-b.tar.zst", "vm1-a.tar.zst"}) {
		t.Fatalf("prefix vm1-: %v", got)
	}
	empty := b.ok("archive_list", map[string]any{"dir": filepath.Join(dir, "missing")})
	if len(listOut(empty, "paths")) != 0 || empty.GetAttr("archives").LengthInt() != 0 {
		t.Fatalf("missing dir: %#v", empty)
	}

	// Only the manifest is read: an archive cut short after it still lists.
	cut := filepath.Join(dir, "vm3-cut.tar.zst")
	archiveOf(t, b, cut)
	data := at.Must(os.ReadFile(cut))
	at.WriteFile(t, cut, data[:len(data)-20], 0o600)
	if got := names(b.ok("archive_list", map[string]any{"dir": dir, "prefix": "vm3-"})); !slices.Equal(got, []string{"vm3-cut.tar.zst"}) {
		t.Fatalf("prefix vm3-: %v", got)
	}
	b.fails("archive_verify", map[string]any{"path": cut}, "its sha256 is")
}

func TestArchiveRemoveSources(t *testing.T) {
	b := newBackups(t, t.TempDir())
	src := t.TempDir()
	files := map[string]string{
		"disk.img": at.SparseFile(t, filepath.Join(src, "disk.img")),
		"vm.json":  at.WriteFile(t, filepath.Join(src, "vm.json"), []byte(`{}`), 0o644),
	}
	sum := at.FileSum(t, files["disk.img"])
	archive := filepath.Join(t.TempDir(), "x.tar.zst")
	b.ok("archive_create", map[string]any{"path": archive, "files": files, "remove_sources": true})
	if left := at.Tree(t, src); len(left) != 0 {
		t.Fatalf("sources left: %v", left)
	}
	x := b.ok("archive_extract", map[string]any{"path": archive})
	if at.FileSum(t, mapOut(x, "files")["disk.img"]) != sum {
		t.Fatal("disk.img did not survive")
	}
}

func TestArchiveUndo(t *testing.T) {
	b := newBackups(t, t.TempDir())
	dir := t.TempDir()
	archive := filepath.Join(dir, "x.tar.zst")
	files := archiveOf(t, b, archive)

	// extract, into its own directory, into a new one, into the user's.
	args := map[string]any{"path": archive}
	x := b.ok("archive_extract", args)
	b.undo("archive_extract", args, x)
	if _, err := os.Stat(strOut(x, "dir")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("undo left %s", strOut(x, "dir"))
	}
	fresh := filepath.Join(t.TempDir(), "a", "b")
	args = map[string]any{"path": archive, "dir": fresh}
	x = b.ok("archive_extract", args)
	b.undo("archive_extract", args, x)
	if _, err := os.Stat(fresh); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("undo left the directory extract made")
	}
	mine := t.TempDir()
	at.WriteFile(t, filepath.Join(mine, "keep.txt"), []byte("mine"), 0o644)
	at.WriteFile(t, filepath.Join(mine, "sub", "keep.txt"), []byte("mine"), 0o644)
	args = map[string]any{"path": archive, "dir": mine}
	x = b.ok("archive_extract", args)
	if got := at.Tree(t, mine); len(got) != 7 {
		t.Fatalf("extracted tree %v", got)
	}
	b.undo("archive_extract", args, x)
	if got := at.Tree(t, mine); !slices.Equal(got, []string{"keep.txt", "sub", "sub/keep.txt"}) {
		t.Fatalf("after undo the user's directory holds %v", got)
	}

	// create
	second := filepath.Join(dir, "y.tar.zst")
	args = map[string]any{"path": second, "files": files}
	out := b.ok("archive_create", args)
	b.undo("archive_create", args, out)
	if left := at.Tree(t, dir); !slices.Equal(left, []string{"x.tar.zst", "x.tar.zst.sha256"}) {
		t.Fatalf("after undo of create: %v", left)
	}

	// temp_dir
	td := b.ok("temp_dir", map[string]any{"prefix": "restore"})
	p := strOut(td, "path")
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 || filepath.Dir(p) != TempDir(b.state, "r") || !strings.HasPrefix(filepath.Base(p), "restore-") {
		t.Fatalf("temp_dir made %s: %v %v", p, fi.Mode(), err)
	}
	at.WriteFile(t, filepath.Join(p, "deep", "file"), []byte("x"), 0o400)
	b.undo("temp_dir", map[string]any{"prefix": "restore"}, td)
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("undo of temp_dir left it")
	}
	b.fails("temp_dir", map[string]any{"prefix": "../x"}, "prefix")

	for _, a := range b.schema.Actions {
		switch a.Name {
		case "archive_create", "archive_extract", "temp_dir":
			if !a.HasUndo {
				t.Errorf("%s has no undo", a.Name)
			}
		case "archive_verify", "archive_list", "remove":
			if a.HasUndo {
				t.Errorf("%s has an undo", a.Name)
			}
		}
	}
}

func TestBackupsNeedAStateDir(t *testing.T) {
	b := newBackups(t, "")
	b.fails("temp_dir", map[string]any{}, "state directory is not configured")
	b.fails("remove", map[string]any{"paths": []string{filepath.Join(t.TempDir(), "x")}}, "state directory is not configured")
	archive := filepath.Join(t.TempDir(), "x.tar.zst")
	// archive_create claims what it makes, in the state directory.
	b.fails("archive_create", map[string]any{"path": archive, "files": map[string]string{"a": at.WriteFile(t, filepath.Join(t.TempDir(), "a"), []byte("a"), 0o644)}}, "no state directory")
	archiveOf(t, newBackups(t, t.TempDir()), archive)
	b.fails("archive_extract", map[string]any{"path": archive}, "state directory is not configured")
}

// archive_create run again in the same step (vmflow killed during it, the
// run resumed): a whole archive an earlier attempt made, under whatever
// name, is the step's result; a partial one is removed and made again;
// the undo of an interrupted attempt removes what it claimed.
func TestArchiveCreateRunAgain(t *testing.T) {
	b := newBackups(t, t.TempDir())
	dir := t.TempDir()
	files := map[string]string{"a": at.WriteFile(t, filepath.Join(t.TempDir(), "a"), []byte("data"), 0o644)}
	run := func(step, path string) (cty.Value, error) {
		in := plugintest.Inputs(t, b.schema, "archive_create", map[string]any{"path": path, "files": files})
		out, d, err := b.p.Run(context.Background(), protocol.RunRequest{Action: "archive_create", Inputs: in, RunID: "again", Step: step}, func(protocol.Event) {})
		if err == nil {
			err = d.Err()
		}
		return out, err
	}
	first := filepath.Join(dir, "k-20261206-100000.tar.zst")
	if _, err := run("archive", first); err != nil {
		t.Fatal(err)
	}
	// Killed before it reported; resumed a second later: a new name.
	second := filepath.Join(dir, "k-20261206-100001.tar.zst")
	out, err := run("archive", second)
	if err != nil {
		t.Fatal(err)
	}
	if strOut(out, "path") != first {
		t.Fatalf("the second attempt made %s, want the first attempt's whole archive %s", strOut(out, "path"), first)
	}
	if left := at.Tree(t, dir); !slices.Equal(left, []string{"k-20261206-100000.tar.zst", "k-20261206-100000.tar.zst.sha256"}) {
		t.Fatalf("after the second attempt: %v", left)
	}

	// A partial archive (killed before its checksum file): removed, and
	// made again.
	if err := os.Remove(first + archivefmt.SumExt); err != nil {
		t.Fatal(err)
	}
	at.WriteFile(t, filepath.Join(dir, ".k-20261206-100000.tar.zst.123.tmp"), []byte("half"), 0o600)
	out, err = run("archive", second)
	if err != nil || strOut(out, "path") != second {
		t.Fatalf("third attempt: %v %v", out, err)
	}
	if left := at.Tree(t, dir); !slices.Equal(left, []string{"k-20261206-100001.tar.zst", "k-20261206-100001.tar.zst.sha256"}) {
		t.Fatalf("after the third attempt: %v", left)
	}

	// The undo of an interrupted attempt (no outputs) removes all it
	// claimed.
	in := plugintest.Inputs(t, b.schema, "archive_create", map[string]any{"path": filepath.Join(dir, "other.tar.zst"), "files": files})
	d, err := b.p.Undo(context.Background(), protocol.UndoRequest{Action: "archive_create", Inputs: in, Outputs: cty.NullVal(cty.DynamicPseudoType), RunID: "again", Step: "archive"}, func(protocol.Event) {})
	if err != nil || d.HasErrors() {
		t.Fatal(err, d.Err())
	}
	if left := at.Tree(t, dir); len(left) != 0 {
		t.Fatalf("after the undo of the interrupted step: %v", left)
	}
}
