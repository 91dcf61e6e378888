package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// Every libvirt stream the plugin uses (volume upload and download, the
// console) runs on a connection of its own, spoken here with go-libvirt's
// socket package for the framing only, for two reasons:
//
//   - go-libvirt's stream calls (StorageVolDownload) take the first packet
//     that carries the call's serial for the reply. libvirtd may send a
//     download's first data before its reply (it registers the stream,
//     whose data its event loop sends at once, before a worker thread
//     queues the reply; under load that order is seen), and go-libvirt
//     then drops that data, takes the late reply for the stream's end and
//     returns a copy without its first 256 KiB. The stream's next packet
//     then finds no reader: go-libvirt's router waits to hand it over
//     while holding the lock the returning call needs, and that connection
//     hangs for good. Here packets are told apart by their type: stream
//     data is stream data whenever it comes.
//   - A stream that stops moving must end in an error, not a wait without
//     end: a watchdog closes the connection when nothing has moved for
//     the driver's stall limit, and only that one transfer fails.
//
// The protocol: libvirt's remote_protocol.x and virnetprotocol.x.

const (
	remoteProgram          = 0x20008086
	procConnectOpen        = 1
	procConnectClose       = 2
	procDomainLookupName   = 23
	procAuthList           = 66
	procAuthPolkit         = 70
	procDomainOpenConsole  = 201
	procStorageVolUpload   = 208
	procStorageVolDownload = 209
	authPolkit             = 2

	keepaliveProgram = 0x6b656570 // 'keep'
	keepalivePing    = 1
	keepalivePong    = 2

	// streamChunk is how much an upload sends per packet, as libvirt's
	// own client does.
	streamChunk = 256 << 10
)

// defaultStall is how long a stream may go without moving before it is
// given up: a byte of a transfer, or for the console an answer to a
// keepalive ping. Under load (two cores, a load average of 15) a packet
// comes well within a second; libvirtd's own keepalive gives a silent
// client 30 s. A transfer that moves at all, however slowly, is never cut
// off: only one in which nothing moves for this long.
const defaultStall = 60 * time.Second

// stallLimit is the driver's limit (tests set a shorter one).
func (d *driver) stallLimit() time.Duration {
	if d.stall > 0 {
		return d.stall
	}
	return defaultStall
}

// xdr writes the few XDR shapes these calls need.
type xdr struct{ bytes.Buffer }

func (x *xdr) u32(v uint32) { _ = binary.Write(&x.Buffer, binary.BigEndian, v) }

func (x *xdr) u64(v uint64) { _ = binary.Write(&x.Buffer, binary.BigEndian, v) }

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

// volArgs are a volume upload's or download's arguments: the volume
// (pool, name, key), offset, length (0: to the end) and flags.
func volArgs(vol libvirt.StorageVol, offset, length uint64) []byte {
	var x xdr
	x.str(vol.Pool)
	x.str(vol.Name)
	x.str(vol.Key)
	x.u64(offset)
	x.u64(length)
	x.u32(0)
	return x.Bytes()
}

type reply struct {
	status  uint32
	payload []byte
}

// What a stream's packets from libvirtd say.
type streamEventKind int

const (
	streamEOF  streamEventKind = iota // an empty data packet: no more data
	streamDone                        // the finish confirmed (or the stream closed by libvirtd)
	streamFail                        // libvirtd's error
)

type streamEvent struct {
	kind streamEventKind
	err  error
}

// rpcConn is one libvirt connection that carries one stream.
type rpcConn struct {
	sock  *socket.Socket
	what  string // what it is for, in errors: `downloading volume "x"`
	stall time.Duration
	// sendsMove: a packet of the stream sent counts as moving (an
	// upload's); otherwise only what libvirtd sends does (a console's
	// keys go out even to a libvirtd that no longer answers).
	sendsMove bool

	mu      sync.Mutex
	serial  int32
	waiting map[int32]chan reply

	// The stream: its call's serial and procedure, what to do with its
	// data (on the connection's reading goroutine), and its other events.
	streamSerial int32
	streamProc   uint32
	onData       func([]byte)
	events       chan streamEvent

	// lastMove is when something last moved (UnixNano): a packet from
	// libvirtd, or a packet of the stream's sent.
	lastMove atomic.Int64

	failed   chan struct{} // closed when the connection is given up
	failErr  error
	failOnce sync.Once
	done     chan struct{} // closed by close: stops the watchdog
	doneOnce sync.Once
}

