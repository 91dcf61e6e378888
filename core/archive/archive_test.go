package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
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

	"github.com/vmflow/vmflow/core/archive"
	at "github.com/vmflow/vmflow/internal/archivetest"
)

var ctx = context.Background()

// fails checks that err holds every want.
func fails(t testing.TB, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	t.Logf("%v", err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q, want one containing %q", err, w)
		}
	}
}

// archiveOf makes a real archive of small files a, b, c and sub/d.
func archiveOf(t *testing.T, path string) map[string]string {
	t.Helper()
	src := t.TempDir()
	files := map[string]string{}
	for _, n := range []string{"a", "b", "c", "sub/d"} {
		files[n] = at.WriteFile(t, filepath.Join(src, n), bytes.Repeat([]byte("content of "+n+"\n"), 1000), 0o644)
	}
	if _, err := archive.Create(ctx, path, files, archive.Options{}); err != nil {
		t.Fatal(err)
	}
	return files
}

func TestRoundTrip(t *testing.T) {
	src := t.TempDir()
	files := map[string]string{
		"disk.img":        at.SparseFile(t, filepath.Join(src, "disk.img")),
		"config/vm.json":  at.WriteFile(t, filepath.Join(src, "vm.json"), []byte(`{"name":"vm1"}`), 0o640),
		"config/note.txt": at.WriteFile(t, filepath.Join(src, "note.txt"), []byte("hello, backup\n"), 0o600),
		"empty":           at.WriteFile(t, filepath.Join(src, "empty"), nil, 0o644),
	}
	want := map[string]string{}
	for name, p := range files {
		want[name] = at.FileSum(t, p)
	}
	path := filepath.Join(t.TempDir(), "backups", "vm1.tar.zst")
	var reports int
	info, err := archive.Create(ctx, path, files, archive.Options{
		Metadata: map[string]string{"vm": "vm1", "backend": "libvirt"},
		Progress: func(done, total int64, label string) { reports++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	if reports == 0 {
		t.Fatal("no progress reported")
	}
	if got := info.Manifest.Names(); !slices.Equal(got, []string{"config/note.txt", "config/vm.json", "disk.img", "empty"}) {
		t.Fatalf("members = %v", got)
	}
	fi, _ := os.Stat(path)
	if info.SHA256 != at.FileSum(t, path) || info.Size != fi.Size() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("info %+v, file %d bytes mode %v", info, fi.Size(), fi.Mode())
	}
	side, _ := os.ReadFile(path + archive.SumExt)
	if string(side) != info.SHA256+"  vm1.tar.zst\n" {
		t.Fatalf("checksum file = %q", side)
	}
	if sh, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command(sh, "-c", "vm1.tar.zst.sha256")
		cmd.Dir = filepath.Dir(path)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sha256sum -c: %v\n%s", err, msg)
		}
	}

	// Any zstd reader reads it as one tar stream, manifest first.
	m, entries := at.Contents(t, path)
	if m.Format != "vmflow-backup/1" || m.Metadata["vm"] != "vm1" || len(m.Members) != 4 || len(entries) != 4 {
		t.Fatalf("manifest %+v, %d entries", m, len(entries))
	}
	for i, mi := range m.Members {
		if mi.Name != entries[i].Name || mi.SHA256 != want[mi.Name] || mi.SHA256 != at.SumOf(entries[i].Data) || mi.Size != int64(len(entries[i].Data)) {
			t.Fatalf("member %d: manifest %+v, entry %q", i, mi, entries[i].Name)
		}
	}
	if m.Members[1].Mode != "0640" {
		t.Fatalf("mode of config/vm.json = %q", m.Members[1].Mode)
	}
	if zstdCmd, err := exec.LookPath("zstd"); err == nil {
		cmd := exec.Command("sh", "-c", `"$0" -dc "$1" | tar -tf -`, zstdCmd, path)
		msg, err := cmd.CombinedOutput()
		if err != nil || string(msg) != "MANIFEST.json\nconfig/note.txt\nconfig/vm.json\ndisk.img\nempty\n" {
			t.Fatalf("zstd -dc | tar -t: %v\n%s", err, msg)
		}
	}

	v, err := archive.Verify(ctx, path, nil)
	if err != nil || v.SHA256 != info.SHA256 || v.Size != info.Size || v.Manifest.Created != m.Created || v.Manifest.Metadata["backend"] != "libvirt" {
		t.Fatalf("verify: %+v %v", v, err)
	}
	if rm, err := archive.ReadManifest(path); err != nil || !slices.Equal(rm.Names(), m.Names()) {
		t.Fatalf("read manifest: %+v %v", rm, err)
	}

	dir := t.TempDir()
	if _, err := archive.Extract(ctx, path, dir, nil); err != nil {
		t.Fatal(err)
	}
	for name, sum := range want {
		if got := at.FileSum(t, filepath.Join(dir, filepath.FromSlash(name))); got != sum {
			t.Fatalf("extracted %s: sum %s", name, got)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "config", "vm.json")); fi.Mode().Perm() != 0o640 {
		t.Fatalf("extracted mode %v", fi.Mode())
	}

	// A second archive at the same path is refused, and nothing changes.
	_, err = archive.Create(ctx, path, files, archive.Options{})
	var de *archive.DestError
	if !errors.As(err, &de) {
		t.Fatalf("second create: %v, want a DestError", err)
	}
	fails(t, err, "already exists")
	if at.FileSum(t, path) != info.SHA256 {
		t.Fatal("a refused create changed the archive")
	}
	if err := archive.Remove(path); err != nil {
		t.Fatal(err)
	}
	if left := at.Tree(t, filepath.Dir(path)); len(left) != 0 {
		t.Fatalf("after Remove: %v", left)
	}
}

