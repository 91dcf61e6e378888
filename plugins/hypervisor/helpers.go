package hypervisor

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vmflow/vmflow/core/sdk"
)

// SnapshotInfo is one element of snapshot_list's snapshots output.
type SnapshotInfo struct {
	Name        string `cty:"name"`
	Created     string `cty:"created"` // RFC 3339
	State       string `cty:"state"`   // the VM's state when it was taken: running (with memory) or shutoff
	Description string `cty:"description"`
}

// SnapshotInfoType is SnapshotInfo's type in the schema.
var SnapshotInfoType = sdk.ObjectOf(map[string]sdk.Type{
	"name": sdk.TypeString, "created": sdk.TypeString, "state": sdk.TypeString, "description": sdk.TypeString,
})

// HaveSnapshots says which snapshots there are, for the error about an
// unknown one: "it has: a, b", or "it has none".
func HaveSnapshots(names []string) string {
	if len(names) == 0 {
		return "it has none"
	}
	return "it has: " + strings.Join(names, ", ")
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ImageInfo reads a local image's format and virtual size: qcow2 from its
// header, anything else as raw (its size is the file's).
func ImageInfo(path string) (format string, size uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	var hdr [32]byte
	n, _ := io.ReadFull(f, hdr[:])
	if n >= 32 && string(hdr[:4]) == "QFI\xfb" {
		return "qcow2", binary.BigEndian.Uint64(hdr[24:32]), nil
	}
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	return "raw", uint64(st.Size()), nil
}

// AbsentError is ensure_absent's one error, the same on every backend: what
// exists of what must not, e.g. "VM demo exists (running); volumes
// demo-var, demo-boot exist". vmState is "" when the VM does not exist;
// volumes lists those that do, in the order asked. nil when nothing does.
func AbsentError(vm, vmState string, volumes []string) error {
	var parts []string
	if vmState != "" {
		parts = append(parts, fmt.Sprintf("VM %s exists (%s)", vm, vmState))
	}
	switch len(volumes) {
	case 0:
	case 1:
		parts = append(parts, fmt.Sprintf("volume %s exists", volumes[0]))
	default:
		parts = append(parts, fmt.Sprintf("volumes %s exist", strings.Join(volumes, ", ")))
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%s; nothing was changed (remove them first, or choose other names)", strings.Join(parts, "; "))
}

// DeleteEach implements volumes_delete with a backend's delete of one
// volume, which reports whether the volume existed.
func DeleteEach(del func(ctx context.Context, r *sdk.Request, name string, missingOK bool) (bool, error)) Impl {
	return Impl{
		Run: func(ctx context.Context, r *sdk.Request) error {
			deleted := []string{}
			for _, name := range r.Strings("names") {
				if err := ctx.Err(); err != nil {
					return err
				}
				ok, err := DeleteOnce(ctx, r, name, r.Bool("missing_ok"), del)
				if err != nil {
					if len(deleted) > 0 {
						return fmt.Errorf("volume %s: %w (deleted before it: %s)", name, err, strings.Join(deleted, ", "))
					}
					return fmt.Errorf("volume %s: %w", name, err)
				}
				if ok {
					deleted = append(deleted, name)
				}
			}
			return r.Set("deleted", deleted)
		},
	}
}

// DeleteOnce deletes a volume in a step that may run again: vmflow runs a
// step again when a run killed during it is resumed, and a volume the
// interrupted attempt deleted is then missing. The deletion is claimed
// first, so that the next attempt of the same step counts such a volume
// as deleted by this step instead of failing on it.
func DeleteOnce(ctx context.Context, r *sdk.Request, name string, missingOK bool, del func(ctx context.Context, r *sdk.Request, name string, missingOK bool) (bool, error)) (bool, error) {
	key := "delete volume " + name
	claimed := r.Claimed(key, nil)
	if !claimed {
		if err := r.Claim(key, nil); err != nil {
			return false, err
		}
	}
	ok, err := del(ctx, r, name, missingOK || claimed)
	if err == nil && !ok && claimed {
		r.Log("%s was deleted by an interrupted attempt of this step", name)
		ok = true
	}
	return ok, err
}
