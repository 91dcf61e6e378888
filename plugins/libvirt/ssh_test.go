package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmflow/vmflow/internal/testssh"
)

// connectURI configures a driver as the plugin block does, which connects.
func connectURI(t *testing.T, uri string) (*driver, error) {
	t.Helper()
	d := &driver{}
	err := d.configure(uri, "", "", "", "auto", t.TempDir())
	if err == nil {
		t.Cleanup(d.close)
	}
	return d, err
}

// withQuery returns uri with its query's key set to value ("" removes it).
func withQuery(t *testing.T, uri, key, value string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if value == "" {
		q.Del(key)
	} else {
		q.Set(key, value)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func wantErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("connected; want an error containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q\nwant it to contain %q", err, w)
		}
	}
	t.Logf("error, as a user sees it: %v", err)
}

// TestSSH reaches this machine's libvirtd through a real sshd on
// 127.0.0.1, with the host key checked against a known_hosts file.
func TestSSH(t *testing.T) {
	requireLibvirtd(t)
	s := testssh.Start(t)
	uri := s.URI("/system")

	t.Run("connects", func(t *testing.T) {
		d, err := connectURI(t, uri)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := d.connect()
		if err != nil {
			t.Fatal(err)
		}
		host, err := conn.ConnectGetHostname()
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := os.Hostname(); host != want {
			t.Fatalf("the daemon reached over ssh runs on %q, want this machine, %q", host, want)
		}
		// The connection went through sshd, with the key.
		if log, _ := os.ReadFile(s.Log); !strings.Contains(string(log), "Accepted publickey for "+s.User) {
			t.Fatalf("sshd did not log the key login:\n%s", log)
		}
	})

	t.Run("no-daemon", func(t *testing.T) {
		_, err := connectURI(t, withQuery(t, uri, "socket", "/run/vmflow-no-such-libvirt-sock"))
		wantErr(t, err, "logged in to "+s.Addr()+" over SSH as "+s.User, "cannot open libvirtd's socket /run/vmflow-no-such-libvirt-sock there", "is libvirtd running")
	})

	t.Run("unreachable", func(t *testing.T) {
		// A port nothing listens on: the server's, once it is stopped.
		other := testssh.Start(t)
		other.Stop()
		_, err := connectURI(t, other.URI("/system"))
		wantErr(t, err, "nothing accepts SSH connections at "+other.Addr(), "connection refused", "sshd runs there")

		_, err = connectURI(t, "qemu+ssh://root@nohost.invalid/system?keyfile="+url.QueryEscape(s.KeyFile))
		wantErr(t, err, "cannot reach nohost.invalid:22 over SSH", "check the host name")
	})

	t.Run("key-refused", func(t *testing.T) {
		key := filepath.Join(t.TempDir(), "other")
		if b, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, b)
		}
		_, err := connectURI(t, withQuery(t, uri, "keyfile", key))
		wantErr(t, err, s.Addr()+" refused the SSH login of "+s.User, key, "authorized_keys", "ssh-copy-id -i "+key+".pub -p "+s.Port)

		_, err = connectURI(t, withQuery(t, uri, "keyfile", key+".missing"))
		wantErr(t, err, "reading the SSH key (keyfile)", key+".missing")
	})

	t.Run("unknown-host-key", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		for _, setup := range []func(){
			func() {}, // no file at all
			func() { // a file without this host
				if err := os.WriteFile(kh, []byte("[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
		} {
			setup()
			_, err := connectURI(t, withQuery(t, uri, "known_hosts", kh))
			wantErr(t, err, "the SSH host key of "+s.Addr()+" is unknown", kh+" has no entry for it",
				"ssh-ed25519 "+s.HostKeyFingerprint, fmt.Sprintf("ssh-keyscan -p %s %s >> %s", s.Port, s.Host, kh))
		}
		// What the message says to do, done, lets the connection through.
		out, err := exec.Command("ssh-keyscan", "-p", s.Port, s.Host).Output()
		if err != nil {
			t.Fatalf("ssh-keyscan: %v", err)
		}
		f, err := os.OpenFile(kh, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.Write(out)
		f.Close()
		if _, err := connectURI(t, withQuery(t, uri, "known_hosts", kh)); err != nil {
			t.Fatalf("after ssh-keyscan >> %s: %v", kh, err)
		}
	})

	t.Run("changed-host-key", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		line := fmt.Sprintf("[%s]:%s ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n", s.Host, s.Port)
		if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := connectURI(t, withQuery(t, uri, "known_hosts", kh))
		wantErr(t, err, "the SSH host key of "+s.Addr()+" has CHANGED", s.HostKeyFingerprint, kh+":1", "ssh-keygen -R")
	})

	t.Run("accept-new-host-key", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		u := withQuery(t, withQuery(t, uri, "known_hosts", kh), "known_hosts_verify", "auto")
		if _, err := connectURI(t, u); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(kh)
		if err != nil {
			t.Fatalf("known_hosts_verify=auto recorded nothing: %v", err)
		}
		if want, _ := os.ReadFile(s.KnownHosts); string(b) != string(want) {
			t.Fatalf("known_hosts_verify=auto recorded %q, want %q", b, want)
		}
	})
}
