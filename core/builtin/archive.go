package builtin

// Backups: archive_create, archive_verify, archive_extract, archive_list,
// temp_dir and remove.
//
// An archive is a tar stream compressed with zstd. Its first member is
// MANIFEST.json, which names every other member with its size, sha256 and
// mode; beside the archive, <archive>.sha256 holds the sha256 of the whole
// file in sha256sum's format, written last, so an archive without one is
// incomplete. `zstd -dc x.tar.zst | tar -t` and `sha256sum -c x.tar.zst.sha256`
// read both.
//
// The manifest comes first but holds the members' sums, which are known
// only once the members have been read. So that each source is read once,
// archive_create reserves room at the start of the file, streams the
// members after it as an ordinary zstd frame, then writes the manifest into
// the reserved room as a frame of its own made of raw (stored) blocks: a
// raw frame's length depends only on its content's length, and the
// manifest's length is known before the sums are (a sum is always 64 hex
// digits). zstd decodes concatenated frames as one stream, and tar entries
// are whole 512-byte blocks, so the two frames read back as one tar stream.

import (
	"archive/tar"
	"bufio"
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
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/sdk"
)

const (
	archiveFormat = "vmflow-backup/1"
	manifestName  = "MANIFEST.json"
	archiveExt    = ".tar.zst"
	sidecarExt    = ".sha256"
	// maxManifest bounds how much of a manifest is read into memory.
	maxManifest = 64 << 20
	copyBuf     = 1 << 20
	// progressEvery spaces progress events out.
	progressEvery = 200 * time.Millisecond
)

// manifest is MANIFEST.json.
type manifest struct {
	Format   string            `json:"format"`
	Created  string            `json:"created"`
	Metadata map[string]string `json:"metadata"`
	Members  []memberInfo      `json:"members"`
}

type memberInfo struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Mode is the permission bits in octal, e.g. "0640".
	Mode string `json:"mode"`
}

func archiveActions(st *state) []*sdk.Action {
	return []*sdk.Action{
		archiveCreateAction(),
		archiveVerifyAction(),
		archiveExtractAction(st),
		archiveListAction(),
		tempDirAction(st),
		removeAction(st),
	}
}

// requireDir returns vmflow's state directory, or an error when the plugin
// was not configured with one.
func (s *state) requireDir() (string, error) {
	d := s.dir()
	if d == "" {
		return "", errors.New("vmflow's state directory is not configured (the builtin plugin got no StateDir)")
	}
	return d, nil
}

// localPath makes p absolute, relative to the task file's directory.
func localPath(r *sdk.Request, p string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.Env.WorkDir, p)
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
	}
	return filepath.Clean(p)
}

// checkMemberName accepts relative, clean, slash-separated paths that stay
// below the directory they are extracted into.
func checkMemberName(name string) error {
	switch {
	case name == "" || name == ".":
		return errors.New("member name is empty")
	case strings.ContainsRune(name, 0):
		return errors.New("member name holds a NUL byte")
	case strings.HasPrefix(name, "/"):
		return errors.New("member name must be relative, not absolute")
	case name == manifestName:
		return fmt.Errorf("%s is reserved for the archive's manifest", manifestName)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return errors.New(`member name must not contain ".."`)
		}
	}
	if path.Clean(name) != name {
		return fmt.Errorf("member name must be a clean path (%q)", path.Clean(name))
	}
	return nil
}

// progress reports bytes done, at most every progressEvery.
type progress struct {
	r     *sdk.Request
	label string
	total int64
	done  int64
	last  time.Time
}

func (p *progress) add(n int64) {
	if p == nil {
		return
	}
	p.done += n
	if now := time.Now(); now.Sub(p.last) >= progressEvery || p.done == p.total {
		p.last = now
		p.r.Progress(p.done, p.total, p.label)
	}
}

// countingReader reports what passes through it as progress.
type countingReader struct {
	r io.Reader
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.add(int64(n))
	return n, err
}

