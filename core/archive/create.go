package archive

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/vmflow/vmflow/internal/atomicfile"
)

// Options are Create's.
type Options struct {
	// Metadata is kept in the manifest.
	Metadata map[string]string
	// Verify reads the archive back whole, as Verify does, before it is
	// published; without it the file is only hashed.
	Verify bool
	// Progress, when set, is told how the archiving goes.
	Progress Progress
}

// A DestError is about the archive's own path: it, or its checksum file,
// exists already, or cannot be looked at.
type DestError struct{ Err error }

func (e *DestError) Error() string { return e.Err.Error() }
func (e *DestError) Unwrap() error { return e.Err }

// A SourceError is about the file one member is to be read from.
type SourceError struct {
	Member string
	Err    error
}

func (e *SourceError) Error() string { return e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// Create writes an archive at dst of files (member name → local file),
// then its checksum file; neither may exist yet. dst's directory is made
// (0700) when missing. The archive is written under a temporary name and
// published without replacing anything, so that dst is whole or absent;
// on error, what Create wrote is removed.
func Create(ctx context.Context, dst string, files map[string]string, opt Options) (info *Info, err error) {
	for _, p := range []string{dst, dst + SumExt} {
		if _, err := os.Lstat(p); err == nil {
			return nil, &DestError{fmt.Errorf("%s already exists", p)}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, &DestError{err}
		}
	}
	srcs, total, err := statSources(files)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	published := false
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			if published {
				os.Remove(dst)
				os.Remove(dst + SumExt)
			}
		}
	}()

	created := time.Now().UTC().Truncate(time.Second)
	meta := opt.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	m := &Manifest{Format: Format, Created: created.Format(time.RFC3339), Metadata: meta}
	for _, s := range srcs {
		m.Members = append(m.Members, Member{Name: s.name, Size: s.info.Size(), SHA256: strings.Repeat("0", 64), Mode: fmt.Sprintf("%04o", s.info.Mode().Perm())})
	}
	if err = write(ctx, f, m, created, srcs, newProgress(opt.Progress, "archiving", total)); err != nil {
		return nil, err
	}
	if info, err = check(ctx, tmp, dst, m, opt); err != nil {
		return nil, err
	}
	if err = publish(tmp, dst); err != nil {
		return nil, err
	}
	published = true
	if err = atomicfile.SyncDir(dir); err != nil {
		return nil, err
	}
	if err = atomicfile.Write(dst+SumExt, []byte(sidecarLine(info.SHA256, dst)), 0o600, ""); err != nil {
		return nil, fmt.Errorf("writing %s%s: %w", dst, SumExt, err)
	}
	info.Manifest = m
	return info, nil
}

// source is one file Create reads.
type source struct {
	name string // member name
	path string // local file
	info os.FileInfo
}

// statSources checks the members' names and files, in the members' order.
func statSources(files map[string]string) ([]source, int64, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var srcs []source
	var total int64
	for _, name := range names {
		if err := CheckName(name); err != nil {
			return nil, 0, &SourceError{name, err}
		}
		p := files[name]
		fi, err := os.Stat(p)
		if err != nil {
			return nil, 0, &SourceError{name, err}
		}
		if !fi.Mode().IsRegular() {
			return nil, 0, &SourceError{name, fmt.Errorf("%s is not a regular file", p)}
		}
		srcs = append(srcs, source{name: name, path: p, info: fi})
		total += fi.Size()
	}
	return srcs, total, nil
}

