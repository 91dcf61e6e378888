package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// go-libvirt's generated DomainOpenConsole only reads from the console, so
// the console speaks libvirt's RPC protocol itself on a second connection
// (go-libvirt's socket package does the framing): AUTH_LIST, CONNECT_OPEN,
// DOMAIN_LOOKUP_BY_NAME, DOMAIN_OPEN_CONSOLE, then stream packets both ways.

const (
	remoteProgram         = 0x20008086
	procConnectOpen       = 1
	procConnectClose      = 2
	procDomainLookupName  = 23
	procAuthList          = 66
	procAuthPolkit        = 70
	procDomainOpenConsole = 201
	authPolkit            = 2
	consoleForce          = 1
	escapeByte            = 0x1d // Ctrl-]
)

// xdr writes the few XDR shapes these calls need.
type xdr struct{ bytes.Buffer }

func (x *xdr) u32(v uint32) { _ = binary.Write(&x.Buffer, binary.BigEndian, v) }

func (x *xdr) str(s string) {
	x.u32(uint32(len(s)))
	x.WriteString(s)
	x.Write(make([]byte, (4-len(s)%4)%4))
}

func (x *xdr) optStr(s *string) {
	if s == nil {
		x.u32(0)
		return
	}
	x.u32(1)
	x.str(*s)
}

type xdrReader struct {
	b   []byte
	err error
}

func (r *xdrReader) u32() uint32 {
	if len(r.b) < 4 {
		r.err = io.ErrUnexpectedEOF
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *xdrReader) bytes(n int) []byte {
	padded := n + (4-n%4)%4
	if len(r.b) < padded {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	out := r.b[:n]
	r.b = r.b[padded:]
	return out
}

func (r *xdrReader) str() string { return string(r.bytes(int(r.u32()))) }

// rpcError decodes a remote_error: code, domain, then an optional message.
func rpcError(payload []byte) error {
	r := &xdrReader{b: payload}
	r.u32() // code
	r.u32() // domain
	if r.u32() == 1 {
		if msg := r.str(); r.err == nil {
			return errors.New(msg)
		}
	}
	return errors.New("libvirt reported an error")
}

type reply struct {
	status  uint32
	payload []byte
}

// consoleConn is one libvirt connection that carries a console stream.
type consoleConn struct {
	sock *socket.Socket

	mu      sync.Mutex
	serial  int32
	waiting map[int32]chan reply

	streamSerial int32
	out          io.Writer
	ended        chan error
}

// Route receives every packet from libvirtd.
func (c *consoleConn) Route(h *socket.Header, payload []byte) {
	b := append([]byte(nil), payload...)
	switch h.Type {
	case socket.Reply:
		c.mu.Lock()
		ch := c.waiting[h.Serial]
		delete(c.waiting, h.Serial)
		c.mu.Unlock()
		if ch != nil {
			ch <- reply{h.Status, b}
		}
	case socket.Stream:
		if h.Serial != c.streamSerial {
			return
		}
		switch h.Status {
		case socket.StatusContinue:
			_, _ = c.out.Write(b)
		case socket.StatusOK:
			c.end(nil)
		default:
			c.end(rpcError(b))
		}
	}
}

func (c *consoleConn) end(err error) {
	select {
	case c.ended <- err:
	default:
	}
}

func (c *consoleConn) nextSerial() int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.serial++
	return c.serial
}

// call sends a call and waits for its reply.
func (c *consoleConn) call(proc uint32, payload []byte) ([]byte, error) {
	serial := c.nextSerial()
	return c.callAs(serial, proc, payload)
}

func (c *consoleConn) callAs(serial int32, proc uint32, payload []byte) ([]byte, error) {
	ch := make(chan reply, 1)
	c.mu.Lock()
	c.waiting[serial] = ch
	c.mu.Unlock()
	if err := c.sock.SendPacket(serial, proc, remoteProgram, payload, socket.Call, socket.StatusOK); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		if r.status != socket.StatusOK {
			return nil, rpcError(r.payload)
		}
		return r.payload, nil
	case <-c.sock.Disconnected():
		return nil, errors.New("libvirtd closed the connection")
	case <-time.After(30 * time.Second):
		return nil, errors.New("libvirtd did not answer")
	}
}

