package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The stub keeps the simulated cluster in one JSON file under vmflow's
// state directory. Every action reads it, changes it and writes it back
// under an exclusive flock on a lock file beside it, so concurrent steps
// and concurrent vmflow runs never lose each other's changes; the file is
// replaced atomically (a temporary file, fsync, rename).

// firstVMID is where Proxmox starts allocating VMIDs (/cluster/nextid).
const firstVMID = 100

// cluster is the whole simulated cluster.
type cluster struct {
	// VMIDs maps a VM name to its VMID: the VM's own, or one reserved for
	// the name by the first disk allocated for it before the VM exists
	// (see ownerOf).
	VMIDs map[string]int `json:"vmids"`
	// VMs by name.
	VMs map[string]*vm `json:"vms"`
	// Volumes by volume id (local-lvm:vm-100-disk-0).
	Volumes map[string]*volume `json:"volumes"`
}

// vmConfig is what `qm config` would show; a snapshot keeps a copy.
type vmConfig struct {
	UUID     string `json:"uuid"`
	MAC      string `json:"mac"`
	Memory   int64  `json:"memory"`
	Cores    int64  `json:"cores"`
	Boot     string `json:"boot"` // volume id (virtio0)
	BootRO   bool   `json:"boot_ro"`
	Var      string `json:"var,omitempty"`    // volume id (virtio1)
	Firmware string `json:"firmware"`         // uefi or kernel
	Kernel   string `json:"kernel,omitempty"` // a path on the node
	Initrd   string `json:"initrd,omitempty"`
	Cmdline  string `json:"cmdline,omitempty"`
	Network  string `json:"network"` // nat, bridge:<name> or none
	// PCI are the host devices passed through (hostpciN), 0000:01:00.0.
	PCI []string `json:"pci,omitempty"`
}

type vm struct {
	VMID   int    `json:"vmid"`
	Name   string `json:"name"`
	Status string `json:"status"` // Proxmox's words: running or stopped
	// Paused: a running VM whose CPUs qm suspend stopped (qm status
	// --verbose: qmpstatus paused).
	Paused bool `json:"paused,omitempty"`
	// EFIDisk is the VM's EFI vars disk, allocated on its first UEFI
	// definition and kept (as Proxmox keeps an unused disk) until the VM
	// is destroyed.
	EFIDisk string `json:"efidisk,omitempty"`
	vmConfig
	Snapshots []snapshot `json:"snapshots,omitempty"`
}

type snapshot struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
	VMState     bool      `json:"vmstate"` // RAM included: the VM was running
	Config      vmConfig  `json:"config"`
}

// volume is a disk (vm-<vmid>-disk-<n> on a storage) or an image uploaded
// to the local storage's import content (local:import/<name>.<format>).
type volume struct {
	VolID   string `json:"volid"`
	Name    string `json:"name,omitempty"` // vmflow's name for it; none for an EFI disk
	Storage string `json:"storage"`
	VMID    int    `json:"vmid,omitempty"` // the owner; 0 for an import
	Format  string `json:"format"`         // raw or qcow2
	Size    uint64 `json:"size"`
	Used    uint64 `json:"used"`              // bytes allocated
	Backing string `json:"backing,omitempty"` // an overlay's base (a volume id)
	FS      string `json:"filesystem,omitempty"`
	Label   string `json:"label,omitempty"`
	Source  string `json:"source,omitempty"` // an import's file on this machine
	// Files in its filesystem that vmflow wrote (volume_create,
	// volume_edit): path → mode, 0644 or 0600 (secrets). Names only: the
	// stub keeps no contents.
	Files map[string]string `json:"files,omitempty"`
}

// store is the state file and its lock.
type store struct {
	path, lock string
}

// storeAt is where a cluster is kept in vmflow's state directory: the
// default one (cluster "") in proxmox-stub/, a named one (each of
// vmflow's hosts) in proxmox-stub/clusters/NAME/.
func storeAt(stateDir, cluster string) *store {
	dir := filepath.Join(stateDir, "proxmox-stub")
	if cluster != "" {
		dir = filepath.Join(dir, "clusters", cluster)
	}
	return &store{path: filepath.Join(dir, "cluster.json"), lock: filepath.Join(dir, "cluster.lock")}
}

// update runs fn on the cluster under the lock, and writes the result
// back when fn succeeds.
func (s *store) update(fn func(c *cluster) error) error {
	return s.locked(unix.LOCK_EX, func(c *cluster) error {
		if err := fn(c); err != nil {
			return err
		}
		c.forgetUnused()
		// Holding the lock, no other write is under way: a temporary
		// file is what a writer killed mid-write left.
		if old, _ := filepath.Glob(filepath.Join(filepath.Dir(s.path), ".cluster-*.json")); len(old) > 0 {
			for _, f := range old {
				os.Remove(f)
			}
		}
		b, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			return err
		}
		return s.write(append(b, '\n'))
	})
}

// view runs fn on the cluster under a shared lock; fn must not change it.
func (s *store) view(fn func(c *cluster) error) error {
	return s.locked(unix.LOCK_SH, fn)
}

