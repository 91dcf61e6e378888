package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
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
// controlling terminal being TestConsoleTalksToTheGuest's pty; and as the
// relay process, with VMFLOW_RELAY_CHILD set (relay_test.go).
func TestMain(m *testing.M) {
	if path := os.Getenv("VMFLOW_RELAY_CHILD"); path != "" {
		relayChild(path)
	}
	if name := os.Getenv("VMFLOW_CONSOLE_CHILD"); name != "" {
		if err := runConsole(name); err != nil {
			fmt.Fprintln(os.Stderr, "console:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runConsole is the console's child process: VMFLOW_CONSOLE_SOCKET is
// the libvirtd socket it uses (the plugin config's socket), and
// VMFLOW_CONSOLE_STALL its stall limit.
func runConsole(name string) error {
	d := &driver{}
	if s := os.Getenv("VMFLOW_CONSOLE_STALL"); s != "" {
		stall, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		d.stall = stall
	}
	p, _ := sdk.InProcess(newPlugin(d))
	schema, _ := p.Describe(context.Background())
	cfg, _ := schema.Config.ApplyDefaults(cty.ObjectVal(map[string]cty.Value{"socket": cty.StringVal(os.Getenv("VMFLOW_CONSOLE_SOCKET"))}))
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

// console is the console action run in a child process whose terminal
// is a pty: what the test types and what the terminal shows.
type console struct {
	t      *testing.T
	master *os.File
	cmd    *exec.Cmd

	mu  sync.Mutex
	out bytes.Buffer
}

func startConsole(t *testing.T, name string, env ...string) *console {
	t.Helper()
	master, slave := openPTY(t)
	t.Cleanup(func() { master.Close() })
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), "VMFLOW_CONSOLE_CHILD="+name), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	c := &console{t: t, master: master, cmd: cmd}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	// A pty's master takes no read deadline: it is read all along.
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			c.mu.Lock()
			c.out.Write(buf[:n])
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *console) shown() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// expect waits for the terminal to show want.
func (c *console) expect(want string) {
	c.t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(c.shown(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.t.Fatalf("no %q on the terminal; it shows:\n%s", want, c.shown())
		}
	}
}

// roundTrip types a sum into the guest's shell: its result can only come
// back from the guest, not from the terminal echoing what was typed.
func (c *console) roundTrip(tag string) {
	c.t.Helper()
	c.master.WriteString("\recho " + tag + "-$((6*7))\r")
	c.expect(tag + "-42")
}

// The console is interactive both ways: a command typed on the terminal
// runs in the guest's shell, its output comes back, Ctrl-] detaches. A
// console nobody types on stays open however long it is silent; one whose
// libvirtd stops answering is closed with an error naming the VM and the
// stall limit.
func TestConsoleTalksToTheGuest(t *testing.T) {
	h, name, g := newGuest(t, "vmflow-con")
	h.defineGuest(name, g, "vmflow.marker=console vmflow.stay=1", "nat")
	h.run("start", map[string]any{"name": name})
	h.run("wait_ip", map[string]any{"name": name, "timeout": 120})

	c := startConsole(t, name)
	c.expect("press Ctrl-] to detach")
	c.roundTrip("console")
	c.master.Write([]byte{escapeByte})
	c.expect("Detached from the console.")
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("console process: %v\n%s", err, c.shown())
	}

	// Through a relay process standing for the path to libvirtd, with a
	// stall limit of 2 s: silent for three times the limit, the console
	// is still there ...
	rp := startRelayProcess(t, relayOptions{})
	c = startConsole(t, name, "VMFLOW_CONSOLE_SOCKET="+rp.path, "VMFLOW_CONSOLE_STALL=2s")
	c.expect("press Ctrl-] to detach")
	time.Sleep(6 * time.Second)
	c.roundTrip("quiet")
	// ... and when nothing comes back through the relay any more (it is
	// stopped), the console is closed with an error within the limit.
	rp.stop()
	stoppedAt := time.Now()
	c.expect(fmt.Sprintf(`the console of %q: libvirtd did not answer for 2s; the console was closed`, name))
	if waited := time.Since(stoppedAt); waited < 2*time.Second || waited > 20*time.Second {
		t.Fatalf("the console was closed %v after the relay stopped; the limit is 2s", waited)
	}
	if err := c.cmd.Wait(); err == nil {
		t.Fatalf("the console process succeeded after libvirtd stopped answering:\n%s", c.shown())
	}
	rp.cont()
}
