package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/vmflow/vmflow/core/sdk"
)

// domainToUndo is the domain an undo works on: the step's, if the step
// changed it (flag; after an interrupted Run, the claim) and it is still
// there.
func (d *driver) domainToUndo(r *sdk.Request, flag, claim string) (libvirtConn, libvirt.Domain, bool, error) {
	if !r.Changed(flag, claim) {
		return nil, libvirt.Domain{}, false, nil
	}
	conn, dom, err := d.domain(r.String("name"))
	if err != nil {
		return nil, dom, false, ignoreNoDomain(err)
	}
	return conn, dom, true, nil
}

// waitState polls until the domain reaches one of the states or ctx ends.
func waitState(ctx context.Context, conn libvirtConn, dom libvirt.Domain, timeout time.Duration, want ...libvirt.DomainState) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, _, err := conn.DomainGetState(dom, 0)
		if err != nil {
			return false, err
		}
		for _, w := range want {
			if libvirt.DomainState(st) == w {
				return true, nil
			}
		}
		if !time.Now().Before(deadline) {
			return false, nil
		}
		if err := sleepUntil(ctx, 200*time.Millisecond, deadline); err != nil {
			return false, err
		}
	}
}

// shutdownRetry is how often shutdown asks the guest again.
const shutdownRetry = 5 * time.Second

// shutdownFlags and rebootFlags are what each mode asks libvirt for.
var (
	shutdownFlags = map[string]libvirt.DomainShutdownFlagValues{
		"auto":  0,
		"acpi":  libvirt.DomainShutdownAcpiPowerBtn,
		"agent": libvirt.DomainShutdownGuestAgent,
	}
	rebootFlags = map[string]libvirt.DomainRebootFlagValues{
		"auto":  0,
		"acpi":  libvirt.DomainRebootAcpiPowerBtn,
		"agent": libvirt.DomainRebootGuestAgent,
	}
)

// startDomain starts a domain and records when, for wait_ip.
func startDomain(conn libvirtConn, dom libvirt.Domain, r *sdk.Request) error {
	now := time.Now()
	if _, err := conn.DomainCreateWithFlags(dom, 0); err != nil {
		return fmt.Errorf("starting %q: %w", dom.Name, err)
	}
	if err := markStarted(conn, dom, now); err != nil {
		r.Logger().Warn("cannot record the start time; wait_ip may take an old lease", "error", err)
	}
	return nil
}

// start is start's Run.
func (d *driver) start(ctx context.Context, r *sdk.Request) error {
	conn, dom, active, err := d.activeDomainArg(r.String("name"))
	if err != nil {
		return err
	}
	started := false
	var earlier powerClaim
	if !active {
		now := time.Now()
		if err := r.Claim(startClaim(dom.Name), powerClaim{At: now}); err != nil {
			return err
		}
		if err := startDomain(conn, dom, r); err != nil {
			return err
		}
		started = true
	} else if r.Claimed(startClaim(dom.Name), &earlier) && !earlier.At.IsZero() {
		// An interrupted attempt of this step started it: it is
		// this step's start, for the undo and for wait_ip.
		r.Log("%s was started by an interrupted attempt of this step", dom.Name)
		started = true
		if err := markStarted(conn, dom, earlier.At); err != nil {
			r.Logger().Warn("cannot record the start time; wait_ip may take an old lease", "error", err)
		}
	}
	st, err := d.state(conn, dom)
	if err != nil {
		return err
	}
	if err := r.Set("state", st); err != nil {
		return err
	}
	return r.Set("started", started)
}

// undoStart is start's Undo.
func (d *driver) undoStart(ctx context.Context, r *sdk.Request) error {
	conn, dom, ok, err := d.domainToUndo(r, "started", startClaim(r.String("name")))
	if !ok || err != nil {
		return err
	}
	if active, _ := conn.DomainIsActive(dom); active != 0 {
		return conn.DomainDestroyFlags(dom, 0)
	}
	return nil
}

// shutdown is shutdown's Run.
func (d *driver) shutdown(ctx context.Context, r *sdk.Request) error {
	name := r.String("name")
	conn, dom, active, err := d.activeDomainArg(name)
	if err != nil {
		return err
	}
	if !active {
		// Off already: by an interrupted attempt of this step
		// (which claimed it running), or before the step.
		stopped := r.Claimed(shutdownClaim(name), nil)
		if stopped {
			r.Log("%s was shut down by an interrupted attempt of this step", name)
		}
		return errors.Join(r.Set("state", "shut off"), r.Set("stopped", stopped))
	}
	if err := r.Claim(shutdownClaim(name), powerClaim{At: time.Now()}); err != nil {
		return err
	}
	flags := shutdownFlags[r.String("mode")]
	// A guest still booting misses the request: its ACPI handler
	// or guest agent may not be up yet. Ask again every few
	// seconds until the step's deadline.
	deadline := stepDeadline(r)
	timeout := time.Until(deadline).Round(time.Second)
	ok := false
	for asked := 0; !ok && time.Now().Before(deadline); asked++ {
		if err := conn.DomainShutdownFlags(dom, flags); err != nil {
			if active, aerr := conn.DomainIsActive(dom); aerr == nil && active == 0 {
				ok = true
				break
			}
			if asked == 0 {
				return fmt.Errorf("shutting %q down: %w", name, err)
			}
		}
		wait := min(shutdownRetry, time.Until(deadline))
		var err error
		if ok, err = waitState(ctx, conn, dom, wait, libvirt.DomainShutoff, libvirt.DomainCrashed); err != nil {
			return err
		}
		if !ok && asked == 0 {
			r.Log("%s has not shut down yet; asking again every %s", name, shutdownRetry)
		}
	}
	if !ok {
		return fmt.Errorf("domain %q did not shut down within %s (mode %s); it is still running. Check the guest, or force it off with the destroy action", name, timeout, r.String("mode"))
	}
	return errors.Join(r.Set("state", "shut off"), r.Set("stopped", true))
}

