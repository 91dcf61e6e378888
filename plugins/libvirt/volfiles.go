package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/sys/unix"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// volume_edit, volume_swap and volume_export: what backups, clones and
// upgrades do with whole volumes.

// downloadFile writes a volume's bytes, as the pool stores them, to
// path, which must not exist, and returns how many and their sha256,
// reporting progress against the volume's allocation. What arrived is
// checked to be whole before anyone relies on it (an edit, a backup): a
// qcow2 volume's copy must pass qemu-img check, a raw one's must be its
// capacity long. On an error no file is left.
func (d *driver) downloadFile(ctx context.Context, vol libvirt.StorageVol, vi *volInfo, path string, r *sdk.Request, label string) (int64, string, error) {
	n, sum, err := d.downloadOnce(ctx, vol, vi, path, r, label)
	if err == nil {
		err = checkDownload(ctx, vi, path, n)
	}
	if err != nil {
		os.Remove(path)
		return 0, "", err
	}
	return n, sum, nil
}

func (d *driver) downloadOnce(ctx context.Context, vol libvirt.StorageVol, vi *volInfo, path string, r *sdk.Request, label string) (int64, string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := io.MultiWriter(bw, h, &progress{r: r, label: label, total: int64(vi.allocation)})
	n, err := d.downloadStream(ctx, vol, w, fmt.Sprintf("downloading volume %q", vi.name))
	if err == nil {
		r.Progress(n, n, label)
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// checkDownload tells whether a downloaded copy of a volume is whole.
func checkDownload(ctx context.Context, vi *volInfo, path string, n int64) error {
	switch vi.format {
	case "qcow2":
		// Its own metadata only: an overlay's base may live elsewhere.
		file, _ := json.Marshal(path)
		target := `json:{"driver":"qcow2","backing":null,"file":{"driver":"file","filename":` + string(file) + `}}`
		out, err := hypervisor.ToolCommand(ctx, "qemu-img", "check", "-q", target).CombinedOutput()
		if err != nil {
			return fmt.Errorf("the copy of volume %q (%d bytes) is not a whole qcow2 image: %s", vi.name, n, strings.TrimSpace(string(out)))
		}
	case "raw":
		if uint64(n) != vi.capacity {
			return fmt.Errorf("the copy of volume %q is %d bytes, the volume %d", vi.name, n, vi.capacity)
		}
	}
	return nil
}

// runningUser names the running (or paused) domain that uses a file as a
// disk, directly or as the base of a disk's overlay; "" when none does.
func (d *driver) runningUser(conn libvirtConn, paths ...string) (domain string, err error) {
	doms, _, err := conn.ConnectListAllDomains(1, libvirt.ConnectListDomainsActive)
	if err != nil {
		return "", err
	}
	want := map[string]bool{}
	for _, p := range paths {
		want[p] = true
	}
	for _, dom := range doms {
		x, err := parseXML[libvirtxml.Domain](conn.DomainGetXMLDesc(dom, 0))
		if err != nil || x.Devices == nil {
			continue // it went away meanwhile, or has no disks
		}
		for _, disk := range x.Devices.Disks {
			if disk.Source == nil || disk.Source.File == nil {
				continue
			}
			// The chain as the live definition shows it, and as the
			// volumes' own bases say (not every driver shows the chain).
			for b := disk.BackingStore; b != nil; b = b.BackingStore {
				if b.Source != nil && b.Source.File != nil && want[b.Source.File.File] {
					return dom.Name, nil
				}
			}
			p := disk.Source.File.File
			for depth := 0; p != "" && depth < 16; depth++ {
				if want[p] {
					return dom.Name, nil
				}
				vol, err := conn.StorageVolLookupByPath(p)
				if err != nil {
					break
				}
				vi, err := d.volInfo(conn, vol)
				if err != nil {
					break
				}
				p = vi.backing
			}
		}
	}
	return "", nil
}

// notInUse refuses a volume that a running VM uses.
func (d *driver) notInUse(conn libvirtConn, field string, vi *volInfo, what string) error {
	dom, err := d.runningUser(conn, vi.path)
	if err != nil {
		return err
	}
	if dom != "" {
		return sdk.ArgError(field, "volume %q is in use by domain %q, which is running; shut it down first (%s never changes a disk under a running VM)", vi.name, dom, what)
	}
	return nil
}

// qemuImgInfo reads what volume_edit needs to know of an image.
func qemuImgInfo(ctx context.Context, path string) (snapshots int, err error) {
	out, err := hypervisor.ToolCommand(ctx, "qemu-img", "info", "--output=json", path).Output()
	if err != nil {
		return 0, fmt.Errorf("qemu-img info %s: %v", path, err)
	}
	var info struct {
		Snapshots []json.RawMessage `json:"snapshots"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, fmt.Errorf("qemu-img info %s: %v", path, err)
	}
	return len(info.Snapshots), nil
}

func qemuImgConvert(ctx context.Context, from, fromFormat, to, toFormat string) error {
	out, err := hypervisor.ToolCommand(ctx, "qemu-img", "convert", "-q", "-f", fromFormat, "-O", toFormat, from, to).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img convert: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// editVolume is volume_edit: download, convert to raw, edit with debugfs,
// check with e2fsck, convert back, upload into the same volume.
func (d *driver) editVolume(ctx context.Context, r *sdk.Request) error {
	name := r.String("name")
	conn, vol, vi, err := d.volumeArgInfo("name", name)
	if err != nil {
		return err
	}
	if err := d.notInUse(conn, "name", vi, "volume_edit"); err != nil {
		return err
	}
	if vi.backing != "" {
		return sdk.ArgError("name", "volume %q is an overlay on %s, whose filesystem it shares; volume_edit edits a volume that holds its own (copy it first: volume_copy)", name, vi.backing)
	}
	if vi.format != "qcow2" && vi.format != "raw" {
		return sdk.ArgError("name", "volume %q is %s; volume_edit edits qcow2 and raw volumes", name, vi.format)
	}
	files, remove := hypervisor.FilesOf(r), r.Strings("remove")

	dir, err := os.MkdirTemp("", "vmflow-edit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	got := filepath.Join(dir, "volume."+vi.format)
	if _, _, err := d.downloadFile(ctx, vol, vi, got, r, "downloading "+name); err != nil {
		return err
	}
	raw := got
	if vi.format == "qcow2" {
		// Converting to raw and back keeps the data, not internal
		// snapshots: refuse rather than drop a VM's snapshots.
		if n, err := qemuImgInfo(ctx, got); err != nil {
			return err
		} else if n > 0 {
			return sdk.ArgError("name", "volume %q holds %d internal snapshot(s) (a VM's snapshots); volume_edit would drop them: delete them first (snapshot_delete)", name, n)
		}
		raw = filepath.Join(dir, "disk.raw")
		if err := qemuImgConvert(ctx, got, "qcow2", raw, "raw"); err != nil {
			return err
		}
		os.Remove(got)
	}
	if ok, why, err := ext4Superblock(raw); err != nil {
		return err
	} else if !ok {
		return sdk.ArgError("name", "volume %q holds no ext4 filesystem (%s); volume_edit edits files in one", name, why)
	}
	// A filesystem its VM did not unmount cleanly has a journal to replay,
	// as mounting it would: do that first, nothing else.
	if err := e2fsck(ctx, raw, 1, "-E", "journal_only", "-p"); err != nil {
		return err
	}
	removed, err := editExt4(ctx, raw, files, remove)
	if err != nil {
		return fmt.Errorf("volume %q: %w; the volume is unchanged", name, err)
	}
	written := hypervisor.FilePaths(files)
	for _, p := range removed {
		r.Log("removed %s", p)
	}
	for _, p := range written {
		r.Log("wrote %s", p)
	}
	if len(written) == 0 && len(removed) == 0 {
		r.Log("nothing to change in %s", name)
		return errors.Join(r.Set("written", []string{}), r.Set("removed", []string{}))
	}
	if err := e2fsck(ctx, raw, 0, "-f", "-n"); err != nil {
		return fmt.Errorf("volume %q: after the edit, %v; the volume is unchanged", name, err)
	}
	up := raw
	if vi.format == "qcow2" {
		up = filepath.Join(dir, "edited.qcow2")
		if err := qemuImgConvert(ctx, raw, "raw", up, "qcow2"); err != nil {
			return err
		}
		os.Remove(raw)
	}
	if err := d.upload(ctx, vol, up, r, "uploading "+name); err != nil {
		return fmt.Errorf("%w: the volume may be damaged; restore it from a copy", err)
	}
	d.trimVolumeFile(vi.path, up, r)
	after, err := d.volInfo(conn, vol)
	if err != nil {
		return err
	}
	if after.capacity != vi.capacity {
		return fmt.Errorf("volume %q: its capacity changed from %d to %d bytes during the edit", name, vi.capacity, after.capacity)
	}
	return errors.Join(r.Set("written", written), r.Set("removed", removed))
}

// trimVolumeFile cuts what an upload left beyond the new image's end: an
// upload writes over the volume's file without truncating it. Harmless for
// qcow2 either way, so only done where this machine is the host and may.
func (d *driver) trimVolumeFile(volPath, uploaded string, r *sdk.Request) {
	if !d.isLocal() || d.uri.Host != "" || d.uri.Scheme == "test" {
		return
	}
	st, err := os.Stat(uploaded)
	if err != nil {
		return
	}
	if cur, err := os.Stat(volPath); err != nil || cur.Size() <= st.Size() {
		return
	}
	if err := os.Truncate(volPath, st.Size()); err != nil {
		r.Logger().Debug("cannot trim the volume's file after the upload", "path", volPath, "error", err)
	}
}

// exportVolume is volume_export: the volume's bytes, streamed into a new
// local file and hashed on the way.
func (d *driver) exportVolume(ctx context.Context, r *sdk.Request) error {
	name := r.String("name")
	_, vol, vi, err := d.volumeArgInfo("name", name)
	if err != nil {
		return err
	}
	path, err := filepath.Abs(r.String("path"))
	if err != nil {
		return sdk.ArgError("path", "%v", err)
	}
	if err := hypervisor.ClaimNewFile(r, "path", path); err != nil {
		return err
	}
	if _, err := os.Lstat(path); err == nil {
		return sdk.ArgError("path", "%s exists; volume_export writes a new file", path)
	}
	n, sum, err := d.downloadFile(ctx, vol, vi, path, r, "exporting "+name)
	if err != nil {
		return err
	}
	if vi.backing != "" {
		r.Log("%s is an overlay: the export holds what differs from its base, %s, and names it", name, vi.backing)
	}
	r.Log("exported %s (%s, %d bytes) to %s, sha256 %s", name, vi.format, n, path, sum)
	return errors.Join(r.Set("path", path), r.Set("format", vi.format), r.Set("size", n), r.Set("sha256", sum))
}

// swapPair is what volume_swap and its undo work on: both volumes, their
// files checked to be on this machine, and the inode each file has now.
type swapPair struct {
	conn         libvirtConn
	pool         libvirt.StoragePool
	a, b         *volInfo
	inoA, inoB   uint64
	nameA, nameB string
}

func (d *driver) swapPair(r *sdk.Request) (*swapPair, error) {
	a, b := r.String("name"), r.String("with")
	conn, pool, va, err := d.volumeArg("name", a)
	if err != nil {
		return nil, err
	}
	_, _, vb, err := d.volumeArg("with", b)
	if err != nil {
		return nil, err
	}
	ia, err := d.volInfo(conn, va)
	if err != nil {
		return nil, err
	}
	ib, err := d.volInfo(conn, vb)
	if err != nil {
		return nil, err
	}
	if ia.backing == ib.path || ib.backing == ia.path {
		return nil, sdk.ArgError("with", "one of %q and %q is based on the other; swapping them would make a volume its own base", a, b)
	}
	if err := d.notInUse(conn, "name", ia, "volume_swap"); err != nil {
		return nil, err
	}
	if err := d.notInUse(conn, "with", ib, "volume_swap"); err != nil {
		return nil, err
	}
	// The volumes are checked first, so that a wrong name or a volume in
	// use is reported the same way on every host.
	if !d.isLocal() || d.uri.Host != "" {
		return nil, fmt.Errorf("volume_swap exchanges the volumes' files on the libvirt host, in one rename, and %s is not this machine: run vmflow on the host itself", d.uri.Redacted())
	}
	p := &swapPair{conn: conn, pool: pool, a: ia, b: ib, nameA: a, nameB: b}
	for _, v := range []struct {
		field string
		vi    *volInfo
		ino   *uint64
	}{{"name", ia, &p.inoA}, {"with", ib, &p.inoB}} {
		var st unix.Stat_t
		if err := unix.Lstat(v.vi.path, &st); err != nil {
			return nil, sdk.ArgError(v.field, "volume %q: its file is not on this machine (%v); volume_swap exchanges files in the pool's directory", v.vi.name, err)
		}
		*v.ino = st.Ino
	}
	return p, nil
}

// exchange swaps the two files in one rename(2) and has libvirt read the
// pool again.
func (d *driver) exchange(ctx context.Context, r *sdk.Request, p *swapPair) error {
	if err := unix.Renameat2(unix.AT_FDCWD, p.a.path, unix.AT_FDCWD, p.b.path, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("exchanging %s and %s: %w", p.a.path, p.b.path, swapDenied(err, filepath.Dir(p.a.path)))
	}
	r.Log("exchanged %s and %s", p.a.path, p.b.path)
	return d.refreshPool(ctx, p.conn, p.pool)
}

// swapVolumes is volume_swap: the two volumes' files exchanged in one
// rename(2) with RENAME_EXCHANGE, so that at every moment each name holds
// one whole volume; then the pool is refreshed so that libvirt reports
// their sizes, formats and bases as they now are. The inodes are claimed
// first: an attempt run again after an interruption finds out whether the
// exchange happened (name then holds the file with had) and never
// exchanges twice, which would swap back.
func (d *driver) swapVolumes(ctx context.Context, r *sdk.Request) error {
	p, err := d.swapPair(r)
	if err != nil {
		return err
	}
	var c swapClaim
	if r.Claimed(swapKey(p.nameA, p.nameB), &c) {
		switch {
		case c.NameIno == 0 || c.WithIno == 0:
			return fmt.Errorf("volume_swap: the claim of an earlier attempt of this step holds no inode numbers; check %s and %s by hand", p.a.path, p.b.path)
		case p.inoA == c.WithIno && p.inoB == c.NameIno:
			r.Log("%s and %s were exchanged already, by an interrupted attempt of this step", p.nameA, p.nameB)
			return d.refreshPool(ctx, p.conn, p.pool)
		case p.inoA != c.NameIno || p.inoB != c.WithIno:
			return fmt.Errorf("volume_swap: %s and %s are neither as an interrupted attempt of this step found them nor exchanged; something else changed them: check them by hand", p.a.path, p.b.path)
		}
		// As claimed, not exchanged yet.
	} else if err := r.Claim(swapKey(p.nameA, p.nameB), swapClaim{NameIno: p.inoA, WithIno: p.inoB}); err != nil {
		return err
	}
	return d.exchange(ctx, r, p)
}

// swapBack is volume_swap's undo: the files exchanged back, unless the
// claim shows they are back already (an undo run again) or were never
// exchanged (an interrupted attempt that stopped short of it).
func (d *driver) swapBack(ctx context.Context, r *sdk.Request) error {
	p, err := d.swapPair(r)
	if err != nil {
		return err
	}
	var c swapClaim
	if r.Claimed(swapKey(p.nameA, p.nameB), &c) && c.NameIno != 0 && c.WithIno != 0 {
		switch {
		case p.inoA == c.NameIno && p.inoB == c.WithIno:
			r.Log("%s and %s are as they were before the exchange: nothing to swap back", p.nameA, p.nameB)
			return d.refreshPool(ctx, p.conn, p.pool)
		case p.inoA != c.WithIno || p.inoB != c.NameIno:
			return fmt.Errorf("volume_swap's undo: %s and %s are neither as the step found them nor exchanged; something else changed them: check them by hand", p.a.path, p.b.path)
		}
	} else if r.Interrupted() {
		return nil
	}
	return d.exchange(ctx, r, p)
}

// refreshPool has libvirt read the pool's directory again, retrying while
// it is busy with another upload or download.
func (d *driver) refreshPool(ctx context.Context, conn libvirtConn, pool libvirt.StoragePool) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := conn.StoragePoolRefresh(pool, 0)
		if err == nil || !strings.Contains(err.Error(), "asynchronous jobs running") || time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("refreshing storage pool %s: %w", d.poolName, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
