package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// domain looks up a domain by name.
func (d *driver) domain(name string) (libvirtConn, libvirt.Domain, error) {
	conn, err := d.client()
	if err != nil {
		return nil, libvirt.Domain{}, err
	}
	dom, err := conn.DomainLookupByName(name)
	if isCode(err, libvirt.ErrNoDomain) {
		return conn, dom, fmt.Errorf("no domain %q on %s", name, d.uri)
	}
	if err != nil {
		return conn, dom, fmt.Errorf("domain %q: %w", name, err)
	}
	return conn, dom, nil
}

func isNoDomain(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "no domain") }

// domainArg is domain for the action's name argument: a domain not found
// is an error about that argument.
func (d *driver) domainArg(name string) (libvirtConn, libvirt.Domain, error) {
	conn, dom, err := d.domain(name)
	if err != nil {
		return nil, dom, sdk.ArgError("name", "%v", err)
	}
	return conn, dom, nil
}

// activeDomainArg is domainArg, and whether the domain runs.
func (d *driver) activeDomainArg(name string) (libvirtConn, libvirt.Domain, bool, error) {
	conn, dom, err := d.domainArg(name)
	if err != nil {
		return nil, dom, false, err
	}
	active, err := conn.DomainIsActive(dom)
	return conn, dom, active != 0, err
}

// domainArgState is domainArg, and the domain's state.
func (d *driver) domainArgState(name string) (libvirtConn, libvirt.Domain, libvirt.DomainState, error) {
	conn, dom, err := d.domainArg(name)
	if err != nil {
		return nil, dom, 0, err
	}
	st, err := domainState(conn, dom)
	return conn, dom, st, err
}

// ignoreNoDomain is err, except that a domain that is gone is none: an
// undo has nothing to do then.
func ignoreNoDomain(err error) error {
	if isNoDomain(err) {
		return nil
	}
	return err
}

var stateNames = map[libvirt.DomainState]string{
	libvirt.DomainNostate:     "no state",
	libvirt.DomainRunning:     "running",
	libvirt.DomainBlocked:     "blocked",
	libvirt.DomainPaused:      "paused",
	libvirt.DomainShutdown:    "shutting down",
	libvirt.DomainShutoff:     "shut off",
	libvirt.DomainCrashed:     "crashed",
	libvirt.DomainPmsuspended: "suspended",
}

func (d *driver) state(conn libvirtConn, dom libvirt.Domain) (string, error) {
	st, _, err := conn.DomainGetState(dom, 0)
	if err != nil {
		return "", err
	}
	return stateNames[libvirt.DomainState(st)], nil
}

const undefineFlags = libvirt.DomainUndefineManagedSave | libvirt.DomainUndefineSnapshotsMetadata |
	libvirt.DomainUndefineNvram | libvirt.DomainUndefineCheckpointsMetadata

func (d *driver) undefine(conn libvirtConn, dom libvirt.Domain) error {
	err := conn.DomainUndefineFlags(dom, undefineFlags)
	if err != nil && d.uri.Scheme == "test" {
		// The test driver knows no NVRAM or checkpoints.
		err = conn.DomainUndefineFlags(dom, libvirt.DomainUndefineSnapshotsMetadata|libvirt.DomainUndefineManagedSave)
	}
	return err
}

// domainState reads a domain's state as libvirt numbers it.
func domainState(conn libvirtConn, dom libvirt.Domain) (libvirt.DomainState, error) {
	st, _, err := conn.DomainGetState(dom, 0)
	return libvirt.DomainState(st), err
}

// currentIP is the domain's IPv4 address if one look finds it (the guest
// agent, this boot's lease, ARP: as wait_ip, without waiting); "" when the
// domain does not run or nobody knows yet.
func currentIP(conn libvirtConn, dom libvirt.Domain) string {
	if st, err := domainState(conn, dom); err != nil || st != libvirt.DomainRunning {
		return ""
	}
	n, err := domainNIC(conn, dom)
	if err != nil {
		return ""
	}
	ip, _, _ := findIP(conn, dom, n, startedAt(conn, dom))
	return ip
}

