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

func waitIPAction(d *driver) *sdk.Action {
	return &sdk.Action{
		Name:        "wait_ip",
		Description: "The VM's IPv4 address, as the guest agent reports it (qm guest cmd VMID network-get-interfaces). The stub's address is 10.x.y.z, derived from the VMID (VMID 100: 10.0.0.100).",
		Inputs: []sdk.Attr{
			sdk.String("name", "VM name.").Required(),
			sdk.Number("timeout", "Seconds to wait.").Default(180),
		},
		Outputs: []sdk.Attr{
			sdk.String("ip", "The IPv4 address."),
			sdk.String("mac", "The MAC it belongs to."),
			sdk.String("source", "Who told: the agent."),
		},
		Validate: checks(validVMName, atLeast("timeout", 1)),
		Run: func(ctx context.Context, r *sdk.Request) error {
			var v *vm
			if err := d.st.view(func(c *cluster) (err error) {
				v, err = d.vmArg(c, r.String("name"))
				return err
			}); err != nil {
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
		},
	}
}

func guestExecAction(d *driver) *sdk.Action {
	return &sdk.Action{
		Name:        "guest_exec",
		Description: "Not supported by the stub, which runs no guest: it fails, naming the qm guest exec a real Proxmox would run.",
		Inputs: []sdk.Attr{
			sdk.String("name", "VM name.").Required(),
			sdk.StringList("argv", "The command and its arguments, run as they are in the guest.").Required(),
			sdk.String("stdin", "Text fed to the command's standard input."),
			sdk.Number("timeout", "Seconds to wait for the command.").Default(60),
			sdk.Bool("allow_failure", "Do not fail on a non-zero exit code.").Default(false),
		},
		Outputs: []sdk.Attr{
			sdk.String("stdout", "Standard output."),
			sdk.String("stderr", "Standard error."),
			sdk.Number("exit_code", "The exit status."),
		},
		Validate: checks(validVMName, atLeast("timeout", 1), func(ctx context.Context, r *sdk.Request) error {
			if r.Known("argv") && len(r.Strings("argv")) == 0 {
				return sdk.ArgError("argv", "must name a command")
			}
			return nil
		}),
		Run: func(ctx context.Context, r *sdk.Request) error {
			var v *vm
			if err := d.st.view(func(c *cluster) (err error) {
				v, err = d.vmArg(c, r.String("name"))
				return err
			}); err != nil {
				return err
			}
			qm := command(append([]string{"qm", "guest", "exec", itoa(v.VMID), "--"}, r.Strings("argv")...)...)
			return fmt.Errorf("guest_exec is not supported by the proxmox-stub: it runs no guest (a real Proxmox would run `%s`)", qm)
		},
	}
}

func consoleAction(d *driver) *sdk.Action {
	return &sdk.Action{
		Name:        "console",
		Description: "Not supported by the stub, which runs no guest: it fails, naming the qm terminal a real Proxmox would attach.",
		Interactive: true,
		Inputs: []sdk.Attr{
			sdk.String("name", "VM name.").Required(),
			sdk.Bool("force", "Take the console over from another session.").Default(false),
		},
		Validate: validVMName,
		Run: func(ctx context.Context, r *sdk.Request) error {
			var v *vm
			if err := d.st.view(func(c *cluster) (err error) {
				v, err = d.vmArg(c, r.String("name"))
				return err
			}); err != nil {
				return err
			}
			return fmt.Errorf("the proxmox-stub cannot attach a console: it runs no guest (a real Proxmox would attach `qm terminal %d`)", v.VMID)
		},
	}
}
