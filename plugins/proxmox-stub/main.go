// Command vmflow-plugin-proxmox-stub stands in for a Proxmox VE cluster
// where none exists: it offers the hypervisor contract's actions
// (plugins/hypervisor), as the libvirt plugin does, with the same names,
// arguments and outputs, under Proxmox's rules (VMIDs from 100, volume
// ids, snapshot names, what Proxmox refuses). It runs nothing: it keeps
// the cluster in a JSON file in vmflow's state directory and logs the qm,
// pvesm and pvesh commands a real node would have been asked to run.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

var version = "0.1.0"

// driver is the stub's configuration and its state file.
type driver struct {
	node    string // the node's name, as pvesh paths take it
	storage string // where disks are allocated
	st      *store
	// stateDir is vmflow's state directory, where every cluster is kept.
	stateDir string
}

// clusterName is what a named cluster may be called: one path segment.
var clusterName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (d *driver) configure(node, storage, cluster, stateDir string) error {
	if cluster != "" && !clusterName.MatchString(cluster) {
		return sdk.ArgError("cluster", "invalid cluster name %q: it starts with a letter or digit and holds only letters, digits, '.', '_' and '-'", cluster)
	}
	if !dnsName.MatchString(node) {
		return sdk.ArgError("node", "invalid node name %q: a DNS name, as Proxmox requires", node)
	}
	if storage != lvmStorage && storage != dirStorage {
		return sdk.ArgError("storage", "unknown storage %q: the stub's node has %s (LVM-thin) and %s (a directory)", storage, lvmStorage, dirStorage)
	}
	if stateDir == "" {
		return errors.New("proxmox-stub: vmflow gave no state directory: the stub keeps its cluster there")
	}
	st := storeAt(stateDir, cluster)
	if err := os.MkdirAll(filepath.Dir(st.path), 0o755); err != nil {
		return fmt.Errorf("proxmox-stub: %w", err)
	}
	d.node, d.storage, d.st, d.stateDir = node, storage, st, stateDir
	return nil
}

// newPlugin declares the plugin: the hypervisor contract
// (plugins/hypervisor) under Proxmox's rules, with the stub's
// implementation of every action.
func newPlugin(d *driver) *sdk.Plugin {
	b := hypervisor.Backend{
		VMName:     vmName,              // a DNS name
		MinMemory:  16,                  // MiB, as qm create requires
		MACExample: "BC:24:11:12:34:56", // Proxmox's range
	}
	d.volumeActions(&b)
	volumeFileActions(d, &b)
	d.vmActions(&b)
	d.snapshotActions(&b)
	nodeActions(d, &b)
	d.addPlans(&b)
	return &sdk.Plugin{
		Name:    "proxmox-stub",
		Version: version,
		Description: "A stand-in for a Proxmox VE cluster: the libvirt plugin's actions under Proxmox's rules (VMIDs, volume ids, snapshots), " +
			"kept in a JSON file in vmflow's state directory, logging the qm/pvesm/pvesh commands a real node would run.",
		Config: []sdk.Attr{
			sdk.String("node", "The Proxmox node VMs live on, as pvesh paths name it.").Default("pve"),
			sdk.String("storage", "Where disks are allocated: local-lvm (LVM-thin, raw) or local (a directory, qcow2).").Default(lvmStorage),
			sdk.String("cluster", "Which cluster: each name keeps a cluster of its own, as another host would (vmflow's --var host=NAME); empty: the default one.").Default(""),
		},
		Configure: func(ctx context.Context, r *sdk.Request) error {
			return d.configure(r.String("node"), r.String("storage"), r.String("cluster"), r.Env.StateDir)
		},
		Actions: hypervisor.Actions(b),
	}
}

func main() {
	sdk.Serve(newPlugin(&driver{}))
}
