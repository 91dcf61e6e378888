package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A copy cut short is told from a whole one before an edit or a backup
// relies on it.
func TestCheckDownload(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", good, "16M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	ctx := context.Background()
	if err := checkDownload(ctx, &volInfo{name: "v", format: "qcow2"}, good, 1); err != nil {
		t.Errorf("a whole qcow2 image: %v", err)
	}
	// An overlay whose base is not here is still checked on its own.
	over := filepath.Join(dir, "over.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", good, "-F", "qcow2", over).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	os.Remove(good)
	if err := checkDownload(ctx, &volInfo{name: "v", format: "qcow2"}, over, 1); err != nil {
		t.Errorf("an overlay without its base: %v", err)
	}
	for _, content := range []string{"", "QFI"} {
		bad := filepath.Join(dir, "bad.qcow2")
		os.WriteFile(bad, []byte(content), 0o600)
		if err := checkDownload(ctx, &volInfo{name: "v", format: "qcow2"}, bad, int64(len(content))); err == nil || !strings.Contains(err.Error(), `copy of volume "v"`) {
			t.Errorf("%q as a qcow2 copy: %v", content, err)
		}
	}
	if err := checkDownload(ctx, &volInfo{name: "k", format: "raw", capacity: 10}, "", 9); err == nil {
		t.Error("a raw copy shorter than the volume passed")
	}
	if err := checkDownload(ctx, &volInfo{name: "k", format: "raw", capacity: 10}, "", 10); err != nil {
		t.Errorf("a whole raw copy: %v", err)
	}
}
