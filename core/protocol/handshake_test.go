package protocol

import (
	"encoding/base64"
	"testing"
)

// The certificate goes into an empty 6th field of a handshake line;
// anything else passes unchanged.
func TestSpliceLine(t *testing.T) {
	der := []byte("a certificate, in DER")
	b64 := base64.RawStdEncoding.EncodeToString(der)
	for _, c := range []struct{ in, want string }{
		{"1|1|unix|/tmp/plugin1|grpc|\n", "1|1|unix|/tmp/plugin1|grpc|" + b64 + "\n"},
		{"1|1|unix|/tmp/plugin1|grpc||true\n", "1|1|unix|/tmp/plugin1|grpc|" + b64 + "|true\n"},
		{"1|1|unix|/tmp/plugin1|grpc|", "1|1|unix|/tmp/plugin1|grpc|" + b64},
		{"1|1|unix|/tmp/plugin1|grpc|QUJD\n", "1|1|unix|/tmp/plugin1|grpc|QUJD\n"},
		{"1|1|unix|/tmp/plugin1|netrpc|\n", "1|1|unix|/tmp/plugin1|netrpc|\n"},
		{"hello from init\n", "hello from init\n"},
		{"", ""},
	} {
		if got := spliceLine(c.in, der); got != c.want {
			t.Errorf("spliceLine(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