// domainActions implements the contract's VM actions on libvirt domains.
func (d *driver) domainActions(b *hypervisor.Backend) {
	b.HostCheck = hypervisor.Impl{Validate: d.validateHostCheck, Run: d.runHostCheck, Note: "libvirt's node information and node devices, which answer for a remote host too; a device of another domain, running or not, counts as given."}
	b.Define = hypervisor.Impl{Run: d.define, Undo: d.undoDefine, Note: "A libvirt domain: vda is the boot disk and vdb the /var disk, each a volume of vmflow's pool or an absolute path on the libvirt host; kernel and initrd are paths on that host; UEFI is OVMF with per-VM NVRAM; nat is libvirt's default network, started if inactive; the MAC is in QEMU's 52:54:00 range; the serial console is logged to console_log (default /var/log/libvirt/qemu/<name>-console.log). The UUID stays across redefinitions, and previous_xml is the replaced domain XML."}
	b.Undefine = hypervisor.Impl{Run: d.undefineDomain, Note: "NVRAM, snapshot and checkpoint metadata go with the definition; force destroys a running domain first."}
	b.Start = hypervisor.Impl{Run: d.start, Undo: d.undoStart, Note: "It records the boot time in the domain's metadata, so that wait_ip takes only this boot's DHCP lease."}
	b.Shutdown = hypervisor.Impl{Run: d.shutdown, Undo: d.undoShutdown, Note: "Its undo starts the domain as start does."}
	b.Suspend = hypervisor.Impl{Run: d.suspend, Undo: d.undoSuspend, Note: "virDomainSuspend: QEMU stops the guest's CPUs and drains its disks' I/O; its undo is virDomainResume."}
	b.Resume = hypervisor.Impl{Run: d.resume, Note: "virDomainResume."}
	b.Destroy = hypervisor.Impl{Run: d.destroy}
	b.Reboot = hypervisor.Impl{Run: d.reboot}
	b.State = hypervisor.Impl{Run: d.domainStateAction, Note: "The state is libvirt's word for it; the address comes from the guest agent, else this boot's DHCP lease, else (bridged guests) ARP."}
	b.List = hypervisor.Impl{Run: d.list}
	b.EnsureAbsent = hypervisor.Impl{Run: d.ensureAbsent, Note: "It looks the domain up on the connection, and the volumes in vmflow's pool."}
	b.VolumeList = hypervisor.Impl{Run: d.volumeList, Note: "It lists vmflow's storage pool as libvirt knows it."}
	b.WaitIP = hypervisor.Impl{Run: d.waitIP, Note: "It asks the guest agent, this boot's DHCP lease on the network, then (bridged guests) the host's ARP table, whichever answers first."}
	b.GuestExec = hypervisor.Impl{Run: d.guestExec, Note: "It uses the QEMU guest agent, and waits within the timeout for the agent to come up."}
	b.Console = hypervisor.Impl{Run: d.console, Note: "It goes through libvirt's stream, on a connection of its own."}
}

