package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmflow/vmflow/core/protocol"
)

// describeHangs is a plugin whose Describe never answers.
type describeHangs struct{ protocol.Conn }

func (describeHangs) Describe(context.Context) (*protocol.Schema, error) { select {} }

// A plugin that completes its handshake and then never describes itself
// is reported within the start's limit, and is not left running: every
// command that uses it would otherwise wait for ever.
func TestDescribeThatNeverAnswers(t *testing.T) {
	defer func(d time.Duration) { StartTimeout = d }(StartTimeout)
	StartTimeout = time.Second
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("VMFLOW_HOST_TEST_PID", pidFile)

	type result struct {
		p   *Process
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := startHelper(t, "describe-hangs")
		done <- result{p, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Start was still waiting for Describe after 30s")
	}
	if r.err == nil {
		t.Fatal("Start succeeded with a plugin that never described itself")
	}
	want := "did not describe itself within 1s"
	if !strings.Contains(r.err.Error(), want) {
		t.Fatalf("error %q does not say %q", r.err, want)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(b))
	deadline := time.Now().Add(10 * time.Second)
	for !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin (pid %d) still runs after Start failed", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