// pump copies src to dst until EOF, checking ctx between chunks.
func pump(ctx context.Context, dst io.Writer, src io.Reader, buf []byte, p *progress) (int64, error) {
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
			p.add(int64(n))
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
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
func manifestEntry(m *manifest, created time.Time) ([]byte, error) {
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	js = append(js, '\n')
	var b strings.Builder
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: manifestName, Size: int64(len(js)), Mode: 0o644, ModTime: created}); err != nil {
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

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFileAtomic replaces name with data: a temporary file in the same
// directory, fsync, rename, fsync of the directory.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, perm)
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
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

// readSidecar returns the sum recorded in archive's .sha256 file.
func readSidecar(archive string) (string, error) {
	name := archive + sidecarExt
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
	return fmt.Errorf("archive %s: its sha256 is %s but %s%s says %s: the file changed or is damaged", archive, got, filepath.Base(archive), sidecarExt, want)
}

// readManifest reads and checks the first member of an archive.
func readManifest(tr *tar.Reader, archive string) (*manifest, error) {
	hdr, err := tr.Next()
	if err != nil {
		if err == io.EOF {
			err = errors.New("no members")
		}
		return nil, fmt.Errorf("archive %s: reading its manifest: %w", archive, err)
	}
	if hdr.Name != manifestName || hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("archive %s: first member is %q, not %s: not a vmflow backup", archive, hdr.Name, manifestName)
	}
	if hdr.Size > maxManifest {
		return nil, fmt.Errorf("archive %s: %s is %d bytes, more than the %d allowed", archive, manifestName, hdr.Size, maxManifest)
	}
	var m manifest
	if err := json.NewDecoder(io.LimitReader(tr, maxManifest)).Decode(&m); err != nil {
		return nil, fmt.Errorf("archive %s: %s: %w", archive, manifestName, err)
	}
	if m.Format != archiveFormat {
		return nil, fmt.Errorf("archive %s: format %q, expected %q", archive, m.Format, archiveFormat)
	}
	if m.Metadata == nil {
		m.Metadata = map[string]string{}
	}
	seen := map[string]bool{}
	for _, mi := range m.Members {
		if err := checkMemberName(mi.Name); err != nil {
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

// walkArchive reads an archive's tar stream, checking every member against
// the manifest. start sees the manifest before any member is read; open,
// when set, gives the writer a member's content goes to (closed after it),
// for members named in the manifest and not seen before. Any mismatch is
// an error naming the archive and the member.
func walkArchive(ctx context.Context, rd io.Reader, archive string, start func(*manifest) error, open func(memberInfo) (io.WriteCloser, error)) (*manifest, error) {
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
	index := map[string]memberInfo{}
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
		name := hdr.Name
		if hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("archive %s: member %q is not a regular file (tar type %q); vmflow backups hold only regular files", archive, name, hdr.Typeflag)
		}
		if err := checkMemberName(name); err != nil {
			return nil, fmt.Errorf("archive %s: member %q: %w", archive, name, err)
		}
		mi, ok := index[name]
		if !ok {
			return nil, fmt.Errorf("archive %s: member %q is not in the manifest", archive, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("archive %s: member %q appears twice", archive, name)
		}
		seen[name] = true
		if hdr.Size != mi.Size {
			return nil, fmt.Errorf("archive %s: member %q is %d bytes, the manifest says %d", archive, name, hdr.Size, mi.Size)
		}
		var w io.WriteCloser = nopCloser{io.Discard}
		if open != nil {
			if w, err = open(mi); err != nil {
				return nil, fmt.Errorf("archive %s: member %q: %w", archive, name, err)
			}
		}
		h := sha256.New()
		n, err := pump(ctx, io.MultiWriter(w, h), tr, buf, nil)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("archive %s: member %q: %w", archive, name, err)
		}
		if n != mi.Size {
			return nil, fmt.Errorf("archive %s: member %q holds %d bytes, the manifest says %d", archive, name, n, mi.Size)
		}
		if sum := hex.EncodeToString(h.Sum(nil)); sum != mi.SHA256 {
			return nil, fmt.Errorf("archive %s: member %q has sha256 %s, the manifest says %s", archive, name, sum, mi.SHA256)
		}
	}
	for _, mi := range m.Members {
		if !seen[mi.Name] {
			return nil, fmt.Errorf("archive %s: member %q is in the manifest but not in the archive", archive, mi.Name)
		}
	}
	return m, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func newDecoder(r io.Reader) (*zstd.Decoder, error) {
	// One goroutine: the stream is read in order by the caller alone.
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
}

// verifyArchive reads the archive once: it hashes the whole file while
// decompressing it and checking every member. When want is set, a file
// whose sum differs is reported as that, whatever else is wrong with it.
func verifyArchive(ctx context.Context, r *sdk.Request, archive, want string) (*manifest, string, int64, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, "", 0, fmt.Errorf("archive %s: %w", archive, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", 0, err
	}
	fh := sha256.New()
	src := io.TeeReader(&countingReader{f, &progress{r: r, label: "verifying", total: fi.Size()}}, fh)
	dec, err := newDecoder(src)
	if err != nil {
		return nil, "", 0, err
	}
	m, checkErr := walkArchive(ctx, dec, archive, nil, nil)
	if checkErr == nil {
		// The rest of the stream (tar's end blocks) must decode too.
		if _, err := io.Copy(io.Discard, dec); err != nil {
			checkErr = fmt.Errorf("archive %s: after the last member: %w", archive, err)
		}
	}
	dec.Close()
	if _, err := pump(ctx, io.Discard, src, make([]byte, copyBuf), nil); err != nil {
		return nil, "", 0, fmt.Errorf("archive %s: %w", archive, err)
	}
	sum := hex.EncodeToString(fh.Sum(nil))
	if want != "" && sum != want {
		return nil, sum, 0, sidecarMismatch(archive, sum, want)
	}
	if checkErr != nil {
		return nil, sum, 0, checkErr
	}
	return m, sum, fi.Size(), nil
}

// source is one file archive_create reads.
type source struct {
	name string // member name
	path string // local file
	info os.FileInfo
}

func archiveCreateAction() *sdk.Action {
	return &sdk.Action{
		Name:        "archive_create",
		Description: "Makes a backup archive (tar + zstd, MANIFEST.json first) of local files, with a <path>.sha256 beside it.",
		Inputs: []sdk.Attr{
			sdk.String("path", "The archive to create, relative to the task file; it must not exist. Its directory is created (0700) if missing. Name it *.tar.zst for archive_list to find it.").Required(),
			sdk.StringMap("files", "Member name (a relative, clean path without \"..\") → local file, relative to the task file.").Required(),
			sdk.StringMap("metadata", "Kept in the manifest, e.g. the VM name, backend, taken-at."),
			sdk.Bool("remove_sources", "Delete the source files once the archive is written and verified.").Default(false),
		},
		Outputs: []sdk.Attr{
			sdk.String("path", "The archive's absolute path."),
			sdk.String("sha256", "The sha256 of the archive file."),
			sdk.Number("size", "The archive's size in bytes."),
			sdk.StringList("members", "The member names, sorted (MANIFEST.json aside)."),
		},
		Validate: func(ctx context.Context, r *sdk.Request) error {
			if r.Known("path") && r.IsSet("path") && r.String("path") == "" {
				return sdk.ArgError("path", "must name the archive to create")
			}
			if r.Known("files") {
				return checkFiles(r.StringMap("files"))
			}
			return nil
		},
		Run: func(ctx context.Context, r *sdk.Request) error {
			files := r.StringMap("files")
			if err := checkFiles(files); err != nil {
				return err
			}
			dst := localPath(r, r.String("path"))
			// An earlier attempt of this step (vmflow killed during it,
			// the run resumed) made its archive, or part of it, maybe
			// under another name (names often hold the time).
			if done, err := ownArchives(ctx, r); done || err != nil {
				return err
			}
			if err := r.Claim(archiveClaim+dst, nil); err != nil {
				return err
			}
			sum, size, names, err := createArchive(ctx, r, dst, files, r.StringMap("metadata"), r.Bool("remove_sources"))
			if err != nil {
				return err
			}
			if err := r.Set("path", dst); err != nil {
				return err
			}
			if err := r.Set("sha256", sum); err != nil {
				return err
			}
			if err := r.Set("size", size); err != nil {
				return err
			}
			return r.Set("members", names)
		},
		Undo: func(ctx context.Context, r *sdk.Request) error {
			if r.Interrupted() {
				// What the step's attempts claimed, whole or not.
				for _, key := range r.ClaimedKeys(archiveClaim) {
					if err := removeArchive(strings.TrimPrefix(key, archiveClaim)); err != nil {
						return err
					}
				}
				return nil
			}
			dst := r.OutputString("path")
			if dst == "" {
				dst = localPath(r, r.String("path"))
			}
			return removeArchive(dst)
		},
	}
}

// archiveClaim is the start of archive_create's claim of an archive.
const archiveClaim = "archive "

// ownArchives looks at what earlier attempts of this archive_create step
// claimed: an archive made whole (its checksum file written, and it
// verifies) is this step's result, reported as if made now; anything
// less (a temporary file, an archive without its checksum) is removed.
func ownArchives(ctx context.Context, r *sdk.Request) (bool, error) {
	for _, key := range r.ClaimedKeys(archiveClaim) {
		p := strings.TrimPrefix(key, archiveClaim)
		if want, err := readSidecar(p); err == nil {
			if m, sum, size, err := verifyArchive(ctx, r, p, want); err == nil {
				r.Log("%s was made whole by an interrupted attempt of this step", p)
				names := make([]string, 0, len(m.Members))
				for _, mi := range m.Members {
					names = append(names, mi.Name)
				}
				return true, errors.Join(r.Set("path", p), r.Set("sha256", sum), r.Set("size", size), r.Set("members", names))
			}
		}
		r.Log("removing %s, left by an interrupted attempt of this step", p)
		if err := removeArchive(p); err != nil {
			return false, err
		}
	}
	return false, nil
}

// removeArchive removes an archive, its checksum file and the temporary
// files of its making.
func removeArchive(dst string) error {
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp"))
	for _, p := range append([]string{dst, dst + sidecarExt}, tmps...) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// checkFiles checks archive_create's member names and that each names a
// local file.
func checkFiles(files map[string]string) error {
	if len(files) == 0 {
		return sdk.ArgError("files", "must name at least one file")
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		at := cty.GetAttrPath("files").Index(cty.StringVal(name))
		if err := checkMemberName(name); err != nil {
			return sdk.ArgPathError(at, "%v", err)
		}
		if files[name] == "" {
			return sdk.ArgPathError(at, "must name a local file")
		}
	}
	return nil
}

// createArchive writes the archive and its sidecar; it returns the
// archive's sha256 and size and the member names.
func createArchive(ctx context.Context, r *sdk.Request, dst string, files, meta map[string]string, removeSources bool) (sum string, size int64, names []string, err error) {
	for _, p := range []string{dst, dst + sidecarExt} {
		if _, err := os.Lstat(p); err == nil {
			return "", 0, nil, sdk.ArgError("path", "%s already exists", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", 0, nil, sdk.ArgError("path", "%v", err)
		}
	}
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var srcs []source
	var total int64
	for _, name := range names {
		p := localPath(r, files[name])
		fi, err := os.Stat(p)
		if err != nil {
			return "", 0, nil, sdk.ArgPathError(cty.GetAttrPath("files").Index(cty.StringVal(name)), "%v", err)
		}
		if !fi.Mode().IsRegular() {
			return "", 0, nil, sdk.ArgPathError(cty.GetAttrPath("files").Index(cty.StringVal(name)), "%s is not a regular file", p)
		}
		srcs = append(srcs, source{name: name, path: p, info: fi})
		total += fi.Size()
	}

	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, nil, err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return "", 0, nil, err
	}
	tmp := f.Name()
	published := false
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			if published {
				os.Remove(dst)
				os.Remove(dst + sidecarExt)
			}
		}
	}()

	created := time.Now().UTC().Truncate(time.Second)
	if meta == nil {
		meta = map[string]string{}
	}
	m := &manifest{Format: archiveFormat, Created: created.Format(time.RFC3339), Metadata: meta}
	for _, s := range srcs {
		m.Members = append(m.Members, memberInfo{Name: s.name, Size: s.info.Size(), SHA256: strings.Repeat("0", 64), Mode: fmt.Sprintf("%04o", s.info.Mode().Perm())})
	}
	// Room for the manifest: its final text has the same length.
	entry, err := manifestEntry(m, created)
	if err != nil {
		return "", 0, nil, err
	}
	reserved := int64(len(rawZstdFrame(entry)))
	if _, err = f.Seek(reserved, io.SeekStart); err != nil {
		return "", 0, nil, err
	}
	enc, err := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return "", 0, nil, err
	}
	tw := tar.NewWriter(enc)
	p := &progress{r: r, label: "archiving", total: total}
	buf := make([]byte, copyBuf)
	for i, s := range srcs {
		if m.Members[i].SHA256, err = addMember(ctx, tw, s, buf, p); err != nil {
			enc.Close()
			return "", 0, nil, err
		}
	}
	if err = tw.Close(); err == nil {
		err = enc.Close()
	}
	if err != nil {
		return "", 0, nil, fmt.Errorf("writing %s: %w", tmp, err)
	}
	if entry, err = manifestEntry(m, created); err != nil {
		return "", 0, nil, err
	}
	frame := rawZstdFrame(entry)
	if int64(len(frame)) != reserved {
		return "", 0, nil, fmt.Errorf("internal error: manifest is %d bytes, %d were reserved", len(frame), reserved)
	}
	if _, err = f.WriteAt(frame, 0); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, nil, fmt.Errorf("writing %s: %w", tmp, err)
	}

	// The sum the sidecar will hold. Before deleting the sources, also
	// read the archive back whole, as archive_verify does.
	if removeSources {
		var back *manifest
		back, sum, size, err = verifyArchive(ctx, r, tmp, "")
		if err == nil && len(back.Members) != len(m.Members) {
			err = fmt.Errorf("archive %s: read back %d members, wrote %d", dst, len(back.Members), len(m.Members))
		}
	} else {
		sum, err = hashFile(ctx, tmp, nil)
		if err == nil {
			var fi os.FileInfo
			fi, err = os.Stat(tmp)
			if err == nil {
				size = fi.Size()
			}
		}
	}
	if err != nil {
		return "", 0, nil, err
	}

	// Publish without replacing anything that appeared meanwhile.
	if err = os.Link(tmp, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", 0, nil, sdk.ArgError("path", "%s already exists", dst)
		}
		// No hard links here: rename instead.
		if _, serr := os.Lstat(dst); serr == nil {
			return "", 0, nil, sdk.ArgError("path", "%s already exists", dst)
		}
		if err = os.Rename(tmp, dst); err != nil {
			return "", 0, nil, err
		}
	} else {
		os.Remove(tmp)
	}
	published = true
	if err = syncDir(dir); err != nil {
		return "", 0, nil, err
	}
	if err = writeFileAtomic(dst+sidecarExt, []byte(sidecarLine(sum, dst)), 0o600); err != nil {
		return "", 0, nil, fmt.Errorf("writing %s%s: %w", dst, sidecarExt, err)
	}
	r.Log("wrote %s: %d members, %d bytes in, %d bytes out, sha256 %s", dst, len(srcs), total, size, sum)

	if removeSources {
		for _, s := range srcs {
			if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				// The archive is complete: keep it, and say what is left.
				published = false
				err = fmt.Errorf("archive %s is complete, but removing source %s failed: %w", dst, s.path, rerr)
				return "", 0, nil, err
			}
		}
		r.Log("removed %d source files", len(srcs))
	}
	return sum, size, names, nil
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

