package builtin

// Backups: archive_create, archive_verify, archive_extract and
// archive_list, over the format core/archive reads and writes.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/archive"
	"github.com/vmflow/vmflow/core/sdk"
)

func archiveActions(st *state) []*sdk.Action {
	return []*sdk.Action{
		archiveCreateAction(),
		archiveVerifyAction(),
		archiveExtractAction(st),
		archiveListAction(),
	}
}

// filesAttr is archive_create's files input, or the path to one of them.
func filesAttr(member string) cty.Path {
	return cty.GetAttrPath("files").Index(cty.StringVal(member))
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
			info, err := createArchive(ctx, r, dst, files)
			if err != nil {
				return err
			}
			return setCreated(r, dst, info)
		},
		Undo: func(ctx context.Context, r *sdk.Request) error {
			if r.Interrupted() {
				// What the step's attempts claimed, whole or not.
				for _, key := range r.ClaimedKeys(archiveClaim) {
					if err := archive.Remove(strings.TrimPrefix(key, archiveClaim)); err != nil {
						return err
					}
				}
				return nil
			}
			dst := r.OutputString("path")
			if dst == "" {
				dst = localPath(r, r.String("path"))
			}
			return archive.Remove(dst)
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
		if info, err := archive.Verify(ctx, p, r.Progress); err == nil {
			r.Log("%s was made whole by an interrupted attempt of this step", p)
			return true, setCreated(r, p, info)
		}
		r.Log("removing %s, left by an interrupted attempt of this step", p)
		if err := archive.Remove(p); err != nil {
			return false, err
		}
	}
	return false, nil
}

// setCreated sets archive_create's outputs.
func setCreated(r *sdk.Request, p string, info *archive.Info) error {
	return errors.Join(r.Set("path", p), r.Set("sha256", info.SHA256), r.Set("size", info.Size), r.Set("members", info.Manifest.Names()))
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
		if err := archive.CheckName(name); err != nil {
			return sdk.ArgPathError(filesAttr(name), "%v", err)
		}
		if files[name] == "" {
			return sdk.ArgPathError(filesAttr(name), "must name a local file")
		}
	}
	return nil
}

// createArchive writes the archive and its checksum file, then, when the
// step says so, removes the sources.
func createArchive(ctx context.Context, r *sdk.Request, dst string, files map[string]string) (*archive.Info, error) {
	local := make(map[string]string, len(files))
	for name, p := range files {
		local[name] = localPath(r, p)
	}
	removeSources := r.Bool("remove_sources")
	info, err := archive.Create(ctx, dst, local, archive.Options{
		Metadata: r.StringMap("metadata"),
		// Before deleting the sources, read the archive back whole.
		Verify:   removeSources,
		Progress: r.Progress,
	})
	var destErr *archive.DestError
	var srcErr *archive.SourceError
	switch {
	case errors.As(err, &destErr):
		return nil, sdk.ArgError("path", "%v", destErr.Err)
	case errors.As(err, &srcErr):
		return nil, sdk.ArgPathError(filesAttr(srcErr.Member), "%v", srcErr.Err)
	case err != nil:
		return nil, err
	}
	var in int64
	for _, mi := range info.Manifest.Members {
		in += mi.Size
	}
	r.Log("wrote %s: %d members, %d bytes in, %d bytes out, sha256 %s", dst, len(info.Manifest.Members), in, info.Size, info.SHA256)

	if removeSources {
		for _, name := range info.Manifest.Names() {
			if err := os.Remove(local[name]); err != nil && !errors.Is(err, fs.ErrNotExist) {
				// The archive is complete: keep it, and say what is left.
				return nil, fmt.Errorf("archive %s is complete, but removing source %s failed: %w", dst, local[name], err)
			}
		}
		r.Log("removed %d source files", len(local))
	}
	return info, nil
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
			p := localPath(r, r.String("path"))
			info, err := archive.Verify(ctx, p, r.Progress)
			if err != nil {
				return err
			}
			m := info.Manifest
			r.Log("%s: %d members, all match", p, len(m.Members))
			if err := r.Set("path", p); err != nil {
				return err
			}
			if err := r.Set("members", m.Names()); err != nil {
				return err
			}
			if err := r.Set("metadata", m.Metadata); err != nil {
				return err
			}
			if err := r.Set("created", m.Created); err != nil {
				return err
			}
			return r.Set("size", info.Size)
		},
	}
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
			return removeExtracted(dir, files)
		},
	}
}

// removeExtracted removes the members extracted into dir, and the
// directories made for them once empty.
func removeExtracted(dir string, files map[string]string) error {
	for name := range files {
		rel := filepath.FromSlash(name)
		if archive.CheckName(name) != nil {
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
}

// extractDir returns the directory archive_extract writes into, making it
// when missing, and whether it made it.
func extractDir(r *sdk.Request, st *state) (dir string, created bool, err error) {
	if d := r.String("dir"); d != "" {
		dir = localPath(r, d)
		fi, serr := os.Stat(dir)
		switch {
		case errors.Is(serr, fs.ErrNotExist):
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return "", false, sdk.ArgError("dir", "%v", err)
			}
			return dir, true, nil
		case serr != nil:
			return "", false, sdk.ArgError("dir", "%v", serr)
		case !fi.IsDir():
			return "", false, sdk.ArgError("dir", "%s is not a directory", dir)
		}
		return dir, false, nil
	}
	sd, err := st.requireDir()
	if err != nil {
		return "", false, err
	}
	base := TempDir(sd, r.RunID)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", false, err
	}
	if dir, err = os.MkdirTemp(base, "extract-*"); err != nil {
		return "", false, err
	}
	return dir, true, nil
}

func extract(ctx context.Context, r *sdk.Request, st *state) (err error) {
	p := localPath(r, r.String("path"))
	dir, created, err := extractDir(r, st)
	if err != nil {
		return err
	}
	var files map[string]string
	defer func() {
		if err == nil {
			return
		}
		if created {
			os.RemoveAll(dir)
			return
		}
		removeExtracted(dir, files)
	}()
	m, err := archive.Extract(ctx, p, dir, r.Progress)
	if err != nil {
		return err
	}
	files = map[string]string{}
	for _, mi := range m.Members {
		files[mi.Name] = filepath.Join(dir, filepath.FromSlash(mi.Name))
	}
	r.Log("extracted %d members of %s into %s", len(files), p, dir)
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
			found, err := listArchives(ctx, r, localPath(r, r.String("dir")), r.String("prefix"))
			if err != nil {
				return err
			}
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

// listArchives reads the manifests of the archives in dir whose names
// start with prefix, newest first; unreadable ones are skipped.
func listArchives(ctx context.Context, r *sdk.Request, dir, prefix string) ([]listed, error) {
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, sdk.ArgError("dir", "%v", err)
	}
	found := []listed{}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, archive.Ext) || !strings.HasPrefix(name, prefix) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		m, err := archive.ReadManifest(p)
		if err != nil {
			r.Logger().Warn("skipping an unreadable archive", "path", p, "error", err.Error())
			continue
		}
		l := listed{Path: p, Name: name, Size: fi.Size(), Created: m.Created, Metadata: m.Metadata, mtime: fi.ModTime()}
		l.created, _ = time.Parse(time.RFC3339, m.Created)
		if _, err := os.Stat(p + archive.SumExt); err == nil {
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
	return found, nil
}
