package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/internal/testlibvirt"
)

// TestTLS reaches a libvirtd over qemu+tls:// on 127.0.0.1 with a client
// certificate (the URI's pkipath): a session daemon of the unprivileged
// test user, run with certificates the test makes (the machine's daemon
// and /etc/pki are not touched). A client the daemon does not know, and a
// daemon the client does not trust, are refused with the reason.
func TestTLS(t *testing.T) {
	requireTestUser(t)
	lv, pki, otherPKI, err := testlibvirt.StartTLS(testUser)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lv.Stop)

	// A file goes to the daemon and back through streams of their own,
	// over TLS as well.
	h := newHarnessConfig(t, map[string]cty.Value{"uri": cty.StringVal(lv.URI), "pool_path": cty.StringVal(filepath.Join(lv.Dir, "pool2"))})
	src := filepath.Join(t.TempDir(), "disk.raw")
	data := bytes.Repeat([]byte("vmflow over tls\n"), 1<<14)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	h.run("volume_import", map[string]any{"path": src, "name": "tls-import"})
	conn, err := h.d.connect()
	if err != nil {
		t.Fatal(err)
	}
	if uri, err := conn.ConnectGetUri(); err != nil || uri != "qemu:///session" {
		t.Fatalf("the daemon reached over tls opened %q (%v), want qemu:///session", uri, err)
	}
	back := filepath.Join(t.TempDir(), "back.raw")
	h.run("volume_export", map[string]any{"name": "tls-import", "path": back})
	if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the volume exported over tls differs from the file imported (%d bytes, %v)", len(got), err)
	}

	base := "qemu+tls://127.0.0.1:" + lv.Port + "/session"
	// A client certificate of another CA: the daemon refuses it.
	d2 := &driver{}
	err = d2.configure(base+"?pkipath="+otherPKI, "", "", "", "auto", t.TempDir())
	wantErr(t, err, "cannot connect to qemu+tls://127.0.0.1:"+lv.Port, "the daemon closed the connection after the TLS handshake: it did not accept this client's certificate, clientcert.pem in "+otherPKI)
	// A client that does not trust the daemon's CA refuses the daemon.
	mixed := t.TempDir()
	for _, f := range []string{"clientcert.pem", "clientkey.pem"} {
		b, _ := os.ReadFile(filepath.Join(pki, f))
		_ = os.WriteFile(filepath.Join(mixed, f), b, 0o600)
	}
	b, _ := os.ReadFile(filepath.Join(otherPKI, "clientcert.pem")) // not a CA of the daemon
	_ = os.WriteFile(filepath.Join(mixed, "cacert.pem"), b, 0o600)
	d3 := &driver{}
	err = d3.configure(base+"?pkipath="+mixed, "", "", "", "auto", t.TempDir())
	wantErr(t, err, "certificate signed by unknown authority", "the daemon's certificate is not signed by the CA this client trusts: cacert.pem in "+mixed)
	// No client certificate at all.
	empty := t.TempDir()
	d4 := &driver{}
	err = d4.configure(base+"?pkipath="+empty, "", "", "", "auto", t.TempDir())
	wantErr(t, err, "qemu+tls needs this client's certificate and key, clientcert.pem and clientkey.pem, and the CA that signed the daemon's, cacert.pem, in "+empty)
}
