// Command raw is the floor of bench/libvirt: the same N x (overlay, define,
// undefine, delete) that the vmflow task runs, done sequentially on ONE
// go-libvirt connection with one RPC per operation:
//
//	overlay (a local qemu-img create, StoragePoolRefresh, StorageVolLookupByName)
//	-> DomainDefineXMLFlags -> DomainUndefineFlags -> StorageVolDelete
//
// By default the calls, the domain document and the define/undefine flags
// are the ones the libvirt plugin makes (plugins/libvirt: localvol.go's
// overlay, domainXML, DomainDefineValidate on the first define only, as
// shape.go checks each document shape once, undefineFlags), so the only
// difference from vmflow is what vmflow and the plugin do around these
// calls. -xml minimal and -validate=false measure what the document and
// the schema check cost; -validate-every checks every define, and
// -overlay pool asks libvirtd for each overlay (StorageVolCreateXML), as
// the plugin did before issue 15.
//
// -overlay qemu-img makes each overlay with a local `qemu-img create` in
// the pool's directory and deletes it with rm, behind libvirt's back, as
// bench/libvirt/virsh.sh does. -floor is the minimal floor issue 15
// measures against: -overlay qemu-img -xml minimal -validate=false.
//
// -v prints each operation's duration to stderr, and a per-operation
// summary (min, median, mean, max, total).
//
//	go build -o raw ./bench/libvirt/raw
//	raw -pool vmflow-867b2012 -base bench-base [-n 20] [-v] [-floor]
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"libvirt.org/go/libvirtxml"
)

const undefineFlags = libvirt.DomainUndefineManagedSave | libvirt.DomainUndefineSnapshotsMetadata |
	libvirt.DomainUndefineNvram | libvirt.DomainUndefineCheckpointsMetadata

