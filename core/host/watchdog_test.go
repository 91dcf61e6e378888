package host

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A plugin the watchdog kills as hung is gone at once: the engine restarts
// it for the undos even if go-plugin has not reaped the process yet. (On a
// busy machine, an undo that asked before the reaping went to the dead
// process and failed with the hang's error: plugin_hang.txtar at load 9.)
func TestHungPluginIsGoneAtOnce(t *testing.T) {
	defer func(i, to time.Duration, f int) { HealthInterval, HealthTimeout, HealthFailures = i, to, f }(HealthInterval, HealthTimeout, HealthFailures)
	HealthInterval, HealthTimeout, HealthFailures = 50*time.Millisecond, 50*time.Millisecond, 2

	p, err := Start(context.Background(), filepath.Join(binDir, "vmflow-plugin-hello"), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if p.Gone() {
		t.Fatal("a plugin that answers reads as gone")
	}
	pid := p.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		hung := p.hung
		p.mu.Unlock()
		if hung != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watchdog did not find the stopped plugin hung")
		}
		time.Sleep(time.Millisecond)
	}
	if !p.Gone() {
		t.Fatal("the watchdog killed the plugin, yet it does not read as gone")
	}
	for !p.Exited() {
		if time.Now().After(deadline) {
			t.Fatalf("the killed plugin (pid %d) was never reaped", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
