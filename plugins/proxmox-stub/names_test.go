package main

import (
	"strings"
	"testing"
)

func TestVMNames(t *testing.T) {
	for _, n := range []string{"demo", "vm-1", "a.b", "web01.example", "0start"} {
		if err := checkVMName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range []string{"", "a_b", "-x", "x-", "a..b", ".x", "has space", "a/b", strings.Repeat("a", 129)} {
		if err := checkVMName(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestOwnerOf(t *testing.T) {
	for in, want := range map[string]string{"demo-var": "demo", "vmflow-e2e-var": "vmflow-e2e", "base": "base", "demo-var-copy": "demo-var"} {
		if got := ownerOf(in); got != want {
			t.Errorf("ownerOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIPs(t *testing.T) {
	for id, want := range map[int]string{100: "10.0.0.100", 1234: "10.0.4.210", 999999: "10.15.66.63"} {
		if got := ipFor(id); got != want {
			t.Errorf("ipFor(%d) = %s, want %s", id, got, want)
		}
	}
}

func TestSizesAndQuoting(t *testing.T) {
	for b, want := range map[uint64]string{64 << 20: "64M", 10 << 30: "10G", 2 << 40: "2T", 1536 << 20: "1536M", 1000: "1K", 0: "0M", 1<<30 + 1: "1048577K"} {
		if got := formatSize(b); got != want {
			t.Errorf("formatSize(%d) = %s, want %s", b, got, want)
		}
	}
	if got := command("qm", "snapshot", "100", "s", "--description", "it's here"); got != `qm snapshot 100 s --description 'it'\''s here'` {
		t.Errorf("command: %s", got)
	}
}