// undoShutdown is shutdown's Undo.
func (d *driver) undoShutdown(ctx context.Context, r *sdk.Request) error {
	interrupted := r.Interrupted()
	conn, dom, ok, err := d.domainToUndo(r, "stopped", shutdownClaim(r.String("name")))
	if !ok || err != nil {
		return err
	}
	if interrupted {
		// The interrupted attempt may have asked the guest to
		// power off, and it may still be on its way down: nothing
		// tells. Take it all the way (asking again does no harm),
		// then start it, so that it does not go off after this
		// undo. A guest that will not stop keeps running.
		if active, err := conn.DomainIsActive(dom); err == nil && active != 0 {
			flags := shutdownFlags[r.String("mode")]
			r.Log("%s may be shutting down after the interrupted attempt: waiting for it to stop, to start it again", r.String("name"))
			deadline := stepDeadline(r)
			for off := false; !off && time.Now().Before(deadline); {
				_ = conn.DomainShutdownFlags(dom, flags)
				if off, err = waitState(ctx, conn, dom, min(shutdownRetry, time.Until(deadline)), libvirt.DomainShutoff, libvirt.DomainCrashed); err != nil {
					return err
				}
			}
		}
	}
	if active, err := conn.DomainIsActive(dom); err != nil || active != 0 {
		return err
	}
	r.Log("starting %s again", r.String("name"))
	return startDomain(conn, dom, r)
}

// suspend is suspend's Run.
func (d *driver) suspend(ctx context.Context, r *sdk.Request) error {
	conn, dom, st, err := d.domainArgState(r.String("name"))
	if err != nil {
		return err
	}
	if st != libvirt.DomainRunning && st != libvirt.DomainBlocked {
		if st == libvirt.DomainPaused && r.Claimed(suspendClaim(r.String("name")), nil) {
			// An interrupted attempt of this step paused it: the
			// pause is this step's, for the undo.
			r.Log("%s was paused by an interrupted attempt of this step", r.String("name"))
			return r.Set("suspended", true)
		}
		r.Log("%s is %s: nothing to pause", r.String("name"), stateNames[st])
		return r.Set("suspended", false)
	}
	if err := r.Claim(suspendClaim(r.String("name")), nil); err != nil {
		return err
	}
	if err := conn.DomainSuspend(dom); err != nil {
		return fmt.Errorf("pausing %q: %w", r.String("name"), err)
	}
	r.Log("paused %s", r.String("name"))
	return r.Set("suspended", true)
}

// undoSuspend is suspend's Undo.
func (d *driver) undoSuspend(ctx context.Context, r *sdk.Request) error {
	conn, dom, ok, err := d.domainToUndo(r, "suspended", suspendClaim(r.String("name")))
	if !ok || err != nil {
		return err
	}
	if st, err := domainState(conn, dom); err != nil || st != libvirt.DomainPaused {
		return err
	}
	r.Log("resuming %s", r.String("name"))
	return conn.DomainResume(dom)
}

// resume is resume's Run.
func (d *driver) resume(ctx context.Context, r *sdk.Request) error {
	conn, dom, st, err := d.domainArgState(r.String("name"))
	if err != nil {
		return err
	}
	if st != libvirt.DomainPaused {
		r.Log("%s is %s: nothing to resume", r.String("name"), stateNames[st])
		return r.Set("resumed", false)
	}
	if err := conn.DomainResume(dom); err != nil {
		return fmt.Errorf("resuming %q: %w", r.String("name"), err)
	}
	r.Log("resumed %s", r.String("name"))
	return r.Set("resumed", true)
}

// destroy is destroy's Run.
func (d *driver) destroy(ctx context.Context, r *sdk.Request) error {
	conn, dom, active, err := d.activeDomainArg(r.String("name"))
	if err != nil {
		return err
	}
	if active {
		if err := conn.DomainDestroyFlags(dom, 0); err != nil {
			return fmt.Errorf("forcing %q off: %w", r.String("name"), err)
		}
	}
	return r.Set("was_running", active)
}

// reboot is reboot's Run.
func (d *driver) reboot(ctx context.Context, r *sdk.Request) error {
	conn, dom, err := d.domainArg(r.String("name"))
	if err != nil {
		return err
	}
	if err := conn.DomainReboot(dom, rebootFlags[r.String("mode")]); err != nil {
		return fmt.Errorf("rebooting %q: %w", r.String("name"), err)
	}
	return nil
}
