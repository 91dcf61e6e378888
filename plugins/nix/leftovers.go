package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
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
// tmp, and reports how many it found. It returns once none is left (at
// most about 5 s): a killed process is gone only when the kernel has run
// its exit, which on a busy machine is not at once, and one may have
// forked meanwhile.
func killBuildLeftovers(tmp string) int {
	prefix := []byte("NIX_BUILD_TOP=" + filepath.Clean(tmp) + "/")
	killed := map[int]bool{}
	for range 50 {
		found := buildProcesses(prefix)
		if len(found) == 0 {
			break
		}
		for _, pid := range found {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed[pid] = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return len(killed)
}

// buildProcesses lists the live processes whose environment holds the
// build directory prefix. A process that has exited (a zombie) has no
// environment left, so it is not listed.
func buildProcesses(prefix []byte) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
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
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
