package builtin

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/internal/plugintest"
)

// backups runs the archive actions in process, the way vmflow does:
// Configure with a state directory, then Validate and Run per step.
type backups struct {
	tb       testing.TB
	p        protocol.Plugin
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

func writeFile(tb testing.TB, name string, data []byte, perm os.FileMode) string {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(name, data, perm); err != nil {
		tb.Fatal(err)
	}
	return name
}

func sumOf(data []byte) string { s := sha256.Sum256(data); return hex.EncodeToString(s[:]) }

func fileSum(tb testing.TB, name string) string {
	tb.Helper()
	f, err := os.Open(name)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sparseFile makes a 64 MiB file that is mostly holes, with 256 KiB of
// random data every 8 MiB and a last byte.
func sparseFile(tb testing.TB, name string) string {
	tb.Helper()
	f, err := os.Create(name)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	const size = 64 << 20
	if err := f.Truncate(size); err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	chunk := make([]byte, 256<<10)
	for off := int64(3 << 20); off < size; off += 8 << 20 {
		for i := range chunk {
			chunk[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(chunk, off); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := f.WriteAt([]byte{0x7f}, size-1); err != nil {
		tb.Fatal(err)
	}
	return name
}

// treeOf lists the files and directories under dir, relative to it.
func treeOf(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		tb.Fatal(err)
	}
	return out
}

// entry is one tar member of a hand-made archive.
type entry struct {
	name string
	data []byte
	typ  byte // 0: regular file
	link string
}

// handMade writes an archive as another tool might: one zstd frame of a
// tar stream whose first member is the given manifest, then a sidecar
// with the file's true sum.
func handMade(tb testing.TB, name string, m *manifest, entries []entry) {
	tb.Helper()
	js, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	all := append([]entry{{name: manifestName, data: js}}, entries...)
	for _, e := range all {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Typeflag: typ, Name: e.name, Mode: 0o644, Linkname: e.link}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil && typ == tar.TypeReg {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, name, buf.Bytes(), 0o600)
	resign(tb, name)
}

// resign rewrites an archive's sidecar to match the file as it is now.
func resign(tb testing.TB, name string) {
	tb.Helper()
	writeFile(tb, name+sidecarExt, []byte(fileSum(tb, name)+"  "+filepath.Base(name)+"\n"), 0o600)
}

// contents reads an archive back with the stock decoder: the manifest and
// the members, in order.
func contents(tb testing.TB, name string) (*manifest, []entry) {
	tb.Helper()
	f, err := os.Open(name)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var m manifest
	var out []entry
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			tb.Fatal(err)
		}
		if i == 0 {
			if hdr.Name != manifestName {
				tb.Fatalf("first member is %q", hdr.Name)
			}
			if err := json.Unmarshal(data, &m); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		out = append(out, entry{name: hdr.Name, data: data})
	}
	return &m, out
}

func TestArchiveRoundTrip(t *testing.T) {
	b := newBackups(t, t.TempDir())
	src := t.TempDir()
	small := []byte("hello, backup\n")
	files := map[string]string{
		"disk.img":        sparseFile(t, filepath.Join(src, "disk.img")),
		"config/vm.json":  writeFile(t, filepath.Join(src, "vm.json"), []byte(`{"name":"vm1"}`), 0o640),
		"config/note.txt": writeFile(t, filepath.Join(src, "note.txt"), small, 0o600),
		"empty":           writeFile(t, filepath.Join(src, "empty"), nil, 0o644),
	}
	want := map[string]string{}
	for name, p := range files {
		want[name] = fileSum(t, p)
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
	if strOut(out, "sha256") != fileSum(t, archive) {
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
	side, _ := os.ReadFile(archive + sidecarExt)
	if string(side) != strOut(out, "sha256")+"  vm1.tar.zst\n" {
		t.Fatalf("sidecar = %q", side)
	}
	if sh, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command(sh, "-c", "vm1.tar.zst.sha256")
		cmd.Dir = filepath.Dir(archive)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sha256sum -c: %v\n%s", err, msg)
		}
	}
	if left := treeOf(t, filepath.Dir(archive)); !slices.Equal(left, []string{"vm1.tar.zst", "vm1.tar.zst.sha256"}) {
		t.Fatalf("archive directory holds %v", left)
	}

	// Any zstd reader reads it as one tar stream, manifest first.
	m, entries := contents(t, archive)
	if m.Format != "vmflow-backup/1" || m.Metadata["vm"] != "vm1" || len(m.Members) != 4 || len(entries) != 4 {
		t.Fatalf("manifest %+v, %d entries", m, len(entries))
	}
	for i, mi := range m.Members {
		if mi.Name != entries[i].name || mi.SHA256 != want[mi.Name] || mi.SHA256 != sumOf(entries[i].data) || mi.Size != int64(len(entries[i].data)) {
			t.Fatalf("member %d: manifest %+v, entry %q", i, mi, entries[i].name)
		}
	}
	if m.Members[1].Mode != "0640" {
		t.Fatalf("mode of config/vm.json = %q", m.Members[1].Mode)
	}
	if zstdCmd, err := exec.LookPath("zstd"); err == nil {
		cmd := exec.Command("sh", "-c", `"$0" -dc "$1" | tar -tf -`, zstdCmd, archive)
		msg, err := cmd.CombinedOutput()
		if err != nil || string(msg) != "MANIFEST.json\nconfig/note.txt\nconfig/vm.json\ndisk.img\nempty\n" {
			t.Fatalf("zstd -dc | tar -t: %v\n%s", err, msg)
		}
	}

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
		if got[name] != filepath.Join(dir, filepath.FromSlash(name)) || fileSum(t, got[name]) != sum {
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
	if fileSum(t, archive) != strOut(out, "sha256") {
		t.Fatal("a refused create changed the archive")
	}
}

func TestArchiveCreateRefusesBadMemberNames(t *testing.T) {
	b := newBackups(t, t.TempDir())
	src := writeFile(t, filepath.Join(t.TempDir(), "f"), []byte("x"), 0o644)
	out := filepath.Join(t.TempDir(), "out")
	for _, name := range []string{"../escape", "a/../../b", "a/../b", "/etc/passwd", "./a", "a//b", "", ".", "MANIFEST.json", "a/.."} {
		b.fails("archive_create", map[string]any{"path": filepath.Join(out, "x.tar.zst"), "files": map[string]string{name: src}}, fmt.Sprintf("files[%q]", name))
	}
	b.fails("archive_create", map[string]any{"path": filepath.Join(out, "x.tar.zst"), "files": map[string]string{}}, "files", "at least one")
	b.fails("archive_create", map[string]any{"path": filepath.Join(out, "x.tar.zst"), "files": map[string]string{"a": filepath.Join(out, "missing")}}, `files["a"]`, "no such file")
	b.fails("archive_create", map[string]any{"path": filepath.Join(out, "x.tar.zst"), "files": map[string]string{"a": t.TempDir()}}, `files["a"]`, "not a regular file")
	if left := treeOf(t, out); len(left) != 0 {
		t.Fatalf("refused creates left %v", left)
	}
}

// archiveOf makes a real archive of small files a, b, c and sub/d.
func archiveOf(t *testing.T, b *backups, archive string) map[string]string {
	t.Helper()
	src := t.TempDir()
	files := map[string]string{}
	for _, n := range []string{"a", "b", "c", "sub/d"} {
		files[n] = writeFile(t, filepath.Join(src, n), bytes.Repeat([]byte("content of "+n+"\n"), 1000), 0o644)
	}
	b.ok("archive_create", map[string]any{"path": archive, "files": files})
	return files
}

// tamper rewrites a real archive with member's first byte changed (same
// size, same manifest) and a fresh sidecar, as someone covering tracks would.
func tamper(t *testing.T, archive, member string) {
	t.Helper()
	m, entries := contents(t, archive)
	for i := range entries {
		if entries[i].name == member {
			entries[i].data[0] ^= 0xff
		}
	}
	handMade(t, archive, m, entries)
}

func TestArchiveVerifyDetectsAFlippedByte(t *testing.T) {
	b := newBackups(t, t.TempDir())
	archive := filepath.Join(t.TempDir(), "x.tar.zst")
	archiveOf(t, b, archive)
	recorded := strings.Fields(string(must(os.ReadFile(archive + sidecarExt))))[0]
	data := must(os.ReadFile(archive))
	data[len(data)/2] ^= 0x01
	writeFile(t, archive, data, 0o600)
	b.fails("archive_verify", map[string]any{"path": archive}, archive, recorded, sumOf(data), "x.tar.zst.sha256")

	os.Remove(archive + sidecarExt)
	b.fails("archive_verify", map[string]any{"path": archive}, archive, "x.tar.zst.sha256", "missing")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestArchiveVerifyDetectsTamperedMembers(t *testing.T) {
	b := newBackups(t, t.TempDir())
	dir := t.TempDir()
	archive := filepath.Join(dir, "x.tar.zst")
	archiveOf(t, b, archive)
	tamper(t, archive, "b")
	b.fails("archive_verify", map[string]any{"path": archive}, archive, `member "b"`, "sha256")

	m, entries := contents(t, filepath.Join(dir, "x.tar.zst"))
	// Restore b; then drop c, add an extra, swap in a symlink.
	entries[1].data[0] ^= 0xff
	good := filepath.Join(dir, "good.tar.zst")
	handMade(t, good, m, entries)
	b.ok("archive_verify", map[string]any{"path": good})

	missing := filepath.Join(dir, "missing.tar.zst")
	handMade(t, missing, m, slices.Delete(slices.Clone(entries), 2, 3))
	b.fails("archive_verify", map[string]any{"path": missing}, missing, `member "c"`, "not in the archive")

	extra := filepath.Join(dir, "extra.tar.zst")
	handMade(t, extra, m, append(slices.Clone(entries), entry{name: "zz", data: []byte("x")}))
	b.fails("archive_verify", map[string]any{"path": extra}, extra, `member "zz"`, "not in the manifest")

	short := filepath.Join(dir, "short.tar.zst")
	e2 := slices.Clone(entries)
	e2[0] = entry{name: "a", data: e2[0].data[1:]}
	handMade(t, short, m, e2)
	b.fails("archive_verify", map[string]any{"path": short}, short, `member "a"`, "bytes")

	// A damaged compressed stream, with a sidecar that matches it.
	cut := filepath.Join(dir, "cut.tar.zst")
	data := must(os.ReadFile(good))
	writeFile(t, cut, data[:len(data)-40], 0o600)
	resign(t, cut)
	b.fails("archive_verify", map[string]any{"path": cut}, cut)
}

func TestArchiveExtractRefusesAndCleansUp(t *testing.T) {
	b := newBackups(t, t.TempDir())
	dir := t.TempDir()
	archive := filepath.Join(dir, "x.tar.zst")
	archiveOf(t, b, archive)
	tamper(t, archive, "sub/d") // the last member: a, b and c are written first

	// Into a directory of the user's: their file stays, ours go.
	into := t.TempDir()
	writeFile(t, filepath.Join(into, "keep.txt"), []byte("mine"), 0o644)
	b.fails("archive_extract", map[string]any{"path": archive, "dir": into}, archive, `member "sub/d"`, "sha256")
	if left := treeOf(t, into); !slices.Equal(left, []string{"keep.txt"}) {
		t.Fatalf("after a failed extract the directory holds %v", left)
	}
	// Into a directory of its own, under the state directory.
	b.fails("archive_extract", map[string]any{"path": archive}, `member "sub/d"`)
	if left := treeOf(t, TempDir(b.state, "r")); len(left) != 0 {
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
	data := must(os.ReadFile(good))
	data[len(data)-100] ^= 0x01
	writeFile(t, good, data, 0o600)
	b.fails("archive_extract", map[string]any{"path": good, "dir": into}, "its sha256 is")
	if left := treeOf(t, into); !slices.Equal(left, []string{"keep.txt"}) {
		t.Fatalf("extract of a damaged archive wrote %v", left)
	}

	// Members that would land outside dir, or are not plain files.
	outside := t.TempDir()
	into = filepath.Join(outside, "into")
	hostile := []struct {
		name    string
		m       *manifest
		entries []entry
		want    string
	}{
		{"dotdot-manifest", &manifest{Format: archiveFormat, Members: []memberInfo{{Name: "../evil", Size: 1, SHA256: sumOf([]byte("x")), Mode: "0644"}}}, []entry{{name: "../evil", data: []byte("x")}}, `"../evil"`},
		{"dotdot-tar", &manifest{Format: archiveFormat}, []entry{{name: "../evil", data: []byte("x")}}, `"../evil"`},
		{"absolute", &manifest{Format: archiveFormat}, []entry{{name: "/tmp/evil", data: []byte("x")}}, `"/tmp/evil"`},
		{"symlink", &manifest{Format: archiveFormat, Members: []memberInfo{{Name: "link", Size: 0, SHA256: sumOf(nil), Mode: "0644"}}}, []entry{{name: "link", typ: tar.TypeSymlink, link: "../evil"}}, "not a regular file"},
		{"device", &manifest{Format: archiveFormat, Members: []memberInfo{{Name: "dev", Size: 0, SHA256: sumOf(nil), Mode: "0644"}}}, []entry{{name: "dev", typ: tar.TypeChar}}, "not a regular file"},
		{"not-a-backup", nil, []entry{{name: "a", data: []byte("x")}}, "not a vmflow backup"},
	}
	for _, h := range hostile {
		p := filepath.Join(dir, h.name+".tar.zst")
		if h.m == nil {
			// No manifest at all: a plain tar.zst.
			var buf bytes.Buffer
			zw, _ := zstd.NewWriter(&buf)
			tw := tar.NewWriter(zw)
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "a", Size: 1, Mode: 0o644})
			tw.Write([]byte("x"))
			tw.Close()
			zw.Close()
			writeFile(t, p, buf.Bytes(), 0o600)
			resign(t, p)
		} else {
			handMade(t, p, h.m, h.entries)
		}
		b.fails("archive_extract", map[string]any{"path": p, "dir": into}, h.want)
		b.fails("archive_verify", map[string]any{"path": p}, h.want)
		if left := treeOf(t, outside); len(left) != 0 {
			t.Fatalf("%s: extract left %v", h.name, left)
		}
	}

	// Members never replace files already there.
	good = filepath.Join(dir, "good2.tar.zst")
	archiveOf(t, b, good)
	into = t.TempDir()
	writeFile(t, filepath.Join(into, "c"), []byte("mine"), 0o644)
	b.fails("archive_extract", map[string]any{"path": good, "dir": into}, `member "c"`, "already exists")
	if left := treeOf(t, into); !slices.Equal(left, []string{"c"}) || string(must(os.ReadFile(filepath.Join(into, "c")))) != "mine" {
		t.Fatalf("extract over an existing file left %v", left)
	}
}

func TestArchiveListNewestFirst(t *testing.T) {
	b := newBackups(t, t.TempDir())
	dir := t.TempDir()
	made := func(name, created, vm string) {
		handMade(t, filepath.Join(dir, name), &manifest{Format: archiveFormat, Created: created, Metadata: map[string]string{"vm": vm}}, nil)
	}
	made("vm1-a.tar.zst", "2024-01-01T00:00:00Z", "vm1")
	made("vm1-b.tar.zst", "2025-03-01T00:00:00Z", "vm1")
	made("vm2-a.tar.zst", "2024-06-01T00:00:00Z", "vm2")
	os.Remove(filepath.Join(dir, "vm2-a.tar.zst"+sidecarExt))
	writeFile(t, filepath.Join(dir, "vm1-notes.txt"), []byte("not an archive"), 0o644)
	writeFile(t, filepath.Join(dir, "vm1-junk.tar.zst"), []byte("not zstd"), 0o644)

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
	data := must(os.ReadFile(cut))
	writeFile(t, cut, data[:len(data)-20], 0o600)
	if got := names(b.ok("archive_list", map[string]any{"dir": dir, "prefix": "vm3-"})); !slices.Equal(got, []string{"vm3-cut.tar.zst"}) {
		t.Fatalf("prefix vm3-: %v", got)
	}
	b.fails("archive_verify", map[string]any{"path": cut}, "its sha256 is")
}

func TestArchiveRemoveSources(t *testing.T) {
	b := newBackups(t, t.TempDir())
	src := t.TempDir()
	files := map[string]string{
		"disk.img": sparseFile(t, filepath.Join(src, "disk.img")),
		"vm.json":  writeFile(t, filepath.Join(src, "vm.json"), []byte(`{}`), 0o644),
	}
	sum := fileSum(t, files["disk.img"])
	archive := filepath.Join(t.TempDir(), "x.tar.zst")
	b.ok("archive_create", map[string]any{"path": archive, "files": files, "remove_sources": true})
	if left := treeOf(t, src); len(left) != 0 {
		t.Fatalf("sources left: %v", left)
	}
	x := b.ok("archive_extract", map[string]any{"path": archive})
	if fileSum(t, mapOut(x, "files")["disk.img"]) != sum {
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
	writeFile(t, filepath.Join(mine, "keep.txt"), []byte("mine"), 0o644)
	writeFile(t, filepath.Join(mine, "sub", "keep.txt"), []byte("mine"), 0o644)
	args = map[string]any{"path": archive, "dir": mine}
	x = b.ok("archive_extract", args)
	if got := treeOf(t, mine); len(got) != 7 {
		t.Fatalf("extracted tree %v", got)
	}
	b.undo("archive_extract", args, x)
	if got := treeOf(t, mine); !slices.Equal(got, []string{"keep.txt", "sub", "sub/keep.txt"}) {
		t.Fatalf("after undo the user's directory holds %v", got)
	}

	// create
	second := filepath.Join(dir, "y.tar.zst")
	args = map[string]any{"path": second, "files": files}
	out := b.ok("archive_create", args)
	b.undo("archive_create", args, out)
	if left := treeOf(t, dir); !slices.Equal(left, []string{"x.tar.zst", "x.tar.zst.sha256"}) {
		t.Fatalf("after undo of create: %v", left)
	}

	// temp_dir
	td := b.ok("temp_dir", map[string]any{"prefix": "restore"})
	p := strOut(td, "path")
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 || filepath.Dir(p) != TempDir(b.state, "r") || !strings.HasPrefix(filepath.Base(p), "restore-") {
		t.Fatalf("temp_dir made %s: %v %v", p, fi.Mode(), err)
	}
	writeFile(t, filepath.Join(p, "deep", "file"), []byte("x"), 0o400)
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

func TestRemove(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	b := newBackups(t, state)
	dir := t.TempDir()
	f := writeFile(t, filepath.Join(dir, "f"), []byte("x"), 0o644)
	writeFile(t, filepath.Join(dir, "tree", "a", "b"), []byte("x"), 0o400)
	tree := filepath.Join(dir, "tree")
	missing := filepath.Join(dir, "missing")

	out := b.ok("remove", map[string]any{"paths": []string{f, tree, missing}})
	if got := listOut(out, "removed"); !slices.Equal(got, []string{f, tree}) {
		t.Fatalf("removed = %v", got)
	}
	if left := treeOf(t, dir); len(left) != 0 {
		t.Fatalf("left %v", left)
	}

	g := writeFile(t, filepath.Join(dir, "g"), []byte("x"), 0o644)
	b.fails("remove", map[string]any{"paths": []string{g, missing}, "missing_ok": false}, "paths[1]", missing, "does not exist")
	if _, err := os.Stat(g); err != nil {
		t.Fatal("a failed remove removed something")
	}

	for i, bad := range []string{"/", "/..", state, state + "/", filepath.Dir(state), "relative/path"} {
		msg := b.fails("remove", map[string]any{"paths": []string{g, bad}}, "paths[1]")
		if !strings.Contains(msg, bad) && !strings.Contains(msg, filepath.Clean(bad)) {
			t.Errorf("%d: error %q does not name %q", i, msg, bad)
		}
	}
	if _, err := os.Stat(g); err != nil {
		t.Fatal("a refused remove removed something")
	}
	// Inside the state directory is fine.
	writeFile(t, filepath.Join(state, "tmp", "x"), []byte("x"), 0o644)
	b.ok("remove", map[string]any{"paths": []string{filepath.Join(state, "tmp")}})
}

func TestBackupsNeedAStateDir(t *testing.T) {
	b := newBackups(t, "")
	b.fails("temp_dir", map[string]any{}, "state directory is not configured")
	b.fails("remove", map[string]any{"paths": []string{filepath.Join(t.TempDir(), "x")}}, "state directory is not configured")
	archive := filepath.Join(t.TempDir(), "x.tar.zst")
	// archive_create claims what it makes, in the state directory.
	b.fails("archive_create", map[string]any{"path": archive, "files": map[string]string{"a": writeFile(t, filepath.Join(t.TempDir(), "a"), []byte("a"), 0o644)}}, "no state directory")
	archiveOf(t, newBackups(t, t.TempDir()), archive)
	b.fails("archive_extract", map[string]any{"path": archive}, "state directory is not configured")
}

func TestRawZstdFrame(t *testing.T) {
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	for _, n := range []int{1, 100, 128 << 10, 128<<10 + 1, 300 << 10} {
		p := bytes.Repeat([]byte{'m'}, n)
		got, err := dec.DecodeAll(rawZstdFrame(p), nil)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
}

// mixedData is 64 MiB like a VM's files: a mostly empty disk image,
// random (already compressed) data, text, and binary with a small alphabet.
func mixedData(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{2}))
	const part = 16 << 20
	random := make([]byte, part)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	words := strings.Fields("the vm boots from disk and the kernel logs a line for each device it finds while systemd starts units in parallel")
	var text bytes.Buffer
	for text.Len() < part {
		fmt.Fprintf(&text, "%d %s %s %s\n", rng.IntN(1<<20), words[rng.IntN(len(words))], words[rng.IntN(len(words))], words[rng.IntN(len(words))])
	}
	bin := make([]byte, part)
	for i := range bin {
		bin[i] = byte(rng.IntN(16)) * 17
	}
	sparse := make([]byte, part)
	for off := 0; off < part; off += 1 << 20 {
		copy(sparse[off:off+64<<10], random[off:])
	}
	return map[string]string{
		"random.bin": writeFile(tb, filepath.Join(dir, "random.bin"), random, 0o644),
		"log.txt":    writeFile(tb, filepath.Join(dir, "log.txt"), text.Bytes()[:part], 0o644),
		"small.bin":  writeFile(tb, filepath.Join(dir, "small.bin"), bin, 0o644),
		"disk.img":   writeFile(tb, filepath.Join(dir, "disk.img"), sparse, 0o644),
	}
}

// BenchmarkArchiveCreate archives 64 MiB of mixed data; tar-gzip does the
// same with `tar -cf - | gzip` for comparison.
func BenchmarkArchiveCreate(b *testing.B) {
	src := b.TempDir()
	files := mixedData(b, src)
	out := b.TempDir()
	b.Run("zstd", func(b *testing.B) {
		h := newBackups(b, b.TempDir())
		b.SetBytes(64 << 20)
		var size int64
		for i := 0; b.Loop(); i++ {
			archive := filepath.Join(out, fmt.Sprintf("bench-%d.tar.zst", i))
			res := h.ok("archive_create", map[string]any{"path": archive, "files": files})
			size, _ = res.GetAttr("size").AsBigFloat().Int64()
			b.StopTimer()
			os.Remove(archive)
			os.Remove(archive + sidecarExt)
			b.StartTimer()
		}
		b.ReportMetric(float64(size)/(64<<20), "ratio")
	})
	b.Run("tar-gzip", func(b *testing.B) {
		if _, err := exec.LookPath("gzip"); err != nil {
			b.Skip("no gzip")
		}
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		b.SetBytes(64 << 20)
		archive := filepath.Join(out, "bench.tar.gz")
		for b.Loop() {
			cmd := exec.Command("sh", append([]string{"-c", `tar -cf - "$@" | gzip > "$0"`, archive}, names...)...)
			cmd.Dir = src
			if msg, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, msg)
			}
		}
		fi, _ := os.Stat(archive)
		b.ReportMetric(float64(fi.Size())/(64<<20), "ratio")
	})
}

// archive_create run again in the same step (vmflow killed during it, the
// run resumed): a whole archive an earlier attempt made, under whatever
// name, is the step's result; a partial one is removed and made again;
// the undo of an interrupted attempt removes what it claimed.
func TestArchiveCreateRunAgain(t *testing.T) {
	b := newBackups(t, t.TempDir())
	dir := t.TempDir()
	files := map[string]string{"a": writeFile(t, filepath.Join(t.TempDir(), "a"), []byte("data"), 0o644)}
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
	if left := treeOf(t, dir); !slices.Equal(left, []string{"k-20261206-100000.tar.zst", "k-20261206-100000.tar.zst.sha256"}) {
		t.Fatalf("after the second attempt: %v", left)
	}

	// A partial archive (killed before its checksum file): removed, and
	// made again.
	if err := os.Remove(first + sidecarExt); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, ".k-20261206-100000.tar.zst.123.tmp"), []byte("half"), 0o600)
	out, err = run("archive", second)
	if err != nil || strOut(out, "path") != second {
		t.Fatalf("third attempt: %v %v", out, err)
	}
	if left := treeOf(t, dir); !slices.Equal(left, []string{"k-20261206-100001.tar.zst", "k-20261206-100001.tar.zst.sha256"}) {
		t.Fatalf("after the third attempt: %v", left)
	}

	// The undo of an interrupted attempt (no outputs) removes all it
	// claimed.
	in := plugintest.Inputs(t, b.schema, "archive_create", map[string]any{"path": filepath.Join(dir, "other.tar.zst"), "files": files})
	d, err := b.p.Undo(context.Background(), protocol.UndoRequest{Action: "archive_create", Inputs: in, Outputs: cty.NullVal(cty.DynamicPseudoType), RunID: "again", Step: "archive"}, func(protocol.Event) {})
	if err != nil || d.HasErrors() {
		t.Fatal(err, d.Err())
	}
	if left := treeOf(t, dir); len(left) != 0 {
		t.Fatalf("after the undo of the interrupted step: %v", left)
	}
}
