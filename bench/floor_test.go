package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vmflow/vmflow/core/protocol/mtls"
)

// benchFloorStart times the floor of a plugin start: vmflow's client
// certificate made, bench/floor/plugin executed, its handshake line read,
// a gRPC connection with mutual TLS (vmflow's client TLS config, the
// plugin's certificate as the only root) and one health check answered.
// It is what host.Start does, without go-plugin, the SDK and Describe.
func benchFloorStart(b *testing.B) {
	for b.Loop() {
		cert, err := mtls.NewCert(false)
		if err != nil {
			b.Fatal(err)
		}
		f := startFloor(b, cert)
		if err := f.check(cert); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		f.stop()
		b.StartTimer()
	}
}

// TestFloorRefusesAStranger holds the floor to a plugin's bar: a client
// with a certificate it was not given gets no answer (as
// core/host/mtls_test.go checks for plugins), so the floor pays for
// mutual authentication and is not a cheaper, open server.
func TestFloorRefusesAStranger(t *testing.T) {
	given, err := mtls.NewCert(false)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := mtls.NewCert(false)
	if err != nil {
		t.Fatal(err)
	}
	f := startFloor(t, given)
	defer f.stop()
	if err := f.check(stranger); err == nil {
		t.Fatal("the floor plugin answered a client whose certificate it was not given")
	}
	if err := f.check(given); err != nil {
		t.Fatalf("the floor plugin refused the client it was given: %v", err)
	}
}

type floor struct {
	cmd    *exec.Cmd
	sock   string
	server *x509.Certificate
}

// startFloor runs bench/floor/plugin for the client certificate and reads
// its handshake line.
func startFloor(tb testing.TB, client tls.Certificate) *floor {
	cmd := exec.Command(filepath.Join(binDir, floorPlugin))
	cmd.Env = append(os.Environ(), mtls.ClientCertEnv+"="+mtls.CertPEM(client))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	f := &floor{cmd: cmd}
	line, err := bufio.NewReader(out).ReadString('\n')
	parts := strings.Split(strings.TrimSpace(line), "|")
	if err != nil || len(parts) != 6 {
		f.stop()
		tb.Fatalf("handshake line %q: %v", line, err)
	}
	der, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err == nil {
		f.server, err = x509.ParseCertificate(der)
	}
	if err != nil {
		f.stop()
		tb.Fatal(err)
	}
	f.sock = parts[3]
	return f
}

// check connects as client, trusting only the floor's certificate, and
// asks its health.
func (f *floor) check(client tls.Certificate) error {
	cfg := mtls.ClientTLS(client)
	cfg.RootCAs.AddCert(f.server)
	conn, err := grpc.NewClient("unix:"+f.sock, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		return err
	}
	defer conn.Close()
	r, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "plugin"})
	if err == nil && r.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health: %v", r.Status)
	}
	return err
}

func (f *floor) stop() {
	_ = f.cmd.Process.Kill()
	_ = f.cmd.Wait()
}
