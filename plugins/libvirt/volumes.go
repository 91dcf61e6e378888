package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// volume looks up a volume of vmflow's pool by name.
func (d *driver) volume(name string) (libvirtConn, libvirt.StoragePool, libvirt.StorageVol, error) {
	conn, pool, err := d.pool()
	if err != nil {
		return nil, pool, libvirt.StorageVol{}, err
	}
	vol, err := conn.StorageVolLookupByName(pool, name)
	if isCode(err, libvirt.ErrNoStorageVol) {
		return conn, pool, vol, fmt.Errorf("no volume %q in pool %s", name, d.poolName)
	}
	if err != nil {
		return conn, pool, vol, fmt.Errorf("volume %q: %w", name, err)
	}
	return conn, pool, vol, nil
}

// volumeArg is volume for an action's argument (field): a volume that
// cannot be looked up is an error about that argument.
func (d *driver) volumeArg(field, name string) (libvirtConn, libvirt.StoragePool, libvirt.StorageVol, error) {
	conn, pool, vol, err := d.volume(name)
	if err != nil {
		return nil, pool, vol, sdk.ArgError(field, "%v", err)
	}
	return conn, pool, vol, nil
}

// volumeArgInfo is volumeArg, and what volInfo tells of the volume.
func (d *driver) volumeArgInfo(field, name string) (libvirtConn, libvirt.StorageVol, *volInfo, error) {
	conn, _, vol, err := d.volumeArg(field, name)
	if err != nil {
		return nil, vol, nil, err
	}
	vi, err := d.volInfo(conn, vol)
	return conn, vol, vi, err
}

// volumeExists reports whether the pool has a volume of that name.
func (d *driver) volumeExists(name string) (bool, error) {
	conn, pool, err := d.pool()
	if err != nil {
		return false, err
	}
	// No pool refresh here: it reads every volume in the pool, and libvirt
	// refuses it while other volume jobs run. A file made behind libvirt's
	// back still makes the create fail, with libvirt's own message.
	_, err = conn.StorageVolLookupByName(pool, name)
	if isCode(err, libvirt.ErrNoStorageVol) {
		return false, nil
	}
	return err == nil, err
}

type volInfo struct {
	name, path, format, backing string
	capacity, allocation        uint64
}

func (d *driver) volInfo(conn libvirtConn, vol libvirt.StorageVol) (*volInfo, error) {
	x, err := parseXML[libvirtxml.StorageVolume](conn.StorageVolGetXMLDesc(vol, 0))
	if err != nil {
		return nil, err
	}
	vi := &volInfo{name: x.Name}
	if x.Target != nil {
		vi.path = x.Target.Path
		if x.Target.Format != nil {
			vi.format = x.Target.Format.Type
		}
	}
	if x.BackingStore != nil {
		vi.backing = x.BackingStore.Path
	}
	// libvirt writes sizes in bytes; ask separately only if it did not.
	if bytesOf(x.Capacity, &vi.capacity) && bytesOf(x.Allocation, &vi.allocation) {
		return vi, nil
	}
	_, vi.capacity, vi.allocation, err = conn.StorageVolGetInfo(vol)
	return vi, err
}

func bytesOf(s *libvirtxml.StorageVolumeSize, into *uint64) bool {
	if s == nil || (s.Unit != "" && s.Unit != "bytes" && s.Unit != "B") {
		return false
	}
	*into = s.Value
	return true
}

func setVolOutputs(r *sdk.Request, vi *volInfo) error {
	for k, v := range map[string]any{"name": vi.name, "path": vi.path, "capacity": vi.capacity} {
		if err := r.Set(k, v); err != nil {
			return err
		}
	}
	return nil
}

// mustBeNew refuses to create over an existing volume: a volume may be a
// VM's /var disk.
func (d *driver) mustBeNew(name string) error {
	exists, err := d.volumeExists(name)
	if err != nil {
		return err
	}
	if exists {
		return sdk.ArgError("name", "volume %q already exists in pool %s; vmflow never writes over an existing volume (delete it first if you mean to)", name, d.poolName)
	}
	return nil
}

