package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"

	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
)

// fakeLibvirt is libvirtd in memory, behind libvirtConn: enough of it for
// the plugin's logic around its calls (the XML it sends, its retries,
// claims and messages) to be tested without a daemon. It answers with
// libvirt's own error numbers, as go-libvirt returns them. Before a call
// does anything it takes the next error queued for it in fail, so a test
// can make any call fail, once or several times.
type fakeLibvirt struct {
	mu    sync.Mutex
	calls []string
	fail  map[string][]error

	domains     map[string]*fakeDomain
	pools       map[string]*fakePool
	networks    map[string]*fakeNetwork
	nodeDevices map[string]string // name → node device XML

	memoryKiB uint64
	cpus      int32
	// hostCPU is the <cpu> of ConnectGetCapabilities' host, and
	// expanded ConnectBaselineCPU's answer for it with every feature
	// listed, as libvirtd expands a named model (the fake knows no
	// models).
	hostCPU, expanded string
	// guestStops: a shutdown request stops the domain (a guest whose
	// ACPI handler or agent is up); otherwise it keeps running.
	guestStops bool
	// agent answers QEMUDomainAgentCommand (nil: the agent is not up).
	agent func(cmd string) (string, error)
	// addrs are DomainInterfaceAddresses' answers by source.
	addrs map[uint32][]libvirt.DomainInterface

	clock int64 // snapshot creation times, one second apart

	// defineFlags are DomainDefineXMLFlags' flags, call by call; with
	// DomainDefineValidate, schema (when set) checks the document as
	// libvirtd's RelaxNG check does.
	defineFlags []libvirt.DomainDefineFlags
	schema      func(doc string) error
}

type fakeDomain struct {
	dom      libvirt.Domain
	xml      string
	state    libvirt.DomainState
	metadata string
	snaps    []*fakeSnapshot
	current  string
}

type fakeSnapshot struct {
	snap libvirt.DomainSnapshot
	xml  string
}

type fakePool struct {
	pool                     libvirt.StoragePool
	path                     string
	built, autostart, active bool
	vols                     map[string]*fakeVolume
}

type fakeVolume struct {
	vol libvirt.StorageVol
	x   libvirtxml.StorageVolume
}

type fakeNetwork struct {
	net    libvirt.Network
	active bool
	xml    string
	leases []libvirt.NetworkDhcpLease
}

func newFakeLibvirt() *fakeLibvirt {
	return &fakeLibvirt{
		fail:        map[string][]error{},
		domains:     map[string]*fakeDomain{},
		pools:       map[string]*fakePool{},
		networks:    map[string]*fakeNetwork{},
		nodeDevices: map[string]string{},
		addrs:       map[uint32][]libvirt.DomainInterface{},
		memoryKiB:   8 << 20,
		cpus:        4,
		guestStops:  true,
		clock:       1700000000,
	}
}

// lvErr is an error as go-libvirt returns libvirtd's.
func lvErr(code libvirt.ErrorNumber, format string, args ...any) error {
	return libvirt.Error{Code: uint32(code), Message: fmt.Sprintf(format, args...)}
}

// failNext queues errors for the next calls of method.
func (f *fakeLibvirt) failNext(method string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = append(f.fail[method], errs...)
}

// count is how many times method was called.
func (f *fakeLibvirt) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == method {
			n++
		}
	}
	return n
}

// enter logs a call and returns its queued error, if any; the caller
// holds f.mu from here on.
func (f *fakeLibvirt) enter(method string) error {
	f.mu.Lock()
	f.calls = append(f.calls, method)
	if q := f.fail[method]; len(q) > 0 {
		f.fail[method] = q[1:]
		return q[0]
	}
	return nil
}

func (f *fakeLibvirt) lookupDomain(dom libvirt.Domain) (*fakeDomain, error) {
	if fd := f.domains[dom.Name]; fd != nil {
		return fd, nil
	}
	return nil, lvErr(libvirt.ErrNoDomain, "Domain not found: no domain with matching name '%s'", dom.Name)
}

