package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/vmflow/vmflow/core/sdk"
)

// The stub runs no guest. wait_ip answers with the VM's deterministic
// address; guest_exec and console fail clearly, naming the command a real
// Proxmox would have been asked.

// viewVM reads a VM from the cluster without changing anything.
func (d *driver) viewVM(name string) (*vm, error) {
	var v *vm
	err := d.st.view(func(c *cluster) (err error) {
		v, err = d.vmArg(c, name)
		return err
	})
	return v, err
}

// waitIP is wait_ip: the VM's deterministic address, as the agent would give it.
func (d *driver) waitIP(ctx context.Context, r *sdk.Request) error {
	v, err := d.viewVM(r.String("name"))
	if err != nil {
		return err
	}
	switch {
	case v.Status != running:
		return sdk.ArgError("name", "VM %d (%s) is not running, so it has no address", v.VMID, v.Name)
	case v.Network == "none":
		return sdk.ArgError("name", "VM %d (%s) has no network interface (network = \"none\")", v.VMID, v.Name)
	}
	r.Log("%s", command("qm", "guest", "cmd", itoa(v.VMID), "network-get-interfaces"))
	ip := ipFor(v.VMID)
	r.Log("%s has %s (from the agent)", v.Name, ip)
	return errors.Join(r.Set("ip", ip), r.Set("mac", v.MAC), r.Set("source", "agent"))
}

// guestExec is guest_exec, which the stub cannot run.
func (d *driver) guestExec(ctx context.Context, r *sdk.Request) error {
	v, err := d.viewVM(r.String("name"))
	if err != nil {
		return err
	}
	qm := command(append([]string{"qm", "guest", "exec", itoa(v.VMID), "--"}, r.Strings("argv")...)...)
	return fmt.Errorf("guest_exec is not supported by the proxmox-stub: it runs no guest (a real Proxmox would run `%s`)", qm)
}

// console is the console action, which the stub cannot attach.
func (d *driver) console(ctx context.Context, r *sdk.Request) error {
	v, err := d.viewVM(r.String("name"))
	if err != nil {
		return err
	}
	return fmt.Errorf("the proxmox-stub cannot attach a console: it runs no guest (a real Proxmox would attach `qm terminal %d`)", v.VMID)
}
