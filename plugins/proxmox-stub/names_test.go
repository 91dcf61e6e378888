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
	for in, want := range map[string]uint64{"512M": 512 << 20, "30G": 30 << 30, "100": 100 << 30, "2T": 2 << 40} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "1.5G", "30GB", "10K"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
	for b, want := range map[uint64]string{64 << 20: "64M", 10 << 30: "10G", 2 << 40: "2T", 1536 << 20: "1536M", 1000: "1K"} {
		if got := formatSize(b); got != want {
			t.Errorf("formatSize(%d) = %s, want %s", b, got, want)
		}
	}
	if got := command("qm", "snapshot", "100", "s", "--description", "it's here"); got != `qm snapshot 100 s --description 'it'\''s here'` {
		t.Errorf("command: %s", got)
	}
}