// createVolume creates a volume and describes it without asking libvirt
// again: in a directory pool a volume's key is its path.
func (d *driver) createVolume(name string, capacity uint64, format string, backing *libvirtxml.StorageVolumeBackingStore) (libvirtConn, libvirt.StorageVol, *volInfo, error) {
	conn, pool, err := d.pool()
	if err != nil {
		return nil, libvirt.StorageVol{}, nil, err
	}
	x := libvirtxml.StorageVolume{
		Name:         name,
		Capacity:     &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: capacity},
		Target:       &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: format}},
		BackingStore: backing,
	}
	if format == "qcow2" {
		x.Allocation = &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: 0}
	}
	doc, err := x.Marshal()
	if err != nil {
		return nil, libvirt.StorageVol{}, nil, err
	}
	vol, err := conn.StorageVolCreateXML(pool, doc, 0)
	if err != nil {
		return nil, vol, nil, fmt.Errorf("creating volume %q: %w", name, err)
	}
	vi := &volInfo{name: name, path: vol.Key, format: format, capacity: capacity}
	if backing != nil {
		vi.backing = backing.Path
	}
	if !strings.HasPrefix(vi.path, "/") {
		if vi, err = d.volInfo(conn, vol); err != nil {
			return nil, vol, nil, err
		}
	}
	return conn, vol, vi, nil
}

func (d *driver) deleteVolume(name string, missingOK bool) (bool, error) {
	conn, _, vol, err := d.volume(name)
	if err != nil {
		if missingOK && strings.HasPrefix(err.Error(), "no volume") {
			return false, nil
		}
		return false, err
	}
	if err := conn.StorageVolDelete(vol, 0); err != nil {
		return false, fmt.Errorf("deleting volume %q: %w", name, err)
	}
	return true, nil
}

// deleteOne is volume_delete's and volumes_delete's delete of one volume.
func (d *driver) deleteOne(ctx context.Context, r *sdk.Request, name string, missingOK bool) (bool, error) {
	return d.deleteVolume(name, missingOK)
}

// upload streams a local file into a volume, reporting progress.
func (d *driver) upload(ctx context.Context, vol libvirt.StorageVol, path string, r *sdk.Request, label string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	total := st.Size()
	src := io.TeeReader(f, &progress{r: r, label: label, total: total})
	if err := d.uploadStream(ctx, vol, src, total, fmt.Sprintf("uploading %s into volume %q", path, vol.Name)); err != nil {
		return err
	}
	r.Progress(total, total, label)
	return nil
}

// progress counts the bytes written to it (by io.TeeReader on an upload,
// io.MultiWriter on a download) and reports them as r's progress under
// label every 2% of total (never when total is 0).
type progress struct {
	r         *sdk.Request
	label     string
	n, total  int64
	lastShown int64
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.total > 0 && (p.n-p.lastShown)*50 >= p.total { // every 2%
		p.lastShown = p.n
		p.r.Progress(p.n, p.total, p.label)
	}
	return len(b), nil
}

// validBacking checks volume_overlay's base: a volume name, or an
// absolute path on the libvirt host.
func validBacking(ctx context.Context, r *sdk.Request) error {
	if !r.Known("backing") {
		return nil
	}
	if b := r.String("backing"); !strings.HasPrefix(b, "/") {
		if err := hypervisor.CheckName("volume", b); err != nil {
			return sdk.ArgError("backing", "%v (or give an absolute path)", err)
		}
	}
	return nil
}

