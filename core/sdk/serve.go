package sdk

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/protocol/mtls"
)

// Serve runs the plugin until vmflow stops it. Call it from main.
func Serve(p *Plugin) {
	impl, err := InProcess(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmflow plugin:", err)
		os.Exit(1)
	}
	if os.Getenv(protocol.Handshake.MagicCookieKey) != protocol.Handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "%s is a vmflow plugin (%s %s); vmflow starts it when a task uses it.\n"+
			"Put it on the plugin path as vmflow-plugin-%s and run `vmflow plugins` to see its actions.\n",
			os.Args[0], p.Name, p.Version, p.Name)
		os.Exit(1)
	}
	closeExeFD()
	tlsConfig, err := serverTLS()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmflow plugin:", err)
		os.Exit(1)
	}
	watchParent()
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig:  protocol.Handshake,
		VersionedPlugins: protocol.PluginSets(impl),
		GRPCServer:       goplugin.DefaultGRPCServer,
		TLSProvider:      func() (*tls.Config, error) { return tlsConfig, nil },
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: p.Name, Level: logLevel(), Output: os.Stderr, JSONFormat: true,
		}),
	})
}

// closeExeFD closes the descriptor of its own binary that vmflow executed
// the plugin through, so that nothing the plugin starts inherits it.
func closeExeFD() {
	if fd, err := strconv.Atoi(os.Getenv(protocol.ExeFDEnv)); err == nil && fd > 3 {
		_ = syscall.Close(fd)
	}
}

// serverTLS makes this start's server certificate (ECDSA P-256), a TLS
// config that accepts only the client certificate vmflow passed, and has
// the certificate sent in the handshake line (protocol.SpliceServerCert):
// go-plugin's AutoMTLS exchange, without its P-521 keys.
func serverTLS() (*tls.Config, error) {
	clientPEM := os.Getenv(mtls.ClientCertEnv)
	if clientPEM == "" {
		return nil, fmt.Errorf("no client certificate in %s: vmflow passes one to every plugin it starts, and a plugin serves no one else", mtls.ClientCertEnv)
	}
	cert, err := mtls.NewCert(true)
	if err != nil {
		return nil, err
	}
	cfg, err := mtls.ServerTLS(cert, clientPEM)
	if err != nil {
		return nil, err
	}
	if err := protocol.SpliceServerCert(cert.Certificate[0]); err != nil {
		return nil, err
	}
	return cfg, nil
}

// watchParent makes sure the plugin never outlives vmflow. vmflow hands
// every plugin the read end of a pipe (the lifeline); when vmflow exits,
// however it exits, the kernel closes the write end and the read returns.
// Without a lifeline, the parent pid is polled instead.
func watchParent() {
	exit := func() {
		// Give in-flight calls a moment to see their cancelled contexts.
		time.Sleep(100 * time.Millisecond)
		os.Exit(2)
	}
	if fd, err := strconv.Atoi(os.Getenv(protocol.LifelineEnv)); err == nil && fd > 2 {
		f := os.NewFile(uintptr(fd), "lifeline")
		go func() {
			_, _ = io.Copy(io.Discard, f)
			exit()
		}()
		return
	}
	ppid := os.Getppid()
	go func() {
		for range time.Tick(500 * time.Millisecond) {
			if os.Getppid() != ppid {
				exit()
			}
		}
	}()
}

// logLevel is the level vmflow asks for (debug with vmflow -v), else info.
var logLevel = sync.OnceValue(func() hclog.Level {
	if l := hclog.LevelFromString(os.Getenv(protocol.LogLevelEnv)); l != hclog.NoLevel {
		return l
	}
	return hclog.Info
})
