package protocol

import (
	"bufio"
	"encoding/base64"
	"io"
	"os"
	"strconv"
	"strings"

	goplugin "github.com/hashicorp/go-plugin"
)

// SpliceServerCert puts a plugin's server certificate into the handshake
// line that go-plugin's Serve prints. Serve prints that line with
// fmt.Printf on os.Stdout and, when given a TLS config of the plugin's
// own (ServeConfig.TLSProvider), leaves its certificate field (the 6th)
// empty; go-plugin's client reads a certificate there and trusts it as
// the server's. SpliceServerCert points os.Stdout at a pipe until that
// line has gone through, fills the field with der (base64, as AutoMTLS
// does), and passes everything on to the real stdout. Call it right
// before Serve, which then points os.Stdout at its own pipe.
func SpliceServerCert(der []byte) error {
	real := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	os.Stdout = w
	go func() {
		br := bufio.NewReader(r)
		line, err := br.ReadString('\n')
		_, _ = io.WriteString(real, spliceLine(line, der))
		if err == nil {
			// Whatever else reached the pipe before Serve took stdout
			// over; nothing, normally.
			_, _ = io.Copy(real, br)
		}
	}()
	return nil
}

// spliceLine fills the certificate field of a go-plugin handshake line
// ("1|1|unix|/tmp/plugin123|grpc|\n") when it is empty; any other line
// passes unchanged.
func spliceLine(line string, der []byte) string {
	body, nl := strings.CutSuffix(line, "\n")
	parts := strings.Split(body, "|")
	if len(parts) < 6 || parts[0] != strconv.Itoa(goplugin.CoreProtocolVersion) || parts[4] != "grpc" || parts[5] != "" {
		return line
	}
	parts[5] = base64.RawStdEncoding.EncodeToString(der)
	out := strings.Join(parts, "|")
	if nl {
		out += "\n"
	}
	return out
}
