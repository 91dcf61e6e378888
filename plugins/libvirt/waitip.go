package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/core/sdk"
)

// metadataURI namespaces what vmflow keeps in a domain's metadata.
const metadataURI = "https://vmflow.dev/xmlns/libvirt/1"

// markStarted records in the live domain when this boot began, so that
// wait_ip can tell this boot's DHCP lease from a previous one's.
func markStarted(conn libvirtConn, dom libvirt.Domain, at time.Time) error {
	return conn.DomainSetMetadata(dom, int32(libvirt.DomainMetadataElement),
		libvirt.OptString{fmt.Sprintf("<started>%d</started>", at.Unix())},
		libvirt.OptString{"vmflow"}, libvirt.OptString{metadataURI}, libvirt.DomainAffectLive)
}

// startedAt reads markStarted's time; zero when the domain was started
// some other way.
func startedAt(conn libvirtConn, dom libvirt.Domain) time.Time {
	doc, err := conn.DomainGetMetadata(dom, int32(libvirt.DomainMetadataElement), libvirt.OptString{metadataURI}, libvirt.DomainAffectLive)
	if err != nil {
		return time.Time{}
	}
	var m struct {
		Started int64 `xml:"started"`
	}
	if xml.Unmarshal([]byte(doc), &m) != nil || m.Started == 0 {
		if xml.Unmarshal([]byte("<x>"+doc+"</x>"), &m) != nil || m.Started == 0 {
			return time.Time{}
		}
	}
	return time.Unix(m.Started, 0)
}

// nic is the domain's first network interface, and where its serial
// console is logged, if it is (what a guest that never gets an address
// printed while it booted).
type nic struct {
	mac        string
	network    string // the libvirt network, "" for a bridge
	consoleLog string
}

func domainNIC(conn libvirtConn, dom libvirt.Domain) (nic, error) {
	x, err := parseXML[libvirtxml.Domain](conn.DomainGetXMLDesc(dom, 0))
	if err != nil {
		return nic{}, err
	}
	if x.Devices == nil || len(x.Devices.Interfaces) == 0 || x.Devices.Interfaces[0].MAC == nil {
		return nic{}, errors.New("it has no network interface")
	}
	ifc := x.Devices.Interfaces[0]
	n := nic{mac: strings.ToLower(ifc.MAC.Address)}
	if ifc.Source != nil && ifc.Source.Network != nil {
		n.network = ifc.Source.Network.Network
	}
	for _, s := range x.Devices.Serials {
		if s.Log != nil && s.Log.File != "" {
			n.consoleLog = s.Log.File
			break
		}
	}
	return n, nil
}

// leaseSeconds is how long the network's DHCP leases last (dnsmasq's
// default hour when the network does not say).
func leaseSeconds(conn libvirtConn, nw libvirt.Network) int64 {
	x, err := parseXML[libvirtxml.Network](conn.NetworkGetXMLDesc(nw, 0))
	if err != nil {
		return 3600
	}
	for _, ip := range x.IPs {
		if ip.DHCP == nil {
			continue
		}
		for _, r := range ip.DHCP.Ranges {
			if r.Lease == nil {
				continue
			}
			mult := map[string]int64{"": 60, "seconds": 1, "minutes": 60, "hours": 3600}[r.Lease.Unit]
			return int64(r.Lease.Expiry) * mult
		}
	}
	return 3600
}

func ipv4(s string) bool {
	p := net.ParseIP(s)
	return p != nil && p.To4() != nil && !p.IsLoopback()
}

