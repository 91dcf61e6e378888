package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmflow/vmflow/internal/testfs"
)

// A damaged state file is refused with an error that names it and what is
// wrong, by every action, and never panics the plugin.
func TestDamagedStateFile(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`{"vms":{"p1":null},"volumes":{"x":null},"vmids":{}}`, `VM "p1" is null; volume "x" is null`},
		{`{"vms":{"p1":{"vmid":100,"name":"p2","status":"running"}}}`, `VM "p1" is recorded under the name "p2"`},
		{`{"volumes":{"local-lvm:vm-100-disk-0":{"volid":"local-lvm:vm-100-disk-0","format":"vmdk"}}}`, `has format "vmdk"`},
		{`{"vms":`, `unexpected end of JSON input`},
	} {
		state := t.TempDir()
		const name = "proxmox-stub/cluster.json"
		testfs.Write(t, state, name, c.doc)
		file := filepath.Join(state, name)
		h := newHarness(t, state, nil)
		for _, call := range []struct {
			action string
			args   map[string]any
		}{
			{"ensure_absent", map[string]any{"vm": "p1"}},
			{"volume_create", map[string]any{"name": "p1-var", "size": "1G"}},
			{"undefine", map[string]any{"name": "p1", "force": true, "missing_ok": true}},
			{"volume_list", map[string]any{"prefix": "p1-"}},
		} {
			_, err := h.Try(call.action, call.args)
			if err == nil || !strings.Contains(err.Error(), "the stub's state file "+file+" is damaged") || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "panic") {
				t.Errorf("%s on %s: %v; want the file named and %q", call.action, c.doc, err, c.want)
			}
		}
		if b, _ := os.ReadFile(file); string(b) != c.doc {
			t.Errorf("the damaged file was changed: %s", b)
		}
	}
}
