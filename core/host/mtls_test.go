package host

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/protocol/mtls"
	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/internal/testbin"
)

// binDir holds the hello example plugin, built as `make build` builds it.
var binDir string

// helperEnv makes this test binary a plugin (see servePlugin).
const helperEnv = "VMFLOW_HOST_TEST_PLUGIN"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		servePlugin(mode)
		return
	}
	os.Exit(testbin.Main(m.Run, &binDir, map[string]string{"vmflow-plugin-hello": "./examples/hello"}))
}

var helperPlugin = &sdk.Plugin{Name: "helper", Version: "0.0.1", Actions: []*sdk.Action{{
	Name: "noop", Description: "Does nothing.",
	Run: func(context.Context, *sdk.Request) error { return nil },
}}}

// servePlugin serves helperPlugin the way mode says:
//
//   - "sdk": as every plugin does, with sdk.Serve;
//   - "automtls": as a plugin built with an SDK from before vmflow made
//     its own certificates: go-plugin's AutoMTLS serves (P-521);
//   - "wrong-cert": like sdk.Serve, but the handshake line carries
//     another certificate than the one the plugin serves with;
//   - "describe-hangs": like sdk.Serve, but Describe never answers, as
//     a plugin speaking the protocol without core/sdk could (it writes
//     its pid to the file VMFLOW_HOST_TEST_PID names).
func servePlugin(mode string) {
	if mode == "sdk" {
		sdk.Serve(helperPlugin)
		return
	}
	var impl protocol.Conn
	impl, err := sdk.InProcess(helperPlugin)
	if err != nil {
		panic(err)
	}
	if mode == "describe-hangs" {
		impl = describeHangs{impl}
		if err := os.WriteFile(os.Getenv("VMFLOW_HOST_TEST_PID"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			panic(err)
		}
	}
	cfg := &goplugin.ServeConfig{
		HandshakeConfig:  protocol.Handshake,
		VersionedPlugins: protocol.PluginSets(impl),
		GRPCServer:       goplugin.DefaultGRPCServer,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true}),
	}
	switch mode {
	case "automtls":
	case "wrong-cert", "describe-hangs":
		served, err := mtls.NewCert(true)
		if err != nil {
			panic(err)
		}
		announced := served
		if mode == "wrong-cert" {
			if announced, err = mtls.NewCert(true); err != nil {
				panic(err)
			}
		}
		tlsConfig, err := mtls.ServerTLS(served, os.Getenv(mtls.ClientCertEnv))
		if err != nil {
			panic(err)
		}
		if err := protocol.SpliceServerCert(announced.Certificate[0]); err != nil {
			panic(err)
		}
		cfg.TLSProvider = func() (*tls.Config, error) { return tlsConfig, nil }
	default:
		panic("unknown mode " + mode)
	}
	goplugin.Serve(cfg)
}

// startHelper starts this test binary as a plugin in the given mode.
func startHelper(t *testing.T, mode string) (*Process, error) {
	t.Helper()
	t.Setenv(helperEnv, mode)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(context.Background(), exe, nil)
	if p != nil {
		t.Cleanup(p.Kill)
	}
	return p, err
}

// probe dials a plugin's socket with TLS as a client presenting certs,
// trusting the server certificate vmflow trusts, sends the HTTP/2 client
// preface and reads the server's first bytes: its SETTINGS frame when it
// accepts the client, a TLS alert when it does not.
func probe(p *Process, certs []tls.Certificate) ([]byte, error) {
	addr := p.client.ReattachConfig().Addr
	raw, err := net.DialTimeout(addr.Network(), addr.String(), 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	conn := tls.Client(raw, &tls.Config{
		// Present certs whatever the server asks for.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if len(certs) == 0 {
				return &tls.Certificate{}, nil
			}
			return &certs[0], nil
		},
		RootCAs:    p.tls.RootCAs, // the certificate from the plugin's handshake line
		ServerName: "localhost",
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h2"},
	})
	// In TLS 1.3 the client's side of the handshake ends before the
	// server has checked the client's certificate: a refusal arrives as
	// an alert on the first read.
	if err := conn.Handshake(); err != nil {
		return nil, err
	}
	_, _ = conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"))
	buf := make([]byte, 9)
	n, err := io.ReadFull(conn, buf)
	return buf[:n], err
}

// A plugin (the real hello example) serves only the client that presents
// the certificate vmflow passed it: with that certificate the plugin's
// gRPC server answers; with none or another one the TLS handshake fails.
func TestPluginRefusesOtherClients(t *testing.T) {
	p, err := Start(context.Background(), filepath.Join(binDir, "vmflow-plugin-hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if got := p.client.ReattachConfig().Addr.Network(); got != "unix" {
		t.Fatalf("plugin listens on %s", got)
	}
	frame, err := probe(p, p.tls.Certificates)
	if err != nil || len(frame) != 9 || frame[3] != 0x4 { // an HTTP/2 SETTINGS frame
		t.Fatalf("with vmflow's certificate: %x, %v", frame, err)
	}
	other, err := mtls.NewCert(false)
	if err != nil {
		t.Fatal(err)
	}
	for name, certs := range map[string][]tls.Certificate{
		"no certificate":       nil,
		"another certificate":  {other},
		"a server certificate": {mustCert(t, true)},
	} {
		frame, err := probe(p, certs)
		if err == nil {
			t.Errorf("%s: the plugin answered: %x", name, frame)
			continue
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: not refused for its certificate: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	// The connection vmflow made still works.
	if _, err := p.Describe(context.Background()); err != nil {
		t.Fatalf("describe: %v", err)
	}
}

func mustCert(t *testing.T, server bool) tls.Certificate {
	t.Helper()
	c, err := mtls.NewCert(server)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// vmflow accepts only the server certificate the plugin's handshake line
// carries: a plugin that serves with another one does not start.
func TestRefusesServerWithAnotherCertificate(t *testing.T) {
	for _, mode := range []string{"sdk", "automtls"} {
		p, err := startHelper(t, mode)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if p.Schema.Name != "helper" {
			t.Fatalf("%s: schema %+v", mode, p.Schema)
		}
	}
	_, err := startHelper(t, "wrong-cert")
	if err == nil {
		t.Fatal("a plugin serving with another certificate than its handshake's started")
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("not refused for its certificate: %v", err)
	}
	t.Log(err)
}