func main() {
	uri := flag.String("uri", "qemu:///system", "libvirt URI (local daemon)")
	sock := flag.String("socket", "", "libvirtd's socket, when not the default")
	poolName := flag.String("pool", "", "storage pool holding the base volume (required)")
	baseName := flag.String("base", "bench-base", "base volume in the pool")
	kernel := flag.String("kernel", "", "kernel path in the domain XML (default: the base volume's path)")
	n := flag.Int("n", 20, "iterations")
	prefix := flag.String("prefix", "bench-", "name prefix: volumes PREFIXov-i, domains PREFIXvm-i")
	xmlKind := flag.String("xml", "plugin", "domain document: plugin (what plugins/libvirt sends) or minimal")
	validate := flag.Bool("validate", true, "define the first domain with VIR_DOMAIN_DEFINE_VALIDATE, as the plugin does (one document shape)")
	every := flag.Bool("validate-every", false, "with -validate: every define, not only the first")
	overlay := flag.String("overlay", "pool", "how overlays are made and deleted: pool (StorageVolCreateXML, StorageVolDelete), qemu-img (a local qemu-img create, rm) or refresh (a local qemu-img create, StoragePoolRefresh and a lookup; StorageVolDelete)")
	floor := flag.Bool("floor", false, "the minimal floor: -overlay qemu-img -xml minimal -validate=false")
	verbose := flag.Bool("v", false, "print per-operation durations to stderr")
	flag.Parse()
	if *poolName == "" {
		fail("-pool is required")
	}
	if *floor {
		*overlay, *xmlKind, *validate = "qemu-img", "minimal", false
	}
	if *overlay != "pool" && *overlay != "qemu-img" && *overlay != "refresh" {
		fail("-overlay must be pool, qemu-img or refresh")
	}
	if *xmlKind != "plugin" && *xmlKind != "minimal" {
		fail("-xml must be plugin or minimal")
	}

	t0 := time.Now()
	u, err := url.Parse(*uri)
	check(err)
	opts := []dialers.LocalOption{dialers.WithLocalTimeout(5 * time.Second)}
	if *sock != "" {
		opts = append(opts, dialers.WithSocket(*sock))
	}
	conn := libvirt.NewWithDialer(dialers.NewLocal(opts...))
	check(conn.ConnectToURI(libvirt.RemoteURI(u)))
	defer conn.Disconnect()
	tConn := time.Since(t0)

	// Once: the pool, the base volume's path, size and format.
	t1 := time.Now()
	pool, err := conn.StoragePoolLookupByName(*poolName)
	check(err)
	base, err := conn.StorageVolLookupByName(pool, *baseName)
	check(err)
	doc, err := conn.StorageVolGetXMLDesc(base, 0)
	check(err)
	var bx libvirtxml.StorageVolume
	check(bx.Unmarshal(doc))
	_, capacity, _, err := conn.StorageVolGetInfo(base)
	check(err)
	basePath, baseFormat := bx.Target.Path, "raw"
	if bx.Target.Format != nil {
		baseFormat = bx.Target.Format.Type
	}
	if *kernel == "" {
		*kernel = basePath
	}
	tBase := time.Since(t1)

	ops := []string{"overlay", "define", "undefine", "delete"}
	times := map[string][]time.Duration{}
	timed := func(op string, i int, f func() error) {
		s := time.Now()
		if err := f(); err != nil {
			fail(fmt.Sprintf("%s %d: %v", op, i, err))
		}
		d := time.Since(s)
		times[op] = append(times[op], d)
		if *verbose {
			fmt.Fprintf(os.Stderr, "%-8s %2d %8.3f ms\n", op, i, ms(d))
		}
	}
	var defFlags libvirt.DomainDefineFlags
	if *validate {
		defFlags = libvirt.DomainDefineValidate
	}

	tLoop := time.Now()
	for i := 1; i <= *n; i++ {
		ovName := fmt.Sprintf("%sov-%d", *prefix, i)
		vmName := fmt.Sprintf("%svm-%d", *prefix, i)
		var vol libvirt.StorageVol
		var dom libvirt.Domain
		timed("overlay", i, func() (err error) {
			vol, err = makeOverlay(conn, pool, *overlay, ovName, basePath, baseFormat, capacity)
			return err
		})
		timed("define", i, func() error {
			var s string
			var err error
			if *xmlKind == "plugin" {
				s, err = pluginDomainXML(vmName, vol.Key, *kernel)
			} else {
				s, err = minimalDomainXML(vmName, vol.Key, *kernel)
			}
			if err != nil {
				return err
			}
			fl := defFlags
			if i > 1 && !*every {
				fl = 0
			}
			dom, err = conn.DomainDefineXMLFlags(s, fl)
			return err
		})
		timed("undefine", i, func() error { return conn.DomainUndefineFlags(dom, undefineFlags) })
		timed("delete", i, func() error {
			if *overlay == "qemu-img" {
				return os.Remove(vol.Key)
			}
			return conn.StorageVolDelete(vol, 0)
		})
	}
	loop := time.Since(tLoop)

	if *verbose {
		fmt.Fprintf(os.Stderr, "\nconnect %.3f ms, pool+base lookup %.3f ms, %d iterations %.3f ms (%.3f ms each)\n",
			ms(tConn), ms(tBase), *n, ms(loop), ms(loop)/float64(*n))
		printSummary(ops, times)
	}
}

// makeOverlay makes the overlay ovName on the base volume, as -overlay
// says: through the pool API, with a local qemu-img, or with a local
// qemu-img, a pool refresh and a lookup.
func makeOverlay(conn *libvirt.Libvirt, pool libvirt.StoragePool, mode, ovName, basePath, baseFormat string, capacity uint64) (libvirt.StorageVol, error) {
	if mode == "pool" {
		x := libvirtxml.StorageVolume{
			Name:       ovName,
			Capacity:   &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: capacity},
			Allocation: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: 0},
			Target:     &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
			BackingStore: &libvirtxml.StorageVolumeBackingStore{
				Path: basePath, Format: &libvirtxml.StorageVolumeTargetFormat{Type: baseFormat},
			},
		}
		s, err := x.Marshal()
		if err != nil {
			return libvirt.StorageVol{}, err
		}
		return conn.StorageVolCreateXML(pool, s, 0)
	}
	path := filepath.Join(filepath.Dir(basePath), ovName)
	vol := libvirt.StorageVol{Key: path}
	args := []string{"create", "-q", "-f", "qcow2", "-b", basePath, "-F", baseFormat, path}
	if mode == "refresh" { // what libvirtd runs, with the file made first (O_EXCL)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return vol, err
		}
		f.Close()
		args = []string{"create", "-q", "-f", "qcow2", "-b", basePath, "-o", "backing_fmt=" + baseFormat + ",compat=0.10", path, fmt.Sprintf("%dK", (capacity+1023)/1024)}
	}
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		return vol, fmt.Errorf("qemu-img create: %v: %s", err, out)
	}
	if mode != "refresh" {
		return vol, nil
	}
	if err := conn.StoragePoolRefresh(pool, 0); err != nil {
		return vol, err
	}
	return conn.StorageVolLookupByName(pool, ovName)
}