func formatUUID(u libvirt.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// undefineDomain is undefine's Run.
func (d *driver) undefineDomain(ctx context.Context, r *sdk.Request) error {
	conn, dom, err := d.domain(r.String("name"))
	if isNoDomain(err) && r.Bool("missing_ok") {
		return r.Set("undefined", false)
	}
	if err != nil {
		return sdk.ArgError("name", "%v", err)
	}
	active, err := conn.DomainIsActive(dom)
	if err != nil {
		return err
	}
	if active != 0 {
		if !r.Bool("force") {
			return sdk.ArgError("name", "domain %q is running; stop it first, or set force = true", r.String("name"))
		}
		if err := conn.DomainDestroyFlags(dom, 0); err != nil {
			return fmt.Errorf("forcing %q off: %w", r.String("name"), err)
		}
	}
	if err := d.undefine(conn, dom); err != nil {
		return fmt.Errorf("undefining %q: %w", r.String("name"), err)
	}
	return r.Set("undefined", true)
}

// domainStateAction is state's Run.
func (d *driver) domainStateAction(ctx context.Context, r *sdk.Request) error {
	conn, dom, err := d.domain(r.String("name"))
	if isNoDomain(err) {
		return errors.Join(r.Set("exists", false), r.Set("state", ""), r.Set("uuid", ""), r.Set("ip", ""))
	}
	if err != nil {
		return err
	}
	st, err := d.state(conn, dom)
	if err != nil {
		return err
	}
	return errors.Join(r.Set("exists", true), r.Set("state", st), r.Set("uuid", formatUUID(dom.UUID)), r.Set("ip", currentIP(conn, dom)))
}

// list is list's Run.
func (d *driver) list(ctx context.Context, r *sdk.Request) error {
	conn, err := d.client()
	if err != nil {
		return err
	}
	states, err := d.domainStates(conn, r.String("prefix"))
	if err != nil {
		return err
	}
	names := append([]string{}, slices.Sorted(maps.Keys(states))...) // [], not null, for none
	byHost, unreachable := d.listHosts(r.StringMap("hosts"), r.String("prefix"))
	return errors.Join(r.Set("names", names), r.Set("states", states), r.Set("by_host", byHost), r.Set("unreachable", unreachable))
}

// domainStates is the state of each VM whose name starts with prefix.
func (d *driver) domainStates(conn libvirtConn, prefix string) (map[string]string, error) {
	doms, _, err := conn.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, err
	}
	states := map[string]string{}
	for _, dom := range doms {
		if !strings.HasPrefix(dom.Name, prefix) {
			continue
		}
		if st, err := d.state(conn, dom); err == nil { // else it went away meanwhile
			states[dom.Name] = st
		}
	}
	return states, nil
}

// listHosts lists the VMs of other hosts (name → URI), each on a
// connection of its own, all at once; a host that does not answer is in
// unreachable with the reason, so one host down does not hide the rest.
func (d *driver) listHosts(hosts map[string]string, prefix string) (byHost map[string]map[string]string, unreachable map[string]string) {
	byHost, unreachable = map[string]map[string]string{}, map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, uri := range hosts {
		wg.Go(func() {
			states, err := d.listAt(uri, prefix)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				unreachable[name] = err.Error()
				return
			}
			byHost[name] = states
		})
	}
	wg.Wait()
	return byHost, unreachable
}

// listAt lists the VMs at a libvirt URI: their states by name.
func (d *driver) listAt(uri, prefix string) (map[string]string, error) {
	h := &driver{handshake: d.handshake}
	if err := h.configure(uri, "", "", "", d.virtType, d.stateDir); err != nil {
		return nil, err
	}
	defer h.close()
	conn, err := h.client()
	if err != nil {
		return nil, err
	}
	return h.domainStates(conn, prefix)
}

// ensureAbsent is ensure_absent's Run.
func (d *driver) ensureAbsent(ctx context.Context, r *sdk.Request) error {
	vm, vols := r.String("vm"), r.Strings("volumes")
	checked := []string{}
	state := ""
	if vm != "" {
		checked = append(checked, "VM "+vm)
		conn, dom, err := d.domain(vm)
		switch {
		case isNoDomain(err):
		case err != nil:
			return err
		default:
			if state, err = d.state(conn, dom); err != nil {
				return err
			}
		}
	}
	var found []string
	for _, v := range vols {
		checked = append(checked, "volume "+v)
		exists, err := d.volumeExists(v)
		if err != nil {
			return err
		}
		if exists {
			found = append(found, v)
		}
	}
	if err := hypervisor.AbsentError(vm, state, found); err != nil {
		return err
	}
	return r.Set("checked", checked)
}