func archiveVerifyAction() *sdk.Action {
	return &sdk.Action{
		Name:        "archive_verify",
		Description: "Checks an archive against its .sha256 file, then every member's size and sha256 against the manifest.",
		Inputs: []sdk.Attr{
			sdk.String("path", "The archive, relative to the task file.").Required(),
		},
		Outputs: []sdk.Attr{
			sdk.String("path", "The archive's absolute path."),
			sdk.StringList("members", "The member names, in the manifest's order."),
			sdk.StringMap("metadata", "The manifest's metadata."),
			sdk.String("created", "When the archive was made (RFC 3339)."),
			sdk.Number("size", "The archive's size in bytes."),
		},
		Run: func(ctx context.Context, r *sdk.Request) error {
			archive := localPath(r, r.String("path"))
			want, err := readSidecar(archive)
			if err != nil {
				return err
			}
			m, _, size, err := verifyArchive(ctx, r, archive, want)
			if err != nil {
				return err
			}
			r.Log("%s: %d members, all match", archive, len(m.Members))
			if err := r.Set("path", archive); err != nil {
				return err
			}
			return setManifest(r, m, size)
		},
	}
}

func setManifest(r *sdk.Request, m *manifest, size int64) error {
	names := make([]string, 0, len(m.Members))
	for _, mi := range m.Members {
		names = append(names, mi.Name)
	}
	if err := r.Set("members", names); err != nil {
		return err
	}
	if err := r.Set("metadata", m.Metadata); err != nil {
		return err
	}
	if err := r.Set("created", m.Created); err != nil {
		return err
	}
	return r.Set("size", size)
}

