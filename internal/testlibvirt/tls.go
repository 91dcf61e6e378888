package testlibvirt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// StartTLS runs libvirtd --listen as user for qemu+tls:// on a free port
// of 127.0.0.1, with a CA, a server certificate for 127.0.0.1 and a
// client certificate of its own making; the daemon requires the client's
// certificate (auth_tls = "none" then). The client's files are in PKI
// (cacert.pem, clientcert.pem, clientkey.pem), the directory a URI names
// with ?pkipath=; OtherPKI holds a client certificate of another CA.
func StartTLS(username string) (d *TCPDaemon, pki, otherPKI string, err error) {
	d, err = start(username, func(dir, port string) (string, string, error) {
		pki = filepath.Join(dir, "client")
		otherPKI = filepath.Join(dir, "other")
		ca, err := newCA("vmflow test CA")
		if err != nil {
			return "", "", err
		}
		other, err := newCA("another CA")
		if err != nil {
			return "", "", err
		}
		server := filepath.Join(dir, "server")
		if err := ca.issue(server, "servercert.pem", "serverkey.pem", x509.ExtKeyUsageServerAuth); err != nil {
			return "", "", err
		}
		if err := ca.issue(pki, "clientcert.pem", "clientkey.pem", x509.ExtKeyUsageClientAuth); err != nil {
			return "", "", err
		}
		// Another CA's client, which trusts the right server.
		if err := other.issue(otherPKI, "clientcert.pem", "clientkey.pem", x509.ExtKeyUsageClientAuth); err != nil {
			return "", "", err
		}
		if err := os.WriteFile(filepath.Join(otherPKI, "cacert.pem"), ca.pem, 0o644); err != nil {
			return "", "", err
		}
		conf := fmt.Sprintf("listen_tls = 1\nlisten_tcp = 0\nlisten_addr = \"127.0.0.1\"\ntls_port = %q\nauth_tls = \"none\"\n"+
			"key_file = %q\ncert_file = %q\nca_file = %q\n",
			port, filepath.Join(server, "serverkey.pem"), filepath.Join(server, "servercert.pem"), filepath.Join(pki, "cacert.pem"))
		return conf, "qemu+tls://127.0.0.1:" + port + "/session?pkipath=" + pki, nil
	})
	return d, pki, otherPKI, err
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(name string) (*testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// issue writes a certificate for 127.0.0.1 signed by ca, its key, and the
// CA's certificate (cacert.pem) into dir.
func (ca *testCA) issue(dir, certName, keyName string, usage x509.ExtKeyUsage) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "127.0.0.1", Organization: []string{"vmflow tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{
		certName:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyName:      pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
		"cacert.pem": ca.pem,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}
