package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// Files inside an ext4 filesystem image on this machine: volume_create
// stages them in a directory for `mke2fs -d`; volume_edit changes an
// existing filesystem with `debugfs -w`, which needs no mount (and so no
// root, no loop device).

// stageFiles writes files under root, as the filesystem will hold them:
// directories 0755, files 0644 or 0600 (secrets).
func stageFiles(root string, files []hypervisor.File) error {
	if err := os.Chmod(root, hypervisor.DirMode); err != nil {
		return err
	}
	for _, f := range files {
		dst := filepath.Join(root, filepath.FromSlash(f.Path))
		for _, dir := range hypervisor.Parents(f.Path) {
			d := filepath.Join(root, filepath.FromSlash(dir))
			if err := os.Mkdir(d, hypervisor.DirMode); err != nil && !os.IsExist(err) {
				return err
			}
			if err := os.Chmod(d, hypervisor.DirMode); err != nil {
				return err
			}
		}
		if err := os.WriteFile(dst, []byte(f.Content), f.Mode); err != nil {
			return err
		}
		if err := os.Chmod(dst, f.Mode); err != nil { // whatever the umask
			return err
		}
	}
	return nil
}

// debugfsQuote quotes a word for debugfs's command parser: in double
// quotes, a double quote is doubled. Paths never hold control characters
// (hypervisor.CheckFilePath), so a command stays on its line.
func debugfsQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// fsPath is a path relative to the root as debugfs takes it: absolute.
func fsPath(p string) string { return "/" + p }

// debugfs runs commands on a raw ext4 image (read-write when write is
// set). debugfs exits 0 whatever its commands did and reports their errors
// on stderr, so any line there other than its banner is an error.
func debugfs(ctx context.Context, image string, write bool, cmds []string) (string, error) {
	script, err := os.CreateTemp(filepath.Dir(image), "debugfs-*.cmds")
	if err != nil {
		return "", err
	}
	defer os.Remove(script.Name())
	_, err = io.WriteString(script, strings.Join(cmds, "\n")+"\n")
	if cerr := script.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	args := []string{"-f", script.Name(), image}
	if write {
		args = append([]string{"-w"}, args...)
	}
	var stdout, stderr bytes.Buffer
	cmd := hypervisor.ToolCommand(ctx, "debugfs", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("debugfs: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var problems []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "debugfs ") {
			problems = append(problems, line)
		}
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("debugfs: %s", strings.Join(problems, "; "))
	}
	return stdout.String(), nil
}

// dirent is one entry of a directory, as `ls -p` prints it.
type dirent struct {
	name string
	mode uint32 // with the file type bits (040000 a directory)
	size int64
}

func (e dirent) isDir() bool { return e.mode&0o170000 == 0o040000 }

// fsTree lists an image's directories through debugfs, each once.
type fsTree struct {
	ctx   context.Context
	image string
	dirs  map[string][]dirent // by path relative to the root; "" is the root
}

func newFSTree(ctx context.Context, image string) *fsTree {
	return &fsTree{ctx: ctx, image: image, dirs: map[string][]dirent{}}
}

// list reads a directory that exists. `ls -p` prints one entry a line:
// /inode/mode/uid/gid/name/size/ (a name holds no '/').
func (t *fsTree) list(dir string) ([]dirent, error) {
	if ents, ok := t.dirs[dir]; ok {
		return ents, nil
	}
	out, err := debugfs(t.ctx, t.image, false, []string{"ls -p " + debugfsQuote(fsPath(dir))})
	if err != nil {
		return nil, err
	}
	var ents []dirent
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(line), "/")
		if len(f) != 8 || f[0] != "" || f[7] != "" || f[5] == "." || f[5] == ".." {
			continue
		}
		mode, err := strconv.ParseUint(f[2], 8, 32)
		if err != nil {
			continue
		}
		size, _ := strconv.ParseInt(f[6], 10, 64)
		ents = append(ents, dirent{name: f[5], mode: uint32(mode), size: size})
	}
	t.dirs[dir] = ents
	return ents, nil
}

// lookup finds a path; ok is false when it (or a directory above it) is
// not there. A file where a directory should be is an error.
func (t *fsTree) lookup(p string) (e dirent, ok bool, err error) {
	dir := ""
	parts := strings.Split(p, "/")
	for i, part := range parts {
		ents, err := t.list(dir)
		if err != nil {
			return dirent{}, false, err
		}
		found := false
		for _, x := range ents {
			if x.name == part {
				e, found = x, true
				break
			}
		}
		if !found {
			return dirent{}, false, nil
		}
		dir = path.Join(dir, part)
		if i < len(parts)-1 && !e.isDir() {
			return dirent{}, false, fmt.Errorf("%s is a file on the volume, where %s needs a directory", dir, p)
		}
	}
	return e, true, nil
}