// Route receives every packet from libvirtd, on the socket's reading
// goroutine.
func (c *rpcConn) Route(h *socket.Header, payload []byte) {
	c.moved()
	if h.Program == keepaliveProgram {
		if h.Procedure == keepalivePing {
			go func() {
				_ = c.sock.SendPacket(0, keepalivePong, keepaliveProgram, nil, socket.Message, socket.StatusOK)
			}()
		}
		return
	}
	c.mu.Lock()
	streamSerial, onData := c.streamSerial, c.onData
	var ch chan reply
	if h.Type == socket.Reply {
		ch = c.waiting[h.Serial]
		delete(c.waiting, h.Serial)
	}
	c.mu.Unlock()
	switch h.Type {
	case socket.Reply:
		if ch != nil {
			ch <- reply{h.Status, payload} // buffered: never blocks
		}
	case socket.Stream:
		if h.Serial != streamSerial || streamSerial == 0 {
			return
		}
		switch {
		case h.Status == socket.StatusContinue && len(payload) > 0:
			if onData != nil {
				onData(payload)
			}
		case h.Status == socket.StatusContinue:
			c.event(streamEvent{kind: streamEOF})
		case h.Status == socket.StatusOK:
			c.event(streamEvent{kind: streamDone})
		default:
			c.event(streamEvent{kind: streamFail, err: rpcError(payload)})
		}
	default:
		// A sparse stream's hole, or something newer: not asked for.
		if h.Serial == streamSerial && streamSerial != 0 {
			c.event(streamEvent{kind: streamFail, err: fmt.Errorf("libvirtd sent a packet of type %d on the stream", h.Type)})
		}
	}
}

// event passes a stream event on; a stream has a handful at most.
func (c *rpcConn) event(e streamEvent) {
	select {
	case c.events <- e:
	default:
	}
}

func (c *rpcConn) moved() { c.lastMove.Store(time.Now().UnixNano()) }

// fail gives the connection up: every wait on it returns err, and closing
// the socket ends any send or receive under way.
func (c *rpcConn) fail(err error) {
	c.failOnce.Do(func() {
		c.failErr = err
		close(c.failed)
		go func() { _ = c.sock.Disconnect() }()
	})
}

// errOr is why the connection was given up, if it was, else err.
func (c *rpcConn) errOr(err error) error {
	select {
	case <-c.failed:
		return c.failErr
	default:
		return err
	}
}

// wrap says what the connection was for in an error of its own; the
// reason it was given up says so already.
func (c *rpcConn) wrap(err error) error {
	if err == nil {
		return nil
	}
	select {
	case <-c.failed:
		if err == c.failErr {
			return err
		}
	default:
	}
	return fmt.Errorf("%s: %w", c.what, err)
}

// cancelOn gives the connection up when ctx ends, so that a send or a
// wait under way returns at once.
func (c *rpcConn) cancelOn(ctx context.Context) {
	go func() {
		select {
		case <-ctx.Done():
			c.fail(fmt.Errorf("%s: %w", c.what, ctx.Err()))
		case <-c.done:
		case <-c.failed:
		}
	}()
}

// watch is the stall watchdog: nothing moving for the stall limit fails
// the connection with stalled's error (given the limit).
func (c *rpcConn) watch(stalled func(limit time.Duration) error) {
	tick := c.stall / 8
	tick = min(max(tick, 20*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.failed:
			return
		case <-c.sock.Disconnected():
			c.fail(fmt.Errorf("%s: libvirtd closed the connection", c.what))
			return
		case <-t.C:
			if time.Since(time.Unix(0, c.lastMove.Load())) >= c.stall {
				c.fail(stalled(c.stall))
				return
			}
		}
	}
}

// ping sends libvirt keepalive pings, whose answers (libvirtd sends them
// from its event loop, which also moves every stream) keep the watchdog
// quiet while the stream itself is silent: a console nobody types on.
func (c *rpcConn) ping() {
	t := time.NewTicker(min(5*time.Second, max(c.stall/4, 10*time.Millisecond)))
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.failed:
			return
		case <-t.C:
			_ = c.sock.SendPacket(0, keepalivePing, keepaliveProgram, nil, socket.Message, socket.StatusOK)
		}
	}
}

func (c *rpcConn) nextSerial() int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.serial++
	return c.serial
}

// call sends a call and waits for its reply.
func (c *rpcConn) call(proc uint32, payload []byte) ([]byte, error) {
	return c.callAs(c.nextSerial(), proc, payload)
}

func (c *rpcConn) callAs(serial int32, proc uint32, payload []byte) ([]byte, error) {
	ch := make(chan reply, 1)
	c.mu.Lock()
	c.waiting[serial] = ch
	c.mu.Unlock()
	if err := c.sock.SendPacket(serial, proc, remoteProgram, payload, socket.Call, socket.StatusOK); err != nil {
		return nil, c.errOr(err)
	}
	select {
	case r := <-ch:
		if r.status != socket.StatusOK {
			return nil, rpcError(r.payload)
		}
		return r.payload, nil
	case <-c.failed:
		return nil, c.failErr
	}
}

// openStream makes the call that opens a stream; the stream's data goes
// to onData as it comes, before the call's reply too.
func (c *rpcConn) openStream(proc uint32, args []byte, onData func([]byte)) error {
	serial := c.nextSerial()
	c.mu.Lock()
	c.streamSerial, c.streamProc, c.onData = serial, proc, onData
	c.mu.Unlock()
	_, err := c.callAs(serial, proc, args)
	return err
}

