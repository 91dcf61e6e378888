package main

import libvirt "github.com/digitalocean/go-libvirt"

// storagePool is the driver's pool on its real connection, for the
// real-libvirtd tests that call go-libvirt beside the plugin (a pool
// refresh while a copy runs, the pool's own removal).
func (d *driver) storagePool() (*libvirt.Libvirt, libvirt.StoragePool, error) {
	_, pool, err := d.pool()
	if err != nil {
		return nil, pool, err
	}
	conn, err := d.connect()
	return conn, pool, err
}
