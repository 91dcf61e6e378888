package hypervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmflow/vmflow/internal/testenv"
)

// A normal user's PATH on Debian, without any sbin directory.
const userPATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"

// withSbin points the lookup's sbin directories at dirs for one test.
func withSbin(t *testing.T, dirs ...string) {
	old := sbinDirs
	sbinDirs = dirs
	t.Cleanup(func() { sbinDirs = old })
}

// writeTool makes an executable shell script name in dir that prints what.
func writeTool(t *testing.T, dir, name, what string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho "+what+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLookToolFindsSbinOutsidePATH(t *testing.T) {
	tmp := t.TempDir()
	sbin := filepath.Join(tmp, "sbin")
	want := writeTool(t, sbin, "vmflow-test-mkfs", "sbin")
	withSbin(t, filepath.Join(tmp, "none"), sbin)
	t.Setenv("PATH", userPATH)

	got, err := LookTool("vmflow-test-mkfs")
	if err != nil {
		t.Fatalf("LookTool: %v", err)
	}
	if got != want {
		t.Fatalf("LookTool = %q, want %q", got, want)
	}
	cmd := ToolCommand(context.Background(), "vmflow-test-mkfs", "-q", "disk.raw")
	if cmd.Path != want || cmd.Args[0] != "vmflow-test-mkfs" {
		t.Fatalf("command %q %q", cmd.Path, cmd.Args)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running it: %v", err)
	}
	if string(out) != "sbin -q disk.raw\n" { // the one in sbin ran
		t.Fatalf("output %q", out)
	}
}

func TestLookToolPrefersPATH(t *testing.T) {
	tmp := t.TempDir()
	bin, sbin := filepath.Join(tmp, "bin"), filepath.Join(tmp, "sbin")
	want := writeTool(t, bin, "vmflow-test-tool", "bin")
	writeTool(t, sbin, "vmflow-test-tool", "sbin")
	withSbin(t, sbin)
	t.Setenv("PATH", bin+":"+userPATH)

	if got, err := LookTool("vmflow-test-tool"); err != nil || got != want {
		t.Fatalf("LookTool = %q, %v; want %q", got, err, want)
	}
}

func TestLookToolMissing(t *testing.T) {
	tmp := t.TempDir()
	sbin := filepath.Join(tmp, "sbin")
	// Present but not executable, and a directory of the name: neither is
	// the tool.
	if err := os.MkdirAll(filepath.Join(sbin, "e2fsck"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sbin, "mke2fs"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	withSbin(t, sbin)
	t.Setenv("PATH", filepath.Join(tmp, "bin"))

	for tool, pkg := range map[string]string{"mke2fs": "e2fsprogs", "e2fsck": "e2fsprogs", "qemu-img": "qemu-utils"} {
		_, err := LookTool(tool)
		var te *ToolError
		if !errors.As(err, &te) || te.Tool != tool || te.Package != pkg {
			t.Fatalf("LookTool(%s) = %#v, want a ToolError for package %s", tool, err, pkg)
		}
		want := tool + " is not on this machine (looked in PATH and " + sbin + "); install Debian package " + pkg
		if err.Error() != want {
			t.Fatalf("error %q\nwant  %q", err, want)
		}
		// Running it fails with the same error, before anything starts.
		if _, err := ToolCommand(context.Background(), tool, "x").CombinedOutput(); !errors.As(err, &te) || err.Error() != want {
			t.Fatalf("ToolCommand(%s) ran: %v", tool, err)
		}
	}
	_, err := LookTool("vmflow-no-such-tool")
	if err == nil || !strings.HasSuffix(err.Error(), "; install it") {
		t.Fatalf("unknown tool: %v", err)
	}
}

// The real directories: on Debian the e2fsprogs tools are in /usr/sbin
// (and /sbin, a link to it on merged-/usr systems); a normal user's PATH
// finds none of them, LookTool finds each.
func TestLookToolDebianSbin(t *testing.T) {
	t.Setenv("PATH", userPATH)
	for _, tool := range []string{"mke2fs", "debugfs", "e2fsck", "resize2fs"} {
		if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
			if _, err := os.Stat("/sbin/" + tool); err != nil {
				testenv.Unavailable(t, "%s is not installed (e2fsprogs; make deps installs it)", tool)
			}
		}
		p, err := LookTool(tool)
		if err != nil {
			t.Fatalf("LookTool(%s) with PATH=%s: %v", tool, userPATH, err)
		}
		if dir := filepath.Dir(p); dir != "/usr/sbin" && dir != "/sbin" && dir != "/usr/local/sbin" {
			t.Fatalf("LookTool(%s) = %s", tool, p)
		}
	}
}
