package builtin

// temp_dir and remove: scratch directories under vmflow's state
// directory, and removal of what a task no longer needs.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/sdk"
)

func fileActions(st *state) []*sdk.Action {
	return []*sdk.Action{tempDirAction(st), removeAction(st)}
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
