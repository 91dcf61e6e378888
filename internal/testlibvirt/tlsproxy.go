package testlibvirt

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
)

// TLSProxy stands where a remote host's libvirtd listens for qemu+tls://:
// on 127.0.0.1, it takes TLS connections from clients whose certificate
// its CA signed, and carries each to this machine's libvirtd socket, as
// the far end of qemu+ssh:// carries one to it. So a client reaches the
// machine's daemon (qemu:///system) over TLS without the daemon being
// reconfigured. Each connection it accepts is a line in Log.
type TLSProxy struct {
	Port string
	// PKI is the client's pkipath: cacert.pem, clientcert.pem,
	// clientkey.pem.
	PKI   string
	Log   string
	l     net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	log   *os.File
	conns map[net.Conn]bool // open, closed by Stop
}

// StartTLSProxy makes a CA, a server certificate for 127.0.0.1 and a
// client certificate under dir, and listens.
func StartTLSProxy(dir string) (*TLSProxy, error) {
	ca, err := newCA("vmflow test CA")
	if err != nil {
		return nil, err
	}
	server, pki := filepath.Join(dir, "server"), filepath.Join(dir, "client")
	if err := ca.issue(server, "servercert.pem", "serverkey.pem", x509.ExtKeyUsageServerAuth); err != nil {
		return nil, err
	}
	if err := ca.issue(pki, "clientcert.pem", "clientkey.pem", x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(server, "servercert.pem"), filepath.Join(server, "serverkey.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "tlsproxy.log")
	logf, err := os.Create(logPath)
	if err != nil {
		l.Close()
		return nil, err
	}
	p := &TLSProxy{Port: fmt.Sprint(l.Addr().(*net.TCPAddr).Port), PKI: pki, Log: logPath, l: l, log: logf, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// URI is the qemu+tls:// URI of path (/system) through the proxy.
func (p *TLSProxy) URI(path string) string {
	return "qemu+tls://127.0.0.1:" + p.Port + path + "?pkipath=" + p.PKI
}

func (p *TLSProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() {
			p.carry(c.(*tls.Conn))
		})
	}
}

// carry completes the handshake (the client's certificate is checked
// there), then copies both ways between the client and the daemon.
func (p *TLSProxy) carry(c *tls.Conn) {
	p.track(c, true)
	defer p.track(c, false)
	defer c.Close()
	if err := c.Handshake(); err != nil {
		p.logf("refused %s: %v", c.RemoteAddr(), err)
		return
	}
	d, err := net.Dial("unix", "/run/libvirt/libvirt-sock")
	if err != nil {
		p.logf("accepted %s, but libvirtd: %v", c.RemoteAddr(), err)
		return
	}
	// libvirtd's TLS transport: once it has checked the client's
	// certificate, one byte 1 says so, before the RPC stream.
	if _, err := c.Write([]byte{1}); err != nil {
		d.Close()
		return
	}
	p.track(d, true)
	defer p.track(d, false)
	defer d.Close()
	p.logf("accepted %s, client certificate %q", c.RemoteAddr(), c.ConnectionState().PeerCertificates[0].Subject.CommonName)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(d, c); _ = d.(*net.UnixConn).CloseWrite(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, d); _ = c.CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

func (p *TLSProxy) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.log, format+"\n", args...)
}

// track adds an open connection, or removes a closed one.
func (p *TLSProxy) track(c net.Conn, open bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if open {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

// Stop closes the listener and every connection, and waits for them.
func (p *TLSProxy) Stop() {
	p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.log.Close()
}
