// Command vmflow-plugin-libvirt is vmflow's default hypervisor backend: it
// drives libvirtd through go-libvirt (pure Go, one persistent connection)
// and builds every XML document with libvirtxml.
package main

import (
	"context"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

var version = "0.1.0"

// newPlugin declares the plugin: the hypervisor contract
// (plugins/hypervisor), with libvirt's implementation of every action.
func newPlugin(d *driver) *sdk.Plugin {
	b := hypervisor.Backend{VMName: hypervisor.NameRuleFor("domain")}
	d.volumeActions(&b)
	d.domainActions(&b)
	d.snapshotActions(&b)
	return &sdk.Plugin{
		Name:        "libvirt",
		Version:     version,
		Description: "VMs and disks on a libvirt host (local or remote): volumes, domains, power, addresses, snapshots.",
		Config: []sdk.Attr{
			sdk.String("uri", "The libvirt URI: qemu:///system, test:///default, qemu+ssh://user@host/system, qemu+tcp://host/system.").Default("qemu:///system"),
			sdk.String("socket", "The libvirtd socket, when not the default."),
			sdk.String("pool", "The storage pool vmflow keeps its volumes in (default: vmflow-<hash of the state dir>, one per state dir)."),
			sdk.String("pool_path", "The pool's directory on the libvirt host (default: /var/lib/libvirt/vmflow/<pool> for qemu:///system, else <state dir>/libvirt-pool)."),
			sdk.String("virt_type", "Domain type: auto (kvm when hardware virtualisation works, else qemu), kvm or qemu.").Default("auto"),
		},
		Configure: func(ctx context.Context, r *sdk.Request) error {
			return d.configure(r.String("uri"), r.String("socket"), r.String("pool"), r.String("pool_path"), r.String("virt_type"), r.Env.StateDir)
		},
		Actions: hypervisor.Actions(b),
	}
}

func main() {
	sdk.Serve(newPlugin(&driver{}))
}
