package main

import (
	"fmt"
	"path"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// fakeLibvirt's snapshots, storage pools and volumes (fake_test.go has
// the rest).

func (f *fakeLibvirt) DomainListAllSnapshots(dom libvirt.Domain, _ int32, _ uint32) ([]libvirt.DomainSnapshot, int32, error) {
	defer f.mu.Unlock()
	fd, err := f.onDomain("DomainListAllSnapshots", dom)
	if err != nil {
		return nil, 0, err
	}
	var out []libvirt.DomainSnapshot
	for _, s := range fd.snaps {
		out = append(out, s.snap)
	}
	return out, int32(len(out)), nil
}

func (f *fakeLibvirt) lookupSnapshot(dom libvirt.Domain, name string) (*fakeDomain, int, error) {
	fd, err := f.lookupDomain(dom)
	if err != nil {
		return nil, 0, err
	}
	for i, s := range fd.snaps {
		if s.snap.Name == name {
			return fd, i, nil
		}
	}
	return nil, 0, lvErr(libvirt.ErrNoDomainSnapshot, "Domain snapshot not found: no domain snapshot with matching name '%s'", name)
}

func (f *fakeLibvirt) DomainSnapshotLookupByName(dom libvirt.Domain, name string, _ uint32) (libvirt.DomainSnapshot, error) {
	defer f.mu.Unlock()
	fd, i, err := f.onSnapshot("DomainSnapshotLookupByName", dom, name)
	if err != nil {
		return libvirt.DomainSnapshot{}, err
	}
	return fd.snaps[i].snap, nil
}

func (f *fakeLibvirt) DomainSnapshotGetXMLDesc(snap libvirt.DomainSnapshot, _ uint32) (string, error) {
	defer f.mu.Unlock()
	fd, i, err := f.onSnapshot("DomainSnapshotGetXMLDesc", snap.Dom, snap.Name)
	if err != nil {
		return "", err
	}
	return fd.snaps[i].xml, nil
}

// DomainSnapshotCreateXML keeps the snapshot as libvirt describes it:
// with its creation time, the domain's state and its parent (the
// current snapshot).
func (f *fakeLibvirt) DomainSnapshotCreateXML(dom libvirt.Domain, doc string, _ uint32) (libvirt.DomainSnapshot, error) {
	defer f.mu.Unlock()
	fd, err := f.onDomain("DomainSnapshotCreateXML", dom)
	if err != nil {
		return libvirt.DomainSnapshot{}, err
	}
	var x libvirtxml.DomainSnapshot
	if err := x.Unmarshal(doc); err != nil {
		return libvirt.DomainSnapshot{}, lvErr(libvirt.ErrXMLError, "XML error: %v", err)
	}
	x.CreationTime = fmt.Sprint(f.clock)
	f.clock++
	x.State = stateNames[fd.state]
	if fd.current != "" {
		x.Parent = &libvirtxml.DomainSnapshotParent{Name: fd.current}
	}
	out, err := x.Marshal()
	if err != nil {
		return libvirt.DomainSnapshot{}, err
	}
	s := libvirt.DomainSnapshot{Name: x.Name, Dom: fd.dom}
	fd.snaps = append(fd.snaps, &fakeSnapshot{snap: s, xml: out})
	fd.current = x.Name
	return s, nil
}

func (f *fakeLibvirt) DomainRevertToSnapshot(snap libvirt.DomainSnapshot, _ uint32) error {
	defer f.mu.Unlock()
	fd, _, err := f.onSnapshot("DomainRevertToSnapshot", snap.Dom, snap.Name)
	if err == nil {
		fd.current = snap.Name
	}
	return err
}

func (f *fakeLibvirt) DomainSnapshotDelete(snap libvirt.DomainSnapshot, _ libvirt.DomainSnapshotDeleteFlags) error {
	defer f.mu.Unlock()
	fd, i, err := f.onSnapshot("DomainSnapshotDelete", snap.Dom, snap.Name)
	if err != nil {
		return err
	}
	fd.snaps = append(fd.snaps[:i], fd.snaps[i+1:]...)
	return nil
}

// Storage pools.

func (f *fakeLibvirt) lookupPool(name string) (*fakePool, error) {
	if p := f.pools[name]; p != nil {
		return p, nil
	}
	return nil, lvErr(libvirt.ErrNoStoragePool, "Storage pool not found: no storage pool with matching name '%s'", name)
}

func (f *fakeLibvirt) StoragePoolLookupByName(name string) (libvirt.StoragePool, error) {
	defer f.mu.Unlock()
	p, err := f.onPool("StoragePoolLookupByName", name)
	if err != nil {
		return libvirt.StoragePool{}, err
	}
	return p.pool, nil
}

func (f *fakeLibvirt) StoragePoolDefineXML(doc string, _ uint32) (libvirt.StoragePool, error) {
	defer f.mu.Unlock()
	if err := f.enter("StoragePoolDefineXML"); err != nil {
		return libvirt.StoragePool{}, err
	}
	var x libvirtxml.StoragePool
	if err := x.Unmarshal(doc); err != nil {
		return libvirt.StoragePool{}, lvErr(libvirt.ErrXMLError, "XML error: %v", err)
	}
	p := &fakePool{pool: libvirt.StoragePool{Name: x.Name}, vols: map[string]*fakeVolume{}}
	if x.Target != nil {
		p.path = x.Target.Path
	}
	f.pools[x.Name] = p
	return p.pool, nil
}

// poolOp changes a pool that exists.
func (f *fakeLibvirt) poolOp(method string, pool libvirt.StoragePool, op func(*fakePool)) error {
	defer f.mu.Unlock()
	if err := f.enter(method); err != nil {
		return err
	}
	p, err := f.lookupPool(pool.Name)
	if err == nil {
		op(p)
	}
	return err
}

func (f *fakeLibvirt) StoragePoolBuild(pool libvirt.StoragePool, _ libvirt.StoragePoolBuildFlags) error {
	return f.poolOp("StoragePoolBuild", pool, func(p *fakePool) { p.built = true })
}

func (f *fakeLibvirt) StoragePoolSetAutostart(pool libvirt.StoragePool, autostart int32) error {
	return f.poolOp("StoragePoolSetAutostart", pool, func(p *fakePool) { p.autostart = autostart != 0 })
}

func (f *fakeLibvirt) StoragePoolCreate(pool libvirt.StoragePool, _ libvirt.StoragePoolCreateFlags) error {
	return f.poolOp("StoragePoolCreate", pool, func(p *fakePool) { p.active = true })
}

func (f *fakeLibvirt) StoragePoolRefresh(pool libvirt.StoragePool, _ uint32) error {
	return f.poolOp("StoragePoolRefresh", pool, func(*fakePool) {})
}

func (f *fakeLibvirt) StoragePoolIsActive(pool libvirt.StoragePool) (int32, error) {
	defer f.mu.Unlock()
	p, err := f.onPool("StoragePoolIsActive", pool.Name)
	if err != nil || !p.active {
		return 0, err
	}
	return 1, nil
}

func (f *fakeLibvirt) StoragePoolListAllVolumes(pool libvirt.StoragePool, _ int32, _ uint32) ([]libvirt.StorageVol, uint32, error) {
	defer f.mu.Unlock()
	p, err := f.onPool("StoragePoolListAllVolumes", pool.Name)
	if err != nil {
		return nil, 0, err
	}
	var out []libvirt.StorageVol
	for _, v := range p.vols {
		out = append(out, v.vol)
	}
	return out, uint32(len(out)), nil
}

// Storage volumes.

func (f *fakeLibvirt) lookupVolume(pool, name string) (*fakePool, *fakeVolume, error) {
	p, err := f.lookupPool(pool)
	if err != nil {
		return nil, nil, err
	}
	if v := p.vols[name]; v != nil {
		return p, v, nil
	}
	return nil, nil, lvErr(libvirt.ErrNoStorageVol, "Storage volume not found: no storage vol with matching name '%s'", name)
}

func (f *fakeLibvirt) StorageVolLookupByName(pool libvirt.StoragePool, name string) (libvirt.StorageVol, error) {
	defer f.mu.Unlock()
	_, v, err := f.onVolume("StorageVolLookupByName", pool.Name, name)
	if err != nil {
		return libvirt.StorageVol{}, err
	}
	return v.vol, nil
}

func (f *fakeLibvirt) StorageVolLookupByPath(p string) (libvirt.StorageVol, error) {
	defer f.mu.Unlock()
	if err := f.enter("StorageVolLookupByPath"); err != nil {
		return libvirt.StorageVol{}, err
	}
	for _, pool := range f.pools {
		for _, v := range pool.vols {
			if v.vol.Key == p {
				return v.vol, nil
			}
		}
	}
	return libvirt.StorageVol{}, lvErr(libvirt.ErrNoStorageVol, "Storage volume not found: no storage vol with matching path '%s'", p)
}

func (f *fakeLibvirt) StorageVolGetXMLDesc(vol libvirt.StorageVol, _ uint32) (string, error) {
	defer f.mu.Unlock()
	_, v, err := f.onVolume("StorageVolGetXMLDesc", vol.Pool, vol.Name)
	if err != nil {
		return "", err
	}
	return v.x.Marshal()
}

func (f *fakeLibvirt) StorageVolGetInfo(vol libvirt.StorageVol) (int8, uint64, uint64, error) {
	defer f.mu.Unlock()
	_, v, err := f.onVolume("StorageVolGetInfo", vol.Pool, vol.Name)
	if err != nil {
		return 0, 0, 0, err
	}
	return 0, v.x.Capacity.Value, v.x.Capacity.Value, nil
}

// addVolume makes a volume as a directory pool does: its key and path
// are the file's path in the pool's directory.
func (f *fakeLibvirt) addVolume(pool libvirt.StoragePool, doc string) (libvirt.StorageVol, error) {
	p, err := f.lookupPool(pool.Name)
	if err != nil {
		return libvirt.StorageVol{}, err
	}
	var x libvirtxml.StorageVolume
	if err := x.Unmarshal(doc); err != nil {
		return libvirt.StorageVol{}, lvErr(libvirt.ErrXMLError, "XML error: %v", err)
	}
	if p.vols[x.Name] != nil {
		return libvirt.StorageVol{}, lvErr(libvirt.ErrStorageVolExist, "storage volume '%s' exists already", x.Name)
	}
	if x.Target == nil {
		x.Target = &libvirtxml.StorageVolumeTarget{}
	}
	x.Target.Path = path.Join(p.path, x.Name)
	if x.Allocation == nil {
		x.Allocation = &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: x.Capacity.Value}
	}
	v := &fakeVolume{vol: libvirt.StorageVol{Pool: p.pool.Name, Name: x.Name, Key: x.Target.Path}, x: x}
	p.vols[x.Name] = v
	return v.vol, nil
}

