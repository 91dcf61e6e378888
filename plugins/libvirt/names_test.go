package main

import "testing"

func TestCheckName(t *testing.T) {
	good := []string{"demo", "vm-1", "a.b_c", "0start", "x"}
	bad := []string{"", "../etc", "a/b", "a..b", ".hidden", "-x", "has space", "semi;colon", "dollar$", "back`tick", "quote'", "tab\tname", "new\nline", "star*", string(make([]byte, 129))}
	for _, n := range good {
		if err := checkName("volume", n); err != nil {
			t.Errorf("checkName(%q) = %v", n, err)
		}
	}
	for _, n := range bad {
		if err := checkName("volume", n); err == nil {
			t.Errorf("checkName(%q) accepted", n)
		}
	}
}

func TestParseSize(t *testing.T) {
	cases := map[string]uint64{"512M": 512 << 20, "30G": 30 << 30, "100": 100 << 30, "2T": 2 << 40, "1": 1 << 30}
	for in, want := range cases {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "0G", "1.5G", "30GB", "30g", "-1", "G", "10K", "1 G", "012G", "99999999999999999999T"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
	if got := formatSize(30 << 30); got != "30G" {
		t.Errorf("formatSize = %s", got)
	}
}

func TestCheckSnapshotName(t *testing.T) {
	for _, n := range []string{"s1", "before-refactor", "a_b", "A"} {
		if err := checkSnapshotName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	long := "a"
	for len(long) <= 40 {
		long += "b"
	}
	for _, n := range []string{"", "1st", "current", "has space", "a.b", "a/b", long, "-x"} {
		if err := checkSnapshotName(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestMACIsStableAndLocal(t *testing.T) {
	a, b := macFor("demo"), macFor("demo")
	if a != b || a[:9] != "52:54:00:" || macFor("other") == a {
		t.Fatalf("macFor: %s %s %s", a, b, macFor("other"))
	}
}
