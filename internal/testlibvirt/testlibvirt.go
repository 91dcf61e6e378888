// Package testlibvirt is what vmflow's tests need of libvirtd directly:
// the default pool name of a state dir, and removing a pool with whatever
// is left in it, so tests leave nothing behind on the host.
package testlibvirt

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// PoolName is the libvirt plugin's default pool for a vmflow state dir
// (plugins/libvirt/conn.go derives it the same way).
func PoolName(stateDir string) string {
	sum := sha256.Sum256([]byte(stateDir))
	return "vmflow-" + hex.EncodeToString(sum[:4])
}

// Connect opens qemu:///system on the local daemon.
func Connect() (*libvirt.Libvirt, error) {
	conn := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithLocalTimeout(5 * time.Second)))
	if err := conn.ConnectToURI(libvirt.QEMUSystem); err != nil {
		return nil, err
	}
	return conn, nil
}

// RemovePool deletes a pool's volumes, then the pool and its directory. A
// pool that does not exist is not an error.
func RemovePool(conn *libvirt.Libvirt, name string) error {
	pool, err := conn.StoragePoolLookupByName(name)
	if err != nil {
		return nil
	}
	vols, _, _ := conn.StoragePoolListAllVolumes(pool, 1, 0)
	for _, v := range vols {
		_ = conn.StorageVolDelete(v, 0)
	}
	_ = conn.StoragePoolDestroy(pool)
	_ = conn.StoragePoolDelete(pool, libvirt.StoragePoolDeleteNormal)
	return conn.StoragePoolUndefine(pool)
}
