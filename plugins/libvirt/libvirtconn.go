package main

import libvirt "github.com/digitalocean/go-libvirt"

// libvirtConn is every go-libvirt call the plugin's actions make, and no
// other: the one seam between the plugin's logic (the XML it builds, its
// retries, claims and error messages) and libvirtd. Its implementation is
// go-libvirt's *libvirt.Libvirt, the driver's one connection; unit tests
// put a fake in its place (fake_test.go). As virter's LibvirtConnection
// is, it is written by hand, so that a call the plugin starts to use is
// added here on purpose.
//
// The streams (volume upload and download, the console) are not here:
// they run on connections of their own (rpc.go).
type libvirtConn interface {
	// The host.
	ConnectGetDomainCapabilities(emulatorbin, arch, machine, virttype libvirt.OptString, flags libvirt.ConnectGetDomainCapabilitiesFlags) (string, error)
	ConnectGetCapabilities() (string, error)
	ConnectBaselineCPU(xmlCPUs []string, flags libvirt.ConnectBaselineCPUFlags) (string, error)
	NodeGetInfo() (model [32]int8, memory uint64, cpus int32, mhz int32, nodes int32, sockets int32, cores int32, threads int32, err error)
	ConnectListAllNodeDevices(needResults int32, flags uint32) ([]libvirt.NodeDevice, uint32, error)
	NodeDeviceGetXMLDesc(name string, flags uint32) (string, error)

	// Domains: definition and state.
	ConnectListAllDomains(needResults int32, flags libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, uint32, error)
	DomainLookupByName(name string) (libvirt.Domain, error)
	DomainDefineXMLFlags(xml string, flags libvirt.DomainDefineFlags) (libvirt.Domain, error)
	DomainUndefineFlags(dom libvirt.Domain, flags libvirt.DomainUndefineFlagsValues) error
	DomainGetXMLDesc(dom libvirt.Domain, flags libvirt.DomainXMLFlags) (string, error)
	DomainIsActive(dom libvirt.Domain) (int32, error)
	DomainGetState(dom libvirt.Domain, flags uint32) (state int32, reason int32, err error)
	DomainGetMetadata(dom libvirt.Domain, typ int32, uri libvirt.OptString, flags libvirt.DomainModificationImpact) (string, error)
	DomainSetMetadata(dom libvirt.Domain, typ int32, metadata, key, uri libvirt.OptString, flags libvirt.DomainModificationImpact) error

	// Domains: power.
	DomainCreateWithFlags(dom libvirt.Domain, flags uint32) (libvirt.Domain, error)
	DomainShutdownFlags(dom libvirt.Domain, flags libvirt.DomainShutdownFlagValues) error
	DomainDestroyFlags(dom libvirt.Domain, flags libvirt.DomainDestroyFlagsValues) error
	DomainReboot(dom libvirt.Domain, flags libvirt.DomainRebootFlagValues) error
	DomainSuspend(dom libvirt.Domain) error
	DomainResume(dom libvirt.Domain) error

	// The guest: its agent and addresses.
	QEMUDomainAgentCommand(dom libvirt.Domain, cmd string, timeout int32, flags uint32) (libvirt.OptString, error)
	DomainInterfaceAddresses(dom libvirt.Domain, source uint32, flags uint32) ([]libvirt.DomainInterface, error)

	// Networks.
	NetworkLookupByName(name string) (libvirt.Network, error)
	NetworkIsActive(net libvirt.Network) (int32, error)
	NetworkCreate(net libvirt.Network) error
	NetworkGetXMLDesc(net libvirt.Network, flags uint32) (string, error)
	NetworkGetDhcpLeases(net libvirt.Network, mac libvirt.OptString, needResults int32, flags uint32) ([]libvirt.NetworkDhcpLease, uint32, error)

	// Snapshots.
	DomainListAllSnapshots(dom libvirt.Domain, needResults int32, flags uint32) ([]libvirt.DomainSnapshot, int32, error)
	DomainSnapshotLookupByName(dom libvirt.Domain, name string, flags uint32) (libvirt.DomainSnapshot, error)
	DomainSnapshotGetXMLDesc(snap libvirt.DomainSnapshot, flags uint32) (string, error)
	DomainSnapshotCreateXML(dom libvirt.Domain, xml string, flags uint32) (libvirt.DomainSnapshot, error)
	DomainRevertToSnapshot(snap libvirt.DomainSnapshot, flags uint32) error
	DomainSnapshotDelete(snap libvirt.DomainSnapshot, flags libvirt.DomainSnapshotDeleteFlags) error

	// Storage pools.
	StoragePoolLookupByName(name string) (libvirt.StoragePool, error)
	StoragePoolDefineXML(xml string, flags uint32) (libvirt.StoragePool, error)
	StoragePoolBuild(pool libvirt.StoragePool, flags libvirt.StoragePoolBuildFlags) error
	StoragePoolSetAutostart(pool libvirt.StoragePool, autostart int32) error
	StoragePoolIsActive(pool libvirt.StoragePool) (int32, error)
	StoragePoolCreate(pool libvirt.StoragePool, flags libvirt.StoragePoolCreateFlags) error
	StoragePoolRefresh(pool libvirt.StoragePool, flags uint32) error
	StoragePoolListAllVolumes(pool libvirt.StoragePool, needResults int32, flags uint32) ([]libvirt.StorageVol, uint32, error)

	// Storage volumes.
	StorageVolLookupByName(pool libvirt.StoragePool, name string) (libvirt.StorageVol, error)
	StorageVolLookupByPath(path string) (libvirt.StorageVol, error)
	StorageVolGetXMLDesc(vol libvirt.StorageVol, flags uint32) (string, error)
	StorageVolGetInfo(vol libvirt.StorageVol) (typ int8, capacity uint64, allocation uint64, err error)
	StorageVolCreateXML(pool libvirt.StoragePool, xml string, flags libvirt.StorageVolCreateFlags) (libvirt.StorageVol, error)
	StorageVolCreateXMLFrom(pool libvirt.StoragePool, xml string, from libvirt.StorageVol, flags libvirt.StorageVolCreateFlags) (libvirt.StorageVol, error)
	StorageVolResize(vol libvirt.StorageVol, capacity uint64, flags libvirt.StorageVolResizeFlags) error
	StorageVolDelete(vol libvirt.StorageVol, flags libvirt.StorageVolDeleteFlags) error
}

// go-libvirt's connection is the real one.
var _ libvirtConn = (*libvirt.Libvirt)(nil)

// parseXML decodes what a GetXMLDesc call returned, passed on whole
// (parseXML[libvirtxml.Domain](conn.DomainGetXMLDesc(dom, 0))): the
// call's error, else the document's.
func parseXML[T any, P interface {
	*T
	Unmarshal(doc string) error
}](doc string, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	x := P(new(T))
	if err := x.Unmarshal(doc); err != nil {
		return nil, err
	}
	return x, nil
}