// findIP asks, in turn, the guest agent, the network's DHCP leases and the
// host's ARP table for an IPv4 address of the interface. A lease or ARP
// entry may be left over from an earlier boot with the same MAC (a
// recreated VM), so a lease counts only if it was granted after this boot
// began, and ARP (for bridged guests, which have no libvirt lease) only
// once the guest has run for a few seconds. It returns "" when nobody
// knows yet; why says what the sources answered.
func findIP(conn libvirtConn, dom libvirt.Domain, n nic, started time.Time) (ip, source string, why map[string]error) {
	why = map[string]error{}
	if ifaces, err := conn.DomainInterfaceAddresses(dom, uint32(libvirt.DomainInterfaceAddressesSrcAgent), 0); err != nil {
		why["agent"] = err
	} else {
		for _, ifc := range ifaces {
			if len(ifc.Hwaddr) == 0 || !strings.EqualFold(ifc.Hwaddr[0], n.mac) {
				continue
			}
			for _, a := range ifc.Addrs {
				if a.Type == int32(libvirt.IPAddrTypeIpv4) && ipv4(a.Addr) {
					return a.Addr, "agent", nil
				}
			}
		}
	}
	if n.network != "" {
		if nw, err := conn.NetworkLookupByName(n.network); err != nil {
			why["lease"] = err
		} else if leases, _, err := conn.NetworkGetDhcpLeases(nw, libvirt.OptString{n.mac}, 1, 0); err != nil {
			why["lease"] = err
		} else {
			dur := leaseSeconds(conn, nw)
			for _, l := range leases {
				granted := time.Unix(l.Expirytime-dur, 0)
				fresh := started.IsZero() || (l.Expirytime > 0 && !granted.Before(started.Add(-2*time.Second)))
				if ipv4(l.Ipaddr) && fresh {
					return l.Ipaddr, "lease", nil
				}
			}
		}
	} else if started.IsZero() || time.Since(started) >= 5*time.Second {
		if ifaces, err := conn.DomainInterfaceAddresses(dom, uint32(libvirt.DomainInterfaceAddressesSrcArp), 0); err != nil {
			why["arp"] = err
		} else {
			for _, ifc := range ifaces {
				if len(ifc.Hwaddr) > 0 && strings.EqualFold(ifc.Hwaddr[0], n.mac) {
					for _, a := range ifc.Addrs {
						if ipv4(a.Addr) {
							return a.Addr, "arp", nil
						}
					}
				}
			}
		}
	}
	return "", "", why
}

// waitIP is wait_ip: it looks for the address every second until the
// step's deadline.
func (d *driver) waitIP(ctx context.Context, r *sdk.Request) error {
	name := r.String("name")
	conn, dom, err := d.domainArg(name)
	if err != nil {
		return err
	}
	n, err := domainNIC(conn, dom)
	if err != nil {
		return fmt.Errorf("domain %q: %v", name, err)
	}
	mac, started := n.mac, startedAt(conn, dom)
	deadline := stepDeadline(r)
	timeout := time.Until(deadline).Round(time.Second)
	var why map[string]error
	for round := int64(0); ; round++ {
		if active, err := conn.DomainIsActive(dom); err != nil {
			return err
		} else if active == 0 {
			return fmt.Errorf("domain %q is not running, so it has no address", name)
		}
		var ip, src string
		ip, src, why = findIP(conn, dom, n, started)
		if ip != "" {
			r.Log("%s has %s (from the %s)", name, ip, src)
			return errors.Join(r.Set("ip", ip), r.Set("mac", mac), r.Set("source", src))
		}
		if !time.Now().Before(deadline) {
			break
		}
		r.Progress(int64(time.Since(deadline.Add(-timeout))/time.Second), int64(timeout/time.Second), "waiting for an address")
		if err := sleepUntil(ctx, time.Second, deadline); err != nil {
			return err
		}
	}
	msg := fmt.Sprintf("domain %q (mac %s) has no IPv4 address after %s: no DHCP lease, no ARP entry, and the guest agent did not report one", name, mac, timeout)
	if e := why["agent"]; e != nil {
		msg += fmt.Sprintf(" (agent: %v)", e)
	}
	msg += ". Is the guest up, on DHCP, and is qemu-guest-agent running?"
	if n.consoleLog != "" {
		where := ""
		if !d.isLocal() {
			where = " (on " + d.uri.Host + ")"
		}
		msg += fmt.Sprintf(" What it printed while it booted is in its console log: %s%s", n.consoleLog, where)
	}
	return errors.New(msg)
}