// glob expands a remove pattern, part by part, to the paths it matches.
func (t *fsTree) glob(pattern string) ([]string, error) {
	parts := strings.Split(pattern, "/")
	current := []string{""}
	for i, part := range parts {
		var next []string
		for _, dir := range current {
			ents, err := t.list(dir)
			if err != nil {
				return nil, err
			}
			for _, e := range ents {
				if ok, _ := path.Match(part, e.name); !ok {
					continue
				}
				if i < len(parts)-1 && !e.isDir() {
					continue
				}
				next = append(next, path.Join(dir, e.name))
			}
		}
		current = next
	}
	return current, nil
}

// removeCommands removes a path; a directory with everything in it,
// deepest first.
func (t *fsTree) removeCommands(p string) ([]string, error) {
	e, ok, err := t.lookup(p)
	if err != nil || !ok {
		return nil, err
	}
	if !e.isDir() {
		return []string{"rm " + debugfsQuote(fsPath(p))}, nil
	}
	ents, err := t.list(p)
	if err != nil {
		return nil, err
	}
	var cmds []string
	for _, c := range ents {
		sub, err := t.removeCommands(path.Join(p, c.name))
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, sub...)
	}
	return append(cmds, "rmdir "+debugfsQuote(fsPath(p))), nil
}

// ownedByRoot sets a path's mode (with its file type) and root ownership.
func ownedByRoot(p string, mode uint32) []string {
	q := debugfsQuote(fsPath(p))
	return []string{
		fmt.Sprintf("sif %s mode 0%o", q, mode),
		"sif " + q + " uid 0",
		"sif " + q + " gid 0",
	}
}

// editExt4 changes files in a raw ext4 image: removes what the patterns
// match, then writes the files (their directories made as needed). It
// returns the paths removed, sorted. Nothing is written when a file cannot
// be, so the image is either edited in full or left as it was… except for
// a failure of debugfs itself, which the caller's e2fsck check catches.
func editExt4(ctx context.Context, image string, files []hypervisor.File, remove []string) (removed []string, err error) {
	t := newFSTree(ctx, image)
	matched := map[string]bool{}
	var all []string
	for _, pat := range remove {
		ps, err := t.glob(pat)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			if !matched[p] {
				matched[p] = true
				all = append(all, p)
			}
		}
	}
	removed = hypervisor.MatchRemovals(all, all) // drops what goes with a removed directory
	var rmCmds []string
	for _, p := range removed {
		cmds, err := t.removeCommands(p)
		if err != nil {
			return nil, err
		}
		rmCmds = append(rmCmds, cmds...)
	}
	if len(rmCmds) > 0 {
		if _, err := debugfs(ctx, image, true, rmCmds); err != nil {
			return nil, err
		}
	}
	if len(files) == 0 {
		return removed, nil
	}

	// Write, on the filesystem as the removals left it.
	t = newFSTree(ctx, image)
	staging, err := os.MkdirTemp(filepath.Dir(image), "files-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(staging)
	made := map[string]bool{}
	var cmds []string
	for i, f := range files {
		for _, dir := range hypervisor.Parents(f.Path) {
			if made[dir] {
				continue
			}
			e, ok, err := t.lookup(dir)
			switch {
			case err != nil:
				return nil, err
			case ok && !e.isDir():
				return nil, fmt.Errorf("cannot write %s: %s is a file on the volume, not a directory (remove it first)", f.Path, dir)
			case !ok:
				cmds = append(cmds, "mkdir "+debugfsQuote(fsPath(dir)))
				cmds = append(cmds, ownedByRoot(dir, 0o040000|uint32(hypervisor.DirMode))...)
				made[dir] = true
			}
		}
		if !made[path.Dir(f.Path)] {
			e, ok, err := t.lookup(f.Path)
			switch {
			case err != nil:
				return nil, err
			case ok && e.isDir():
				return nil, fmt.Errorf("cannot write %s: it is a directory on the volume (remove it first)", f.Path)
			case ok:
				cmds = append(cmds, "rm "+debugfsQuote(fsPath(f.Path)))
			}
		}
		local := filepath.Join(staging, strconv.Itoa(i))
		if err := os.WriteFile(local, []byte(f.Content), 0o600); err != nil {
			return nil, err
		}
		parent := path.Dir(f.Path)
		if parent == "." {
			parent = ""
		}
		cmds = append(cmds, "cd "+debugfsQuote(fsPath(parent)), "write "+debugfsQuote(local)+" "+debugfsQuote(path.Base(f.Path)), "cd /")
		cmds = append(cmds, ownedByRoot(f.Path, 0o100000|uint32(f.Mode))...)
	}
	if _, err := debugfs(ctx, image, true, cmds); err != nil {
		return nil, err
	}
	// Read back what was written: each file there, with its mode and size.
	t = newFSTree(ctx, image)
	for _, f := range files {
		e, ok, err := t.lookup(f.Path)
		if err != nil {
			return nil, err
		}
		if !ok || e.mode != 0o100000|uint32(f.Mode) || e.size != int64(len(f.Content)) {
			return nil, fmt.Errorf("debugfs did not write %s as asked (found: %v, mode %o, %d bytes)", f.Path, ok, e.mode, e.size)
		}
	}
	return removed, nil
}

