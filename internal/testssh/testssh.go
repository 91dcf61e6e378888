// Package testssh runs a real OpenSSH server for a test: bound to
// 127.0.0.1 on a free port, with a host key and a client key it generates,
// the client key authorized for the current user, and a known_hosts file
// that holds the host key. The machine's own sshd and /etc/ssh are not
// touched: the server has a config file of its own in a temporary
// directory.
package testssh

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmflow/vmflow/internal/testenv"
)

// Sshd is the OpenSSH server the tests run.
const Sshd = "/usr/sbin/sshd"

// Server is a running sshd.
type Server struct {
	Host, Port string
	User       string
	// KeyFile is the client's private key, authorized on the server.
	KeyFile string
	// KnownHosts holds the server's host key for [127.0.0.1]:Port.
	KnownHosts string
	// HostKeyFingerprint is the host key's SHA256 fingerprint, as
	// ssh-keygen -l prints it.
	HostKeyFingerprint string
	// Dir holds the server's config, keys and log.
	Dir string
	// Log is sshd's log file (-E).
	Log string

	cmd  *exec.Cmd
	done chan struct{}
}

// Missing says why the server cannot run here ("" when it can): sshd or
// ssh-keygen is not installed.
func Missing() string {
	for _, p := range []string{Sshd, "ssh-keygen"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Sprintf("%s is not installed (make test installs openssh-server and openssh-client)", p)
		}
	}
	return ""
}

// Require skips the test where sshd is not installed, except in CI where
// every test must run: there it fails.
func Require(t testing.TB) {
	t.Helper()
	if why := Missing(); why != "" {
		testenv.Unavailable(t, "%s", why)
	}
}

// Start runs a server for the test, stopped at its cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	Require(t)
	s, err := StartIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartIn runs a server whose files are in dir (made if missing); Stop
// ends it.
func StartIn(dir string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cur, err := user.Current()
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", User: cur.Username, Dir: dir,
		KeyFile: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts"),
		Log: filepath.Join(dir, "sshd.log"), done: make(chan struct{})}
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	for _, k := range []string{hostKey, s.KeyFile} {
		if b, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vmflow-test", "-f", k).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ssh-keygen: %v: %s", err, b)
		}
	}
	out, err := exec.Command("ssh-keygen", "-l", "-f", hostKey+".pub").Output()
	if err != nil {
		return nil, fmt.Errorf("ssh-keygen -l: %v", err)
	}
	s.HostKeyFingerprint = strings.Fields(string(out))[1]
	pub, err := os.ReadFile(s.KeyFile + ".pub")
	if err != nil {
		return nil, err
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		return nil, err
	}
	// sshd, run as root, wants its privilege separation directory.
	if os.Getuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755)
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(hostPub))
	// A free port: taken by the kernel, released, then bound by sshd. If
	// another process takes it in between, sshd fails and it is retried.
	var last error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.Port = port
		if err := os.WriteFile(s.KnownHosts, []byte(fmt.Sprintf("[%s]:%s %s %s\n", s.Host, port, f[0], f[1])), 0o600); err != nil {
			return nil, err
		}
		conf := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(conf, []byte(config(s, hostKey, authorized)), 0o600); err != nil {
			return nil, err
		}
		if last = s.run(conf); last == nil {
			return s, nil
		}
	}
	return nil, last
}

func config(s *Server, hostKey, authorized string) string {
	return strings.Join([]string{
		"ListenAddress " + s.Host,
		"Port " + s.Port,
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(s.Dir, "sshd.pid"),
		"AuthorizedKeysFile " + authorized,
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		// The key files are in a temporary directory, which sshd's
		// ownership checks would refuse.
		"StrictModes no",
		// libvirt's socket is reached as a streamlocal forward (ssh -L to
		// a socket), which sshd lets through only where it also permits
		// local TCP forwarding: AllowTcpForwarding no denies it.
		"AllowStreamLocalForwarding local",
		"AllowTcpForwarding local",
		"X11Forwarding no",
		"PrintMotd no",
		"LogLevel VERBOSE",
		"",
	}, "\n")
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// run starts sshd and waits until it answers with its banner.
func (s *Server) run(conf string) error {
	if b, err := exec.Command(Sshd, "-t", "-f", conf).CombinedOutput(); err != nil {
		return fmt.Errorf("sshd -t: %v: %s", err, b)
	}
	s.cmd = exec.Command(Sshd, "-D", "-e", "-f", conf, "-E", s.Log)
	// Its own process group, so that Stop ends the sessions it forked too.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	s.done = done
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("sshd exited: %s", s.logText())
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "SSH-2.0-") {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Stop()
	return errors.New("sshd did not answer within 10s: " + s.logText())
}

func (s *Server) logText() string {
	b, _ := os.ReadFile(s.Log)
	return string(b)
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, s.Port) }

// Stop ends the server and the sessions it forked.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// URI is a libvirt URI that reaches this machine's libvirtd through the
// server: qemu+ssh://USER@127.0.0.1:PORT/PATH?keyfile=…&known_hosts=….
func (s *Server) URI(path string) string {
	q := url.Values{"keyfile": {s.KeyFile}, "known_hosts": {s.KnownHosts}}
	u := url.URL{Scheme: "qemu+ssh", User: url.User(s.User), Host: s.Addr(), Path: path, RawQuery: q.Encode()}
	return u.String()
}
