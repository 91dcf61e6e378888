// Command plugin is the floor of a plugin start (issue 15, goal 2): the
// least a Go plugin process can do under vmflow's fixed choices (gRPC,
// mutually authenticated TLS) before its first answer. It makes its
// certificate and TLS config as every plugin does (core/protocol/mtls:
// ECDSA P-256, TLS 1.3, only the client certificate passed in
// PLUGIN_CLIENT_CERT), serves gRPC on a unix socket with only the health
// service, and prints a go-plugin-style handshake line with its address
// and certificate.
// No go-plugin, no SDK, no schema: BenchmarkPluginStart/floor times
// exec, this, the TLS handshake and one health check.
package main

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vmflow/vmflow/core/protocol/mtls"
)

func main() {
	if err := serve(); err != nil {
		fmt.Fprintln(os.Stderr, "floor plugin:", err)
		os.Exit(1)
	}
}

func serve() error {
	cert, err := mtls.NewCert(true)
	if err != nil {
		return err
	}
	cfg, err := mtls.ServerTLS(cert, os.Getenv(mtls.ClientCertEnv))
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vmflow-floor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "plugin.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	h := health.NewServer()
	h.SetServingStatus("plugin", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, h)
	fmt.Printf("1|1|unix|%s|grpc|%s\n", sock, base64.RawStdEncoding.EncodeToString(cert.Certificate[0]))
	return s.Serve(l)
}
