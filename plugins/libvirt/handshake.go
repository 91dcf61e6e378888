package main

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitalocean/go-libvirt/socket"
)

// defaultHandshake is how long a new connection to libvirtd may take to
// be ready: the dial (over TLS, the server's verdict on our certificate
// too; over SSH, the SSH handshake), then libvirt's own greeting (auth,
// open). Dialling alone has timeouts of its own, but a daemon that
// accepts and then says nothing (a hung libvirtd, a port forwarded to
// something else) would be waited on for ever.
const defaultHandshake = 20 * time.Second

func (d *driver) handshakeLimit() time.Duration {
	if d.handshake > 0 {
		return d.handshake
	}
	return defaultHandshake
}

// boundedDialer bounds a connection's handshake: Dial gives up once the
// limit is up, and the connection it returns is closed, which ends every
// call waiting on it, unless done is called first.
type boundedDialer struct {
	socket.Dialer
	limit time.Duration

	mu      sync.Mutex
	timer   *time.Timer
	expired atomic.Bool
}

func bounded(d socket.Dialer, limit time.Duration) *boundedDialer {
	return &boundedDialer{Dialer: d, limit: limit}
}

type dialResult struct {
	conn net.Conn
	err  error
}

// Dial dials, and starts the clock on what is left of the limit.
func (b *boundedDialer) Dial() (net.Conn, error) {
	deadline := time.Now().Add(b.limit)
	ch := make(chan dialResult, 1)
	go func() {
		c, err := b.Dialer.Dial()
		ch <- dialResult{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		b.timer = time.AfterFunc(time.Until(deadline), func() {
			b.expired.Store(true)
			r.conn.Close()
		})
		return r.conn, nil
	case <-time.After(b.limit):
		b.expired.Store(true)
		// A dial that finishes after all is not used.
		go func() {
			if r := <-ch; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, b.noAnswer()
	}
}

// finish stops the clock once the handshake has ended with err: it gives
// err, or the reason behind it when the limit closed the connection (also
// when the limit struck just as the handshake succeeded: that connection
// is closed).
func (b *boundedDialer) finish(err error) error {
	b.mu.Lock()
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
	if b.expired.Load() {
		return b.noAnswer()
	}
	return err
}

func (b *boundedDialer) noAnswer() error { return &noAnswerError{b.limit} }

// noAnswerError is a handshake that ran out of time.
type noAnswerError struct{ limit time.Duration }

func (e *noAnswerError) Error() string {
	return fmt.Sprintf("no answer within %s (is it libvirtd that listens there, and is it hung?)", e.limit)
}
