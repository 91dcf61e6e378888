package hypervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	good := []string{"demo", "vm-1", "a.b_c", "0start", "x", strings.Repeat("a", 128)}
	bad := []string{"", "../etc", "a/b", "a..b", ".hidden", "-x", "has space", "semi;colon", "dollar$", "back`tick", "quote'", "tab\tname", "new\nline", "star*", string(make([]byte, 129)), strings.Repeat("a", 129)}
	for _, n := range good {
		if err := CheckName("volume", n); err != nil {
			t.Errorf("CheckName(%q) = %v", n, err)
		}
	}
	for _, n := range bad {
		if err := CheckName("volume", n); err == nil {
			t.Errorf("CheckName(%q) accepted", n)
		}
	}
	if err := CheckName("domain", "a b"); err == nil || !strings.Contains(err.Error(), "invalid domain name") || !strings.Contains(err.Error(), NamePatternDoc) {
		t.Errorf("CheckName's error: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	cases := map[string]uint64{"512M": 512 << 20, "30G": 30 << 30, "100": 100 << 30, "2T": 2 << 40, "1": 1 << 30}
	for in, want := range cases {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "0G", "1.5G", "30GB", "30g", "-1", "G", "10K", "1 G", "012G", "99999999999999999999T"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for b, want := range map[uint64]string{30 << 30: "30G", 512 << 20: "512M", 2 << 40: "2T", 1536 << 30: "1536G", 1000: "1000 bytes"} {
		if got := FormatSize(b); got != want {
			t.Errorf("FormatSize(%d) = %s, want %s", b, got, want)
		}
		if got, err := ParseSize(FormatSize(b)); b%(1<<20) == 0 && (err != nil || got != b) {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", b, got, err)
		}
	}
}

func TestCheckSnapshotName(t *testing.T) {
	for _, n := range []string{"s1", "before-refactor", "a_b", "A", "a" + strings.Repeat("b", 39)} {
		if err := CheckSnapshotName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range []string{"", "1st", "current", "has space", "a.b", "a/b", "a" + strings.Repeat("b", 40), "-x"} {
		if err := CheckSnapshotName(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestHaveSnapshots(t *testing.T) {
	if got := HaveSnapshots(nil); got != "it has none" {
		t.Errorf("HaveSnapshots(nil) = %q", got)
	}
	if got := HaveSnapshots([]string{"a", "b"}); got != "it has: a, b" {
		t.Errorf("HaveSnapshots = %q", got)
	}
}

func TestNewUUID(t *testing.T) {
	a, b := NewUUID(), NewUUID()
	if a == b || len(a) != 36 || a[14] != '4' || !strings.ContainsRune("89ab", rune(a[19])) {
		t.Errorf("NewUUID: %s %s", a, b)
	}
}

func TestImageInfo(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	if err := os.WriteFile(raw, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	qcow := filepath.Join(dir, "qcow")
	hdr := make([]byte, 72)
	copy(hdr, "QFI\xfb")
	hdr[24+4] = 0x40 // 1 GiB, big-endian, at offset 24
	if err := os.WriteFile(qcow, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	if f, size, err := ImageInfo(raw); err != nil || f != "raw" || size != 4096 {
		t.Errorf("raw: %s %d %v", f, size, err)
	}
	if f, size, err := ImageInfo(qcow); err != nil || f != "qcow2" || size != 1<<30 {
		t.Errorf("qcow2: %s %d %v", f, size, err)
	}
	if _, _, err := ImageInfo(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file has no image info")
	}
}
