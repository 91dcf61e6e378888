package testbin

import (
	"os"
	"syscall"
	"testing"

	"github.com/vmflow/vmflow/internal/testenv"
)

// SmallDisk mounts a tmpfs of the given size ("64k") on dir, for a test of
// what happens when the disk fills up, and unmounts it when the test
// ends. Mounting needs root: the test skips without it, except in CI,
// which runs as root and where such a test must not skip.
func SmallDisk(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "this test mounts a tmpfs and needs root (CI runs as root)")
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
}