// onDomain, onNetwork, onSnapshot, onPool and onVolume begin a call on
// something that must exist: the call logged, its queued error taken,
// then the lookup. The caller holds f.mu from here on.
func (f *fakeLibvirt) onDomain(method string, dom libvirt.Domain) (*fakeDomain, error) {
	if err := f.enter(method); err != nil {
		return nil, err
	}
	return f.lookupDomain(dom)
}

func (f *fakeLibvirt) onNetwork(method, name string) (*fakeNetwork, error) {
	if err := f.enter(method); err != nil {
		return nil, err
	}
	return f.lookupNetwork(name)
}

func (f *fakeLibvirt) onSnapshot(method string, dom libvirt.Domain, name string) (*fakeDomain, int, error) {
	if err := f.enter(method); err != nil {
		return nil, 0, err
	}
	return f.lookupSnapshot(dom, name)
}

func (f *fakeLibvirt) onPool(method, name string) (*fakePool, error) {
	if err := f.enter(method); err != nil {
		return nil, err
	}
	return f.lookupPool(name)
}

func (f *fakeLibvirt) onVolume(method, pool, name string) (*fakePool, *fakeVolume, error) {
	if err := f.enter(method); err != nil {
		return nil, nil, err
	}
	return f.lookupVolume(pool, name)
}

func active(st libvirt.DomainState) bool {
	return st == libvirt.DomainRunning || st == libvirt.DomainPaused || st == libvirt.DomainBlocked
}

// addDomain defines a domain from its XML, as DomainDefineXMLFlags does.
func (f *fakeLibvirt) addDomain(doc string, st libvirt.DomainState) (*fakeDomain, error) {
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		return nil, lvErr(libvirt.ErrXMLError, "XML error: %v", err)
	}
	fd := f.domains[x.Name]
	if fd == nil {
		fd = &fakeDomain{state: st}
		f.domains[x.Name] = fd
	}
	fd.xml = doc
	fd.dom = libvirt.Domain{Name: x.Name}
	if b, err := hex.DecodeString(strings.ReplaceAll(x.UUID, "-", "")); err == nil && len(b) == 16 {
		copy(fd.dom.UUID[:], b)
	}
	return fd, nil
}

// The host.

func (f *fakeLibvirt) ConnectGetDomainCapabilities(_, _, _, _ libvirt.OptString, _ libvirt.ConnectGetDomainCapabilitiesFlags) (string, error) {
	defer f.mu.Unlock()
	if err := f.enter("ConnectGetDomainCapabilities"); err != nil {
		return "", err
	}
	return "<domainCapabilities/>", nil
}

func (f *fakeLibvirt) ConnectGetCapabilities() (string, error) {
	defer f.mu.Unlock()
	if err := f.enter("ConnectGetCapabilities"); err != nil {
		return "", err
	}
	return "<capabilities><host><uuid>00000000-0000-0000-0000-000000000001</uuid>" + f.hostCPU + "</host></capabilities>", nil
}

func (f *fakeLibvirt) ConnectBaselineCPU(cpus []string, flags libvirt.ConnectBaselineCPUFlags) (string, error) {
	defer f.mu.Unlock()
	if err := f.enter("ConnectBaselineCPU"); err != nil {
		return "", err
	}
	if len(cpus) != 1 || flags&libvirt.ConnectBaselineCPUExpandFeatures == 0 {
		return "", lvErr(libvirt.ErrInvalidArg, "the fake expands one CPU, with ExpandFeatures (got %d CPUs, flags %d)", len(cpus), flags)
	}
	var got, host libvirtxml.CapsHostCPU
	if err := got.Unmarshal(cpus[0]); err != nil {
		return "", lvErr(libvirt.ErrXMLError, "%v", err)
	}
	if err := host.Unmarshal(f.hostCPU); err != nil || got.Model != host.Model || got.Vendor != host.Vendor {
		return "", lvErr(libvirt.ErrInvalidArg, "not the host's CPU: %s", cpus[0])
	}
	return f.expanded, nil
}

