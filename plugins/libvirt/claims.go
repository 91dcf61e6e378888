package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/vmflow/vmflow/core/sdk"
)

// vmflow runs a step again when a run killed during it is resumed: the
// earlier attempt may have left a volume half-made, a domain defined, an
// exchange done. Each action that creates or changes something claims it
// first (sdk.Request.Claim), so that the next attempt of the same step of
// the same run knows what it may remove or must not redo; what it did
// not claim is never touched.

func volumeClaim(name string) string { return "volume " + name }

// scratchClaim is volume_create's claim data: the directory its
// filesystem image was built in (it may hold the files' secrets).
type scratchClaim struct {
	Scratch string `json:"scratch,omitempty"`
}

// claimNewVolume makes way for a new volume: a volume of that name that
// an earlier attempt of this run's step claimed (and left, half-made or
// whole) is removed; any other is refused, as ever. Then it claims the
// name for this attempt.
func (d *driver) claimNewVolume(ctx context.Context, r *sdk.Request, name string) error {
	var earlier scratchClaim
	claimed := r.Claimed(volumeClaim(name), &earlier)
	if claimed && earlier.Scratch != "" && strings.Contains(earlier.Scratch, "vmflow-mkfs-") {
		_ = os.RemoveAll(earlier.Scratch)
	}
	exists, err := d.volumeExists(name)
	if err != nil {
		return err
	}
	if exists {
		if !claimed {
			return d.mustBeNew(name)
		}
		r.Log("removing volume %s: an interrupted attempt of this step made it", name)
		if err := d.deleteLeftover(ctx, name); err != nil {
			return err
		}
	}
	return r.Claim(volumeClaim(name), nil)
}

// deleteLeftover deletes a volume an interrupted attempt made, waiting
// out a job libvirtd still runs on it (a copy goes on in libvirtd after
// its client is gone; an aborted upload takes a moment to wind down).
func (d *driver) deleteLeftover(ctx context.Context, name string) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		_, err := d.deleteVolume(name, true)
		if err == nil || !busy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func busy(err error) bool {
	s := err.Error()
	return strings.Contains(s, "asynchronous jobs running") || strings.Contains(s, "in use") || isCode(err, libvirt.ErrOperationInvalid)
}

// undoNewVolume is the undo of an action that created a volume: it
// deletes it; after an interrupted Run, only if this step claimed it.
func (d *driver) undoNewVolume(ctx context.Context, r *sdk.Request) error {
	name := r.OutputString("name")
	if r.Interrupted() {
		name = r.String("name")
		if !r.Claimed(volumeClaim(name), nil) {
			return nil
		}
		r.Log("deleting %s, which the interrupted attempt of this step made (if it is there)", name)
	}
	return d.deleteLeftover(ctx, name)
}

// fileClaim is volume_export's claim of the file it writes.
func fileClaim(path string) string { return "file " + path }

// claimNewFile makes way for a new local file as claimNewVolume does for
// a volume: one an earlier attempt of this step claimed is removed, any
// other refused.
func claimNewFile(r *sdk.Request, field, path string) error {
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

// domainClaim is define's claim: the definition it replaces ("" for a
// new domain), so that a later attempt, which finds its own definition
// in place, still reports and undoes to the one before.
type domainClaim struct {
	PreviousXML string `json:"previous_xml"`
}

func defineClaim(name string) string { return "domain " + name }

// powerClaim is start's and shutdown's: when this step asked for the
// change (start: for wait_ip's lease).
type powerClaim struct {
	At time.Time `json:"at"`
}

func startClaim(name string) string    { return "start " + name }
func shutdownClaim(name string) string { return "shutdown " + name }
func suspendClaim(name string) string  { return "suspend " + name }

// swapClaim is volume_swap's: the inode numbers of both files before the
// exchange. The exchange moves files, never copies them, so the inode
// under each name tells whether it happened.
type swapClaim struct {
	NameIno uint64 `json:"name_ino"`
	WithIno uint64 `json:"with_ino"`
}

func swapKey(a, b string) string { return fmt.Sprintf("swap %s %s", a, b) }