// dialerFor picks the transport of a libvirt URI, as go-libvirt's
// ConnectToURI does for the main connection (unix, tcp, tls, ssh).
func dialerFor(u *url.URL, sock string) (socket.Dialer, error) {
	transport := "unix"
	if s := strings.SplitN(u.Scheme, "+", 2); len(s) == 2 {
		transport = s[1]
	}
	switch transport {
	case "unix":
		opts := []dialers.LocalOption{}
		if sock != "" {
			opts = append(opts, dialers.WithSocket(sock))
		} else if s := u.Query().Get("socket"); s != "" {
			opts = append(opts, dialers.WithSocket(s))
		}
		return dialers.NewLocal(opts...), nil
	case "tcp":
		opts := []dialers.RemoteOption{}
		if p := u.Port(); p != "" {
			opts = append(opts, dialers.UsePort(p))
		}
		return dialers.NewRemote(u.Hostname(), opts...), nil
	case "tls":
		opts := []dialers.TLSOption{}
		if p := u.Port(); p != "" {
			opts = append(opts, dialers.UseTLSPort(p))
		}
		return dialers.NewTLS(u.Hostname(), opts...), nil
	case "ssh":
		me, err := user.Current()
		if err != nil {
			return nil, err
		}
		opts := []dialers.SSHOption{dialers.WithSystemSSHDefaults(me)}
		if p := u.Port(); p != "" {
			opts = append(opts, dialers.UseSSHPort(p))
		}
		if name := u.User.Username(); name != "" {
			opts = append(opts, dialers.UseSSHUsername(name))
		}
		if s := u.Query().Get("socket"); s != "" {
			opts = append(opts, dialers.WithRemoteSocket(s))
		}
		if k := u.Query().Get("keyfile"); k != "" {
			opts = append(opts, dialers.UseKeyFile(k))
		}
		return dialers.NewSSH(u.Hostname(), opts...), nil
	}
	return nil, fmt.Errorf("the console does not support %s URIs yet; use virsh -c %s console", transport, u)
}

// openConsole connects, authenticates, opens the driver and the domain's
// console; console output goes to out.
func (d *driver) openConsole(name string, force bool, out io.Writer) (*consoleConn, error) {
	dialer, err := dialerFor(d.uri, d.socket)
	if err != nil {
		return nil, err
	}
	c := &consoleConn{waiting: map[int32]chan reply{}, out: out, ended: make(chan error, 1)}
	c.sock = socket.New(dialer, c)
	if err := c.sock.Connect(); err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", d.uri, err)
	}
	fail := func(err error) (*consoleConn, error) {
		_ = c.sock.Disconnect()
		return nil, err
	}
	auths, err := c.call(procAuthList, nil)
	if err != nil {
		return fail(fmt.Errorf("auth-list: %w", err))
	}
	ar := &xdrReader{b: auths}
	for n := ar.u32(); n > 0 && ar.err == nil; n-- {
		if ar.u32() == authPolkit {
			if _, err := c.call(procAuthPolkit, nil); err != nil {
				return fail(fmt.Errorf("polkit: %w", err))
			}
		}
	}
	remote := (&url.URL{Scheme: strings.SplitN(d.uri.Scheme, "+", 2)[0], Path: d.uri.Path}).String()
	var open xdr
	open.optStr(&remote)
	open.u32(0)
	if _, err := c.call(procConnectOpen, open.Bytes()); err != nil {
		return fail(fmt.Errorf("opening %s: %w", remote, err))
	}
	var lookup xdr
	lookup.str(name)
	dom, err := c.call(procDomainLookupName, lookup.Bytes())
	if err != nil {
		return fail(fmt.Errorf("domain %q: %w", name, err))
	}
	// The reply is the domain itself (name, uuid, id): send it back as is.
	var oc xdr
	oc.Write(dom)
	oc.optStr(nil) // the first console
	flags := uint32(0)
	if force {
		flags = consoleForce
	}
	oc.u32(flags)
	c.streamSerial = c.nextSerial()
	if _, err := c.callAs(c.streamSerial, procDomainOpenConsole, oc.Bytes()); err != nil {
		return fail(fmt.Errorf("opening the console of %q: %w", name, err))
	}
	return c, nil
}