// write writes the archive to f and closes it: the members after room
// for the manifest, then the manifest, with the members' sums, into it.
func write(ctx context.Context, f *os.File, m *Manifest, created time.Time, srcs []source, p *progress) error {
	// Room for the manifest: its final text has the same length.
	entry, err := manifestEntry(m, created)
	if err != nil {
		return err
	}
	reserved := int64(len(rawZstdFrame(entry)))
	if _, err = f.Seek(reserved, io.SeekStart); err != nil {
		return err
	}
	enc, err := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(enc)
	buf := make([]byte, copyBuf)
	for i, s := range srcs {
		if m.Members[i].SHA256, err = addMember(ctx, tw, s, buf, p); err != nil {
			enc.Close()
			return err
		}
	}
	if err = tw.Close(); err == nil {
		err = enc.Close()
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	if entry, err = manifestEntry(m, created); err != nil {
		return err
	}
	frame := rawZstdFrame(entry)
	if int64(len(frame)) != reserved {
		return fmt.Errorf("internal error: manifest is %d bytes, %d were reserved", len(frame), reserved)
	}
	if _, err = f.WriteAt(frame, 0); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	return nil
}

// check returns the sum and size the checksum file will hold; with
// opt.Verify it also reads the archive back whole.
func check(ctx context.Context, tmp, dst string, m *Manifest, opt Options) (*Info, error) {
	if opt.Verify {
		back, err := verify(ctx, tmp, "", opt.Progress)
		if err == nil && len(back.Manifest.Members) != len(m.Members) {
			err = fmt.Errorf("archive %s: read back %d members, wrote %d", dst, len(back.Manifest.Members), len(m.Members))
		}
		return back, err
	}
	sum, err := hashFile(ctx, tmp, nil)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(tmp)
	if err != nil {
		return nil, err
	}
	return &Info{SHA256: sum, Size: fi.Size()}, nil
}

// publish gives tmp the name dst without replacing anything that
// appeared meanwhile.
func publish(tmp, dst string) error {
	err := os.Link(tmp, dst)
	if err == nil {
		os.Remove(tmp)
		return nil
	}
	if errors.Is(err, fs.ErrExist) {
		return &DestError{fmt.Errorf("%s already exists", dst)}
	}
	// No hard links here: rename instead.
	if _, serr := os.Lstat(dst); serr == nil {
		return &DestError{fmt.Errorf("%s already exists", dst)}
	}
	return os.Rename(tmp, dst)
}

// addMember streams one source into the tar writer, hashing it on the way.
func addMember(ctx context.Context, tw *tar.Writer, s source, buf []byte, p *progress) (string, error) {
	in, err := os.Open(s.path)
	if err != nil {
		return "", err
	}
	defer in.Close()
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     s.name,
		Size:     s.info.Size(),
		Mode:     int64(s.info.Mode().Perm()),
		ModTime:  s.info.ModTime(),
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return "", fmt.Errorf("member %q: %w", s.name, err)
	}
	h := sha256.New()
	n, err := pump(ctx, io.MultiWriter(tw, h), io.LimitReader(in, hdr.Size), buf, p)
	if err != nil {
		return "", fmt.Errorf("member %q from %s: %w", s.name, s.path, err)
	}
	var one [1]byte
	if extra, _ := in.Read(one[:]); n != hdr.Size || extra > 0 {
		return "", fmt.Errorf("member %q: %s changed size while it was being archived", s.name, s.path)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// rawZstdFrame wraps p in a zstd frame of raw blocks: 4 bytes of magic, a
// frame header descriptor (single segment, 8-byte content size, no
// checksum, no dictionary), the content size, then blocks of at most
// 128 KiB, each behind a 3-byte header. Its length depends only on len(p).
func rawZstdFrame(p []byte) []byte {
	const maxBlock = 128 << 10
	out := make([]byte, 0, 13+len(p)+3*(len(p)/maxBlock+1))
	out = append(out, 0x28, 0xb5, 0x2f, 0xfd, 0xe0)
	out = binary.LittleEndian.AppendUint64(out, uint64(len(p)))
	for {
		n := min(len(p), maxBlock)
		h := uint32(n) << 3 // block type 0: raw
		if n == len(p) {
			h |= 1 // last block
		}
		out = append(out, byte(h), byte(h>>8), byte(h>>16))
		out = append(out, p[:n]...)
		p = p[n:]
		if len(p) == 0 {
			return out
		}
	}
}

// manifestEntry is the manifest's tar entry: header, JSON, padding.
func manifestEntry(m *Manifest, created time.Time) ([]byte, error) {
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	js = append(js, '\n')
	var b strings.Builder
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ManifestName, Size: int64(len(js)), Mode: 0o644, ModTime: created}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(js); err != nil {
		return nil, err
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// sidecarLine is one line of sha256sum's output for file.
func sidecarLine(sum, file string) string {
	base := filepath.Base(file)
	if strings.ContainsAny(base, "\\\n") {
		// sha256sum's escaping for awkward names.
		base = strings.NewReplacer("\\", "\\\\", "\n", "\\n").Replace(base)
		return "\\" + sum + "  " + base + "\n"
	}
	return sum + "  " + base + "\n"
}

// Remove removes an archive, its checksum file and the temporary files
// of its making; what is already gone is no error.
func Remove(path string) error {
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp"))
	for _, p := range append([]string{path, path + SumExt}, tmps...) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
