// Package mtls is the mutual TLS between vmflow and a plugin: the
// certificates each side makes for one start, and the TLS configs that
// accept only each other. It imports no plugin framework, so that
// bench/floor/plugin can pay for exactly the same authentication.
package mtls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Mutual TLS between vmflow and a plugin, with certificates of vmflow's
// own making (see docs/plugins.md, "The protocol"). It is go-plugin's
// AutoMTLS exchange with ECDSA P-256 keys in place of P-521 ones, which
// cost about 28 ms a start (P-256 rather than Ed25519: Go computes
// Ed25519's base-point tables at the first use in each process, ~1 ms on
// each side of every start, while P-256's ship precomputed):
//
//   - vmflow makes a key and a certificate for this one start and passes
//     the certificate (not the key) to the plugin in ClientCertEnv;
//   - the plugin makes its own key and certificate, serves TLS with them,
//     accepts only a client that presents exactly that certificate, and
//     sends its certificate in its go-plugin handshake line on stdout;
//   - go-plugin's client makes the certificate from the handshake line the
//     only root vmflow's TLS config trusts (ServerTLS leaves it out, so
//     protocol.SpliceServerCert puts it in).
//
// Neither private key leaves the process that made it.

// ClientCertEnv carries vmflow's client certificate (PEM) to the plugin.
// It is go-plugin's AutoMTLS variable: a plugin built with an older SDK,
// which lets go-plugin's AutoMTLS serve, accepts the same certificate.
const ClientCertEnv = "PLUGIN_CLIENT_CERT"

// certHost is the name both certificates are made for; go-plugin's
// client dials with it as the TLS server name.
const certHost = "localhost"

// NewCert makes a fresh ECDSA P-256 key and a self-signed certificate for
// one plugin start: a client certificate for vmflow, a server
// certificate for a plugin. It is no CA, so it can sign no other
// certificate: a peer that trusts it as its only root accepts this one
// certificate and nothing else.
func NewCert(server bool) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	usage := x509.ExtKeyUsageClientAuth
	name := "vmflow"
	if server {
		usage, name = x509.ExtKeyUsageServerAuth, "vmflow plugin"
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{certHost},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour), // a plugin may serve for as long as vmflow runs
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// CertPEM is a certificate's leaf in PEM, as ClientCertEnv carries it.
func CertPEM(c tls.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}))
}

// ClientTLS is vmflow's side: it presents cert and trusts no server until
// go-plugin's client puts the certificate from the plugin's handshake
// line into RootCAs (it replaces the empty pool set here). A plugin that
// sent none is refused: nothing verifies against an empty pool.
func ClientTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      x509.NewCertPool(),
		ServerName:   certHost,
		MinVersion:   tls.VersionTLS13,
	}
}

// ServerTLS is the plugin's side: it serves with cert and accepts only a
// client that presents the certificate in clientPEM (ClientCertEnv).
func ServerTLS(cert tls.Certificate, clientPEM string) (*tls.Config, error) {
	block, _ := pem.Decode([]byte(clientPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate: was this plugin started by vmflow?", ClientCertEnv)
	}
	client, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ClientCertEnv, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(client)
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
		// Verification against the pool already accepts only this
		// certificate (or one it signed, were it a CA: an older vmflow's
		// AutoMTLS certificate is one); say it outright.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, client.Raw) {
				return errors.New("the client did not present the certificate vmflow passed in " + ClientCertEnv)
			}
			return nil
		},
	}, nil
}
