package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/core/sdk"
)

// volume looks up a volume of vmflow's pool by name.
func (d *driver) volume(name string) (*libvirt.Libvirt, libvirt.StoragePool, libvirt.StorageVol, error) {
	conn, pool, err := d.storagePool()
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

// volumeExists reports whether the pool has a volume of that name.
func (d *driver) volumeExists(name string) (bool, error) {
	conn, pool, err := d.storagePool()
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

func (d *driver) volInfo(conn *libvirt.Libvirt, vol libvirt.StorageVol) (*volInfo, error) {
	doc, err := conn.StorageVolGetXMLDesc(vol, 0)
	if err != nil {
		return nil, err
	}
	var x libvirtxml.StorageVolume
	if err := x.Unmarshal(doc); err != nil {
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

var volOutputs = []sdk.Attr{
	sdk.String("name", "The volume's name in the pool."),
	sdk.String("path", "The volume's file on the libvirt host."),
	sdk.Number("capacity", "Its size in bytes, as the guest sees it."),
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
func (d *driver) createVolume(name string, capacity uint64, format string, backing *libvirtxml.StorageVolumeBackingStore) (*libvirt.Libvirt, libvirt.StorageVol, *volInfo, error) {
	conn, pool, err := d.storagePool()
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

func undoDelete(d *driver) func(ctx context.Context, r *sdk.Request) error {
	return func(ctx context.Context, r *sdk.Request) error {
		_, err := d.deleteVolume(r.OutputString("name"), true)
		return err
	}
}

func validName(field, what string) func(ctx context.Context, r *sdk.Request) error {
	return func(ctx context.Context, r *sdk.Request) error {
		if !r.Known(field) {
			return nil
		}
		if err := checkName(what, r.String(field)); err != nil {
			return sdk.ArgError(field, "%v", err)
		}
		return nil
	}
}

// checks runs several Validate functions and joins their errors.
func checks(fns ...func(ctx context.Context, r *sdk.Request) error) func(ctx context.Context, r *sdk.Request) error {
	return func(ctx context.Context, r *sdk.Request) error {
		var errs []error
		for _, f := range fns {
			if err := f(ctx, r); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

func validSize(field string) func(ctx context.Context, r *sdk.Request) error {
	return func(ctx context.Context, r *sdk.Request) error {
		if !r.Known(field) || !r.IsSet(field) {
			return nil
		}
		if _, err := parseSize(r.String(field)); err != nil {
			return sdk.ArgError(field, "%v", err)
		}
		return nil
	}
}

// imageInfo reads a local image's format and virtual size: qcow2 from its
// header, anything else as raw.
func imageInfo(path string) (format string, size uint64, err error) {
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

// upload streams a local file into a volume, reporting progress.
func upload(conn *libvirt.Libvirt, vol libvirt.StorageVol, path string, r *sdk.Request, label string) error {
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
	pr := &progressReader{r: f, total: total, report: func(n int64) { r.Progress(n, total, label) }}
	if err := conn.StorageVolUpload(vol, pr, 0, uint64(total), 0); err != nil {
		return fmt.Errorf("uploading %s: %w", path, err)
	}
	r.Progress(total, total, label)
	return nil
}

type progressReader struct {
	r         io.Reader
	n, total  int64
	lastShown int64
	report    func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.total > 0 && (p.n-p.lastShown)*50 >= p.total { // every 2%
		p.lastShown = p.n
		p.report(p.n)
	}
	return n, err
}

// mkfsImage builds, on this machine, a qcow2 image of the given size that
// holds a fresh ext4 filesystem: the whole disk, no partition table, so the
// guest finds it by label.
func mkfsImage(ctx context.Context, size uint64, fs, label string) (string, func(), error) {
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
	for _, c := range [][]string{
		append(append([]string{"mke2fs"}, args...), raw),
		{"qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow},
	} {
		if out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput(); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("%s: %v: %s", c[0], err, strings.TrimSpace(string(out)))
		}
	}
	os.Remove(raw)
	return qcow, cleanup, nil
}

func volumeActions(d *driver) []*sdk.Action {
	return []*sdk.Action{
		{
			Name:        "volume_create",
			Description: "Creates a qcow2 volume of a given size, optionally holding a fresh ext4 filesystem with a label (the /var disk: whole-disk ext4, label \"var\"). Refuses to replace an existing volume.",
			Inputs: []sdk.Attr{
				sdk.String("name", "Volume name: "+NamePatternDoc+".").Required(),
				sdk.String("size", "Size: 512M, 30G, 2T, or a bare number of GiB.").Required(),
				sdk.String("filesystem", "\"ext4\" to format the volume, or \"\" for an empty disk.").Default(""),
				sdk.String("label", "Filesystem label (at most 16 characters).").Default("var"),
			},
			Outputs: volOutputs,
			Validate: checks(validName("name", "volume"), validSize("size"), func(ctx context.Context, r *sdk.Request) error {
				if !r.Known("filesystem") {
					return nil
				}
				switch fs := r.String("filesystem"); fs {
				case "":
				case "ext4":
					for _, tool := range []string{"mke2fs", "qemu-img"} {
						if _, err := exec.LookPath(tool); err != nil {
							return sdk.ArgError("filesystem", "making an %s filesystem needs %s on this machine (packages e2fsprogs and qemu-utils)", fs, tool)
						}
					}
				default:
					return sdk.ArgError("filesystem", "unsupported filesystem %q: use \"ext4\" or \"\"", fs)
				}
				if r.Known("label") && len(r.String("label")) > 16 {
					return sdk.ArgError("label", "an ext4 label has at most 16 characters")
				}
				return nil
			}),
			Run: func(ctx context.Context, r *sdk.Request) error {
				name := r.String("name")
				size, err := parseSize(r.String("size"))
				if err != nil {
					return sdk.ArgError("size", "%v", err)
				}
				if err := d.mustBeNew(name); err != nil {
					return err
				}
				var image string
				if fs := r.String("filesystem"); fs != "" {
					img, cleanup, err := mkfsImage(ctx, size, fs, r.String("label"))
					if err != nil {
						return err
					}
					defer cleanup()
					image = img
				}
				conn, vol, vi, err := d.createVolume(name, size, "qcow2", nil)
				if err != nil {
					return err
				}
				if image != "" {
					if err := upload(conn, vol, image, r, "uploading filesystem"); err != nil {
						_ = conn.StorageVolDelete(vol, 0)
						return err
					}
				}
				r.Log("created %s (%s) at %s", name, formatSize(size), vi.path)
				return setVolOutputs(r, vi)
			},
			Undo: undoDelete(d),
		},
		{
			Name:        "volume_overlay",
			Description: "Creates a thin qcow2 overlay whose backing file is a base image: a clone that costs O(1) in the base's size.",
			Inputs: []sdk.Attr{
				sdk.String("name", "Volume name: "+NamePatternDoc+".").Required(),
				sdk.String("backing", "The base image: a volume name in vmflow's pool, or an absolute path on the libvirt host.").Required(),
				sdk.String("backing_format", "Format of the base image: qcow2 or raw; auto reads it from a local file.").Default("auto"),
			},
			Outputs: volOutputs,
			Validate: checks(validName("name", "volume"), func(ctx context.Context, r *sdk.Request) error {
				if !r.Known("backing") {
					return nil
				}
				if b := r.String("backing"); !strings.HasPrefix(b, "/") {
					if err := checkName("volume", b); err != nil {
						return sdk.ArgError("backing", "%v (or give an absolute path)", err)
					}
				}
				return nil
			}),
			Run: func(ctx context.Context, r *sdk.Request) error {
				name := r.String("name")
				if err := d.mustBeNew(name); err != nil {
					return err
				}
				backing, format := r.String("backing"), r.String("backing_format")
				var capacity uint64
				if strings.HasPrefix(backing, "/") {
					conn, err := d.connect()
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
						f, size, err := imageInfo(backing)
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
					conn, _, vol, err := d.volume(backing)
					if err != nil {
						return sdk.ArgError("backing", "%v", err)
					}
					vi, err := d.volInfo(conn, vol)
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
			},
			Undo: undoDelete(d),
		},
		{
			Name:        "volume_resize",
			Description: "Grows a volume. Shrinking is refused: it would cut off data.",
			Inputs: []sdk.Attr{
				sdk.String("name", "Volume name.").Required(),
				sdk.String("size", "New size: 512M, 30G, 2T, or a bare number of GiB.").Required(),
			},
			Outputs:  volOutputs,
			Validate: checks(validName("name", "volume"), validSize("size")),
			Run: func(ctx context.Context, r *sdk.Request) error {
				size, err := parseSize(r.String("size"))
				if err != nil {
					return sdk.ArgError("size", "%v", err)
				}
				conn, _, vol, err := d.volume(r.String("name"))
				if err != nil {
					return sdk.ArgError("name", "%v", err)
				}
				vi, err := d.volInfo(conn, vol)
				if err != nil {
					return err
				}
				switch {
				case size < vi.capacity:
					return sdk.ArgError("size", "volume %q is %s; shrinking it to %s is refused (it would cut off data)", vi.name, formatSize(vi.capacity), formatSize(size))
				case size > vi.capacity:
					if err := conn.StorageVolResize(vol, size, 0); err != nil {
						return fmt.Errorf("resizing volume %q: %w", vi.name, err)
					}
					r.Log("grew %s from %s to %s", vi.name, formatSize(vi.capacity), formatSize(size))
					if vi, err = d.volInfo(conn, vol); err != nil {
						return err
					}
				}
				return setVolOutputs(r, vi)
			},
		},
		{
			Name:        "volume_delete",
			Description: "Deletes a volume and its file.",
			Inputs: []sdk.Attr{
				sdk.String("name", "Volume name.").Required(),
				sdk.Bool("missing_ok", "Succeed when the volume does not exist.").Default(false),
			},
			Outputs:  []sdk.Attr{sdk.Bool("deleted", "Whether a volume was deleted.")},
			Validate: validName("name", "volume"),
			Run: func(ctx context.Context, r *sdk.Request) error {
				deleted, err := d.deleteVolume(r.String("name"), r.Bool("missing_ok"))
				if err != nil {
					return sdk.ArgError("name", "%v", err)
				}
				return r.Set("deleted", deleted)
			},
		},
		{
			Name:        "volume_copy",
			Description: "Copies a volume into a new one (for clones and backups). The copy is complete, not thin.",
			Inputs: []sdk.Attr{
				sdk.String("source", "The volume to copy.").Required(),
				sdk.String("name", "The new volume's name.").Required(),
			},
			Outputs:  volOutputs,
			Validate: checks(validName("source", "volume"), validName("name", "volume")),
			Run: func(ctx context.Context, r *sdk.Request) error {
				name := r.String("name")
				conn, pool, src, err := d.volume(r.String("source"))
				if err != nil {
					return sdk.ArgError("source", "%v", err)
				}
				if err := d.mustBeNew(name); err != nil {
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
			},
			Undo: undoDelete(d),
		},
		{
			Name:        "volume_import",
			Description: "Streams a local image file into a new volume of vmflow's pool, through libvirt, so it works with a remote host too.",
			Inputs: []sdk.Attr{
				sdk.String("path", "The image file on this machine.").Required(),
				sdk.String("name", "The new volume's name.").Required(),
			},
			Outputs: append(append([]sdk.Attr{}, volOutputs...), sdk.String("format", "qcow2 or raw, read from the file.")),
			Validate: checks(validName("name", "volume"), func(ctx context.Context, r *sdk.Request) error {
				if !r.Known("path") {
					return nil
				}
				if st, err := os.Stat(r.String("path")); err != nil {
					return sdk.ArgError("path", "%v", err)
				} else if !st.Mode().IsRegular() {
					return sdk.ArgError("path", "%s is not a regular file", r.String("path"))
				}
				return nil
			}),
			Run: func(ctx context.Context, r *sdk.Request) error {
				name, path := r.String("name"), r.String("path")
				format, size, err := imageInfo(path)
				if err != nil {
					return sdk.ArgError("path", "%v", err)
				}
				if err := d.mustBeNew(name); err != nil {
					return err
				}
				conn, vol, vi, err := d.createVolume(name, size, format, nil)
				if err != nil {
					return err
				}
				if err := upload(conn, vol, path, r, "importing"); err != nil {
					_ = conn.StorageVolDelete(vol, 0)
					return err
				}
				if err := r.Set("format", format); err != nil {
					return err
				}
				return setVolOutputs(r, vi)
			},
			Undo: undoDelete(d),
		},
		{
			Name:        "volume_info",
			Description: "Reports whether a volume exists, and its path, sizes, format and backing file.",
			Inputs:      []sdk.Attr{sdk.String("name", "Volume name.").Required()},
			Outputs: []sdk.Attr{
				sdk.Bool("exists", "Whether the volume exists."),
				sdk.String("path", "Its file on the libvirt host."),
				sdk.Number("capacity", "Its size in bytes, as the guest sees it."),
				sdk.Number("allocation", "Bytes it uses on the host."),
				sdk.String("format", "qcow2 or raw."),
				sdk.String("backing", "The backing file of an overlay, else \"\"."),
			},
			Validate: validName("name", "volume"),
			Run: func(ctx context.Context, r *sdk.Request) error {
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
			},
		},
	}
}