func (f *fakeLibvirt) NodeGetInfo() ([32]int8, uint64, int32, int32, int32, int32, int32, int32, error) {
	defer f.mu.Unlock()
	err := f.enter("NodeGetInfo")
	return [32]int8{}, f.memoryKiB, f.cpus, 0, 1, 1, f.cpus, 1, err
}

func (f *fakeLibvirt) ConnectListAllNodeDevices(int32, uint32) ([]libvirt.NodeDevice, uint32, error) {
	defer f.mu.Unlock()
	if err := f.enter("ConnectListAllNodeDevices"); err != nil {
		return nil, 0, err
	}
	var out []libvirt.NodeDevice
	for name := range f.nodeDevices {
		out = append(out, libvirt.NodeDevice{Name: name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, uint32(len(out)), nil
}

func (f *fakeLibvirt) NodeDeviceGetXMLDesc(name string, _ uint32) (string, error) {
	defer f.mu.Unlock()
	if err := f.enter("NodeDeviceGetXMLDesc"); err != nil {
		return "", err
	}
	if doc, ok := f.nodeDevices[name]; ok {
		return doc, nil
	}
	return "", lvErr(libvirt.ErrNoNodeDevice, "Node device not found: %s", name)
}

// Domains.

func (f *fakeLibvirt) ConnectListAllDomains(int32, libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, uint32, error) {
	defer f.mu.Unlock()
	if err := f.enter("ConnectListAllDomains"); err != nil {
		return nil, 0, err
	}
	var out []libvirt.Domain
	for _, fd := range f.domains {
		out = append(out, fd.dom)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, uint32(len(out)), nil
}

func (f *fakeLibvirt) DomainLookupByName(name string) (libvirt.Domain, error) {
	defer f.mu.Unlock()
	fd, err := f.onDomain("DomainLookupByName", libvirt.Domain{Name: name})
	if err != nil {
		return libvirt.Domain{}, err
	}
	return fd.dom, nil
}

func (f *fakeLibvirt) DomainDefineXMLFlags(doc string, flags libvirt.DomainDefineFlags) (libvirt.Domain, error) {
	defer f.mu.Unlock()
	if err := f.enter("DomainDefineXMLFlags"); err != nil {
		return libvirt.Domain{}, err
	}
	f.defineFlags = append(f.defineFlags, flags)
	if flags&libvirt.DomainDefineValidate != 0 && f.schema != nil {
		if err := f.schema(doc); err != nil {
			return libvirt.Domain{}, err
		}
	}
	fd, err := f.addDomain(doc, libvirt.DomainShutoff)
	if err != nil {
		return libvirt.Domain{}, err
	}
	return fd.dom, nil
}

func (f *fakeLibvirt) DomainUndefineFlags(dom libvirt.Domain, _ libvirt.DomainUndefineFlagsValues) error {
	defer f.mu.Unlock()
	if err := f.enter("DomainUndefineFlags"); err != nil {
		return err
	}
	if _, err := f.lookupDomain(dom); err != nil {
		return err
	}
	delete(f.domains, dom.Name)
	return nil
}

func (f *fakeLibvirt) DomainGetXMLDesc(dom libvirt.Domain, _ libvirt.DomainXMLFlags) (string, error) {
	defer f.mu.Unlock()
	fd, err := f.onDomain("DomainGetXMLDesc", dom)
	if err != nil {
		return "", err
	}
	return fd.xml, nil
}

func (f *fakeLibvirt) DomainIsActive(dom libvirt.Domain) (int32, error) {
	defer f.mu.Unlock()
	fd, err := f.onDomain("DomainIsActive", dom)
	if err != nil || !active(fd.state) {
		return 0, err
	}
	return 1, nil
}

func (f *fakeLibvirt) DomainGetState(dom libvirt.Domain, _ uint32) (int32, int32, error) {
	defer f.mu.Unlock()
	fd, err := f.onDomain("DomainGetState", dom)
	if err != nil {
		return 0, 0, err
	}
	return int32(fd.state), 1, nil
}

func (f *fakeLibvirt) DomainGetMetadata(dom libvirt.Domain, _ int32, _ libvirt.OptString, _ libvirt.DomainModificationImpact) (string, error) {
	defer f.mu.Unlock()
	fd, err := f.onDomain("DomainGetMetadata", dom)
	if err != nil {
		return "", err
	}
	if fd.metadata == "" {
		return "", lvErr(libvirt.ErrNoDomainMetadata, "metadata not found: Requested metadata element is not present")
	}
	return fd.metadata, nil
}

func (f *fakeLibvirt) DomainSetMetadata(dom libvirt.Domain, _ int32, metadata, _, _ libvirt.OptString, _ libvirt.DomainModificationImpact) error {
	defer f.mu.Unlock()
	fd, err := f.onDomain("DomainSetMetadata", dom)
	if err != nil {
		return err
	}
	if len(metadata) > 0 {
		fd.metadata = metadata[0]
	}
	return nil
}

// setState moves a running domain to st; one that does not run is an
// operation libvirt refuses.
func (f *fakeLibvirt) setState(method string, dom libvirt.Domain, from []libvirt.DomainState, to libvirt.DomainState) error {
	defer f.mu.Unlock()
	if err := f.enter(method); err != nil {
		return err
	}
	fd, err := f.lookupDomain(dom)
	if err != nil {
		return err
	}
	for _, s := range from {
		if fd.state == s {
			fd.state = to
			return nil
		}
	}
	return lvErr(libvirt.ErrOperationInvalid, "Requested operation is not valid: domain is not in a state for %s", method)
}

var running = []libvirt.DomainState{libvirt.DomainRunning, libvirt.DomainBlocked, libvirt.DomainPaused}

func (f *fakeLibvirt) DomainCreateWithFlags(dom libvirt.Domain, _ uint32) (libvirt.Domain, error) {
	err := f.setState("DomainCreateWithFlags", dom, []libvirt.DomainState{libvirt.DomainShutoff, libvirt.DomainCrashed, libvirt.DomainNostate}, libvirt.DomainRunning)
	return dom, err
}

func (f *fakeLibvirt) DomainShutdownFlags(dom libvirt.Domain, _ libvirt.DomainShutdownFlagValues) error {
	to := libvirt.DomainRunning
	if f.guestStops {
		to = libvirt.DomainShutoff
	}
	return f.setState("DomainShutdownFlags", dom, []libvirt.DomainState{libvirt.DomainRunning}, to)
}

func (f *fakeLibvirt) DomainDestroyFlags(dom libvirt.Domain, _ libvirt.DomainDestroyFlagsValues) error {
	return f.setState("DomainDestroyFlags", dom, running, libvirt.DomainShutoff)
}

func (f *fakeLibvirt) DomainReboot(dom libvirt.Domain, _ libvirt.DomainRebootFlagValues) error {
	return f.setState("DomainReboot", dom, []libvirt.DomainState{libvirt.DomainRunning}, libvirt.DomainRunning)
}

func (f *fakeLibvirt) DomainSuspend(dom libvirt.Domain) error {
	return f.setState("DomainSuspend", dom, []libvirt.DomainState{libvirt.DomainRunning}, libvirt.DomainPaused)
}

func (f *fakeLibvirt) DomainResume(dom libvirt.Domain) error {
	return f.setState("DomainResume", dom, []libvirt.DomainState{libvirt.DomainPaused}, libvirt.DomainRunning)
}

// The guest.

func (f *fakeLibvirt) QEMUDomainAgentCommand(dom libvirt.Domain, cmd string, _ int32, _ uint32) (libvirt.OptString, error) {
	defer f.mu.Unlock()
	if err := f.enter("QEMUDomainAgentCommand"); err != nil {
		return nil, err
	}
	if _, err := f.lookupDomain(dom); err != nil {
		return nil, err
	}
	if f.agent == nil {
		return nil, lvErr(libvirt.ErrAgentUnresponsive, "Guest agent is not responding: QEMU guest agent is not connected")
	}
	res, err := f.agent(cmd)
	if err != nil {
		return nil, err
	}
	return libvirt.OptString{res}, nil
}

func (f *fakeLibvirt) DomainInterfaceAddresses(dom libvirt.Domain, source uint32, _ uint32) ([]libvirt.DomainInterface, error) {
	defer f.mu.Unlock()
	if err := f.enter("DomainInterfaceAddresses"); err != nil {
		return nil, err
	}
	return f.addrs[source], nil
}

// Networks.

func (f *fakeLibvirt) lookupNetwork(name string) (*fakeNetwork, error) {
	if n := f.networks[name]; n != nil {
		return n, nil
	}
	return nil, lvErr(libvirt.ErrNoNetwork, "Network not found: no network with matching name '%s'", name)
}

func (f *fakeLibvirt) NetworkLookupByName(name string) (libvirt.Network, error) {
	defer f.mu.Unlock()
	n, err := f.onNetwork("NetworkLookupByName", name)
	if err != nil {
		return libvirt.Network{}, err
	}
	return n.net, nil
}

func (f *fakeLibvirt) NetworkIsActive(net libvirt.Network) (int32, error) {
	defer f.mu.Unlock()
	n, err := f.onNetwork("NetworkIsActive", net.Name)
	if err != nil || !n.active {
		return 0, err
	}
	return 1, nil
}

func (f *fakeLibvirt) NetworkCreate(net libvirt.Network) error {
	defer f.mu.Unlock()
	n, err := f.onNetwork("NetworkCreate", net.Name)
	if err == nil {
		n.active = true
	}
	return err
}

func (f *fakeLibvirt) NetworkGetXMLDesc(net libvirt.Network, _ uint32) (string, error) {
	defer f.mu.Unlock()
	n, err := f.onNetwork("NetworkGetXMLDesc", net.Name)
	if err != nil {
		return "", err
	}
	return n.xml, nil
}

func (f *fakeLibvirt) NetworkGetDhcpLeases(net libvirt.Network, mac libvirt.OptString, _ int32, _ uint32) ([]libvirt.NetworkDhcpLease, uint32, error) {
	defer f.mu.Unlock()
	n, err := f.onNetwork("NetworkGetDhcpLeases", net.Name)
	if err != nil {
		return nil, 0, err
	}
	var out []libvirt.NetworkDhcpLease
	for _, l := range n.leases {
		if len(mac) == 0 || len(l.Mac) > 0 && strings.EqualFold(l.Mac[0], mac[0]) {
			out = append(out, l)
		}
	}
	return out, uint32(len(out)), nil
}

var _ libvirtConn = (*fakeLibvirt)(nil)

// newFakeHarness is the harness of the real-libvirtd tests, its driver
// talking to a fakeLibvirt instead: Configure, then Validate and Run per
// step, in process, with claims in a state directory of the test's own.
// The URI says which driver the plugin thinks it talks to (test:///default
// or qemu:///system); virt_type is fixed, so that this machine's KVM is
// not asked.
func newFakeHarness(t *testing.T, uri string) (*harness, *fakeLibvirt) {
	t.Helper()
	f := newFakeLibvirt()
	d := &driver{fake: f}
	p, err := sdk.InProcess(newPlugin(d))
	if err != nil {
		t.Fatal(err)
	}
	schema, _ := p.Describe(context.Background())
	h := &harness{t: t, p: p, d: d, schema: schema, stateDir: t.TempDir()}
	cfg, err := schema.Config.ApplyDefaults(cty.ObjectVal(map[string]cty.Value{
		"uri": cty.StringVal(uri), "virt_type": cty.StringVal("qemu"),
		"pool": cty.StringVal("vmflow-unit"), "pool_path": cty.StringVal("/pool"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	diags, err := p.Configure(context.Background(), cfg, protocol.Env{StateDir: h.stateDir, WorkDir: h.stateDir})
	if err != nil || diags.HasErrors() {
		t.Fatalf("configure %s: %v %v", uri, err, diags.Err())
	}
	return h, f
}
