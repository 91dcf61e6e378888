package main

import (
	"context"
	"errors"

	"github.com/vmflow/vmflow/core/sdk"
)

// start is start's Run.
func (d *driver) start(ctx context.Context, r *sdk.Request) error {
	started := false
	err := d.changeVM(r, func(v *vm, cmds *commands) error {
		if v.Status != running {
			if err := r.Claim(startClaim(v.Name), nil); err != nil {
				return err
			}
			cmds.add("qm", "start", itoa(v.VMID))
			v.Status, started = running, true
		} else if r.Claimed(startClaim(v.Name), nil) {
			// Started by an interrupted attempt of this step.
			started = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(r.Set("started", started), r.Set("state", stateWord(running)))
}

// undoStart is start's Undo.
func (d *driver) undoStart(ctx context.Context, r *sdk.Request) error {
	if !r.Changed("started", startClaim(r.String("name"))) {
		return nil
	}
	return d.change(r, func(c *cluster, cmds *commands) error {
		if v := c.VMs[r.String("name")]; v != nil && v.Status == running {
			cmds.add("qm", "stop", itoa(v.VMID))
			v.stop()
		}
		return nil
	})
}

// shutdown is shutdown's Run.
func (d *driver) shutdown(ctx context.Context, r *sdk.Request) error {
	stoppedNow := false
	err := d.changeVM(r, func(v *vm, cmds *commands) error {
		if v.Status == running {
			if err := r.Claim(shutdownClaim(v.Name), nil); err != nil {
				return err
			}
			if limit := r.Timeout(); limit > 0 {
				cmds.add("qm", "shutdown", itoa(v.VMID), "--timeout", itoa(int(limit.Seconds())))
			} else {
				cmds.add("qm", "shutdown", itoa(v.VMID))
			}
			v.stop()
			stoppedNow = true
		} else if r.Claimed(shutdownClaim(v.Name), nil) {
			// Stopped by an interrupted attempt of this step.
			stoppedNow = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(r.Set("state", stateWord(stopped)), r.Set("stopped", stoppedNow))
}

// undoShutdown is shutdown's Undo.
func (d *driver) undoShutdown(ctx context.Context, r *sdk.Request) error {
	if !r.Changed("stopped", shutdownClaim(r.String("name"))) {
		return nil
	}
	return d.change(r, func(c *cluster, cmds *commands) error {
		if v := c.VMs[r.String("name")]; v != nil && v.Status != running {
			cmds.add("qm", "start", itoa(v.VMID))
			v.Status = running
		}
		return nil
	})
}

// suspend is suspend's Run.
func (d *driver) suspend(ctx context.Context, r *sdk.Request) error {
	return changeVMOutput(d, r, "suspended", func(v *vm, cmds *commands) (bool, error) {
		if v.Status == running && !v.Paused {
			if err := r.Claim(suspendClaim(v.Name), nil); err != nil {
				return false, err
			}
			cmds.add("qm", "suspend", itoa(v.VMID))
			v.Paused = true
			return true, nil
		}
		// Paused by an interrupted attempt of this step?
		return v.Paused && r.Claimed(suspendClaim(v.Name), nil), nil
	})
}

// undoSuspend is suspend's Undo.
func (d *driver) undoSuspend(ctx context.Context, r *sdk.Request) error {
	if !r.Changed("suspended", suspendClaim(r.String("name"))) {
		return nil
	}
	return d.change(r, func(c *cluster, cmds *commands) error {
		if v := c.VMs[r.String("name")]; v != nil && v.Status == running && v.Paused {
			cmds.add("qm", "resume", itoa(v.VMID))
			v.Paused = false
		}
		return nil
	})
}

// resume is resume's Run.
func (d *driver) resume(ctx context.Context, r *sdk.Request) error {
	return changeVMOutput(d, r, "resumed", func(v *vm, cmds *commands) (bool, error) {
		if v.Status != running || !v.Paused {
			return false, nil
		}
		cmds.add("qm", "resume", itoa(v.VMID))
		v.Paused = false
		return true, nil
	})
}

// destroy is destroy's Run.
func (d *driver) destroy(ctx context.Context, r *sdk.Request) error {
	return changeVMOutput(d, r, "was_running", func(v *vm, cmds *commands) (bool, error) {
		if v.Status != running {
			return false, nil
		}
		cmds.add("qm", "stop", itoa(v.VMID))
		v.stop()
		return true, nil
	})
}

// reboot is reboot's Run.
func (d *driver) reboot(ctx context.Context, r *sdk.Request) error {
	v, err := d.viewVM(r.String("name"))
	if err != nil {
		return err
	}
	if v.Status != running {
		return sdk.ArgError("name", "VM %d (%s) is not running (Proxmox: VM %d not running)", v.VMID, v.Name, v.VMID)
	}
	r.Log("%s", command("qm", "reboot", itoa(v.VMID)))
	return nil
}
