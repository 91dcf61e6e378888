package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/internal/plugintest"
)

// harness drives the stub in process the way vmflow does (Configure,
// then the shared harness's Validate and Run per step).
type harness struct {
	*plugintest.Harness
	state string
}

func newHarness(t *testing.T, state string, config map[string]cty.Value) *harness {
	t.Helper()
	p, err := sdk.InProcess(newPlugin(&driver{}))
	if err != nil {
		t.Fatal(err)
	}
	schema, _ := p.Describe(context.Background())
	cfg := cty.EmptyObjectVal
	if len(config) > 0 {
		cfg = cty.ObjectVal(config)
	}
	if cfg, err = schema.Config.ApplyDefaults(cfg); err != nil {
		t.Fatal(err)
	}
	diags, err := p.Configure(context.Background(), cfg, protocol.Env{StateDir: state, WorkDir: state})
	if err != nil || diags.HasErrors() {
		t.Fatalf("configure: %v %v", err, diags.Err())
	}
	return &harness{Harness: &plugintest.Harness{T: t, Conn: p, Schema: schema}, state: state}
}

// logged checks that the last call logged exactly these commands.
func (h *harness) logged(want ...string) {
	h.T.Helper()
	if !slices.Equal(h.Logs, want) {
		h.T.Fatalf("logged:\n  %s\nwant:\n  %s", strings.Join(h.Logs, "\n  "), strings.Join(want, "\n  "))
	}
}

func str(v cty.Value, attr string) string { return v.GetAttr(attr).AsString() }

// cluster reads the state file as it is on disk.
func (h *harness) cluster() *cluster {
	h.T.Helper()
	b, err := os.ReadFile(filepath.Join(h.state, "proxmox-stub", "cluster.json"))
	if err != nil {
		h.T.Fatal(err)
	}
	var c cluster
	if err := json.Unmarshal(b, &c); err != nil {
		h.T.Fatalf("the state file is not JSON: %v", err)
	}
	return &c
}

func kernelFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(p, []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The create task's steps, as Proxmox would have been asked to run them.
func TestCreateLogsProxmoxCommands(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	kernel := kernelFile(t)
	h.Run("volume_create", map[string]any{"name": "demo-base", "size": "64M"})
	h.logged("pvesh get /cluster/nextid  # 100, reserved for demo", "pvesm alloc local-lvm 100 vm-100-disk-0 64M")
	k := h.Run("volume_import", map[string]any{"name": "demo-kernel", "path": kernel})
	if str(k, "path") != "local:import/demo-kernel.raw" || str(k, "format") != "raw" {
		t.Fatalf("volume_import: %#v", k)
	}
	h.logged("pvesh create /nodes/pve/storage/local/upload --content import --filename demo-kernel.raw --tmpfilename " + kernel)
	b := h.Run("volume_overlay", map[string]any{"name": "demo-boot", "backing": "demo-base"})
	if str(b, "path") != "local-lvm:vm-100-disk-1" {
		t.Fatalf("volume_overlay: %#v", b)
	}
	h.logged("lvcreate -n vm-100-disk-1 -prohibitallocation -ay -s pve/vm-100-disk-0")
	h.Run("volume_create", map[string]any{"name": "demo-var", "size": "10G", "filesystem": "ext4", "label": "var"})
	h.logged("pvesm alloc local-lvm 100 vm-100-disk-2 10G", "mkfs.ext4 -q -L var /dev/pve/vm-100-disk-2")
	d := h.Run("define", map[string]any{
		"name": "demo", "uuid": "8e07fc61-d7a3-4821-8815-286f4d96e629", "boot_volume": "demo-boot", "var_volume": "demo-var",
		"firmware": "kernel", "kernel": str(k, "path"), "cmdline": "console=ttyS0 x=1",
	})
	h.logged("qm create 100 --name demo --memory 1024 --cores 1 --smbios1 uuid=8e07fc61-d7a3-4821-8815-286f4d96e629 --machine q35 --bios seabios" +
		` --args '-kernel /var/lib/vz/import/demo-kernel.raw -append "console=ttyS0 x=1"'` +
		" --virtio0 local-lvm:vm-100-disk-1,ro=1 --virtio1 local-lvm:vm-100-disk-2 --boot order=virtio0 --net0 virtio=" + macFor("demo") + ",bridge=vmbr0" +
		" --agent enabled=1 --serial0 socket")
	if str(d, "mac") != macFor("demo") || !strings.HasPrefix(macFor("demo"), "BC:24:11:") {
		t.Fatalf("define: %#v", d)
	}
	h.Run("start", map[string]any{"name": "demo"})
	h.logged("qm start 100")
	if ip := h.Run("wait_ip", map[string]any{"name": "demo"}); str(ip, "ip") != "10.0.0.100" || str(ip, "source") != "agent" {
		t.Fatalf("wait_ip: %#v", ip)
	}
	h.Run("snapshot_create", map[string]any{"name": "demo", "snapshot": "before"})
	h.logged("qm snapshot 100 before --vmstate 1")
	h.Run("snapshot_revert", map[string]any{"name": "demo", "snapshot": "before"})
	h.logged("qm rollback 100 before")
	h.Run("volume_resize", map[string]any{"name": "demo-var", "size": "12G"})
	h.logged("qm resize 100 virtio1 12G")
	h.Run("undefine", map[string]any{"name": "demo", "force": true})
	h.logged("qm stop 100", "qm destroy 100 --destroy-unreferenced-disks 0 --purge 1  # its disks stay, for volume_delete")
	h.Run("volume_delete", map[string]any{"name": "demo-var"})
	h.logged("pvesm free local-lvm:vm-100-disk-2")
}

// A VMID is reserved by a VM's first disk, taken over by the VM, and
// free again once neither is left; the lowest free one is handed out.
func TestVMIDs(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	kernel := kernelFile(t)
	vm := func(name string) {
		h.Run("volume_create", map[string]any{"name": name + "-boot", "size": "1G"})
		h.Run("define", map[string]any{"name": name, "boot_volume": name + "-boot", "firmware": "kernel", "kernel": kernel})
	}
	vm("a")
	vm("b")
	if c := h.cluster(); c.VMs["a"].VMID != 100 || c.VMs["b"].VMID != 101 || c.volumeByName("b-boot").VolID != "local-lvm:vm-101-disk-0" {
		t.Fatalf("VMIDs: %+v", c.VMIDs)
	}
	// a's disk keeps its VMID reserved after the VM is gone.
	h.Run("undefine", map[string]any{"name": "a"})
	if c := h.cluster(); c.VMIDs["a"] != 100 {
		t.Fatalf("a's VMID was released while its disk exists: %+v", c.VMIDs)
	}
	h.Run("volume_delete", map[string]any{"name": "a-boot"})
	if c := h.cluster(); len(c.VMIDs) != 1 {
		t.Fatalf("a's VMID is still held: %+v", c.VMIDs)
	}
	vm("c")
	if c := h.cluster(); c.VMs["c"].VMID != 100 {
		t.Fatalf("c got VMID %d, want the lowest free, 100", c.VMs["c"].VMID)
	}
	// Disk numbers: the lowest free one of the VMID.
	h.Run("volume_create", map[string]any{"name": "c-var", "size": "1G"})
	h.Run("volume_delete", map[string]any{"name": "c-boot"})
	if v := h.Run("volume_create", map[string]any{"name": "c-extra", "size": "1G"}); str(v, "path") != "local-lvm:vm-100-disk-0" {
		t.Fatalf("c-extra: %#v", v)
	}
}

// A UEFI VM gets an EFI disk, destroyed with it.
func TestUEFI(t *testing.T) {
	h := newHarness(t, t.TempDir(), map[string]cty.Value{"storage": cty.StringVal("local"), "node": cty.StringVal("pve2")})
	img := filepath.Join(t.TempDir(), "disk.qcow2")
	hdr := make([]byte, 32)
	copy(hdr, "QFI\xfb")
	hdr[24+4] = 1 // 4 GiB
	if err := os.WriteFile(img, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	im := h.Run("volume_import", map[string]any{"name": "u-base", "path": img})
	h.logged("pvesh create /nodes/pve2/storage/local/upload --content import --filename u-base.qcow2 --tmpfilename " + img)
	if str(im, "format") != "qcow2" || str(im, "path") != "local:import/u-base.qcow2" {
		t.Fatalf("import: %#v", im)
	}
	h.Fails("define", map[string]any{"name": "u", "boot_volume": "u-base"}, "is an uploaded image")
	h.Run("volume_overlay", map[string]any{"name": "u-boot", "backing": "u-base"})
	h.logged("pvesh get /cluster/nextid  # 100, reserved for u",
		"qemu-img create -f qcow2 -F qcow2 -b /var/lib/vz/import/u-base.qcow2 /var/lib/vz/images/100/vm-100-disk-0.qcow2")
	h.Run("define", map[string]any{"name": "u", "uuid": "8e07fc61-d7a3-4821-8815-286f4d96e629", "boot_volume": "u-boot", "boot_readonly": false, "network": "none"})
	h.logged("qm create 100 --name u --memory 1024 --cores 1 --smbios1 uuid=8e07fc61-d7a3-4821-8815-286f4d96e629 --machine q35" +
		" --bios ovmf --efidisk0 local:1,efitype=4m --virtio0 local:100/vm-100-disk-0.qcow2 --boot order=virtio0 --agent enabled=1 --serial0 socket")
	if c := h.cluster(); c.VMs["u"].EFIDisk != "local:100/vm-100-disk-1.qcow2" || c.Volumes["local:100/vm-100-disk-1.qcow2"] == nil {
		t.Fatalf("EFI disk: %+v", c.VMs["u"])
	}
	// Redefining logs only what changed.
	h.Run("define", map[string]any{"name": "u", "boot_volume": "u-boot", "boot_readonly": false, "network": "none", "memory": 2048})
	h.logged("qm set 100 --memory 2048")
	h.Run("undefine", map[string]any{"name": "u"})
	if c := h.cluster(); len(c.Volumes) != 2 {
		t.Fatalf("after undefine: %+v", c.Volumes)
	}
}

// What Proxmox refuses, the stub refuses, and changes nothing.
func TestRefusals(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	h.Run("volume_create", map[string]any{"name": "r-boot", "size": "2G"})
	h.Fails("volume_resize", map[string]any{"name": "r-boot", "size": "1G"}, "shrinking it to 1G is refused (Proxmox: shrinking disks is not supported)")
	h.Fails("define", map[string]any{"name": "r", "boot_volume": "/var/lib/x.img", "firmware": "kernel", "kernel": kernelFile(t)}, "Proxmox attaches volumes, not files")
	h.Fails("define", map[string]any{"name": "r", "boot_volume": "r-boot", "firmware": "kernel", "kernel": "r-boot"}, "a kernel or initrd is a file")
	h.Fails("define", map[string]any{"name": "r", "boot_volume": "r-boot", "firmware": "kernel", "kernel": "/no/such/kernel"}, "no such file")
	h.Fails("define", map[string]any{"name": "r", "boot_volume": "r-boot", "memory": 8}, "memory: must be at least 16")
	h.Run("define", map[string]any{"name": "r", "boot_volume": "r-boot"})
	h.Run("start", map[string]any{"name": "r"})
	h.Fails("undefine", map[string]any{"name": "r"}, "Proxmox refuses to destroy a running VM")
	h.Run("snapshot_create", map[string]any{"name": "r", "snapshot": "s"})
	h.Fails("snapshot_create", map[string]any{"name": "r", "snapshot": "s"}, "snapshot name 's' already used")
	h.Run("destroy", map[string]any{"name": "r"})
	h.Fails("reboot", map[string]any{"name": "r"}, "VM 100 not running")
	h.Fails("wait_ip", map[string]any{"name": "r"}, "is not running, so it has no address")
	h.Fails("guest_exec", map[string]any{"name": "r", "argv": []string{"cat", "/etc/hostname"}}, "a real Proxmox would run `qm guest exec 100 -- cat /etc/hostname`")
	h.Fails("console", map[string]any{"name": "r"}, "a real Proxmox would attach `qm terminal 100`")
	if c := h.cluster(); c.VMs["r"].Status != stopped || len(c.VMs["r"].Snapshots) != 1 || c.volumeByName("r-boot").Size != 2<<30 {
		t.Fatalf("a refusal changed the state: %+v", c.VMs["r"])
	}
	h.Run("undefine", map[string]any{"name": "r"})
}

// define's undo puts the previous configuration back; start's stops.
func TestUndo(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	h.Run("volume_create", map[string]any{"name": "x-boot", "size": "1G"})
	h.Run("volume_create", map[string]any{"name": "x-var", "size": "1G"})
	first := map[string]any{"name": "x", "boot_volume": "x-boot", "uuid": "8e07fc61-d7a3-4821-8815-286f4d96e629"}
	h.Run("define", first)
	second := map[string]any{"name": "x", "boot_volume": "x-boot", "var_volume": "x-var", "memory": 512}
	out := h.Run("define", second)
	h.Undo("define", second, out)
	h.logged("qm set 100 --memory 1024 --delete virtio1")
	if c := h.cluster(); c.VMs["x"].Var != "" || c.VMs["x"].Memory != 1024 || c.VMs["x"].UUID != "8e07fc61-d7a3-4821-8815-286f4d96e629" {
		t.Fatalf("after define's undo: %+v", c.VMs["x"])
	}
	st := h.Run("start", map[string]any{"name": "x"})
	h.Undo("start", map[string]any{"name": "x"}, st)
	h.logged("qm stop 100")
}

// Concurrent steps and runs share the state file without losing changes:
// every call takes the lock and writes atomically.
func TestConcurrentRuns(t *testing.T) {
	state := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 4 {
		h := newHarness(t, state, nil) // one plugin process per run
		wg.Go(func() {
			for j := range 10 {
				if _, err := h.Try("volume_create", map[string]any{"name": fmt.Sprintf("vm%d-disk%d", i, j), "size": "1G"}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c := newHarness(t, state, nil).cluster()
	if len(c.Volumes) != 40 || len(c.VMIDs) != 4 {
		t.Fatalf("%d volumes, VMIDs %v; want 40 volumes of 4 VMIDs", len(c.Volumes), c.VMIDs)
	}
	ents, _ := os.ReadDir(filepath.Join(state, "proxmox-stub"))
	for _, e := range ents {
		if e.Name() != "cluster.json" && e.Name() != "cluster.lock" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []struct {
		config map[string]cty.Value
		want   string
	}{
		{map[string]cty.Value{"storage": cty.StringVal("ceph")}, `unknown storage "ceph"`},
		{map[string]cty.Value{"node": cty.StringVal("pve_1")}, `invalid node name "pve_1"`},
	} {
		p, _ := sdk.InProcess(newPlugin(&driver{}))
		schema, _ := p.Describe(context.Background())
		cfg, _ := schema.Config.ApplyDefaults(cty.ObjectVal(c.config))
		diags, _ := p.Configure(context.Background(), cfg, protocol.Env{StateDir: t.TempDir()})
		if err := diags.Err(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %v: %v, want %q", c.config, err, c.want)
		}
	}
}

// vmflow plan shows the Proxmox commands a step stands for, with the VMID
// /cluster/nextid would give.
func TestPlanReadsLikeProxmox(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	lines := h.plan("volume_create", map[string]any{"name": "demo-var", "size": "10G", "filesystem": "ext4"})
	if len(lines) != 2 || lines[0] != "pvesm alloc local-lvm 100 vm-100-disk-<n> 10G" || lines[1] != "mkfs.ext4 -q -L var <the new disk>" {
		t.Fatalf("plan: %q", lines)
	}
	lines = h.plan("snapshot_create", map[string]any{"name": "demo", "snapshot": "before"})
	if len(lines) != 1 || lines[0] != "qm snapshot 100 before" {
		t.Fatalf("plan: %q", lines)
	}
	for _, c := range []struct {
		action string
		args   map[string]any
		want   []string
	}{
		{"volume_create", map[string]any{"name": "demo-var", "size": "10G", "filesystem": "ext4", "files": map[string]string{"a": "b"}, "secret_files": map[string]string{"k": "SECRET"}},
			[]string{"pvesm alloc local-lvm 100 vm-100-disk-<n> 10G", "mkfs.ext4 -q -L var -d <2 file(s)> <the new disk>"}},
		{"volume_edit", map[string]any{"name": "demo-var", "files": map[string]string{"identity/hostname": "x"}, "remove": []string{"identity/ssh/*"}},
			[]string{"debugfs -w -f <edit script> <disk of demo-var>  # rm identity/ssh/*; write identity/hostname", "e2fsck -fn <disk of demo-var>"}},
		{"volume_swap", map[string]any{"name": "demo-boot", "with": "demo-boot.next"},
			[]string{"exchange <volume id of demo-boot> and <volume id of demo-boot.next> (lvrename ×3 on local-lvm, mv --exchange on local)"}},
		{"volume_export", map[string]any{"name": "demo-var", "path": "/backups/var.qcow2"}, []string{"pvesm export <volume id of demo-var> <format>+size /backups/var.qcow2"}},
		{"suspend", map[string]any{"name": "demo"}, []string{"qm suspend 100"}},
		{"resume", map[string]any{"name": "demo"}, []string{"qm resume 100"}},
		{"ensure_absent", map[string]any{"vm": "demo", "volumes": []string{"demo-var"}},
			[]string{"qm status <vmid of demo>  # must not exist", "pvesm list local-lvm  # none of demo-var may exist"}},
	} {
		if lines := h.plan(c.action, c.args); !slices.Equal(lines, c.want) {
			t.Errorf("plan of %s: %q, want %q", c.action, lines, c.want)
		}
	}
}

func (h *harness) plan(action string, args map[string]any) []string {
	h.T.Helper()
	lines, ds, err := h.Conn.Plan(context.Background(), action, h.Inputs(action, args))
	if err != nil || ds.HasErrors() {
		h.T.Fatalf("plan %s: %v %v", action, err, ds.Err())
	}
	return lines
}

// Files, edits, swaps and exports: the commands a node would run, and the
// files the stub records (names and modes, never contents).
func TestVolumeFilesLog(t *testing.T) {
	h := newHarness(t, t.TempDir(), map[string]cty.Value{"storage": cty.StringVal("local")})
	h.Run("volume_create", map[string]any{"name": "web-var", "size": "1G", "filesystem": "ext4",
		"files": map[string]string{"identity/hostname": "web\n"}, "secret_files": map[string]string{"identity/ssh/ssh_host_ed25519_key": "SECRET"}})
	h.logged("pvesh get /cluster/nextid  # 100, reserved for web", "pvesm alloc local 100 vm-100-disk-0.qcow2 1G --format qcow2",
		"qemu-nbd --connect=/dev/nbd0 /var/lib/vz/images/100/vm-100-disk-0.qcow2", "mkfs.ext4 -q -L var -d '<the files>' /dev/nbd0", "qemu-nbd --disconnect /dev/nbd0")
	b, _ := os.ReadFile(filepath.Join(h.state, "proxmox-stub", "cluster.json"))
	if strings.Contains(string(b), "SECRET") {
		t.Fatal("the state file holds a secret's content")
	}
	want := map[string]string{"identity/hostname": "0644", "identity/ssh/ssh_host_ed25519_key": "0600"}
	if got := h.cluster().volumeByName("web-var").Files; !maps.Equal(got, want) {
		t.Fatalf("files: %v", got)
	}

	out := h.Run("volume_edit", map[string]any{"name": "web-var", "files": map[string]string{"identity/hostname": "clone\n"}, "remove": []string{"identity/ssh/*"}})
	h.logged("qemu-nbd --connect=/dev/nbd0 /var/lib/vz/images/100/vm-100-disk-0.qcow2",
		"debugfs -w -f '<edit script>' /dev/nbd0  # rm identity/ssh/ssh_host_ed25519_key; write identity/hostname",
		"e2fsck -fn /dev/nbd0", "qemu-nbd --disconnect /dev/nbd0")
	if r := out.GetAttr("removed").AsValueSlice(); len(r) != 1 || r[0].AsString() != "identity/ssh/ssh_host_ed25519_key" {
		t.Fatalf("volume_edit: %#v", out)
	}
	if got := h.cluster().volumeByName("web-var").Files; !maps.Equal(got, map[string]string{"identity/hostname": "0644"}) {
		t.Fatalf("files after the edit: %v", got)
	}

	// An export describes the volume; importing it brings the volume back.
	path := filepath.Join(t.TempDir(), "web-var.qcow2")
	exp := h.Run("volume_export", map[string]any{"name": "web-var", "path": path})
	h.logged("pvesm export local:100/vm-100-disk-0.qcow2 qcow2+size "+path, "the stub wrote a description of local:100/vm-100-disk-0.qcow2, not its blocks")
	if str(exp, "format") != "qcow2" {
		t.Fatalf("volume_export: %#v", exp)
	}
	// The export of a disk comes back as a disk, as qm disk import makes.
	im := h.Run("volume_import", map[string]any{"name": "restored", "path": path})
	if str(im, "path") != "local:101/vm-101-disk-0.qcow2" || str(im, "format") != "qcow2" {
		t.Fatalf("volume_import of an export: %#v", im)
	}
	h.logged(path+" is the stub's export of the disk web-var (local:100/vm-100-disk-0.qcow2)",
		"pvesh get /cluster/nextid  # 101, reserved for restored",
		"qm disk import 101 "+path+" local")
	if v := h.cluster().volumeByName("restored"); v.Size != 1<<30 || v.FS != "ext4" || !maps.Equal(v.Files, map[string]string{"identity/hostname": "0644"}) {
		t.Fatalf("the restored volume: %+v", v)
	}

	// A swap exchanges what two volume ids hold.
	h.Run("volume_create", map[string]any{"name": "web-next", "size": "2G"})
	swap := map[string]any{"name": "web-var", "with": "web-next"}
	sw := h.Run("volume_swap", swap)
	h.logged("mv --exchange -T /var/lib/vz/images/100/vm-100-disk-0.qcow2 /var/lib/vz/images/100/vm-100-disk-1.qcow2")
	if c := h.cluster(); c.volumeByName("web-var").Size != 2<<30 || c.volumeByName("web-next").Files == nil || c.volumeByName("web-var").VolID != "local:100/vm-100-disk-0.qcow2" {
		t.Fatalf("after the swap: %+v %+v", c.volumeByName("web-var"), c.volumeByName("web-next"))
	}
	h.Undo("volume_swap", swap, sw)
	if c := h.cluster(); c.volumeByName("web-var").Size != 1<<30 {
		t.Fatalf("after the swap's undo: %+v", c.volumeByName("web-var"))
	}
	img := filepath.Join(t.TempDir(), "kernel")
	if err := os.WriteFile(img, []byte("a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Run("volume_import", map[string]any{"name": "web-kernel", "path": img})
	h.Fails("volume_swap", map[string]any{"name": "web-var", "with": "web-kernel"}, "Proxmox exchanges volumes only of one kind on one storage")
}

// suspend, resume, shutdown's undo, ensure_absent: as qm would have them.
func TestPowerLog(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	h.Run("volume_create", map[string]any{"name": "p-boot", "size": "1G"})
	h.Run("volume_create", map[string]any{"name": "p-var", "size": "1G", "filesystem": "ext4"})
	h.Run("define", map[string]any{"name": "p", "boot_volume": "p-boot", "var_volume": "p-var", "firmware": "kernel", "kernel": kernelFile(t)})
	h.Run("start", map[string]any{"name": "p"})
	if s := h.Run("state", map[string]any{"name": "p"}); str(s, "ip") != "10.0.0.100" {
		t.Fatalf("state: %#v", s)
	}
	sus := h.Run("suspend", map[string]any{"name": "p"})
	h.logged("qm suspend 100")
	if s := h.Run("state", map[string]any{"name": "p"}); str(s, "state") != "paused" || str(s, "ip") != "" {
		t.Fatalf("state of a suspended VM: %#v", s)
	}
	h.Undo("suspend", map[string]any{"name": "p"}, sus)
	h.logged("qm resume 100")
	h.Fails("volume_edit", map[string]any{"name": "p-var", "remove": []string{"x"}}, "is in use by VM 100 (p, its virtio1), which is running")
	h.Fails("ensure_absent", map[string]any{"vm": "p", "volumes": []string{"p-var", "p-boot"}}, "VM p exists (running); volumes p-var, p-boot exist")
	down := h.Run("shutdown", map[string]any{"name": "p"})
	h.logged("qm shutdown 100 --timeout 120")
	h.Undo("shutdown", map[string]any{"name": "p"}, down)
	h.logged("qm start 100")
	if c := h.cluster(); c.VMs["p"].Status != running {
		t.Fatalf("after shutdown's undo: %+v", c.VMs["p"])
	}
}
