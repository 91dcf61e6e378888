package main

import (
	"strings"
	"testing"
)

// On libvirtd: define checks a document shape once; a later document of
// that shape whose MAC libvirt's schema refuses (dashes: vmflow's own rule
// lets them through, libvirt's parser would say "unable to parse mac
// address") still fails with the schema's error, as before the cache; a
// new shape is checked, and defines.
func TestDefineSchemaCheckOncePerShape(t *testing.T) {
	h := newHarness(t, "qemu:///system")
	name := uniqueName("vmflow-shape")
	h.run("volume_create", map[string]any{"name": name + "-boot", "size": "64M"})
	vms := []string{name + "-a", name + "-b", name + "-c", name + "-d"}
	t.Cleanup(func() {
		for _, vm := range vms {
			h.run("undefine", map[string]any{"name": vm, "missing_ok": true})
		}
		h.run("volume_delete", map[string]any{"name": name + "-boot", "missing_ok": true})
	})
	def := func(vm string, more map[string]any) map[string]any {
		args := map[string]any{"name": vm, "boot_volume": name + "-boot", "network": "nat", "memory": 256}
		for k, v := range more {
			args[k] = v
		}
		return args
	}
	h.run("define", def(vms[0], nil))
	h.run("define", def(vms[1], nil))
	_, err := h.try("define", def(vms[2], map[string]any{"mac": "52-54-00-01-02-03"}))
	if err == nil || !strings.Contains(err.Error(), "failed to validate against schema") {
		t.Fatalf("a MAC the schema refuses: %v", err)
	}
	if s := h.run("state", map[string]any{"name": vms[2]}); s.GetAttr("exists").True() {
		t.Fatal("the refused document was defined")
	}
	h.run("define", def(vms[3], map[string]any{"memory": 512, "network": "none"}))
	for _, vm := range []string{vms[0], vms[1], vms[3]} {
		if s := h.run("state", map[string]any{"name": vm}); !s.GetAttr("exists").True() {
			t.Fatalf("%s was not defined", vm)
		}
	}
}
