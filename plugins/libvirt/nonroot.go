package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"
	"libvirt.org/go/libvirtxml"
)

// connectHint is what to do when the daemon cannot be reached: a local
// socket this user may not open (not in the libvirt group), no daemon, or
// a TLS connection one side refused.
func (d *driver) connectHint(err error) string {
	var late *noAnswerError
	switch {
	case errors.As(err, &late):
		return "" // it says what it means
	case isTLS(d.uri):
		return tlsHint(d.uri, err)
	case !d.isLocal():
		return ""
	case errors.Is(err, unix.EACCES) && os.Getuid() != 0:
		who := "USER"
		if u, uerr := user.Current(); uerr == nil {
			who = u.Username
		}
		return fmt.Sprintf(" (libvirtd lets the libvirt group use its socket: add %s to it, as root: usermod -a -G libvirt %s, then log in again)", who, who)
	}
	return " (is libvirtd running? start it with `virtlogd -d; libvirtd -d`, or systemctl start libvirtd)"
}

// poolPermissions are the pool directory's, when the plugin makes the
// pool: 0711, so that qemu, running as its own user, reaches the disks by
// name; and, when the daemon is on this machine, owned by the user vmflow
// runs as. volume_swap renames in that directory itself (rename(2) needs
// write access to it), which a normal user in the libvirt group may not
// in a directory of root's. For root, nothing changes.
func (d *driver) poolPermissions() *libvirtxml.StoragePoolTargetPermissions {
	p := &libvirtxml.StoragePoolTargetPermissions{Mode: "0711"}
	if uid := os.Getuid(); uid != 0 && d.isLocal() && d.uri.Host == "" {
		p.Owner, p.Group = strconv.Itoa(uid), strconv.Itoa(os.Getgid())
	}
	return p
}

// swapDenied explains an exchange refused for want of write access to the
// pool's directory: a pool made by root, or before its directory was
// given to the user who made it (poolPermissions).
func swapDenied(err error, dir string) error {
	if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) {
		return err
	}
	who := strconv.Itoa(os.Getuid())
	if u, uerr := user.Current(); uerr == nil {
		who = u.Username
	}
	return fmt.Errorf("%w: volume_swap renames files in the pool's directory %s, which %s may not write (a pool made by root, or by an older vmflow); give it to %s (chown %s %s) or run vmflow as its owner", err, dir, who, who, who, dir)
}
