package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// driver holds the plugin's one libvirt connection and its storage pool.
type driver struct {
	mu       sync.Mutex
	uri      *url.URL
	socket   string
	stateDir string
	virtType string // config: auto, kvm or qemu
	// stall is how long a stream may go without moving (0: defaultStall).
	stall time.Duration
	// handshake is how long a new connection may take to be ready (0:
	// defaultHandshake).
	handshake time.Duration

	conn *libvirt.Libvirt
	// fake, when set, is the connection every action uses instead of
	// dialling libvirtd: the unit tests' stand-in (fake_test.go).
	fake libvirtConn

	poolName, poolPath string
	activePool         *libvirt.StoragePool // looked up, and started, on this connection
	// shapes are the domain document shapes libvirtd checked on this
	// connection (shape.go).
	shapes map[string]*shapeCheck
}

// configure reads the plugin config and connects, so a wrong URI or an
// unreachable daemon is reported at the plugin block, before any step.
func (d *driver) configure(uri, socket, pool, poolPath, virtType, stateDir string) error {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("invalid libvirt URI %q", uri)
	}
	switch virtType {
	case "auto", "kvm", "qemu":
	default:
		return fmt.Errorf("virt_type must be auto, kvm or qemu, got %q", virtType)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.uri, d.socket, d.stateDir, d.virtType = u, socket, stateDir, virtType
	if pool == "" {
		sum := sha256.Sum256([]byte(stateDir))
		pool = "vmflow-" + hex.EncodeToString(sum[:4])
	}
	if err := hypervisor.CheckName("pool", pool); err != nil {
		return err
	}
	d.poolName = pool
	if poolPath == "" {
		poolPath = d.defaultPoolPath()
	}
	d.poolPath = poolPath
	_, err = d.clientLocked()
	return err
}

// defaultPoolPath: qemu runs as its own user under qemu:///system, and
// every directory above a disk must be traversable by it, which a home
// directory is not; so the system driver's pools live under
// /var/lib/libvirt. Other drivers keep the pool in the state directory.
func (d *driver) defaultPoolPath() string {
	if strings.HasPrefix(d.uri.Scheme, "qemu") && d.uri.Path == "/system" {
		return "/var/lib/libvirt/vmflow/" + d.poolName
	}
	return filepath.Join(d.stateDir, "libvirt-pool")
}

// isLocal reports whether the libvirt daemon runs on this machine.
func (d *driver) isLocal() bool {
	return !strings.Contains(d.uri.Scheme, "+") || strings.HasSuffix(d.uri.Scheme, "+unix")
}

// client is the connection the actions use: go-libvirt's, or the fake.
func (d *driver) client() (libvirtConn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.clientLocked()
}

func (d *driver) clientLocked() (libvirtConn, error) {
	if d.fake != nil {
		return d.fake, nil
	}
	conn, err := d.connLocked()
	if err != nil {
		return nil, err // not a nil *libvirt.Libvirt in an interface
	}
	return conn, nil
}

// connect is the real connection, dialled if need be.
func (d *driver) connect() (*libvirt.Libvirt, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.connLocked()
}

// connLocked returns the connection, dialling again if it dropped.
func (d *driver) connLocked() (*libvirt.Libvirt, error) {
	if d.conn != nil && d.conn.IsConnected() {
		return d.conn, nil
	}
	d.activePool = nil // pools must be looked up again on a new connection
	d.shapes = nil     // and the schema may have changed with the daemon
	u := *d.uri
	if d.socket != "" {
		q := u.Query()
		q.Set("socket", d.socket)
		u.RawQuery = q.Encode()
	}
	dialer, err := dialerFor(&u, "")
	var conn *libvirt.Libvirt
	if err == nil {
		b := bounded(dialer, d.handshakeLimit())
		conn = libvirt.NewWithDialer(b)
		err = b.finish(conn.ConnectToURI(libvirt.RemoteURI(&u)))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s: %v%s", d.uri.Redacted(), err, d.connectHint(err))
	}
	d.conn = conn
	return conn, nil
}

func (d *driver) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil {
		_ = d.conn.Disconnect()
		d.conn = nil
	}
}

// pool returns vmflow's directory pool, defining, building and starting
// it the first time.
func (d *driver) pool() (libvirtConn, libvirt.StoragePool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	conn, err := d.clientLocked()
	if err != nil {
		return nil, libvirt.StoragePool{}, err
	}
	if d.activePool != nil {
		return conn, *d.activePool, nil
	}
	pool, err := d.ensurePool(conn)
	if err != nil {
		return nil, pool, err
	}
	d.activePool = &pool
	return conn, pool, nil
}

