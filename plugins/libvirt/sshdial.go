package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	sshagent "golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshDialer reaches a remote libvirtd over SSH (qemu+ssh://, and
// qemu+libssh:// or +libssh2:// which libvirt also spells): it logs in with
// a key, checks the host key against a known_hosts file, and opens
// libvirtd's unix socket on the host through the SSH connection (a
// streamlocal forward, as `ssh -L` does; nothing but sshd is needed there).
//
// It is go-libvirt's SSH dialer made to say what went wrong and what to do
// for the three ways a first connection fails: nothing answers, the key is
// refused, the host key is unknown (or changed). It also takes known_hosts=
// for qemu+ssh, which go-libvirt refuses there.
//
// The URI's query: keyfile= (the private key; default: the agent's keys and
// ~/.ssh/id_ed25519, id_ecdsa, id_rsa), known_hosts= (default: ~/.ssh/known_hosts
// for ssh, libvirt's ~/.config/libvirt/known_hosts for libssh),
// known_hosts_verify=normal|auto|ignore (auto adds an unknown key; ignore,
// or no_verify=1, checks nothing), socket= (libvirtd's socket on the host).
type sshDialer struct {
	host, port string
	user       string
	keyFile    string // "" when the default keys are used
	knownHosts string
	verify     string // normal, auto or ignore
	socket     string
	timeout    time.Duration
}

const defaultRemoteSocket = "/var/run/libvirt/libvirt-sock"

// isSSH reports whether a URI's transport is SSH.
func isSSH(u *url.URL) bool {
	_, transport, ok := strings.Cut(u.Scheme, "+")
	return ok && (transport == "ssh" || transport == "libssh" || transport == "libssh2")
}

func newSSHDialer(u *url.URL) (*sshDialer, error) {
	q := u.Query()
	s := &sshDialer{
		host:       u.Hostname(),
		port:       u.Port(),
		user:       u.User.Username(),
		keyFile:    q.Get("keyfile"),
		knownHosts: q.Get("known_hosts"),
		verify:     q.Get("known_hosts_verify"),
		socket:     q.Get("socket"),
		timeout:    10 * time.Second,
	}
	if s.host == "" {
		return nil, fmt.Errorf("%s names no host: write it as %s://USER@HOST/system", u.Redacted(), u.Scheme)
	}
	if _, pw := u.User.Password(); pw {
		return nil, errors.New("passwords in the URI are not supported: log in with a key (keyfile=)")
	}
	if s.port == "" {
		s.port = "22"
	}
	if s.socket == "" {
		s.socket = defaultRemoteSocket
	}
	home, _ := os.UserHomeDir()
	if s.user == "" {
		cur, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("%s names no user and the current one is unknown: %v", u.Redacted(), err)
		}
		s.user = cur.Username
	}
	if s.knownHosts == "" {
		if strings.HasSuffix(u.Scheme, "+ssh") {
			s.knownHosts = filepath.Join(home, ".ssh", "known_hosts")
		} else if dir, err := os.UserConfigDir(); err == nil {
			s.knownHosts = filepath.Join(dir, "libvirt", "known_hosts")
		}
	}
	switch s.verify {
	case "":
		s.verify = "normal"
	case "normal", "auto", "ignore":
	default:
		return nil, fmt.Errorf("known_hosts_verify must be normal, auto or ignore, got %q", s.verify)
	}
	if nv := q.Get("no_verify"); nv != "" {
		n, err := strconv.Atoi(nv)
		if err != nil {
			return nil, fmt.Errorf("no_verify must be 0 or 1, got %q", nv)
		}
		if n != 0 {
			s.verify = "ignore"
		}
	}
	return s, nil
}

// addr is host:port as ssh prints it ([host]:port off port 22).
func (s *sshDialer) addr() string { return net.JoinHostPort(s.host, s.port) }

// Dial logs in and opens libvirtd's socket on the host.
func (s *sshDialer) Dial() (net.Conn, error) {
	auth, keys, closeAgent, err := s.auth()
	if err != nil {
		return nil, err
	}
	defer closeAgent()
	var hostErr error
	conf := &ssh.ClientConfig{
		User:    s.user,
		Auth:    auth,
		Timeout: s.timeout,
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			hostErr = s.checkHostKey(hostname, remote, key)
			return hostErr
		},
	}
	client, err := ssh.Dial("tcp", s.addr(), conf)
	switch {
	case err == nil:
	case hostErr != nil:
		return nil, hostErr
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("nothing accepts SSH connections at %s (connection refused): check the host and port, and that sshd runs there", s.addr())
	case isDialError(err):
		return nil, fmt.Errorf("cannot reach %s over SSH: %v: check the host name and port, and the network between here and there", s.addr(), err)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return nil, fmt.Errorf("%s refused the SSH login of %s with %s: add its public key to ~%s/.ssh/authorized_keys on %s (ssh-copy-id -i %s -p %s %s@%s does it), or name another key with keyfile= in the URI",
			s.addr(), s.user, keys, s.user, s.host, s.pubHint(), s.port, s.user, s.host)
	default:
		return nil, fmt.Errorf("SSH to %s: %v", s.addr(), err)
	}
	c, err := client.Dial("unix", s.socket)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("logged in to %s over SSH as %s, but cannot open libvirtd's socket %s there: %v (is libvirtd running on %s, and may %s use its socket? sshd there must allow forwarding: AllowTcpForwarding and AllowStreamLocalForwarding yes or local, their default)",
			s.addr(), s.user, s.socket, err, s.host, s.user)
	}
	return &sshConn{Conn: c, client: client}, nil
}

