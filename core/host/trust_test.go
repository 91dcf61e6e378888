package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// StartChecked's hash is the last check: a binary that changed
// after vmflow hashed it (here, a wrong sum) is refused without being
// executed; the script would leave a marker.
func TestStartCheckedRefusesWithoutRunning(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	bin := filepath.Join(dir, "vmflow-plugin-x")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := StartChecked(context.Background(), bin, make([]byte, 32), nil)
	if err == nil || !strings.Contains(err.Error(), "changed after vmflow checked it against the lock file; it was not run") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the binary ran")
	}
}

// The rule without a lock file: binaries in trusted directories run,
// the project's own do not; with one, only matching hashes run.
func TestTrustCheck(t *testing.T) {
	proj := t.TempDir()
	inst := t.TempDir()
	own := filepath.Join(proj, ".vmflow", "plugins", "vmflow-plugin-x")
	installed := filepath.Join(inst, "vmflow-plugin-x")
	for _, p := range []string{own, installed} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+p+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := NewFinder("", proj, map[string]string{"PATH": inst})
	tr, diags := NewTrust(proj, f)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if sum, err := tr.Check("x", installed); err != nil || sum != nil {
		t.Fatalf("installed: %v %x", err, sum)
	}
	if _, err := tr.Check("x", own); err == nil || err.(*RefusedError).Kind != RefusedUntrustedAt {
		t.Fatalf("own: %v", err)
	}
	hash, sum, _ := FileHash(own)
	tr.Lock = &LockFile{Path: tr.LockPath, Plugins: map[string]*LockedPlugin{}}
	tr.Lock.Record("x", "1", 1, Platform(), hash)
	if got, err := tr.Check("x", own); err != nil || string(got) != string(sum) {
		t.Fatalf("locked own: %v", err)
	}
	// Another binary under a locked name: go-plugin refuses to start it
	// (one hash, right before exec), and Mismatch names both hashes.
	got, err := tr.Check("x", installed)
	if err != nil || string(got) != string(sum) {
		t.Fatalf("installed, locked name: %v", err)
	}
	var ce *ChecksumError
	if _, err := StartChecked(context.Background(), installed, got, nil); !errors.As(err, &ce) {
		t.Fatalf("started another binary: %v", err)
	}
	other, _, _ := FileHash(installed)
	if re, ok := tr.Mismatch("x", installed).(*RefusedError); !ok || re.Kind != RefusedMismatch || re.Expected != hash || re.Actual != other {
		t.Fatalf("mismatch: %+v", re)
	}
	if _, err := tr.Check("y", installed); err == nil || err.(*RefusedError).Kind != RefusedNotLocked {
		t.Fatalf("not locked: %v", err)
	}
	// Written and read back; a new version drops the other platforms.
	tr.Lock.Record("x", "1", 1, "plan9_386", "sha256:"+strings.Repeat("0", 64))
	if err := tr.Lock.Write(); err != nil {
		t.Fatal(err)
	}
	back, diags := ReadLockFile(tr.LockPath)
	if diags.HasErrors() || len(back.Plugins["x"].Hashes) != 2 {
		t.Fatalf("read back: %v %+v", diags, back)
	}
	back.Record("x", "2", 1, Platform(), hash)
	if len(back.Plugins["x"].Hashes) != 1 {
		t.Fatalf("a new version kept old hashes: %v", back.Plugins["x"].Hashes)
	}
	// A path source is named relative to the lock file.
	if k := tr.Key("./.vmflow/plugins/vmflow-plugin-x", own); k != "./.vmflow/plugins/vmflow-plugin-x" {
		t.Fatalf("key %q", k)
	}
}

// What runs is the file that was hashed, not whatever its path names by
// the time the process starts: a script renamed over the binary between
// the check and the start is not run. The SDK closes the descriptor the
// plugin was executed through.
func TestStartCheckedRunsTheHashedFile(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "vmflow-plugin-hello")
	b, err := os.ReadFile(filepath.Join(binDir, "vmflow-plugin-hello"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	_, sum, err := FileHash(bin)
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "ran")
	afterVerify = func() {
		other := filepath.Join(dir, "other")
		if err := os.WriteFile(other, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
			t.Error(err)
		}
		if err := os.Rename(other, bin); err != nil {
			t.Error(err)
		}
	}
	defer func() { afterVerify = nil }()
	p, err := StartChecked(context.Background(), bin, sum, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if p.Schema.Name != "hello" {
		t.Fatalf("started %q", p.Schema.Name)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the file put in the binary's place ran")
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.Pid()))
	if err != nil || exe != bin+" (deleted)" {
		t.Fatalf("the plugin runs %q (%v)", exe, err)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p.Pid(), fd.Name())); target == exe {
			t.Fatalf("the plugin still has its binary open as fd %s", fd.Name())
		}
	}
}