func TestCreateRefusesBadSources(t *testing.T) {
	src := at.WriteFile(t, filepath.Join(t.TempDir(), "f"), []byte("x"), 0o644)
	out := filepath.Join(t.TempDir(), "out")
	try := func(files map[string]string, member string, want ...string) {
		t.Helper()
		_, err := archive.Create(ctx, filepath.Join(out, "x.tar.zst"), files, archive.Options{})
		var se *archive.SourceError
		if !errors.As(err, &se) || se.Member != member {
			t.Fatalf("%v: %v, want a SourceError of %q", files, err, member)
		}
		fails(t, err, want...)
	}
	for _, name := range []string{"../escape", "a/../../b", "a/../b", "/etc/passwd", "./a", "a//b", "", ".", "MANIFEST.json", "a/.."} {
		try(map[string]string{name: src}, name)
		if archive.CheckName(name) == nil {
			t.Errorf("CheckName(%q) accepts it", name)
		}
	}
	try(map[string]string{"a": filepath.Join(out, "missing")}, "a", "no such file")
	try(map[string]string{"a": t.TempDir()}, "a", "not a regular file")
	if left := at.Tree(t, out); len(left) != 0 {
		t.Fatalf("refused creates left %v", left)
	}
}

func TestVerifyDetectsTamperedMembers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.tar.zst")
	archiveOf(t, path)
	at.Tamper(t, path, "b")
	_, err := archive.Verify(ctx, path, nil)
	fails(t, err, path, `member "b"`, "sha256")

	m, entries := at.Contents(t, path)
	// Restore b; then drop c, add an extra, swap in a symlink.
	entries[1].Data[0] ^= 0xff
	good := filepath.Join(dir, "good.tar.zst")
	at.HandMade(t, good, m, entries)
	if _, err := archive.Verify(ctx, good, nil); err != nil {
		t.Fatal(err)
	}

	missing := filepath.Join(dir, "missing.tar.zst")
	at.HandMade(t, missing, m, slices.Delete(slices.Clone(entries), 2, 3))
	_, err = archive.Verify(ctx, missing, nil)
	fails(t, err, missing, `member "c"`, "not in the archive")

	extra := filepath.Join(dir, "extra.tar.zst")
	at.HandMade(t, extra, m, append(slices.Clone(entries), at.Entry{Name: "zz", Data: []byte("x")}))
	_, err = archive.Verify(ctx, extra, nil)
	fails(t, err, extra, `member "zz"`, "not in the manifest")

	short := filepath.Join(dir, "short.tar.zst")
	e2 := slices.Clone(entries)
	e2[0] = at.Entry{Name: "a", Data: e2[0].Data[1:]}
	at.HandMade(t, short, m, e2)
	_, err = archive.Verify(ctx, short, nil)
	fails(t, err, short, `member "a"`, "bytes")

	// A damaged compressed stream, with a checksum file that matches it.
	cut := filepath.Join(dir, "cut.tar.zst")
	data := at.Must(os.ReadFile(good))
	at.WriteFile(t, cut, data[:len(data)-40], 0o600)
	at.Resign(t, cut)
	_, err = archive.Verify(ctx, cut, nil)
	fails(t, err, cut)
}