func (s *store) locked(how int, fn func(c *cluster) error) error {
	f, err := os.OpenFile(s.lock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		return fmt.Errorf("locking %s: %w", s.lock, err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	c, err := s.read()
	if err != nil {
		return err
	}
	return fn(c)
}

func (s *store) read() (*cluster, error) {
	c := &cluster{}
	b, err := os.ReadFile(s.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err == nil {
		if err := json.Unmarshal(b, c); err != nil {
			return nil, fmt.Errorf("the stub's state file %s is damaged: %v", s.path, err)
		}
	}
	if c.VMIDs == nil {
		c.VMIDs = map[string]int{}
	}
	if c.VMs == nil {
		c.VMs = map[string]*vm{}
	}
	if c.Volumes == nil {
		c.Volumes = map[string]*volume{}
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("the stub's state file %s is damaged: %v; fix it by hand, or remove it to start from an empty cluster", s.path, err)
	}
	return c, nil
}

// check finds what a damaged state file (edited by hand, written by
// another version) holds that no action could have written, so that it is
// refused with a clear error instead of tripping an action up.
func (c *cluster) check() error {
	errs := checkEach(c.VMs, "VM", func(name string, v *vm) string {
		switch {
		case v.Name != name:
			return fmt.Sprintf("is recorded under the name %q", v.Name)
		case v.VMID < firstVMID:
			return fmt.Sprintf("has VMID %d (VMIDs start at %d)", v.VMID, firstVMID)
		case v.Status != running && v.Status != stopped:
			return fmt.Sprintf("has status %q (running or stopped)", v.Status)
		}
		return ""
	})
	errs = append(errs, checkEach(c.Volumes, "volume", func(id string, v *volume) string {
		switch {
		case v.VolID != id:
			return fmt.Sprintf("is recorded with the id %q", v.VolID)
		case v.Format != "raw" && v.Format != "qcow2":
			return fmt.Sprintf("has format %q (raw or qcow2)", v.Format)
		}
		return ""
	})...)
	for _, name := range sortedKeys(c.VMIDs) {
		if c.VMIDs[name] < firstVMID {
			errs = append(errs, fmt.Sprintf("vmids: %q has VMID %d (VMIDs start at %d)", name, c.VMIDs[name], firstVMID))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}

// checkEach checks the entries of m in key order: one that is null, or
// that wrong finds wrong ("" for nothing), is an error about what.
func checkEach[T any](m map[string]*T, what string, wrong func(key string, x *T) string) []string {
	var errs []string
	for _, k := range sortedKeys(m) {
		if m[k] == nil {
			errs = append(errs, fmt.Sprintf("%s %q is null", what, k))
		} else if w := wrong(k, m[k]); w != "" {
			errs = append(errs, fmt.Sprintf("%s %q %s", what, k, w))
		}
	}
	return errs
}

// sortedKeys lists a map's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// write replaces the state file atomically.
func (s *store) write(b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".cluster-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.path)
}

// ownerOf names the VM a volume belongs to: its name up to the last '-'
// (demo-var and demo-boot belong to demo), or the whole name when it has
// none. This is how tasks.hcl names a VM's volumes, <vm>-boot, <vm>-var….
func ownerOf(volume string) string {
	if i := strings.LastIndexByte(volume, '-'); i > 0 {
		return volume[:i]
	}
	return volume
}

// nextID is what Proxmox's /cluster/nextid answers: the lowest free VMID
// from 100 up.
func (c *cluster) nextID() int {
	used := map[int]bool{}
	for _, id := range c.VMIDs {
		used[id] = true
	}
	id := firstVMID
	for used[id] {
		id++
	}
	return id
}

// vmid returns the VMID of a VM name, reserving the next free one when
// the name has none yet; allocated reports whether it did.
func (c *cluster) vmid(name string) (id int, allocated bool) {
	if id, ok := c.VMIDs[name]; ok {
		return id, false
	}
	id = c.nextID()
	c.VMIDs[name] = id
	return id, true
}

// forgetUnused drops the VMIDs no VM and no disk holds any more, so that
// Proxmox would hand them out again.
func (c *cluster) forgetUnused() {
	held := map[int]bool{}
	for _, v := range c.VMs {
		held[v.VMID] = true
	}
	for _, vol := range c.Volumes {
		held[vol.VMID] = true
	}
	for name, id := range c.VMIDs {
		if !held[id] {
			delete(c.VMIDs, name)
		}
	}
}

// volumeByName finds a volume by vmflow's name for it.
func (c *cluster) volumeByName(name string) *volume {
	for _, v := range c.Volumes {
		if name != "" && v.Name == name {
			return v
		}
	}
	return nil
}

// attachedTo names the VM and the disk key (virtio0, virtio1) a volume is
// attached to, or returns nil.
func (c *cluster) attachedTo(volid string) (*vm, string) {
	for _, n := range sortedKeys(c.VMs) {
		v := c.VMs[n]
		for key, id := range map[string]string{"virtio0": v.Boot, "virtio1": v.Var} {
			if id == volid {
				return v, key
			}
		}
	}
	return nil, ""
}

// vmNames lists the VMs' names, sorted.
func (c *cluster) vmNames(prefix string) []string {
	names := []string{}
	for n := range c.VMs {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
