package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmflow/vmflow/internal/testbin"
)

// set-password on a terminal: each password is asked twice without echo,
// a mismatch is asked again, an empty one means none; only hashes are
// kept. The default tasks.hcl on the Proxmox stand-in.
func TestSetPasswordOnTerminal(t *testing.T) {
	w := newWizardEnv(t)
	w.dir = t.TempDir()
	tasks, err := os.ReadFile(filepath.Join(testbin.Repo(), "tasks.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(w.dir, "tasks.hcl"), tasks, 0o644)
	os.MkdirAll(filepath.Join(w.dir, "boot"), 0o755)
	os.WriteFile(filepath.Join(w.dir, "boot", "vmlinuz"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(w.dir, "boot", "initrd.img"), []byte("initrd"), 0o644)
	w.env = append(w.env, "VMFLOW_VAR_backend=proxmox-stub")
	for _, args := range [][]string{
		{"create", "web", "--yes", "--var", "kernel=boot/vmlinuz", "--var", "initrd=boot/initrd.img"},
		{"stop", "web"},
	} {
		cmd := exec.Command(filepath.Join(binDir, "vmflow"), args...)
		cmd.Dir, cmd.Env = w.dir, w.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("vmflow %v: %v\n%s", args, err, out)
		}
	}

	s := w.start(t, "set-password", "web")
	answer := func(prompt string, n int, keys string) {
		t.Helper()
		deadline := time.Now().Add(waitLimit)
		for strings.Count(s.output(), prompt) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no %d× %q; the output:\n%s", n, prompt, s.output())
			}
			time.Sleep(20 * time.Millisecond)
		}
		s.send(keys)
	}
	answer("Password for admin (empty: none): ", 1, "s3cret-one\r")
	answer("Again, for admin: ", 1, "s3cret-oen\r")
	answer("The two differ; once more.", 1, "")
	answer("Password for admin (empty: none): ", 2, "s3cret-one\r")
	answer("Again, for admin: ", 2, "s3cret-one\r")
	answer("Password for user (empty: none): ", 1, "\r")
	answer("Again, for user: ", 1, "\r")
	if code := s.exit(); code != 0 {
		t.Fatalf("exit code %d; output:\n%s", code, s.output())
	}
	if strings.Contains(s.output(), "s3cret") {
		t.Fatalf("a password was echoed:\n%s", s.output())
	}
	secrets, err := os.ReadFile(filepath.Join(stateOf(w), "machines", "proxmox-stub", "web", "secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(secrets), `"password_admin": "$6$`) || !strings.Contains(string(secrets), `"password_user": "!"`) || strings.Contains(string(secrets), "s3cret") {
		t.Fatalf("secrets.json:\n%s", secrets)
	}
}

// stateOf is the state directory a wizardEnv gives vmflow.
func stateOf(w *wizardEnv) string {
	for _, kv := range w.env {
		if v, ok := strings.CutPrefix(kv, "VMFLOW_STATE_DIR="); ok {
			return v
		}
	}
	return ""
}