func archiveExtractAction(st *state) *sdk.Action {
	return &sdk.Action{
		Name:        "archive_extract",
		Description: "Checks an archive's .sha256 file, then extracts its members into a directory, checking each one's sha256; on any mismatch, removes what it wrote.",
		Inputs: []sdk.Attr{
			sdk.String("path", "The archive, relative to the task file.").Required(),
			sdk.String("dir", "Where to put the members (created 0700 if missing); none may exist there yet. Default: a new directory under <state>/tmp."),
		},
		Outputs: []sdk.Attr{
			sdk.String("dir", "The directory the members are in."),
			sdk.StringMap("files", "Member name → extracted file."),
			sdk.StringMap("metadata", "The manifest's metadata."),
			sdk.Bool("dir_created", "Whether this step created dir (undo then removes it whole)."),
		},
		Run: func(ctx context.Context, r *sdk.Request) error {
			return extract(ctx, r, st)
		},
		Undo: func(ctx context.Context, r *sdk.Request) error {
			dir := r.OutputString("dir")
			if dir == "" {
				return nil
			}
			if v := r.Output("dir_created"); v != cty.NilVal && !v.IsNull() && v.True() {
				if err := checkRemovable(dir, st.dir()); err != nil {
					return err
				}
				return os.RemoveAll(dir)
			}
			var files map[string]string
			if v := r.Output("files"); v != cty.NilVal && !v.IsNull() {
				for name, fv := range v.AsValueMap() {
					if files == nil {
						files = map[string]string{}
					}
					files[name] = fv.AsString()
				}
			}
			for name := range files {
				rel := filepath.FromSlash(name)
				if checkMemberName(name) != nil {
					continue
				}
				if err := os.Remove(filepath.Join(dir, rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				// Directories it made for the member, if now empty.
				for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
					if os.Remove(filepath.Join(dir, d)) != nil {
						break
					}
				}
			}
			return nil
		},
	}
}

func extract(ctx context.Context, r *sdk.Request, st *state) (err error) {
	archive := localPath(r, r.String("path"))
	created := false
	var dir string
	if d := r.String("dir"); d != "" {
		dir = localPath(r, d)
		fi, serr := os.Stat(dir)
		switch {
		case errors.Is(serr, fs.ErrNotExist):
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return sdk.ArgError("dir", "%v", err)
			}
			created = true
		case serr != nil:
			return sdk.ArgError("dir", "%v", serr)
		case !fi.IsDir():
			return sdk.ArgError("dir", "%s is not a directory", dir)
		}
	} else {
		sd, err := st.requireDir()
		if err != nil {
			return err
		}
		base := TempDir(sd, r.RunID)
		if err := os.MkdirAll(base, 0o700); err != nil {
			return err
		}
		if dir, err = os.MkdirTemp(base, "extract-*"); err != nil {
			return err
		}
		created = true
	}
	var wrote, madeDirs []string
	defer func() {
		if err == nil {
			return
		}
		if created {
			os.RemoveAll(dir)
			return
		}
		for _, f := range wrote {
			os.Remove(filepath.Join(dir, f))
		}
		for i := len(madeDirs) - 1; i >= 0; i-- {
			os.Remove(filepath.Join(dir, madeDirs[i]))
		}
	}()

	// The whole file first: nothing is written from a damaged archive.
	want, err := readSidecar(archive)
	if err != nil {
		return err
	}
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("archive %s: %w", archive, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	got, err := hashFile(ctx, archive, &progress{r: r, label: "checking", total: fi.Size()})
	if err != nil {
		return err
	}
	if got != want {
		return sidecarMismatch(archive, got, want)
	}

	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	dec, err := newDecoder(&countingReader{f, &progress{r: r, label: "extracting", total: fi.Size()}})
	if err != nil {
		return err
	}
	defer dec.Close()
	start := func(m *manifest) error {
		for _, mi := range m.Members {
			if _, err := root.Lstat(filepath.FromSlash(mi.Name)); err == nil {
				return fmt.Errorf("archive %s: member %q: %s already exists", archive, mi.Name, filepath.Join(dir, filepath.FromSlash(mi.Name)))
			}
		}
		return nil
	}
	open := func(mi memberInfo) (io.WriteCloser, error) {
		rel := filepath.FromSlash(mi.Name)
		var parents []string
		for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			fi, err := root.Stat(d)
			if errors.Is(err, fs.ErrNotExist) {
				if err := root.Mkdir(d, 0o700); err != nil {
					return nil, err
				}
				madeDirs = append(madeDirs, d)
				continue
			}
			if err != nil {
				return nil, err
			}
			if !fi.IsDir() {
				return nil, fmt.Errorf("%s is not a directory", filepath.Join(dir, d))
			}
		}
		out, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		wrote = append(wrote, rel)
		mode, _ := parseMode(mi.Mode)
		return &extracted{File: out, root: root, rel: rel, mode: mode}, nil
	}
	m, err := walkArchive(ctx, dec, archive, start, open)
	if err != nil {
		return err
	}
	files := map[string]string{}
	for _, mi := range m.Members {
		files[mi.Name] = filepath.Join(dir, filepath.FromSlash(mi.Name))
	}
	r.Log("extracted %d members of %s into %s", len(files), archive, dir)
	if err := r.Set("dir", dir); err != nil {
		return err
	}
	if err := r.Set("files", files); err != nil {
		return err
	}
	if err := r.Set("metadata", m.Metadata); err != nil {
		return err
	}
	return r.Set("dir_created", created)
}