// volumeActions implements the contract's volume actions on vmflow's
// storage pool.
func (d *driver) volumeActions(b *hypervisor.Backend) {
	b.VolumeCreate = hypervisor.Impl{Validate: validMkfsTools, Run: d.volumeCreate, Undo: d.undoNewVolume, Note: "The volume is qcow2, in vmflow's storage pool; a filesystem is made on this machine (mke2fs, with -d for the files; qemu-img) and uploaded into it."}
	b.VolumeOverlay = hypervisor.Impl{Validate: validBacking, Run: d.volumeOverlay, Undo: d.undoNewVolume, Note: "The overlay is a qcow2 volume of vmflow's pool whose backing file is the base: a volume of the pool, or an absolute path on the libvirt host."}
	b.VolumeResize = hypervisor.Impl{Run: d.volumeResize}
	b.VolumeDelete = hypervisor.Impl{Run: d.volumeDelete, Note: "Its file goes with it."}
	b.VolumesDelete = hypervisor.DeleteEach(d.deleteOne)
	b.VolumesDelete.Note = "Their files go with them."
	b.VolumeCopy = hypervisor.Impl{Run: d.volumeCopy, Undo: d.undoNewVolume}
	b.VolumeImport = hypervisor.Impl{Run: d.volumeImport, Undo: d.undoNewVolume, Note: "The file is streamed into vmflow's pool through libvirt, so this works with a remote host too."}
	b.VolumeExport = hypervisor.Impl{
		Run:  d.exportVolume,
		Undo: hypervisor.UndoExport,
		Note: "It streams the volume's file through libvirt (virStorageVolDownload), so this works with a remote host too: a qcow2 volume as its compact qcow2 file, not its virtual size. " +
			"An overlay's export holds what differs from its base, and names the base by its path on the host. The file is made 0600.",
	}
	b.VolumeEdit = hypervisor.Impl{
		Validate: d.validateVolumeEdit,
		Run:      d.editVolume,
		Note: "It downloads the volume through libvirt, converts it to raw on this machine (qemu-img), edits it with debugfs -w (no mount), checks it with e2fsck -fn, " +
			"converts it back and uploads it into the same volume, so its capacity and format stay. An overlay, and a qcow2 volume holding internal snapshots (which the round trip would drop), are refused. " +
			"A glob's * matches names starting with a dot too.",
	}
	b.VolumeSwap = hypervisor.Impl{
		Run:  d.swapVolumes,
		Undo: d.swapBack,
		Note: "The volumes' files are exchanged on this machine in one rename(2) (RENAME_EXCHANGE), then the pool is refreshed; so the libvirt host must be this machine (a URI without a host). " +
			"An overlay keeps its base: a base is named by its absolute path.",
	}
	b.VolumeInfo = hypervisor.Impl{Run: d.volumeInfo, Note: "A volume's path is its file on the libvirt host."}
}

// volumeCreate is volume_create's Run.
func (d *driver) volumeCreate(ctx context.Context, r *sdk.Request) error {
	name := r.String("name")
	size, err := hypervisor.SizeArg(r, "size")
	if err != nil {
		return err
	}
	if err := d.claimNewVolume(ctx, r, name); err != nil {
		return err
	}
	var image string
	if fs := r.String("filesystem"); fs != "" {
		img, cleanup, err := mkfsImage(ctx, size, fs, r.String("label"), hypervisor.FilesOf(r))
		if err != nil {
			return err
		}
		defer cleanup()
		image = img
		// A kill from here on leaves the image behind: the next
		// attempt removes it.
		if err := r.Claim(volumeClaim(name), scratchClaim{Scratch: filepath.Dir(img)}); err != nil {
			return err
		}
	}
	conn, vol, vi, err := d.createVolume(name, size, "qcow2", nil)
	if err != nil {
		return err
	}
	if image != "" {
		if err := d.upload(ctx, vol, image, r, "uploading filesystem"); err != nil {
			_ = conn.StorageVolDelete(vol, 0)
			return err
		}
	}
	r.Log("created %s (%s) at %s", name, hypervisor.FormatSize(size), vi.path)
	return setVolOutputs(r, vi)
}

// volumeOverlay is volume_overlay's Run.
func (d *driver) volumeOverlay(ctx context.Context, r *sdk.Request) error {
	name := r.String("name")
	if err := d.claimNewVolume(ctx, r, name); err != nil {
		return err
	}
	backing, format := r.String("backing"), r.String("backing_format")
	var capacity uint64
	if strings.HasPrefix(backing, "/") {
		conn, err := d.client()
		if err != nil {
			return err
		}
		if vol, err := conn.StorageVolLookupByPath(backing); err == nil {
			vi, err := d.volInfo(conn, vol)
			if err != nil {
				return err
			}
			capacity = vi.capacity
			if format == "auto" {
				format = vi.format
			}
		} else if d.isLocal() {
			f, size, err := hypervisor.ImageInfo(backing)
			if err != nil {
				return sdk.ArgError("backing", "%v", err)
			}
			capacity = size
			if format == "auto" {
				format = f
			}
		} else {
			return sdk.ArgError("backing", "%s is not a volume of any storage pool on %s; import it first (volume_import)", backing, d.uri)
		}
	} else {
		_, _, vi, err := d.volumeArgInfo("backing", backing)
		if err != nil {
			return err
		}
		backing, capacity = vi.path, vi.capacity
		if format == "auto" {
			format = vi.format
		}
	}
	if format != "qcow2" && format != "raw" {
		return sdk.ArgError("backing_format", "unsupported backing format %q: qcow2 or raw", format)
	}
	_, _, vi, err := d.createVolume(name, capacity, "qcow2", &libvirtxml.StorageVolumeBackingStore{
		Path: backing, Format: &libvirtxml.StorageVolumeTargetFormat{Type: format},
	})
	if err != nil {
		return err
	}
	r.Log("overlay %s on %s", vi.path, backing)
	return setVolOutputs(r, vi)
}

