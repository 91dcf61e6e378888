package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The relay forwards libvirt RPC packets, unchanged, between a unix
// socket of its own and libvirtd's: it is the path a remote URI's bytes
// take (a network, an ssh tunnel), here on this machine. Run as a process
// of its own (startRelayProcess) it can be stopped with SIGSTOP, or stop
// itself at a given point of a stream, as a stalled network or ssh would
// stop the bytes; it can be slow; and run in the test (startRelay) it can
// pass on libvirtd's packets in the order libvirtd sends them when it is
// busy.

const libvirtdSocket = "/run/libvirt/libvirt-sock"

type relayPacket struct {
	raw    []byte // length, header and payload, as on the wire
	proc   uint32
	typ    uint32
	serial int32
	status uint32
}

func readRelayPacket(r io.Reader) (*relayPacket, error) {
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lb[:])
	if n < 28 || n > 64<<20 {
		return nil, errors.New("relay: bad packet length")
	}
	raw := make([]byte, n)
	copy(raw, lb[:])
	if _, err := io.ReadFull(r, raw[4:]); err != nil {
		return nil, err
	}
	return &relayPacket{
		raw:    raw,
		proc:   binary.BigEndian.Uint32(raw[12:]),
		typ:    binary.BigEndian.Uint32(raw[16:]),
		serial: int32(binary.BigEndian.Uint32(raw[20:])),
		status: binary.BigEndian.Uint32(raw[24:]),
	}, nil
}

type relayOptions struct {
	// lateDownloadReply: the reply to a volume download reaches the
	// client after the first two packets of the download's data.
	lateDownloadReply bool
	// stopAfterUp, stopAfterDown: the relay stops itself (SIGSTOP) once
	// it has passed on that many packets of stream data to libvirtd (an
	// upload's), or from libvirtd (a download's, a console's).
	stopAfterUp, stopAfterDown int64
	// rate: bytes a second each way (0: as fast as it can).
	rate int64
}

// serveRelay listens on path and relays every connection to libvirtd.
func serveRelay(path string, o relayOptions) (net.Listener, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("unix", libvirtdSocket)
			if err != nil {
				client.Close()
				continue
			}
			go relayConn(client, server, o)
		}
	}()
	return ln, nil
}

var relayUp, relayDown atomic.Int64 // stream data packets passed on

// pass writes a packet on, at the relay's rate, and stops the relay when
// it is the packet of the stream it is to stop after.
func (o relayOptions) pass(w io.Writer, p *relayPacket, count *atomic.Int64, stopAfter int64) error {
	if _, err := w.Write(p.raw); err != nil {
		return err
	}
	if o.rate > 0 {
		time.Sleep(time.Duration(int64(len(p.raw)) * int64(time.Second) / o.rate))
	}
	if p.typ == 3 && p.status == 2 && len(p.raw) > 28 && count.Add(1) == stopAfter {
		_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
	}
	return nil
}

func relayConn(client, server net.Conn, o relayOptions) {
	defer client.Close()
	defer server.Close()
	var mu sync.Mutex
	downloads := map[int32]bool{}
	go func() {
		defer client.Close()
		defer server.Close()
		for {
			p, err := readRelayPacket(client)
			if err != nil {
				return
			}
			if p.typ == 0 && p.proc == 209 { // REMOTE_PROC_STORAGE_VOL_DOWNLOAD
				mu.Lock()
				downloads[p.serial] = true
				mu.Unlock()
			}
			if err := o.pass(server, p, &relayUp, o.stopAfterUp); err != nil {
				return
			}
		}
	}()
	var held *relayPacket
	after := 0
	for {
		p, err := readRelayPacket(server)
		if err != nil {
			return
		}
		mu.Lock()
		download := downloads[p.serial]
		mu.Unlock()
		if o.lateDownloadReply && download && p.typ == 1 && held == nil {
			held, after = p, 0
			continue
		}
		if err := o.pass(client, p, &relayDown, o.stopAfterDown); err != nil {
			return
		}
		if held != nil && p.serial == held.serial && p.typ == 3 {
			after++
			if after == 2 || p.status != 2 || len(p.raw) == 28 {
				if _, err := client.Write(held.raw); err != nil {
					return
				}
				mu.Lock()
				delete(downloads, held.serial)
				mu.Unlock()
				held = nil
			}
		}
	}
}

// startRelay runs a relay in the test; its socket's path is returned.
func startRelay(t *testing.T, o relayOptions) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.sock")
	ln, err := serveRelay(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return path
}

// relayProcess is a relay in a process of its own.
type relayProcess struct {
	t    *testing.T
	path string
	cmd  *exec.Cmd
}

// startRelayProcess runs the relay as a child process (this test binary,
// see TestMain); it ends when the test does.
func startRelayProcess(t *testing.T, o relayOptions) *relayProcess {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.sock")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "VMFLOW_RELAY_CHILD="+path,
		fmt.Sprintf("VMFLOW_RELAY_OPTIONS=%d %d %d", o.stopAfterUp, o.stopAfterDown, o.rate))
	stdin, err := cmd.StdinPipe() // the child ends when this closes
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rp := &relayProcess{t: t, path: path, cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return rp
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay process did not start listening")
		}
	}
}

// stop freezes the relay (SIGSTOP): no byte moves either way until cont.
func (rp *relayProcess) stop() {
	rp.t.Helper()
	if err := rp.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		rp.t.Fatal(err)
	}
}

func (rp *relayProcess) cont() {
	rp.t.Helper()
	if err := rp.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		rp.t.Fatal(err)
	}
}

// stopped reports whether the relay is stopped (SIGSTOP).
func (rp *relayProcess) stopped() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", rp.cmd.Process.Pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'T'
}

// waitStopped waits for the relay to stop itself and says when it did.
func (rp *relayProcess) waitStopped(limit time.Duration) time.Time {
	rp.t.Helper()
	for deadline := time.Now().Add(limit); !rp.stopped(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			rp.t.Fatalf("the relay did not stop within %v", limit)
		}
	}
	return time.Now()
}

// relayChild is the relay process's main.
func relayChild(path string) {
	var o relayOptions
	_, _ = fmt.Sscan(os.Getenv("VMFLOW_RELAY_OPTIONS"), &o.stopAfterUp, &o.stopAfterDown, &o.rate)
	if _, err := serveRelay(path, o); err != nil {
		os.Stderr.WriteString("relay: " + err.Error() + "\n")
		os.Exit(1)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}