func (f *fakeLibvirt) StorageVolCreateXML(pool libvirt.StoragePool, doc string, _ libvirt.StorageVolCreateFlags) (libvirt.StorageVol, error) {
	defer f.mu.Unlock()
	if err := f.enter("StorageVolCreateXML"); err != nil {
		return libvirt.StorageVol{}, err
	}
	return f.addVolume(pool, doc)
}

func (f *fakeLibvirt) StorageVolCreateXMLFrom(pool libvirt.StoragePool, doc string, from libvirt.StorageVol, _ libvirt.StorageVolCreateFlags) (libvirt.StorageVol, error) {
	defer f.mu.Unlock()
	if err := f.enter("StorageVolCreateXMLFrom"); err != nil {
		return libvirt.StorageVol{}, err
	}
	if _, _, err := f.lookupVolume(from.Pool, from.Name); err != nil {
		return libvirt.StorageVol{}, err
	}
	return f.addVolume(pool, doc)
}

func (f *fakeLibvirt) StorageVolResize(vol libvirt.StorageVol, capacity uint64, _ libvirt.StorageVolResizeFlags) error {
	defer f.mu.Unlock()
	_, v, err := f.onVolume("StorageVolResize", vol.Pool, vol.Name)
	if err == nil {
		v.x.Capacity = &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: capacity}
	}
	return err
}

func (f *fakeLibvirt) StorageVolDelete(vol libvirt.StorageVol, _ libvirt.StorageVolDeleteFlags) error {
	defer f.mu.Unlock()
	p, _, err := f.onVolume("StorageVolDelete", vol.Pool, vol.Name)
	if err == nil {
		delete(p.vols, vol.Name)
	}
	return err
}