// send writes input to the console.
func (c *consoleConn) send(b []byte) error {
	return c.sock.SendPacket(c.streamSerial, procDomainOpenConsole, remoteProgram, b, socket.Stream, socket.StatusContinue)
}

// close ends the stream and the connection.
func (c *consoleConn) close() {
	_ = c.sock.SendPacket(c.streamSerial, procDomainOpenConsole, remoteProgram, nil, socket.Stream, socket.StatusOK)
	select {
	case <-c.ended:
	case <-time.After(2 * time.Second):
	}
	_, _ = c.call(procConnectClose, nil)
	_ = c.sock.Disconnect()
}

// terminal takes the user's terminal for the console: a plugin runs in its
// own process group, so it becomes the terminal's foreground group (as a
// shell's job control would) and puts it in raw mode. restore gives both
// back.
func terminal() (tty *os.File, restore func(), err error) {
	tty, err = os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, nil, errors.New("the console needs a terminal: run vmflow from one (not through a pipe or --json)")
	}
	fd := int(tty.Fd())
	signal.Ignore(syscall.SIGTTOU, syscall.SIGTTIN)
	prevFG, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil {
		tty.Close()
		return nil, nil, fmt.Errorf("terminal: %w", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, unix.Getpgrp()); err != nil {
		tty.Close()
		return nil, nil, fmt.Errorf("taking the terminal: %w", err)
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		_ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, prevFG)
		tty.Close()
		return nil, nil, fmt.Errorf("terminal: %w", err)
	}
	return tty, func() {
		_ = term.Restore(fd, state)
		_ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, prevFG)
		tty.Close()
	}, nil
}

func consoleAction(d *driver) hypervisor.Impl {
	return hypervisor.Impl{
		Note: "It goes through libvirt's stream, on a connection of its own.",
		Run: func(ctx context.Context, r *sdk.Request) error {
			name := r.String("name")
			conn, dom, err := d.domain(name)
			if err != nil {
				return sdk.ArgError("name", "%v", err)
			}
			if active, err := conn.DomainIsActive(dom); err != nil {
				return err
			} else if active == 0 {
				return fmt.Errorf("domain %q is not running; start it first", name)
			}
			tty, restore, err := terminal()
			if err != nil {
				return err
			}
			defer restore()
			c, err := d.openConsole(name, r.Bool("force"), tty)
			if err != nil {
				return err
			}
			fmt.Fprintf(tty, "Connected to %s's console; press Ctrl-] to detach.\r\n", name)
			detached := make(chan struct{})
			go func() {
				defer close(detached)
				buf := make([]byte, 4096)
				for {
					_ = tty.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
					n, err := tty.Read(buf)
					if n > 0 {
						in := buf[:n]
						if i := bytes.IndexByte(in, escapeByte); i >= 0 {
							_ = c.send(in[:i])
							return
						}
						if c.send(in) != nil {
							return
						}
					}
					if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						return
					}
					select {
					case <-ctx.Done():
						return
					case <-c.sock.Disconnected():
						return
					default:
					}
				}
			}()
			var streamErr error
			select {
			case <-detached:
			case streamErr = <-c.ended:
			case <-ctx.Done():
			}
			c.close()
			fmt.Fprint(tty, "\r\nDetached from the console.\r\n")
			return streamErr
		},
	}
}
