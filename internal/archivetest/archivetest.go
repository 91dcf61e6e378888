// Package archivetest helps tests of backup archives: it writes archives
// by hand, as another tool might, reads them back with the stock zstd
// decoder, and makes and inspects the files around them.
package archivetest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/vmflow/vmflow/core/archive"
)

// Entry is one tar member of a hand-made archive.
type Entry struct {
	Name string
	Data []byte
	Type byte // 0: regular file
	Link string
}

// HandMade writes an archive as another tool might: one zstd frame of a
// tar stream whose first member is the given manifest, then a checksum
// file with the file's true sum.
func HandMade(tb testing.TB, name string, m *archive.Manifest, entries []Entry) {
	tb.Helper()
	js, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	all := append([]Entry{{Name: archive.ManifestName, Data: js}}, entries...)
	for _, e := range all {
		typ := e.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Typeflag: typ, Name: e.Name, Mode: 0o644, Linkname: e.Link}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write(e.Data); err != nil && typ == tar.TypeReg {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	WriteFile(tb, name, buf.Bytes(), 0o600)
	Resign(tb, name)
}

// Plain writes a tar.zst of one member "a" and no manifest, with a
// checksum file.
func Plain(tb testing.TB, name string) {
	tb.Helper()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "a", Size: 1, Mode: 0o644})
	tw.Write([]byte("x"))
	tw.Close()
	zw.Close()
	WriteFile(tb, name, buf.Bytes(), 0o600)
	Resign(tb, name)
}

// Resign rewrites an archive's checksum file to match the file as it is now.
func Resign(tb testing.TB, name string) {
	tb.Helper()
	WriteFile(tb, name+archive.SumExt, []byte(FileSum(tb, name)+"  "+filepath.Base(name)+"\n"), 0o600)
}

// Tamper rewrites an archive with member's first byte changed (same
// size, same manifest) and a fresh checksum file, as someone covering
// tracks would.
func Tamper(tb testing.TB, name, member string) {
	tb.Helper()
	m, entries := Contents(tb, name)
	for i := range entries {
		if entries[i].Name == member {
			entries[i].Data[0] ^= 0xff
		}
	}
	HandMade(tb, name, m, entries)
}

// Contents reads an archive back with the stock decoder: the manifest and
// the members, in order.
func Contents(tb testing.TB, name string) (*archive.Manifest, []Entry) {
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
	var m archive.Manifest
	var out []Entry
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
			if hdr.Name != archive.ManifestName {
				tb.Fatalf("first member is %q", hdr.Name)
			}
			if err := json.Unmarshal(data, &m); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		out = append(out, Entry{Name: hdr.Name, Data: data})
	}
	return &m, out
}

// WriteFile writes name, making its directory, and returns name.
func WriteFile(tb testing.TB, name string, data []byte, perm os.FileMode) string {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(name, data, perm); err != nil {
		tb.Fatal(err)
	}
	return name
}

// SumOf is the hex sha256 of data.
func SumOf(data []byte) string { s := sha256.Sum256(data); return hex.EncodeToString(s[:]) }

// FileSum is the hex sha256 of a file.
func FileSum(tb testing.TB, name string) string {
	tb.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return SumOf(data)
}

// SparseFile makes a 64 MiB file that is mostly holes, with 256 KiB of
// random data every 8 MiB and a last byte.
func SparseFile(tb testing.TB, name string) string {
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

// Tree lists the files and directories under dir, relative to it; a
// missing dir holds nothing.
func Tree(tb testing.TB, dir string) []string {
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

// Must returns v, panicking on err.
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