// volumeResize is volume_resize's Run.
func (d *driver) volumeResize(ctx context.Context, r *sdk.Request) error {
	size, err := hypervisor.SizeArg(r, "size")
	if err != nil {
		return err
	}
	conn, vol, vi, err := d.volumeArgInfo("name", r.String("name"))
	if err != nil {
		return err
	}
	switch {
	case size < vi.capacity:
		return sdk.ArgError("size", "volume %q is %s; shrinking it to %s is refused (it would cut off data)", vi.name, hypervisor.FormatSize(vi.capacity), hypervisor.FormatSize(size))
	case size > vi.capacity:
		if err := conn.StorageVolResize(vol, size, 0); err != nil {
			return fmt.Errorf("resizing volume %q: %w", vi.name, err)
		}
		r.Log("grew %s from %s to %s", vi.name, hypervisor.FormatSize(vi.capacity), hypervisor.FormatSize(size))
		if vi, err = d.volInfo(conn, vol); err != nil {
			return err
		}
	}
	return setVolOutputs(r, vi)
}

// volumeDelete is volume_delete's Run.
func (d *driver) volumeDelete(ctx context.Context, r *sdk.Request) error {
	deleted, err := hypervisor.DeleteOnce(ctx, r, r.String("name"), r.Bool("missing_ok"), d.deleteOne)
	if err != nil {
		return sdk.ArgError("name", "%v", err)
	}
	return r.Set("deleted", deleted)
}

// volumeCopy is volume_copy's Run.
func (d *driver) volumeCopy(ctx context.Context, r *sdk.Request) error {
	name := r.String("name")
	conn, pool, src, err := d.volumeArg("source", r.String("source"))
	if err != nil {
		return err
	}
	if err := d.claimNewVolume(ctx, r, name); err != nil {
		return err
	}
	si, err := d.volInfo(conn, src)
	if err != nil {
		return err
	}
	x := libvirtxml.StorageVolume{
		Name:     name,
		Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: si.capacity},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: si.format}},
	}
	doc, err := x.Marshal()
	if err != nil {
		return err
	}
	r.Progress(0, 1, "copying "+si.name)
	vol, err := conn.StorageVolCreateXMLFrom(pool, doc, src, 0)
	if err != nil {
		return fmt.Errorf("copying volume %q to %q: %w", si.name, name, err)
	}
	r.Progress(1, 1, "copying "+si.name)
	vi, err := d.volInfo(conn, vol)
	if err != nil {
		return err
	}
	return setVolOutputs(r, vi)
}

// volumeImport is volume_import's Run.
func (d *driver) volumeImport(ctx context.Context, r *sdk.Request) error {
	name, path := r.String("name"), r.String("path")
	format, size, err := hypervisor.ImageInfo(path)
	if err != nil {
		return sdk.ArgError("path", "%v", err)
	}
	if err := d.claimNewVolume(ctx, r, name); err != nil {
		return err
	}
	conn, vol, vi, err := d.createVolume(name, size, format, nil)
	if err != nil {
		return err
	}
	if err := d.upload(ctx, vol, path, r, "importing"); err != nil {
		_ = conn.StorageVolDelete(vol, 0)
		return err
	}
	if err := r.Set("format", format); err != nil {
		return err
	}
	return setVolOutputs(r, vi)
}

// validateVolumeEdit is volume_edit's Validate.
func (d *driver) validateVolumeEdit(ctx context.Context, r *sdk.Request) error {
	return needTools("name", "volume_edit", "debugfs", "e2fsck", "qemu-img")
}

// volumeInfo is volume_info's Run.
func (d *driver) volumeInfo(ctx context.Context, r *sdk.Request) error {
	exists, err := d.volumeExists(r.String("name"))
	if err != nil {
		return err
	}
	if !exists {
		return r.Set("exists", false)
	}
	conn, _, vol, err := d.volume(r.String("name"))
	if err != nil {
		return err
	}
	vi, err := d.volInfo(conn, vol)
	if err != nil {
		return err
	}
	for k, v := range map[string]any{"exists": true, "path": vi.path, "capacity": vi.capacity, "allocation": vi.allocation, "format": vi.format, "backing": vi.backing} {
		if err := r.Set(k, v); err != nil {
			return err
		}
	}
	return nil
}
