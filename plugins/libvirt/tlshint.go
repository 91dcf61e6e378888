package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// isTLS reports whether a URI reaches its daemon over TLS: qemu+tls://,
// or a remote URI without a transport (libvirt's default).
func isTLS(u *url.URL) bool {
	if s := strings.SplitN(u.Scheme, "+", 2); len(s) == 2 {
		return s[1] == "tls"
	}
	return u.Host != ""
}

// tlsHint says which side of a TLS connection refused the other, and
// which files that concerns: the client's certificate and key and the CA
// it trusts are in the URI's pkipath, else where libvirt's clients look.
func tlsHint(u *url.URL, err error) string {
	pki := u.Query().Get("pkipath")
	where := "in ?pkipath=DIR, else ~/.pki/libvirt (/etc/pki/libvirt and /etc/pki/CA for root)"
	if pki != "" {
		where = "in " + pki
	}
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "could not read tls"):
		return fmt.Sprintf(" (qemu+tls needs this client's certificate and key, clientcert.pem and clientkey.pem, and the CA that signed the daemon's, cacert.pem, %s)", where)
	case errors.As(err, &unknown):
		return fmt.Sprintf(" (the daemon's certificate is not signed by the CA this client trusts: cacert.pem %s)", where)
	case errors.As(err, &host):
		return fmt.Sprintf(" (the daemon's certificate is not for %s: connect by a name or address it lists)", u.Hostname())
	case errors.As(err, &invalid):
		return " (the daemon's certificate is not valid now, or not for a server)"
	case errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET):
		return fmt.Sprintf(" (the daemon closed the connection after the TLS handshake: it did not accept this client's certificate, clientcert.pem %s; it must be signed by the CA of the daemon's ca_file, and its name allowed by the daemon's tls_allowed_dn_list)", where)
	}
	return ""
}
