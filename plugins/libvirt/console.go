package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/digitalocean/go-libvirt/socket"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/vmflow/vmflow/core/sdk"
)

// go-libvirt's generated DomainOpenConsole only reads from the console,
// so the console speaks libvirt's RPC protocol itself on a connection of
// its own (rpc.go): DOMAIN_LOOKUP_BY_NAME, DOMAIN_OPEN_CONSOLE, then
// stream packets both ways. A console nobody types on is silent, which is
// normal: what must not go quiet is libvirtd, so keepalive pings go out
// and the console is closed with an error when libvirtd has answered
// nothing for the stall limit.

const (
	consoleForce = 1
	escapeByte   = 0x1d // Ctrl-]
)

// openConsole connects and opens the domain's console; its output goes
// to out.
func (d *driver) openConsole(ctx context.Context, name string, force bool, out io.Writer) (*rpcConn, error) {
	what := fmt.Sprintf("the console of %q", name)
	c, err := d.dialRPC(ctx, what, true, func(limit time.Duration) error {
		return fmt.Errorf("%s: libvirtd did not answer for %v; the console was closed", what, limit)
	})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*rpcConn, error) {
		err = c.wrap(err)
		c.close()
		return nil, err
	}
	var lookup xdr
	lookup.str(name)
	dom, err := c.call(procDomainLookupName, lookup.Bytes())
	if err != nil {
		return fail(err)
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
	if err := c.openStream(procDomainOpenConsole, oc.Bytes(), func(b []byte) { _, _ = out.Write(b) }); err != nil {
		return fail(err)
	}
	return c, nil
}

// closeConsole ends the console's stream (the finish, which libvirtd
// confirms) and its connection.
func closeConsole(c *rpcConn) {
	if c.send(socket.StatusOK, nil) == nil {
		timeout := time.After(2 * time.Second)
	wait:
		for {
			select {
			case e := <-c.events:
				if e.kind != streamEOF {
					break wait
				}
			case <-c.failed:
				break wait
			case <-timeout:
				break wait
			}
		}
	}
	c.close()
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

// console is the console action: the serial console attached to this
// terminal through libvirt's stream, both ways, until Ctrl-].
func (d *driver) console(ctx context.Context, r *sdk.Request) error {
	name := r.String("name")
	_, _, active, err := d.activeDomainArg(name)
	if err != nil {
		return err
	}
	if !active {
		return fmt.Errorf("domain %q is not running; start it first", name)
	}
	tty, restore, err := terminal()
	if err != nil {
		return err
	}
	defer restore()
	c, err := d.openConsole(ctx, name, r.Bool("force"), tty)
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
					if i > 0 {
						_ = c.send(socket.StatusContinue, in[:i])
					}
					return
				}
				if c.send(socket.StatusContinue, in) != nil {
					return
				}
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-c.failed:
				return
			default:
			}
		}
	}()
	var streamErr error
wait:
	for {
		select {
		case <-detached:
			if ctx.Err() == nil {
				streamErr = c.errOr(nil)
			}
			break wait
		case e := <-c.events:
			// The console ended on libvirtd's side: the domain
			// stopped, or another console took it over (force).
			if e.kind == streamFail {
				streamErr = c.wrap(e.err)
			}
			break wait
		case <-c.failed:
			if ctx.Err() == nil { // not vmflow's own cancel
				streamErr = c.failErr
			}
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	closeConsole(c)
	fmt.Fprint(tty, "\r\nDetached from the console.\r\n")
	return streamErr
}