// extracted is a member being written: closing it syncs it and gives it
// its mode.
type extracted struct {
	*os.File
	root *os.Root
	rel  string
	mode os.FileMode
}

func (e *extracted) Close() error {
	err := e.Sync()
	if cerr := e.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = e.root.Chmod(e.rel, e.mode)
	}
	return err
}

// listed is one entry of archive_list's archives output.
type listed struct {
	Path     string            `cty:"path"`
	Name     string            `cty:"name"`
	Size     int64             `cty:"size"`
	Created  string            `cty:"created"`
	Metadata map[string]string `cty:"metadata"`
	Verified bool              `cty:"verified"`

	created time.Time
	mtime   time.Time
}

func archiveListAction() *sdk.Action {
	entry := sdk.ObjectOf(map[string]sdk.Type{
		"path":     sdk.TypeString,
		"name":     sdk.TypeString,
		"size":     sdk.TypeNumber,
		"created":  sdk.TypeString,
		"metadata": sdk.MapOf(sdk.TypeString),
		"verified": sdk.TypeBool,
	})
	return &sdk.Action{
		Name:        "archive_list",
		Description: "Lists the *.tar.zst archives in a directory, newest first, from their manifests alone.",
		Inputs: []sdk.Attr{
			sdk.String("dir", "The directory, relative to the task file. A missing one holds no archives.").Required(),
			sdk.String("prefix", "Only archives whose file name starts with this.").Default(""),
		},
		Outputs: []sdk.Attr{
			sdk.StringList("paths", "The archives' paths, newest first."),
			sdk.Attribute("archives", sdk.ListOf(entry), "The archives, newest first: path, name (the file name), size, created, metadata, and verified (a .sha256 file is beside it; not hashed here)."),
		},
		Run: func(ctx context.Context, r *sdk.Request) error {
			dir := localPath(r, r.String("dir"))
			prefix := r.String("prefix")
			ents, err := os.ReadDir(dir)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return sdk.ArgError("dir", "%v", err)
			}
			found := []listed{}
			for _, e := range ents {
				name := e.Name()
				if !strings.HasSuffix(name, archiveExt) || !strings.HasPrefix(name, prefix) {
					continue
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				p := filepath.Join(dir, name)
				fi, err := os.Stat(p)
				if err != nil || !fi.Mode().IsRegular() {
					continue
				}
				m, err := peekManifest(p)
				if err != nil {
					r.Logger().Warn("skipping an unreadable archive", "path", p, "error", err.Error())
					continue
				}
				l := listed{Path: p, Name: name, Size: fi.Size(), Created: m.Created, Metadata: m.Metadata, mtime: fi.ModTime()}
				l.created, _ = time.Parse(time.RFC3339, m.Created)
				if _, err := os.Stat(p + sidecarExt); err == nil {
					l.Verified = true
				}
				found = append(found, l)
			}
			sort.Slice(found, func(i, j int) bool {
				a, b := found[i], found[j]
				if !a.created.Equal(b.created) {
					return a.created.After(b.created)
				}
				if !a.mtime.Equal(b.mtime) {
					return a.mtime.After(b.mtime)
				}
				return a.Name > b.Name
			})
			paths := make([]string, 0, len(found))
			for _, l := range found {
				paths = append(paths, l.Path)
			}
			if err := r.Set("paths", paths); err != nil {
				return err
			}
			return r.Set("archives", found)
		},
	}
}

