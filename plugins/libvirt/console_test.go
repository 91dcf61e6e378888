package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"

	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
)

// openPTY opens a pseudo-terminal pair with x/sys/unix only.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unlock := 0
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestMain doubles as the console's child process: with
// VMFLOW_CONSOLE_CHILD set it runs the console action on that domain, its
// controlling terminal being TestConsoleTalksToTheGuest's pty.
func TestMain(m *testing.M) {
	if name := os.Getenv("VMFLOW_CONSOLE_CHILD"); name != "" {
		if err := runConsole(name); err != nil {
			fmt.Fprintln(os.Stderr, "console:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runConsole(name string) error {
	d := &driver{}
	p, _ := sdk.InProcess(newPlugin(d))
	schema, _ := p.Describe(context.Background())
	cfg, _ := schema.Config.ApplyDefaults(cty.EmptyObjectVal)
	dir, err := os.MkdirTemp("", "vmflow-console-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if ds, err := p.Configure(context.Background(), cfg, protocol.Env{StateDir: dir}); err != nil || ds.HasErrors() {
		return errors.Join(err, ds.Err())
	}
	a, _ := schema.Action("console")
	in, _ := a.Inputs.ApplyDefaults(cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name)}))
	_, ds, err := p.Run(context.Background(), protocol.RunRequest{Action: "console", Inputs: in}, func(protocol.Event) {})
	return errors.Join(err, ds.Err())
}

// The console is interactive both ways: a command typed on the terminal
// runs in the guest's shell, its output comes back, Ctrl-] detaches.
func TestConsoleTalksToTheGuest(t *testing.T) {
	h := newHarness(t, "qemu:///system")
	name := uniqueName("vmflow-con")
	g := setupGuest(t, h, name)
	t.Cleanup(func() { h.removeGuest(name, g.boot, g.varPath) })
	h.defineGuest(name, g, "vmflow.marker=console vmflow.stay=1", "nat")
	h.run("start", map[string]any{"name": name})
	h.run("wait_ip", map[string]any{"name": name, "timeout": 120})

	master, slave := openPTY(t)
	defer master.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "VMFLOW_CONSOLE_CHILD="+name)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()

	var out bytes.Buffer
	expect := func(want string) {
		t.Helper()
		buf := make([]byte, 4096)
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q on the terminal; it shows:\n%s", want, out.String())
			}
			_ = master.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := master.Read(buf)
			out.Write(buf[:n])
		}
	}
	expect("press Ctrl-] to detach")
	// $((6*7)) is worked out by the guest's shell: 42 can only come back
	// from the guest, not from the terminal echoing what was typed.
	master.WriteString("\recho console-$((6*7))\r")
	expect("console-42")
	master.Write([]byte{escapeByte})
	expect("Detached from the console.")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("console process: %v\n%s", err, out.String())
	}
}
