package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/sdk"
)

// Files inside a volume's filesystem: volume_create and volume_edit write
// them (files, secret_files), volume_edit removes them (remove). Paths are
// relative to the filesystem's root, so the same task file means the same
// files on every backend.

// FilePathDoc is how file paths inside a volume are written, in docs.
const FilePathDoc = "a path relative to the filesystem's root, such as \"identity/hostname\": clean, no \"..\", no control characters"

// File modes: files 0644, secret files 0600, directories made for them 0755;
// all owned by root.
const (
	FileMode   os.FileMode = 0o644
	SecretMode os.FileMode = 0o600
	DirMode    os.FileMode = 0o755
)

// File is one file to write into a volume's filesystem.
type File struct {
	Path    string // relative to the root
	Content string
	Mode    os.FileMode // FileMode or SecretMode
}

// CheckFilePath checks a path inside a volume: relative, clean, no "..",
// no control characters.
func CheckFilePath(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("an empty path: name a file, such as \"identity/hostname\"")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is absolute: write it relative to the filesystem's root, such as %q", p, strings.TrimLeft(p, "/"))
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return fmt.Errorf("%q has a control character", p)
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not clean: write %q", p, path.Clean(p))
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return fmt.Errorf("%q has \"..\": paths stay inside the filesystem", p)
		}
	}
	return nil
}

// CheckRemovePattern checks one of volume_edit's remove entries: a path as
// CheckFilePath wants it, which may hold shell glob characters (*, ?, [...])
// within its parts.
func CheckRemovePattern(p string) error {
	if err := CheckFilePath(p); err != nil {
		return err
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%q is not a valid glob pattern", p)
	}
	return nil
}

// FilesOf reads the files and secret_files inputs: every file to write,
// sorted by path.
func FilesOf(r *sdk.Request) []File {
	var out []File
	for field, mode := range map[string]os.FileMode{"files": FileMode, "secret_files": SecretMode} {
		for p, content := range r.StringMap(field) {
			out = append(out, File{Path: p, Content: content, Mode: mode})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// FilePaths lists the files' paths, in order.
func FilePaths(files []File) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Path
	}
	return out
}

// Parents lists the directories above a path, outermost first: a/b/c has
// a and a/b.
func Parents(p string) []string {
	var out []string
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return out
}

// MatchRemovals expands volume_edit's remove patterns against the paths a
// filesystem holds (files and directories): each pattern matches whole
// paths as a shell glob does, a '*' never crossing a '/'. A match inside
// another matched directory goes with it and is not listed. Sorted.
func MatchRemovals(patterns, paths []string) []string {
	matched := map[string]bool{}
	for _, pat := range patterns {
		for _, p := range paths {
			if ok, _ := path.Match(pat, p); ok {
				matched[p] = true
			}
		}
	}
	var out []string
	for p := range matched {
		inside := false
		for _, dir := range Parents(p) {
			if matched[dir] {
				inside = true
				break
			}
		}
		if !inside {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// ExpandPaths lists every path a list of file paths implies: the files
// and the directories above them, sorted.
func ExpandPaths(files []string) []string {
	seen := map[string]bool{}
	for _, f := range files {
		seen[f] = true
		for _, d := range Parents(f) {
			seen[d] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// validFiles checks files and secret_files: paths as CheckFilePath wants
// them, no path in both, none a directory of another; and, for an action
// with a filesystem input (withFilesystem), that it is "ext4".
func validFiles(withFilesystem bool) Func {
	return func(ctx context.Context, r *sdk.Request) error {
		return checkFiles(r, withFilesystem)
	}
}

func checkFiles(r *sdk.Request, withFilesystem bool) error {
	var errs []error
	seen := map[string]string{} // path → the input it came from
	for _, field := range []string{"files", "secret_files"} {
		if !r.Known(field) || !r.IsSet(field) {
			continue
		}
		m := r.StringMap(field)
		if len(m) == 0 {
			continue
		}
		if withFilesystem && r.Known("filesystem") && r.String("filesystem") != "ext4" {
			errs = append(errs, sdk.ArgError(field, "needs filesystem = \"ext4\": the files are written into the volume's new filesystem"))
		}
		for _, p := range slices.Sorted(maps.Keys(m)) {
			at := cty.GetAttrPath(field).Index(cty.StringVal(p))
			if err := CheckFilePath(p); err != nil {
				errs = append(errs, sdk.ArgPathError(at, "invalid path: %v", err))
				continue
			}
			if other, dup := seen[p]; dup {
				errs = append(errs, sdk.ArgPathError(at, "%q is in %s too: write it once", p, other))
				continue
			}
			seen[p] = field
		}
	}
	for _, p := range slices.Sorted(maps.Keys(seen)) {
		for _, dir := range Parents(p) {
			if other, ok := seen[dir]; ok {
				errs = append(errs, sdk.ArgPathError(cty.GetAttrPath(other).Index(cty.StringVal(dir)), "%q is a file, and %q needs it to be a directory", dir, p))
			}
		}
	}
	return errors.Join(errs...)
}

// validRemove checks volume_edit's remove patterns.
func validRemove(ctx context.Context, r *sdk.Request) error {
	if !r.Known("remove") {
		return nil
	}
	var errs []error
	for i, p := range r.Strings("remove") {
		if err := CheckRemovePattern(p); err != nil {
			errs = append(errs, sdk.ArgPathError(cty.GetAttrPath("remove").IndexInt(i), "invalid pattern: %v", err))
		}
	}
	return errors.Join(errs...)
}

// validNewLocalFile checks that the input field, once known, names a file
// on this machine that does not exist yet, in a directory that does.
func validNewLocalFile(field string) Func {
	return func(ctx context.Context, r *sdk.Request) error {
		if !r.Known(field) {
			return nil
		}
		p := r.String(field)
		if p == "" {
			return sdk.ArgError(field, "name a file to write")
		}
		if _, err := os.Lstat(p); err == nil {
			return sdk.ArgError(field, "%s exists; nothing is written over an existing file (remove it, or choose another name)", p)
		} else if !os.IsNotExist(err) {
			return sdk.ArgError(field, "%v", err)
		}
		dir := filepath.Dir(p)
		if st, err := os.Stat(dir); err != nil {
			return sdk.ArgError(field, "its directory: %v", err)
		} else if !st.IsDir() {
			return sdk.ArgError(field, "%s is not a directory", dir)
		}
		return nil
	}
}
