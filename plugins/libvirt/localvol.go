package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/core/sdk"
)

// volume_overlay makes its qcow2 file with qemu-img on this machine when
// it can, and then has libvirt read the pool's directory again, instead of
// asking libvirtd for the volume (StorageVolCreateXML). libvirtd runs the
// same qemu-img, but forks itself to do it and then probes the new volume
// and its backing chain: 2x the time of the qemu-img run on its own here
// (bench/README.md), the largest part of an overlay's cost.
//
// The file is the one libvirtd would have made: the same qemu-img options
// as libvirt 9 passes (backing_fmt, compat=0.10, the capacity in KiB), mode
// 0600, owned by the user libvirtd runs as (this is done only where that
// is this process's user: root for qemu:///system, the user for
// qemu:///session). It is made with O_EXCL, so a file already there (made
// behind libvirt's back) is never written over. Whenever this way does
// not work out (another pool type or a remote host, a file in the way,
// qemu-img failing, libvirt busy with another volume job and refusing the
// refresh), the file is removed and the volume is asked of libvirtd as
// before, so errors are libvirt's own, as they were.

// geteuid is os.Geteuid; unit tests stand in for root.
var geteuid = os.Geteuid

// qemuImg is the qemu-img binary (a variable for the unit tests).
var qemuImg = "qemu-img"

// localPoolDir is the directory of vmflow's pool when volume_overlay may
// make files in it itself ("" when not).
func (d *driver) localPoolDir(conn libvirtConn, pool libvirt.StoragePool) string {
	if !d.isLocal() || d.uri.Host != "" || (d.uri.Scheme != "qemu" && d.uri.Scheme != "qemu+unix") {
		return ""
	}
	switch d.uri.Path {
	case "/system":
		if geteuid() != 0 {
			return ""
		}
	case "/session":
	default:
		return ""
	}
	d.mu.Lock()
	dir, known := d.localDir, d.localDirKnown
	d.mu.Unlock()
	if known {
		return dir
	}
	dir = ""
	if doc, err := conn.StoragePoolGetXMLDesc(pool, 0); err == nil {
		var x libvirtxml.StoragePool
		if x.Unmarshal(doc) == nil && x.Type == "dir" && x.Target != nil && filepath.IsAbs(x.Target.Path) {
			if st, err := os.Stat(x.Target.Path); err == nil && st.IsDir() {
				dir = filepath.Clean(x.Target.Path)
			}
		}
	}
	d.mu.Lock()
	d.localDir, d.localDirKnown = dir, true
	d.mu.Unlock()
	return dir
}

// overlayLocally makes the overlay as described above. made is false when
// it did not (nothing is left behind then): the caller asks libvirtd.
func (d *driver) overlayLocally(ctx context.Context, r *sdk.Request, name string, capacity uint64, backing, format string) (vi *volInfo, made bool, err error) {
	conn, pool, err := d.pool()
	if err != nil {
		return nil, false, nil
	}
	dir := d.localPoolDir(conn, pool)
	if dir == "" {
		return nil, false, nil
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, nil // libvirtd says what is in the way
	}
	f.Close()
	// From here on a kill leaves the file: the claim says this step made
	// it, so the next attempt, or the undo, removes it.
	if err := r.Claim(volumeClaim(name), scratchClaim{File: path}); err != nil {
		os.Remove(path)
		return nil, false, err
	}
	undo := func() {
		os.Remove(path)
		_ = r.Claim(volumeClaim(name), nil)
	}
	cmd := exec.CommandContext(ctx, qemuImg, "create", "-q", "-f", "qcow2", "-b", backing,
		"-o", "backing_fmt="+format+",compat=0.10", path, fmt.Sprintf("%dK", (capacity+1023)/1024))
	if out, err := cmd.CombinedOutput(); err != nil {
		r.Log("qemu-img create %s: %v: %s; asking libvirt instead", path, err, strings.TrimSpace(string(out)))
		undo()
		return nil, false, nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		undo()
		return nil, false, nil
	}
	if err := conn.StoragePoolRefresh(pool, 0); err != nil {
		undo()
		if !strings.Contains(err.Error(), "asynchronous jobs running") {
			// libvirt stops a pool whose refresh failed: look it up,
			// and start it, again.
			d.mu.Lock()
			d.activePool = nil
			d.mu.Unlock()
		}
		return nil, false, nil
	}
	vol, err := conn.StorageVolLookupByName(pool, name)
	if err != nil || vol.Key != path {
		// The daemon does not see this machine's directory (a socket
		// to a daemon in another mount namespace): never again here.
		undo()
		d.mu.Lock()
		d.localDir = ""
		d.mu.Unlock()
		return nil, false, nil
	}
	return &volInfo{name: name, path: vol.Key, format: "qcow2", capacity: capacity, backing: backing}, true, nil
}

// removeLocalLeftover removes the file an interrupted attempt of this step
// made in the pool's directory (scratchClaim.File) while libvirt does not
// list it as a volume: once libvirt lists it, it is deleted as a volume.
func (d *driver) removeLocalLeftover(r *sdk.Request, name, file string) error {
	if file == "" {
		return nil
	}
	exists, err := d.volumeExists(name)
	if err != nil || exists {
		return err
	}
	r.Log("removing %s: an interrupted attempt of this step made it", file)
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