// ensurePool looks the pool up, or defines, builds and marks it to
// autostart, then starts it if it is not active.
func (d *driver) ensurePool(conn libvirtConn) (libvirt.StoragePool, error) {
	pool, err := conn.StoragePoolLookupByName(d.poolName)
	if isCode(err, libvirt.ErrNoStoragePool) {
		if pool, err = d.definePool(conn); err != nil {
			return pool, err
		}
	} else if err != nil {
		return pool, fmt.Errorf("storage pool %s: %w", d.poolName, err)
	}
	active, err := conn.StoragePoolIsActive(pool)
	if err != nil {
		return pool, fmt.Errorf("storage pool %s: %w", d.poolName, err)
	}
	if active == 0 {
		if err := conn.StoragePoolCreate(pool, 0); err != nil {
			return pool, fmt.Errorf("starting storage pool %s: %w", d.poolName, err)
		}
	}
	return pool, nil
}

// definePool defines the pool (a directory), builds it and marks it to
// autostart.
func (d *driver) definePool(conn libvirtConn) (libvirt.StoragePool, error) {
	x := libvirtxml.StoragePool{
		Type:   "dir",
		Name:   d.poolName,
		Target: &libvirtxml.StoragePoolTarget{Path: d.poolPath, Permissions: d.poolPermissions()},
	}
	doc, err := x.Marshal()
	if err != nil {
		return libvirt.StoragePool{}, err
	}
	pool, err := conn.StoragePoolDefineXML(doc, 0)
	if err != nil {
		return pool, fmt.Errorf("defining storage pool %s at %s: %w", d.poolName, d.poolPath, err)
	}
	if err = conn.StoragePoolBuild(pool, libvirt.StoragePoolBuildNew); err != nil {
		return pool, fmt.Errorf("building storage pool %s at %s: %w", d.poolName, d.poolPath, err)
	}
	if err = conn.StoragePoolSetAutostart(pool, 1); err != nil {
		return pool, fmt.Errorf("storage pool %s: %w", d.poolName, err)
	}
	return pool, nil
}

// isCode reports whether err is a libvirt error with that number.
func isCode(err error, code libvirt.ErrorNumber) bool {
	var le libvirt.Error
	return errors.As(err, &le) && le.Code == uint32(code)
}

// domainType picks the domain type: kvm when the host can really run KVM
// guests, qemu (TCG) otherwise, unless the config fixes it.
func (d *driver) domainType(conn libvirtConn) (string, error) {
	switch d.virtType {
	case "kvm", "qemu":
		return d.virtType, nil
	}
	if d.uri.Scheme == "test" {
		return "test", nil
	}
	// The daemon knows whether it can run KVM guests.
	if _, err := conn.ConnectGetDomainCapabilities(nil, libvirt.OptString{"x86_64"}, nil, libvirt.OptString{"kvm"}, 0); err != nil {
		return "qemu", nil
	}
	if d.isLocal() && !hardwareKVM() || !d.isLocal() && !remoteHardwareKVM(conn) {
		return "qemu", nil
	}
	return "kvm", nil
}

// remoteHardwareKVM is hardwareKVM for a daemon on another machine, asked
// through libvirt: whether its CPU has VT-x (vmx) or AMD-V (svm). The host
// CPU in the capabilities is a named model plus the features beyond it, and
// AMD's models hold svm, so the model is expanded first. If libvirtd cannot
// say, KVM is taken on its word, as before.
func remoteHardwareKVM(conn libvirtConn) bool {
	caps, err := parseXML[libvirtxml.Caps](conn.ConnectGetCapabilities())
	if err != nil || caps.Host.CPU == nil {
		return true
	}
	hostCPU, err := caps.Host.CPU.Marshal()
	if err != nil {
		return true
	}
	cpu, err := parseXML[libvirtxml.DomainCPU](conn.ConnectBaselineCPU([]string{hostCPU}, libvirt.ConnectBaselineCPUExpandFeatures))
	if err != nil {
		return true
	}
	for _, f := range cpu.Features {
		if (f.Name == "vmx" || f.Name == "svm") && f.Policy != "disable" && f.Policy != "forbid" {
			return true
		}
	}
	return false
}

// hardwareKVM reports whether this machine's /dev/kvm is backed by
// hardware virtualisation (kvm_intel or kvm_amd). Other KVM flavours, such
// as the paravirtual kvm_pvm of some cloud sandboxes, cannot boot a stock
// guest kernel.
func hardwareKVM() bool {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return false
	}
	for _, m := range []string{"kvm_intel", "kvm_amd"} {
		if _, err := os.Stat("/sys/module/" + m); err == nil {
			return true
		}
	}
	return false
}