// send sends one packet of the stream: data (StatusContinue), the finish
// (StatusOK, no data) or an abort (StatusError).
func (c *rpcConn) send(status uint32, data []byte) error {
	c.mu.Lock()
	serial, proc := c.streamSerial, c.streamProc
	c.mu.Unlock()
	if err := c.sock.SendPacket(serial, proc, remoteProgram, data, socket.Stream, status); err != nil {
		return c.errOr(err)
	}
	if c.sendsMove {
		c.moved()
	}
	return nil
}

// close ends the connection (connect-close, then the socket closed),
// without waiting on libvirtd for long; whatever still waits on it
// returns.
func (c *rpcConn) close() {
	c.doneOnce.Do(func() { close(c.done) })
	select {
	case <-c.failed:
	default:
		closed := make(chan struct{})
		go func() {
			_, _ = c.call(procConnectClose, nil)
			close(closed)
		}()
		select {
		case <-closed:
		case <-c.failed:
		case <-time.After(min(c.stall, 5*time.Second)):
		}
	}
	c.fail(fmt.Errorf("%s: the connection is closed", c.what))
	_ = c.sock.Disconnect()
}

// failure is why the stream failed: libvirtd's error if it sent one
// (an upload libvirtd refused goes no further), else err.
func (c *rpcConn) failure(err error) error {
	select {
	case e := <-c.events:
		if e.kind == streamFail {
			return c.wrap(e.err)
		}
	default:
	}
	return c.wrap(err)
}

// dialRPC opens a connection of the stream's own to the driver's libvirtd
// and its driver (auth-list, polkit where asked, connect-open); its
// watchdog runs from the start, so that a libvirtd that does not answer
// fails the dial too, and so does ctx's end. keepalive sends pings (for
// the console).
func (d *driver) dialRPC(ctx context.Context, what string, keepalive bool, stalled func(limit time.Duration) error) (*rpcConn, error) {
	d.mu.Lock()
	uri, sock, stall := d.uri, d.socket, d.stallLimit()
	d.mu.Unlock()
	dialer, err := dialerFor(uri, sock)
	if err != nil {
		return nil, err
	}
	c := &rpcConn{
		what:    what,
		stall:   stall,
		waiting: map[int32]chan reply{},
		events:  make(chan streamEvent, 8),
		failed:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	// The dial is bounded here; the watchdog bounds the rest.
	b := bounded(dialer, d.handshakeLimit())
	c.sock = socket.New(b, c)
	if err := b.finish(c.sock.Connect()); err != nil {
		return nil, fmt.Errorf("%s: connecting to %s: %w", what, uri.Redacted(), err)
	}
	c.moved()
	go c.watch(stalled)
	c.cancelOn(ctx)
	if keepalive {
		go c.ping()
	}
	fail := func(step string, err error) (*rpcConn, error) {
		err = c.errOr(err)
		c.close()
		if err == c.failErr {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %s: %w", what, step, err)
	}
	auths, err := c.call(procAuthList, nil)
	if err != nil {
		return fail("auth-list", err)
	}
	ar := &xdrReader{b: auths}
	for n := ar.u32(); n > 0 && ar.err == nil; n-- {
		if ar.u32() == authPolkit {
			if _, err := c.call(procAuthPolkit, nil); err != nil {
				return fail("polkit", err)
			}
		}
	}
	remote := string(libvirt.RemoteURI(uri))
	var open xdr
	open.optStr(&remote)
	open.u32(0)
	if _, err := c.call(procConnectOpen, open.Bytes()); err != nil {
		return fail("opening "+remote, err)
	}
	return c, nil
}

// dialerFor picks the transport of a libvirt URI (unix, tcp, tls, ssh),
// for the main connection and the streams'.
func dialerFor(u *url.URL, sock string) (socket.Dialer, error) {
	transport := "unix"
	if s := strings.SplitN(u.Scheme, "+", 2); len(s) == 2 {
		transport = s[1]
	} else if u.Host != "" {
		transport = "tls"
	}
	switch transport {
	case "unix":
		opts := []dialers.LocalOption{dialers.WithLocalTimeout(5 * time.Second)}
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
		if p := u.Query().Get("pkipath"); p != "" {
			opts = append(opts, dialers.UsePKIPath(p))
		}
		return dialers.NewTLS(u.Hostname(), opts...), nil
	case "ssh", "libssh", "libssh2":
		if sock != "" {
			c := *u
			q := c.Query()
			q.Set("socket", sock)
			c.RawQuery = q.Encode()
			u = &c
		}
		return newSSHDialer(u)
	}
	return nil, fmt.Errorf("the %s transport is not supported: use unix, tcp, tls or ssh", transport)
}
