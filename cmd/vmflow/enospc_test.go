package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/vmflow/vmflow/internal/testbin"
)

// A disk that fills up during a run: with the state directory on a small
// tmpfs, create fails part-way and some undos fail too (the stand-in
// cannot write its state, and vmflow may not write its journal). What
// the failed undos still need is kept (the record of a VM whose disks
// could not be freed), the run says how to finish, holds up a new create,
// and once there is room again, resume --undo undoes everything and only
// then calls the run rolled back.
func TestUndoAfterTheDiskFilledUp(t *testing.T) {
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "img"), []byte("a small image"), 0o644); err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadFile(filepath.Join(testbin.Repo(), "tasks.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "tasks.hcl"), tasks, 0o644); err != nil {
		t.Fatal(err)
	}
	vmflow := func(state string, args ...string) (string, int) {
		cmd := exec.Command(filepath.Join(binDir, "vmflow"), append([]string{"--var", "backend=proxmox-stub"}, args...)...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "VMFLOW_STATE_DIR="+state, "PATH="+binDir+":"+os.Getenv("PATH"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code, ok := exitCode(err)
		if !ok {
			t.Fatal(err)
		}
		return out.String(), code
	}
	// How much room makes create fail after some steps, and their undos
	// too, depends on the sizes of what it writes: try a few.
	var state, out, run string
	for free := 28; free <= 60 && run == ""; free += 2 {
		state = filepath.Join(work, "state")
		if err := os.MkdirAll(state, 0o700); err != nil {
			t.Fatal(err)
		}
		testbin.SmallDisk(t, state, "64k")
		var fs syscall.Statfs_t
		if err := syscall.Statfs(state, &fs); err != nil {
			t.Fatal(err)
		}
		avail := int64(fs.Bavail)*fs.Bsize - int64(free)<<10
		if err := os.WriteFile(filepath.Join(state, "filler"), make([]byte, avail), 0o600); err != nil {
			t.Fatal(err)
		}
		var code int
		out, code = vmflow(state, "create", "f2", "--var", "image=img", "--yes")
		if code != 1 {
			t.Fatalf("create with %d KiB free: exit %d\n%s", free, code, out)
		}
		if m := regexp.MustCompile("`vmflow resume ([0-9a-f-]+) --undo` (tries them again|undoes what it did)").FindStringSubmatch(out); m != nil {
			run = m[1]
			break
		}
		// Nothing was left to undo: try with more room.
		if err := syscall.Unmount(state, 0); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(state); err != nil {
			t.Fatal(err)
		}
	}
	if run == "" {
		t.Fatalf("no amount of room made an undo fail; the last run said:\n%s", out)
	}
	if !strings.Contains(out, "UNDO FAILED") && !strings.Contains(out, "record(s) of its journal (is the disk full?)") || !strings.Contains(out, "no space left on device") {
		t.Fatalf("the failed undos are not reported:\n%s", out)
	}
	// A record that was written stays while what it describes is still
	// there (when the disk filled up before the record step wrote it, the
	// run's journal alone knows those volumes, and it holds up a new
	// create, checked below).
	cluster, _ := os.ReadFile(filepath.Join(state, "proxmox-stub", "cluster.json"))
	if bytes.Contains(cluster, []byte(`"f2-`)) && strings.Contains(out, "==> record: done") {
		if _, err := os.Stat(filepath.Join(state, "machines", "proxmox-stub", "f2", "record.json")); err != nil {
			t.Fatalf("volumes of f2 are left, but its record is gone:\n%s\n%s", cluster, out)
		}
	}
	// A new create is held up by the unfinished run: its undos failed, or,
	// when the journal itself could not be written, it was left
	// interrupted.
	if again, code := vmflow(state, "create", "f2", "--var", "image=img", "--yes"); code != 2 || !strings.Contains(again, "task create cannot start: run "+run+" of create f2 ") {
		t.Fatalf("a new create while undos are pending: exit %d\n%s\nthe failed create said:\n%s", code, again, out)
	}

	// Room again: the filler goes, and the disk grows enough for a whole
	// create after this.
	if err := os.Remove(filepath.Join(state, "filler")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", state, "tmpfs", syscall.MS_REMOUNT, "size=4m"); err != nil {
		t.Fatalf("growing the tmpfs: %v", err)
	}
	out, code := vmflow(state, "resume", run, "--undo")
	if code != 0 || !strings.Contains(out, "Run "+run+" rolled back") {
		t.Fatalf("resume --undo with room again: exit %d\n%s", code, out)
	}
	runs, _ := vmflow(state, "runs", "--json")
	var list []struct{ ID, Status string }
	if err := json.Unmarshal([]byte(runs), &list); err != nil || len(list) == 0 || list[0].Status != "rolled_back" {
		t.Fatalf("runs: %v\n%s", err, runs)
	}
	var c struct {
		VMs, Volumes map[string]any
	}
	cluster, _ = os.ReadFile(filepath.Join(state, "proxmox-stub", "cluster.json"))
	if err := json.Unmarshal(cluster, &c); err != nil || len(c.VMs)+len(c.Volumes) != 0 {
		t.Fatalf("after the rollback the stub holds: %s (%v)", cluster, err)
	}
	for _, left := range []string{"machines/proxmox-stub/f2", "claims/proxmox-stub/" + run, "claims/builtin/" + run, "tmp/" + run} {
		if _, err := os.Stat(filepath.Join(state, left)); err == nil {
			t.Errorf("%s is left after the rollback", left)
		}
	}
	if out, code := vmflow(state, "create", "f2", "--var", "image=img", "--yes"); code != 0 {
		t.Fatalf("create after the rollback: exit %d\n%s", code, out)
	}
}
