package main

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// silentDaemon listens on network/address and accepts every connection,
// reads what comes, says nothing and never hangs up: a hung libvirtd, or
// a port that leads to something else. It returns the address to dial.
func silentDaemon(t *testing.T, network, address string) string {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// within runs f and returns its result, failing the test if it has not
// returned after limit (the fault this guards against is a wait without
// end).
func within[T any](t *testing.T, limit time.Duration, f func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v
	case <-time.After(limit):
		t.Fatalf("still waiting after %s", limit)
		panic("unreachable")
	}
}

// A libvirtd that accepts the connection and then does not answer is
// reported once the handshake time is up, with the URI and what it means,
// instead of being waited on for ever: at the plugin block (every command
// starts there), and by list for another host, which names it unreachable
// and still lists the rest.
func TestHandshakeNoAnswer(t *testing.T) {
	tcp := "qemu+tcp://" + silentDaemon(t, "tcp", "127.0.0.1:0") + "/system"
	unix := "qemu:///system?socket=" + silentDaemon(t, "unix", filepath.Join(t.TempDir(), "libvirt-sock"))
	for name, uri := range map[string]string{"tcp": tcp, "unix": unix} {
		t.Run(name, func(t *testing.T) {
			d := &driver{handshake: time.Second}
			start := time.Now()
			err := within(t, 30*time.Second, func() error { return d.configure(uri, "", "", "", "auto", t.TempDir()) })
			if err == nil {
				d.close()
				t.Fatal("configure succeeded against a daemon that never answered")
			}
			for _, want := range []string{"cannot connect to", "no answer within 1s"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %s to give up, with a 1s handshake limit", took)
			}
		})
	}
	t.Run("list", func(t *testing.T) {
		d := &driver{handshake: time.Second, virtType: "auto", stateDir: t.TempDir()}
		type res struct {
			by          map[string]map[string]string
			unreachable map[string]string
		}
		r := within(t, 30*time.Second, func() res {
			by, un := d.listHosts(map[string]string{"hung": tcp}, "")
			return res{by, un}
		})
		if _, ok := r.by["hung"]; ok {
			t.Errorf("listed VMs of a host that never answered: %v", r.by)
		}
		if !strings.Contains(r.unreachable["hung"], "no answer within 1s") {
			t.Errorf("unreachable = %v, want hung named with the reason", r.unreachable)
		}
	})
}
