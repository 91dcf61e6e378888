package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// A local build (no nix-daemon) runs its builder as a descendant of the
// plugin's nix, with the build directory NIX_BUILD_TOP under nix's
// TMPDIR. Without the sandbox (Debian's nix has it off), a process the
// builder started in a session of its own, or one forked as nix stopped
// the builder's process group, outlives the build: nix kills the group,
// not that process. The plugin gives each nix command a TMPDIR of its
// own, and once the command has ended it kills whatever still runs in a
// build directory under it. A daemon's builds are the daemon's to end
// (it kills its build users' processes), and their directories are
// under the daemon's TMPDIR, so this finds none of them.

// killBuildLeftovers kills the processes whose NIX_BUILD_TOP is under
// tmp, and reports how many it found.
func killBuildLeftovers(tmp string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	prefix := []byte("NIX_BUILD_TOP=" + filepath.Clean(tmp) + "/")
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.HasPrefix(kv, prefix) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				n++
				break
			}
		}
	}
	return n
}