// setRootOwner makes every staged path root's in the image: mke2fs -d
// copies the owners of the staged files, which are whoever runs vmflow.
func setRootOwner(ctx context.Context, image string, files []hypervisor.File) error {
	var cmds []string
	for _, p := range hypervisor.ExpandPaths(hypervisor.FilePaths(files)) {
		q := debugfsQuote(fsPath(p))
		cmds = append(cmds, "sif "+q+" uid 0", "sif "+q+" gid 0")
	}
	_, err := debugfs(ctx, image, true, cmds)
	return err
}

// e2fsck runs e2fsck with args on an image; an exit status above
// maxStatus (0: clean, 1: corrected) is an error carrying its last lines.
func e2fsck(ctx context.Context, image string, maxStatus int, args ...string) error {
	out, err := hypervisor.ToolCommand(ctx, "e2fsck", append(args, image)...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() <= maxStatus {
		err = nil
	}
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 6 {
			lines = lines[len(lines)-6:]
		}
		return fmt.Errorf("e2fsck %s: %v: %s", strings.Join(args, " "), err, strings.Join(lines, " / "))
	}
	return nil
}

// ext4Superblock tells whether a raw image starts with an ext4
// filesystem: the ext2/3/4 magic, and extents (what makes ext4 ext4).
func ext4Superblock(image string) (bool, string, error) {
	f, err := os.Open(image)
	if err != nil {
		return false, "", err
	}
	defer f.Close()
	var sb [1024]byte
	if _, err := f.ReadAt(sb[:], 1024); err != nil && err != io.EOF {
		return false, "", err
	}
	if binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		return false, "no filesystem vmflow knows (no ext2/3/4 superblock at 1024)", nil
	}
	const extents = 0x40
	if binary.LittleEndian.Uint32(sb[0x60:])&extents == 0 {
		return false, "an ext2 or ext3 filesystem, not ext4", nil
	}
	return true, "", nil
}

// mkfsImage builds, on this machine, a qcow2 image of the given size that
// holds a fresh ext4 filesystem: the whole disk, no partition table, so the
// guest finds it by label. The files are staged in a directory that
// mke2fs -d copies in; then debugfs makes them root's.
func mkfsImage(ctx context.Context, size uint64, fs, label string, files []hypervisor.File) (string, func(), error) {
	dir, err := os.MkdirTemp("", "vmflow-mkfs-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	raw, qcow := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "disk.qcow2")
	f, err := os.Create(raw)
	if err == nil {
		err = f.Truncate(int64(size))
		f.Close()
	}
	if err != nil {
		cleanup()
		return "", nil, err
	}
	args := []string{"-F", "-q", "-t", fs, "-E", "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0"}
	if label != "" {
		args = append(args, "-L", label)
	}
	if len(files) > 0 {
		root := filepath.Join(dir, "root")
		err := os.Mkdir(root, 0o700)
		if err == nil {
			err = stageFiles(root, files)
		}
		if err != nil {
			cleanup()
			return "", nil, fmt.Errorf("staging the files: %w", err)
		}
		args = append(args, "-d", root)
	}
	if out, err := hypervisor.ToolCommand(ctx, "mke2fs", append(args, raw)...).CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("mke2fs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if len(files) > 0 {
		os.RemoveAll(filepath.Join(dir, "root")) // the secrets are in the image now, and only there
		if err := setRootOwner(ctx, raw, files); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	if out, err := hypervisor.ToolCommand(ctx, "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow).CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("qemu-img: %v: %s", err, strings.TrimSpace(string(out)))
	}
	os.Remove(raw)
	return qcow, cleanup, nil
}

// validMkfsTools checks that this machine can make the filesystem
// volume_create asks for: the image is built here, then uploaded.
func validMkfsTools(ctx context.Context, r *sdk.Request) error {
	if !r.Known("filesystem") || r.String("filesystem") != "ext4" {
		return nil
	}
	return needTools("filesystem", "making an ext4 filesystem", "mke2fs", "debugfs", "qemu-img")
}

// needTools checks that this machine has the tools an action runs (from
// e2fsprogs and qemu-utils); the error is about field.
func needTools(field, what string, tools ...string) error {
	for _, tool := range tools {
		if _, err := hypervisor.LookTool(tool); err != nil {
			return sdk.ArgError(field, "%s needs %s: %v", what, tool, err)
		}
	}
	return nil
}
