package testlibvirt

import (
	"net"
	"os"
	"testing"

	"github.com/vmflow/vmflow/internal/testenv"
)

// Require skips the test without a reachable libvirtd, except in CI where
// every test must run: there it fails.
func Require(t testing.TB) {
	t.Helper()
	if err := dial(); err != nil {
		testenv.Unavailable(t, "libvirtd is not reachable: %v (make test installs and starts it)", err)
	}
}

// Up says whether libvirtd is reachable.
func Up() bool { return dial() == nil }

// dial connects to libvirtd's socket, and hangs up.
func dial() error {
	c, err := net.Dial("unix", "/run/libvirt/libvirt-sock")
	if err == nil {
		c.Close()
	}
	return err
}

// VirtType is the virt_type the tests configure the libvirt plugin with:
// $VMFLOW_TEST_VIRT_TYPE, else "auto".
func VirtType() string {
	if v := os.Getenv("VMFLOW_TEST_VIRT_TYPE"); v != "" {
		return v
	}
	return "auto"
}
