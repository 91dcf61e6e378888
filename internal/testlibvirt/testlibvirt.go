// Package testlibvirt is what vmflow's tests need of libvirtd directly:
// the default pool name of a state dir, and removing a pool with whatever
// is left in it, so tests leave nothing behind on the host.
package testlibvirt

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
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

// TCPDaemon is a libvirtd of a test's own that listens on 127.0.0.1, for
// qemu+tcp:// or qemu+tls://: the session daemon of an unprivileged user,
// with a config file and runtime directories in a temporary directory,
// so the machine's libvirtd and its configuration are not touched.
type TCPDaemon struct {
	URI  string // qemu+tcp://127.0.0.1:PORT/session, or qemu+tls://…
	Dir  string // its HOME, owned by the user
	Port string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartTCP runs libvirtd --listen as user (who must exist) on a free
// port, with auth_tcp = "none" (the port is bound to 127.0.0.1 only).
func StartTCP(username string) (*TCPDaemon, error) {
	return start(username, func(dir, port string) (string, string, error) {
		conf := fmt.Sprintf("listen_tls = 0\nlisten_tcp = 1\nlisten_addr = \"127.0.0.1\"\ntcp_port = %q\nauth_tcp = \"none\"\n", port)
		return conf, "qemu+tcp://127.0.0.1:" + port + "/session", nil
	})
}

// start runs libvirtd --listen as user on a free port of 127.0.0.1, with
// the config conf returns for the daemon's directory and port; conf
// also returns the URI that reaches it.
func start(username string, conf func(dir, port string) (text, uri string, err error)) (*TCPDaemon, error) {
	u, err := user.Lookup(username)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "vmflow-libvirtd-tcp-")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	text, uri, err := conf(dir, port)
	if err != nil {
		return nil, err
	}
	confFile := filepath.Join(dir, "libvirtd.conf")
	if err := os.WriteFile(confFile, []byte(text), 0o644); err != nil {
		return nil, err
	}
	// The daemon runs as the user: its directory and all in it are the
	// user's.
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	}); err != nil {
		return nil, err
	}
	d := &TCPDaemon{URI: uri, Dir: dir, Port: port, done: make(chan struct{})}
	logf, err := os.Create(filepath.Join(dir, "libvirtd.log"))
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command("libvirtd", "--listen", "-f", confFile)
	d.cmd.Dir = dir
	d.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "XDG_CACHE_HOME=" + filepath.Join(dir, "cache"), "XDG_DATA_HOME=" + filepath.Join(dir, "data")}
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = d.cmd.Wait(); logf.Close(); close(d.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			b, _ := os.ReadFile(filepath.Join(dir, "libvirtd.log"))
			return nil, fmt.Errorf("libvirtd exited: %s", b)
		default:
		}
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			return d, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.Stop()
	return nil, fmt.Errorf("libvirtd did not listen on 127.0.0.1:%s within 15s", port)
}

// Stop ends the daemon and removes its directory.
func (d *TCPDaemon) Stop() {
	if d.cmd.Process != nil {
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	_ = os.RemoveAll(d.Dir)
}
