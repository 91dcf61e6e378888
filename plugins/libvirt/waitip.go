package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/core/sdk"
)

// addressSources are asked in turn on every round; the first to know the
// guest's IPv4 address wins.
var addressSources = []struct {
	name string
	src  libvirt.DomainInterfaceAddressesSource
}{
	{"agent", libvirt.DomainInterfaceAddressesSrcAgent},
	{"lease", libvirt.DomainInterfaceAddressesSrcLease},
	{"arp", libvirt.DomainInterfaceAddressesSrcArp},
}

// domainMAC reads the MAC of the domain's first network interface.
func domainMAC(conn *libvirt.Libvirt, dom libvirt.Domain) (string, error) {
	doc, err := conn.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return "", err
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		return "", err
	}
	if x.Devices == nil || len(x.Devices.Interfaces) == 0 || x.Devices.Interfaces[0].MAC == nil {
		return "", errors.New("it has no network interface")
	}
	return strings.ToLower(x.Devices.Interfaces[0].MAC.Address), nil
}

// findIP asks each source once for an IPv4 address on the interface with
// that MAC. It returns "" when none knows one yet; lastErr says why the
// sources that failed failed.
func findIP(conn *libvirt.Libvirt, dom libvirt.Domain, mac string) (ip, source string, lastErr map[string]error) {
	lastErr = map[string]error{}
	for _, s := range addressSources {
		ifaces, err := conn.DomainInterfaceAddresses(dom, uint32(s.src), 0)
		if err != nil {
			lastErr[s.name] = err
			continue
		}
		for _, ifc := range ifaces {
			if len(ifc.Hwaddr) == 0 || !strings.EqualFold(ifc.Hwaddr[0], mac) {
				continue
			}
			for _, a := range ifc.Addrs {
				if a.Type == int32(libvirt.IPAddrTypeIpv4) {
					if p := net.ParseIP(a.Addr); p != nil && !p.IsLoopback() {
						return a.Addr, s.name, nil
					}
				}
			}
		}
	}
	return "", "", lastErr
}

func waitIPAction(d *driver) *sdk.Action {
	return &sdk.Action{
		Name:        "wait_ip",
		Description: "Waits for the domain's IPv4 address, found by its MAC from the guest agent, the network's DHCP leases or the host's ARP table, whichever answers first. On timeout it fails; it never returns a placeholder.",
		Inputs: []sdk.Attr{
			sdk.String("name", "Domain name.").Required(),
			sdk.Number("timeout", "Seconds to wait.").Default(180),
		},
		Outputs: []sdk.Attr{
			sdk.String("ip", "The IPv4 address."),
			sdk.String("mac", "The MAC it belongs to."),
			sdk.String("source", "Who told: agent, lease or arp."),
		},
		Validate: checks(validName("name", "domain"), positive("timeout")),
		Run: func(ctx context.Context, r *sdk.Request) error {
			name := r.String("name")
			conn, dom, err := d.domain(name)
			if err != nil {
				return sdk.ArgError("name", "%v", err)
			}
			mac, err := domainMAC(conn, dom)
			if err != nil {
				return fmt.Errorf("domain %q: %v", name, err)
			}
			timeout := time.Duration(r.Int("timeout")) * time.Second
			deadline := time.Now().Add(timeout)
			var why map[string]error
			for round := int64(0); ; round++ {
				if active, err := conn.DomainIsActive(dom); err != nil {
					return err
				} else if active == 0 {
					return fmt.Errorf("domain %q is not running, so it has no address", name)
				}
				var ip, src string
				ip, src, why = findIP(conn, dom, mac)
				if ip != "" {
					r.Log("%s has %s (from the %s)", name, ip, src)
					return errors.Join(r.Set("ip", ip), r.Set("mac", mac), r.Set("source", src))
				}
				if time.Now().After(deadline) {
					break
				}
				r.Progress(int64(time.Since(deadline.Add(-timeout))/time.Second), int64(timeout/time.Second), "waiting for an address")
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Second):
				}
			}
			msg := fmt.Sprintf("domain %q (mac %s) has no IPv4 address after %s: no DHCP lease, no ARP entry, and the guest agent did not report one", name, mac, timeout)
			if e := why["agent"]; e != nil {
				msg += fmt.Sprintf(" (agent: %v)", e)
			}
			return errors.New(msg + ". Is the guest up, on DHCP, and is qemu-guest-agent running?")
		},
	}
}
