package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Info describes a whole archive.
type Info struct {
	Manifest *Manifest
	// SHA256 is the sum of the archive file, as its checksum file holds it.
	SHA256 string
	// Size is the archive file's size in bytes.
	Size int64
}

// Verify checks the archive at path against its checksum file, then every
// member's size and sha256 against the manifest, reading the file once.
// A file whose sum differs from the checksum file's is reported as that,
// whatever else is wrong with it.
func Verify(ctx context.Context, path string, report Progress) (*Info, error) {
	want, err := readSidecar(path)
	if err != nil {
		return nil, err
	}
	return verify(ctx, path, want, report)
}

// ReadManifest reads an archive's manifest and nothing more: neither the
// checksum file nor the members are checked.
func ReadManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec, err := newDecoder(f)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return readManifest(tar.NewReader(dec), path)
}

// verify reads the archive once: it hashes the whole file while
// decompressing it and checking every member. When want is set, a file
// whose sum differs is reported as that, whatever else is wrong with it.
func verify(ctx context.Context, archive, want string, report Progress) (*Info, error) {
	f, fi, err := open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fh := sha256.New()
	src := io.TeeReader(&countingReader{f, newProgress(report, "verifying", fi.Size())}, fh)
	dec, err := newDecoder(src)
	if err != nil {
		return nil, err
	}
	m, checkErr := walk(ctx, dec, archive, nil, nil)
	if checkErr == nil {
		// The rest of the stream (tar's end blocks) must decode too.
		if _, err := io.Copy(io.Discard, dec); err != nil {
			checkErr = fmt.Errorf("archive %s: after the last member: %w", archive, err)
		}
	}
	dec.Close()
	if _, err := pump(ctx, io.Discard, src, make([]byte, copyBuf), nil); err != nil {
		return nil, fmt.Errorf("archive %s: %w", archive, err)
	}
	sum := hex.EncodeToString(fh.Sum(nil))
	if want != "" && sum != want {
		return nil, sidecarMismatch(archive, sum, want)
	}
	if checkErr != nil {
		return nil, checkErr
	}
	return &Info{Manifest: m, SHA256: sum, Size: fi.Size()}, nil
}

// open opens an archive file and says how large it is.
func open(archive string) (*os.File, os.FileInfo, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, nil, fmt.Errorf("archive %s: %w", archive, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// readSidecar returns the sum recorded in archive's checksum file.
func readSidecar(archive string) (string, error) {
	name := archive + SumExt
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("archive %s: its checksum file %s is missing (an archive without one is incomplete)", archive, name)
	}
	if err != nil {
		return "", fmt.Errorf("archive %s: %w", archive, err)
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("archive %s: reading %s: %w", archive, name, err)
	}
	line = strings.TrimPrefix(line, "\\")
	sum, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	if !isSum(sum) {
		return "", fmt.Errorf("archive %s: %s does not start with a sha256 sum in sha256sum's format", archive, name)
	}
	return strings.ToLower(sum), nil
}

func isSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// hashFile returns the sha256 of a whole file.
func hashFile(ctx context.Context, name string, p *progress) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := pump(ctx, h, f, make([]byte, copyBuf), p); err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sidecarMismatch(archive, got, want string) error {
	return fmt.Errorf("archive %s: its sha256 is %s but %s%s says %s: the file changed or is damaged", archive, got, filepath.Base(archive), SumExt, want)
}

// readManifest reads and checks the first member of an archive.
func readManifest(tr *tar.Reader, archive string) (*Manifest, error) {
	hdr, err := tr.Next()
	if err != nil {
		if err == io.EOF {
			err = errors.New("no members")
		}
		return nil, fmt.Errorf("archive %s: reading its manifest: %w", archive, err)
	}
	if hdr.Name != ManifestName || hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("archive %s: first member is %q, not %s: not a vmflow backup", archive, hdr.Name, ManifestName)
	}
	if hdr.Size > maxManifest {
		return nil, fmt.Errorf("archive %s: %s is %d bytes, more than the %d allowed", archive, ManifestName, hdr.Size, maxManifest)
	}
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(tr, maxManifest)).Decode(&m); err != nil {
		return nil, fmt.Errorf("archive %s: %s: %w", archive, ManifestName, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("archive %s: format %q, expected %q", archive, m.Format, Format)
	}
	if m.Metadata == nil {
		m.Metadata = map[string]string{}
	}
	seen := map[string]bool{}
	for _, mi := range m.Members {
		if err := CheckName(mi.Name); err != nil {
			return nil, fmt.Errorf("archive %s: manifest member %q: %w", archive, mi.Name, err)
		}
		if seen[mi.Name] {
			return nil, fmt.Errorf("archive %s: manifest names member %q twice", archive, mi.Name)
		}
		seen[mi.Name] = true
		if !isSum(mi.SHA256) || mi.Size < 0 {
			return nil, fmt.Errorf("archive %s: manifest entry of member %q has a bad size or sha256", archive, mi.Name)
		}
		if _, err := parseMode(mi.Mode); err != nil {
			return nil, fmt.Errorf("archive %s: manifest entry of member %q: %w", archive, mi.Name, err)
		}
	}
	return &m, nil
}

