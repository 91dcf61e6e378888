package hypervisor

import (
	"context"
	"os"
	"path/filepath"

	"github.com/vmflow/vmflow/core/sdk"
)

// volume_export writes a local file on every backend. These helpers are
// the part of it that does not depend on the backend: claiming the file
// before writing it, and removing it again on undo.

// fileClaim is volume_export's claim of the file it writes.
func fileClaim(path string) string { return "file " + path }

// ClaimNewFile makes way for a new local file at path (the argument
// field): one an earlier attempt of this step claimed is removed, any
// other is refused, so nothing is ever written over a file the step did
// not make. It then claims path for this step.
func ClaimNewFile(r *sdk.Request, field, path string) error {
	if _, err := os.Lstat(path); err == nil {
		if !r.Claimed(fileClaim(path), nil) {
			return sdk.ArgError(field, "%s exists; nothing is written over an existing file (remove it, or choose another name)", path)
		}
		r.Log("removing %s: an interrupted attempt of this step wrote it", path)
		if err := os.Remove(path); err != nil {
			return err
		}
	}
	return r.Claim(fileClaim(path), nil)
}

// UndoExport is volume_export's Undo: it removes the file the step wrote
// (its path output), or, for an interrupted attempt, the file at its path
// argument if that attempt claimed it.
func UndoExport(ctx context.Context, r *sdk.Request) error {
	p := r.OutputString("path")
	if r.Interrupted() {
		if p, _ = filepath.Abs(r.String("path")); !r.Claimed(fileClaim(p), nil) {
			return nil
		}
	}
	if p != "" {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}