// Members that would land outside the directory, or are not plain files,
// are refused, and nothing is written.
func TestHostileArchives(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	into := filepath.Join(outside, "into")
	if err := os.Mkdir(into, 0o700); err != nil {
		t.Fatal(err)
	}
	format := archive.Format
	hostile := []struct {
		name    string
		m       *archive.Manifest
		entries []at.Entry
		want    string
	}{
		{"dotdot-manifest", &archive.Manifest{Format: format, Members: []archive.Member{{Name: "../evil", Size: 1, SHA256: at.SumOf([]byte("x")), Mode: "0644"}}}, []at.Entry{{Name: "../evil", Data: []byte("x")}}, `"../evil"`},
		{"dotdot-tar", &archive.Manifest{Format: format}, []at.Entry{{Name: "../evil", Data: []byte("x")}}, `"../evil"`},
		{"absolute", &archive.Manifest{Format: format}, []at.Entry{{Name: "/tmp/evil", Data: []byte("x")}}, `"/tmp/evil"`},
		{"symlink", &archive.Manifest{Format: format, Members: []archive.Member{{Name: "link", Size: 0, SHA256: at.SumOf(nil), Mode: "0644"}}}, []at.Entry{{Name: "link", Type: tar.TypeSymlink, Link: "../evil"}}, "not a regular file"},
		{"device", &archive.Manifest{Format: format, Members: []archive.Member{{Name: "dev", Size: 0, SHA256: at.SumOf(nil), Mode: "0644"}}}, []at.Entry{{Name: "dev", Type: tar.TypeChar}}, "not a regular file"},
		{"not-a-backup", nil, []at.Entry{{Name: "a", Data: []byte("x")}}, "not a vmflow backup"},
	}
	for _, h := range hostile {
		p := filepath.Join(dir, h.name+".tar.zst")
		if h.m == nil {
			// No manifest at all: a plain tar.zst.
			at.Plain(t, p)
		} else {
			at.HandMade(t, p, h.m, h.entries)
		}
		_, err := archive.Extract(ctx, p, into, nil)
		fails(t, err, h.want)
		_, err = archive.Verify(ctx, p, nil)
		fails(t, err, h.want)
		if left := at.Tree(t, outside); !slices.Equal(left, []string{"into"}) {
			t.Fatalf("%s: extract left %v", h.name, left)
		}
	}
}

// A failed Extract removes the files and directories it made, and only
// those.
func TestExtractCleansUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.tar.zst")
	archiveOf(t, path)
	at.Tamper(t, path, "sub/d") // the last member: a, b and c are written first
	into := t.TempDir()
	at.WriteFile(t, filepath.Join(into, "keep.txt"), []byte("mine"), 0o644)
	_, err := archive.Extract(ctx, path, into, nil)
	fails(t, err, path, `member "sub/d"`, "sha256")
	if left := at.Tree(t, into); !slices.Equal(left, []string{"keep.txt"}) {
		t.Fatalf("after a failed extract the directory holds %v", left)
	}
	if _, err := os.Stat(filepath.Join(into, "sub")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a failed extract left the directory it made")
	}
}

func TestRawZstdFrame(t *testing.T) {
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	for _, n := range []int{1, 100, 128 << 10, 128<<10 + 1, 300 << 10} {
		p := bytes.Repeat([]byte{'m'}, n)
		got, err := dec.DecodeAll(archive.RawZstdFrame(p), nil)
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
		"random.bin": at.WriteFile(tb, filepath.Join(dir, "random.bin"), random, 0o644),
		"log.txt":    at.WriteFile(tb, filepath.Join(dir, "log.txt"), text.Bytes()[:part], 0o644),
		"small.bin":  at.WriteFile(tb, filepath.Join(dir, "small.bin"), bin, 0o644),
		"disk.img":   at.WriteFile(tb, filepath.Join(dir, "disk.img"), sparse, 0o644),
	}
}

// BenchmarkArchiveCreate archives 64 MiB of mixed data; tar-gzip does the
// same with `tar -cf - | gzip` for comparison.
func BenchmarkArchiveCreate(b *testing.B) {
	src := b.TempDir()
	files := mixedData(b, src)
	out := b.TempDir()
	b.Run("zstd", func(b *testing.B) {
		b.SetBytes(64 << 20)
		var size int64
		for i := 0; b.Loop(); i++ {
			path := filepath.Join(out, fmt.Sprintf("bench-%d.tar.zst", i))
			info, err := archive.Create(ctx, path, files, archive.Options{})
			if err != nil {
				b.Fatal(err)
			}
			size = info.Size
			b.StopTimer()
			os.Remove(path)
			os.Remove(path + archive.SumExt)
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
		tgz := filepath.Join(out, "bench.tar.gz")
		for b.Loop() {
			cmd := exec.Command("sh", append([]string{"-c", `tar -cf - "$@" | gzip > "$0"`, tgz}, names...)...)
			cmd.Dir = src
			if msg, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, msg)
			}
		}
		fi, _ := os.Stat(tgz)
		b.ReportMetric(float64(fi.Size())/(64<<20), "ratio")
	})
}