func isDialError(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) && op.Op == "dial" || errors.As(err, &dns) || errors.Is(err, os.ErrDeadlineExceeded)
}

// pubHint is the public key file a user would copy to the host.
func (s *sshDialer) pubHint() string {
	if s.keyFile != "" {
		return s.keyFile + ".pub"
	}
	return "~/.ssh/id_ed25519.pub"
}

// auth returns the login methods, a description of the keys tried, and
// what closes the agent's connection once logged in.
func (s *sshDialer) auth() ([]ssh.AuthMethod, string, func(), error) {
	done := func() {}
	if s.keyFile != "" {
		signer, err := readKey(s.keyFile)
		if err != nil {
			return nil, "", done, err
		}
		return []ssh.AuthMethod{ssh.PublicKeys(signer)}, "the key " + s.keyFile + " (" + ssh.FingerprintSHA256(signer.PublicKey()) + ")", done, nil
	}
	var signers []ssh.Signer
	var tried []string
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			done = func() { c.Close() }
			if ss, err := sshagent.NewClient(c).Signers(); err == nil && len(ss) > 0 {
				signers = append(signers, ss...)
				tried = append(tried, fmt.Sprintf("%d key(s) of the ssh-agent", len(ss)))
			}
		}
	}
	home, _ := os.UserHomeDir()
	for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		p := filepath.Join(home, ".ssh", name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if signer, err := readKey(p); err == nil {
			signers = append(signers, signer)
			tried = append(tried, p)
		}
	}
	if len(signers) == 0 {
		done()
		return nil, "", func() {}, fmt.Errorf("no SSH key to log in to %s with: name one with keyfile= in the URI, or load one into an ssh-agent (a key with a passphrase must be in the agent)", s.addr())
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, strings.Join(tried, ", "), done, nil
}

func readKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the SSH key (keyfile): %v", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	var pp *ssh.PassphraseMissingError
	if errors.As(err, &pp) {
		return nil, fmt.Errorf("the SSH key %s has a passphrase: load it into an ssh-agent (ssh-add %s) and leave keyfile= out", path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("the SSH key %s: %v", path, err)
	}
	return signer, nil
}

// checkHostKey checks the host key against the known_hosts file, saying,
// when it is not there or differs, how to check and add it.
func (s *sshDialer) checkHostKey(hostname string, remote net.Addr, key ssh.PublicKey) error {
	if s.verify == "ignore" {
		return nil
	}
	fp := ssh.FingerprintSHA256(key)
	check, err := knownhosts.New(s.knownHosts)
	if errors.Is(err, fs.ErrNotExist) {
		check = func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }
	} else if err != nil {
		return fmt.Errorf("reading known_hosts %s: %v", s.knownHosts, err)
	}
	err = check(hostname, remote, key)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return err
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key)
	if len(ke.Want) > 0 {
		var where []string
		for _, w := range ke.Want {
			where = append(where, fmt.Sprintf("%s:%d", w.Filename, w.Line))
		}
		return fmt.Errorf("the SSH host key of %s has CHANGED: it is now %s %s, not the one in %s. Someone may be intercepting the connection, or the host was reinstalled; if you know it was, remove the old entry (ssh-keygen -R '%s' -f %s) and add the new one",
			s.addr(), key.Type(), fp, strings.Join(where, ", "), knownhosts.Normalize(hostname), s.knownHosts)
	}
	if s.verify == "auto" {
		return appendKnownHost(s.knownHosts, line)
	}
	return fmt.Errorf("the SSH host key of %s is unknown: %s has no entry for it. It presents %s %s; if that is the host's (on the host: ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), add it to %s with: ssh-keyscan -p %s %s >> %s (or add known_hosts_verify=auto to the URI to accept it once and record it)",
		s.addr(), s.knownHosts, key.Type(), fp, hostKeyName(key.Type()), s.knownHosts, s.port, s.host, s.knownHosts)
}

// hostKeyName is the word in /etc/ssh/ssh_host_WORD_key.pub for a key type.
func hostKeyName(keyType string) string {
	switch {
	case strings.HasPrefix(keyType, "ecdsa-"):
		return "ecdsa"
	case strings.Contains(keyType, "ed25519"):
		return "ed25519"
	}
	return "rsa"
}

func appendKnownHost(file, line string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("recording the host key: %v", err)
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("recording the host key: %v", err)
	}
	_, err = fmt.Fprintln(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sshConn is the socket's channel; closing it ends the SSH connection too.
type sshConn struct {
	net.Conn
	client *ssh.Client
}

func (c *sshConn) Close() error {
	err := c.Conn.Close()
	c.client.Close()
	return err
}