// peekManifest reads an archive's manifest and nothing more.
func peekManifest(archive string) (*manifest, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec, err := newDecoder(f)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return readManifest(tar.NewReader(dec), archive)
}

func tempDirAction(st *state) *sdk.Action {
	return &sdk.Action{
		Name:        "temp_dir",
		Description: "Makes a fresh directory (0700) under <state>/tmp/<run>; undo removes it with everything in it, and vmflow removes what is left under <state>/tmp/<run> once the run can no longer be resumed.",
		Inputs: []sdk.Attr{
			sdk.String("prefix", "Start of the directory's name.").Default("tmp"),
		},
		Outputs: []sdk.Attr{
			sdk.String("path", "The new directory."),
		},
		Validate: func(ctx context.Context, r *sdk.Request) error {
			if r.Known("prefix") {
				return checkPrefix(r.String("prefix"))
			}
			return nil
		},
		Run: func(ctx context.Context, r *sdk.Request) error {
			prefix := r.String("prefix")
			if err := checkPrefix(prefix); err != nil {
				return err
			}
			sd, err := st.requireDir()
			if err != nil {
				return err
			}
			base := TempDir(sd, r.RunID)
			if err := os.MkdirAll(base, 0o700); err != nil {
				return err
			}
			dir, err := os.MkdirTemp(base, prefix+"-*")
			if err != nil {
				return err
			}
			return r.Set("path", dir)
		},
		Undo: func(ctx context.Context, r *sdk.Request) error {
			dir := r.OutputString("path")
			if dir == "" {
				return nil
			}
			sd, err := st.requireDir()
			if err != nil {
				return err
			}
			if rel, err := filepath.Rel(filepath.Join(sd, "tmp"), dir); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
				return fmt.Errorf("not removing %s: it is not under %s", dir, filepath.Join(sd, "tmp"))
			}
			return os.RemoveAll(dir)
		},
	}
}