func parseMode(s string) (os.FileMode, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o777 {
		return 0, fmt.Errorf("bad mode %q", s)
	}
	return os.FileMode(v), nil
}

// walk reads an archive's tar stream, checking every member against the
// manifest. start sees the manifest before any member is read; open, when
// set, gives the writer a member's content goes to (closed after it), for
// members named in the manifest and not seen before. Any mismatch is an
// error naming the archive and the member.
func walk(ctx context.Context, rd io.Reader, archive string, start func(*Manifest) error, open func(Member) (io.WriteCloser, error)) (*Manifest, error) {
	tr := tar.NewReader(rd)
	m, err := readManifest(tr, archive)
	if err != nil {
		return nil, err
	}
	if start != nil {
		if err := start(m); err != nil {
			return nil, err
		}
	}
	index := map[string]Member{}
	for _, mi := range m.Members {
		index[mi.Name] = mi
	}
	seen := map[string]bool{}
	buf := make([]byte, copyBuf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("archive %s: after %d members: %w", archive, len(seen), err)
		}
		mi, err := member(hdr, index, seen, archive)
		if err != nil {
			return nil, err
		}
		if err := copyMember(ctx, tr, mi, open, buf, archive); err != nil {
			return nil, err
		}
	}
	for _, mi := range m.Members {
		if !seen[mi.Name] {
			return nil, fmt.Errorf("archive %s: member %q is in the manifest but not in the archive", archive, mi.Name)
		}
	}
	return m, nil
}

// member checks a tar header against the manifest's index and the
// members seen so far, and marks it seen.
func member(hdr *tar.Header, index map[string]Member, seen map[string]bool, archive string) (Member, error) {
	name := hdr.Name
	if hdr.Typeflag != tar.TypeReg {
		return Member{}, fmt.Errorf("archive %s: member %q is not a regular file (tar type %q); vmflow backups hold only regular files", archive, name, hdr.Typeflag)
	}
	if err := CheckName(name); err != nil {
		return Member{}, fmt.Errorf("archive %s: member %q: %w", archive, name, err)
	}
	mi, ok := index[name]
	if !ok {
		return Member{}, fmt.Errorf("archive %s: member %q is not in the manifest", archive, name)
	}
	if seen[name] {
		return Member{}, fmt.Errorf("archive %s: member %q appears twice", archive, name)
	}
	seen[name] = true
	if hdr.Size != mi.Size {
		return Member{}, fmt.Errorf("archive %s: member %q is %d bytes, the manifest says %d", archive, name, hdr.Size, mi.Size)
	}
	return mi, nil
}

// copyMember reads a member's content to where open says (nowhere when
// open is nil), checking its length and sum against the manifest.
func copyMember(ctx context.Context, tr *tar.Reader, mi Member, open func(Member) (io.WriteCloser, error), buf []byte, archive string) error {
	var w io.WriteCloser = nopCloser{io.Discard}
	if open != nil {
		var err error
		if w, err = open(mi); err != nil {
			return fmt.Errorf("archive %s: member %q: %w", archive, mi.Name, err)
		}
	}
	h := sha256.New()
	n, err := pump(ctx, io.MultiWriter(w, h), tr, buf, nil)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("archive %s: member %q: %w", archive, mi.Name, err)
	}
	if n != mi.Size {
		return fmt.Errorf("archive %s: member %q holds %d bytes, the manifest says %d", archive, mi.Name, n, mi.Size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != mi.SHA256 {
		return fmt.Errorf("archive %s: member %q has sha256 %s, the manifest says %s", archive, mi.Name, sum, mi.SHA256)
	}
	return nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func newDecoder(r io.Reader) (*zstd.Decoder, error) {
	// One goroutine: the stream is read in order by the caller alone.
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
}