// printSummary prints each operation's min, median, mean, max and total.
func printSummary(ops []string, times map[string][]time.Duration) {
	fmt.Fprintf(os.Stderr, "%-8s %8s %8s %8s %8s %9s\n", "op", "min", "median", "mean", "max", "total ms")
	for _, op := range ops {
		d := append([]time.Duration(nil), times[op]...)
		sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
		var sum time.Duration
		for _, x := range d {
			sum += x
		}
		med := d[len(d)/2]
		if len(d)%2 == 0 {
			med = (d[len(d)/2-1] + d[len(d)/2]) / 2
		}
		fmt.Fprintf(os.Stderr, "%-8s %8.3f %8.3f %8.3f %8.3f %9.3f\n", op, ms(d[0]), ms(med), ms(sum)/float64(len(d)), ms(d[len(d)-1]), ms(sum))
	}
}

// pluginDomainXML is the document plugins/libvirt's define builds for
// firmware = "kernel", network = "none", boot_readonly = true, type qemu,
// 1024 MiB, 1 vCPU (domainXML in plugins/libvirt/domains.go).
func pluginDomainXML(name, disk, kernel string) (string, error) {
	x := libvirtxml.Domain{
		Type:        "qemu",
		Name:        name,
		UUID:        newUUID(),
		Memory:      &libvirtxml.DomainMemory{Value: 1024, Unit: "MiB"},
		VCPU:        &libvirtxml.DomainVCPU{Value: 1},
		OnPoweroff:  "destroy",
		OnReboot:    "restart",
		OnCrash:     "destroy",
		Features:    &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		OS:          &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "q35", Type: "hvm"}, Kernel: kernel},
		Description: "managed by vmflow",
		Devices: &libvirtxml.DomainDeviceList{
			Disks: []libvirtxml.DomainDisk{{
				Device:   "disk",
				Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
				Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: disk}},
				Target:   &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
				ReadOnly: &libvirtxml.DomainDiskReadOnly{},
			}},
			Channels: []libvirtxml.DomainChannel{{
				Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
				Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: "org.qemu.guest_agent.0"}},
			}},
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Log:    &libvirtxml.DomainChardevLog{File: "/var/log/libvirt/qemu/" + name + "-console.log", Append: "on"},
			}},
			RNGs: []libvirtxml.DomainRNG{{Model: "virtio", Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}}}},
		},
	}
	return x.Marshal()
}

// minimalDomainXML is the smallest document with the disk: what the bash
// variant (virsh.sh) defines.
func minimalDomainXML(name, disk, kernel string) (string, error) {
	x := libvirtxml.Domain{
		Type:   "qemu",
		Name:   name,
		Memory: &libvirtxml.DomainMemory{Value: 1024, Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: 1},
		OS:     &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "q35", Type: "hvm"}, Kernel: kernel},
		Devices: &libvirtxml.DomainDeviceList{
			Disks: []libvirtxml.DomainDisk{{
				Device:   "disk",
				Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
				Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: disk}},
				Target:   &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
				ReadOnly: &libvirtxml.DomainDiskReadOnly{},
			}},
		},
	}
	return x.Marshal()
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func check(err error) {
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "raw:", msg)
	os.Exit(1)
}