// TempDir is where the temporary directories of a run go (temp_dir,
// archive_extract): <state>/tmp/<run id>, or <state>/tmp outside a run.
// vmflow removes a run's once the run can no longer be resumed, so that
// whatever a killed step left there goes too.
func TempDir(stateDir, runID string) string {
	if runID == "" {
		return filepath.Join(stateDir, "tmp")
	}
	return filepath.Join(stateDir, "tmp", runID)
}

func checkPrefix(p string) error {
	if strings.ContainsAny(p, "/\x00") || p == "." || p == ".." {
		return sdk.ArgError("prefix", "must be a plain name, not %q", p)
	}
	return nil
}

// checkRemovable refuses "/", relative paths, the state directory and the
// directories above it.
func checkRemovable(p, stateDir string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%q is not an absolute path", p)
	}
	c := filepath.Clean(p)
	if c == "/" {
		return errors.New(`refusing to remove "/"`)
	}
	if stateDir != "" {
		if rel, err := filepath.Rel(c, filepath.Clean(stateDir)); err == nil && (rel == "." || !strings.HasPrefix(rel, "..")) {
			if rel == "." {
				return fmt.Errorf("refusing to remove %s: it is vmflow's state directory", p)
			}
			return fmt.Errorf("refusing to remove %s: it holds vmflow's state directory %s", p, stateDir)
		}
	}
	return nil
}

func removeAction(st *state) *sdk.Action {
	check := func(paths []string, stateDir string) error {
		for i, p := range paths {
			if err := checkRemovable(p, stateDir); err != nil {
				return sdk.ArgPathError(cty.GetAttrPath("paths").IndexInt(i), "%v", err)
			}
		}
		return nil
	}
	return &sdk.Action{
		Name:        "remove",
		Description: "Removes files and directories (recursively). Refuses \"/\", vmflow's state directory (and what holds it) and relative paths. No undo.",
		Inputs: []sdk.Attr{
			sdk.StringList("paths", "Absolute paths to remove.").Required(),
			sdk.Bool("missing_ok", "A path that does not exist is not an error.").Default(true),
		},
		Outputs: []sdk.Attr{
			sdk.StringList("removed", "The paths that existed and were removed."),
		},
		Validate: func(ctx context.Context, r *sdk.Request) error {
			if !r.Known("paths") {
				return nil
			}
			return check(r.Strings("paths"), st.dir())
		},
		Run: func(ctx context.Context, r *sdk.Request) error {
			sd, err := st.requireDir()
			if err != nil {
				return err
			}
			paths := r.Strings("paths")
			if err := check(paths, sd); err != nil {
				return err
			}
			// Every check before the first removal.
			var present []string
			for i, p := range paths {
				_, err := os.Lstat(p)
				switch {
				case errors.Is(err, fs.ErrNotExist):
					if !r.Bool("missing_ok") {
						return sdk.ArgPathError(cty.GetAttrPath("paths").IndexInt(i), "%s does not exist", p)
					}
				case err != nil:
					return sdk.ArgPathError(cty.GetAttrPath("paths").IndexInt(i), "%v", err)
				default:
					present = append(present, p)
				}
			}
			removed := []string{}
			for _, p := range present {
				if err := os.RemoveAll(p); err != nil {
					return fmt.Errorf("removing %s: %w", p, err)
				}
				removed = append(removed, p)
				r.Log("removed %s", p)
			}
			return r.Set("removed", removed)
		},
	}
}
