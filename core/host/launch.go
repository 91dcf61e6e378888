package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/protocol/mtls"
)

// StartTimeout bounds how long a plugin may take to complete its handshake.
var StartTimeout = 20 * time.Second

// Process is a running plugin.
type Process struct {
	Path   string
	Schema *protocol.Schema
	protocol.Conn

	cmd      *exec.Cmd
	client   *goplugin.Client
	lifeline *os.File
	stderr   *tail
	killed   bool
	// hung says why the watchdog killed the plugin ("" when it did not).
	hung   string
	logger hclog.Logger
	// tls is the client side of the connection's mutual TLS.
	tls *tls.Config
	mu  sync.Mutex
}

// Start launches a plugin binary, completes the handshake and fetches its
// schema. logger receives the plugin's own log lines.
func Start(ctx context.Context, path string, logger hclog.Logger) (*Process, error) {
	return StartChecked(ctx, path, nil, logger)
}

// StartChecked is Start for a binary that must have the sha256 sum (nil:
// none): it is hashed once, through an open descriptor, right before it
// starts, and refused without being executed when the sum differs; what
// runs is that descriptor's file (see verifiedExec), so a file put in
// its place meanwhile is not run either.
func StartChecked(ctx context.Context, path string, sum []byte, logger hclog.Logger) (*Process, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cmd := exec.Command(path)
	var exe *os.File
	if sum != nil {
		var err error
		if exe, err = openVerified(path, sum); err != nil {
			return nil, err
		}
		defer exe.Close() // the plugin has its own copy once started
		if afterVerify != nil {
			afterVerify()
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{r} // fd 3 in the child
	level := "info"
	if logger.IsDebug() {
		level = "debug"
	}
	// Mutual TLS with certificates of vmflow's own making (ECDSA P-256; see
	// mtls.NewCert): the plugin gets this start's client certificate
	// and accepts no other client; go-plugin puts the certificate from the
	// plugin's handshake line into tlsConfig.RootCAs, the only server
	// certificate vmflow then accepts.
	cert, err := mtls.NewCert(false)
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	tlsConfig := mtls.ClientTLS(cert)
	cmd.Env = append(hostEnv(), protocol.LifelineEnv+"=3", protocol.LogLevelEnv+"="+level,
		mtls.ClientCertEnv+"="+mtls.CertPEM(cert))
	if exe != nil {
		verifiedExec(cmd, exe)
	}
	// Its own process group: a terminal's Ctrl-C reaches vmflow, which
	// cancels steps and runs undos through plugins that are still alive;
	// and Kill can take down anything the plugin started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	st := &tail{max: 64 << 10}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  protocol.Handshake,
		VersionedPlugins: protocol.PluginSets(nil),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		TLSConfig:        tlsConfig,
		Cmd:              cmd,
		SkipHostEnv:      true,
		StartTimeout:     StartTimeout,
		Stderr:           st,
		// What the plugin writes to os.Stdout and os.Stderr after its
		// handshake arrives over gRPC; keep it for crash reports and logs.
		SyncStderr: io.MultiWriter(st, logWriter(logger, "stderr")),
		SyncStdout: logWriter(logger, "stdout"),
		Logger:     logger,
	})
	p := &Process{Path: path, cmd: cmd, client: client, lifeline: w, stderr: st, logger: logger, tls: tlsConfig}
	rpc, err := client.Client()
	r.Close()
	if err != nil {
		p.killGroup()
		p.Kill()
		return nil, p.startError(err)
	}
	raw, err := rpc.Dispense(protocol.PluginKey)
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("plugin %s: %w", path, err)
	}
	p.Conn = raw.(protocol.Conn)
	// Describing itself is part of a plugin's start, and bounded with it:
	// a plugin that speaks the protocol without core/sdk could hang here.
	dctx, cancel := context.WithTimeout(ctx, StartTimeout)
	schema, err := p.Conn.Describe(dctx)
	cancel()
	if err != nil {
		p.Kill()
		if errors.Is(dctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("plugin %s did not describe itself within %s of its handshake", path, StartTimeout)
		}
		return nil, fmt.Errorf("plugin %s: describe: %w", path, p.CallError(err))
	}
	p.Schema = schema
	go p.watch(rpc)
	return p, nil
}

// afterVerify, when set (by tests), runs between a binary's check and
// its start.
var afterVerify func()

// openVerified opens a plugin binary and checks that what it reads
// through the descriptor has the sha256 sum; one that differs is closed
// and a ChecksumError returned.
func openVerified(path string, sum []byte) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", path, err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("plugin %s: %w", path, err)
	}
	if !bytes.Equal(h.Sum(nil), sum) {
		f.Close()
		return nil, &ChecksumError{Path: path}
	}
	return f, nil
}

// verifiedExec makes cmd execute the file open as exe, the one that was
// hashed, rather than whatever its path names when the process starts:
// exe becomes the child's fd 4 and the child execs /proc/self/fd/4. The
// SDK closes that descriptor when it starts (protocol.ExeFDEnv). Without
// /proc the path is executed (as go-plugin's SecureConfig did).
func verifiedExec(cmd *exec.Cmd, exe *os.File) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		return
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, exe)
	cmd.Path = fmt.Sprintf("/proc/self/fd/%d", 2+len(cmd.ExtraFiles))
	cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", protocol.ExeFDEnv, 2+len(cmd.ExtraFiles)))
}

// hostEnv is vmflow's environment minus anything that would confuse a
// plugin (a lifeline or client certificate meant for vmflow itself, when
// vmflow runs as a plugin's child).
func hostEnv() []string {
	env := os.Environ()
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, protocol.LifelineEnv+"=") && !strings.HasPrefix(kv, protocol.LogLevelEnv+"=") &&
			!strings.HasPrefix(kv, mtls.ClientCertEnv+"=") && !strings.HasPrefix(kv, protocol.ExeFDEnv+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// startError explains a failed handshake in the plugin author's terms.
func (p *Process) startError(err error) error {
	msg := err.Error()
	stderr := p.stderr.String()
	withStderr := func(s string) error {
		if stderr != "" {
			s += "\nits stderr ended with:\n" + indent(stderr)
		}
		return errors.New(s)
	}
	switch {
	case strings.Contains(msg, "exited before we could connect") || strings.Contains(msg, "Failed to read any lines from plugin's stdout"):
		return withStderr(fmt.Sprintf("plugin %s exited before its handshake (is it a vmflow plugin built with core/sdk?)", p.Path))
	case strings.Contains(msg, "Unrecognized remote plugin message"):
		line := msg
		if i := strings.Index(msg, "Unrecognized remote plugin message: "); i >= 0 {
			line = msg[i+len("Unrecognized remote plugin message: "):]
			if j := strings.Index(line, "\n"); j >= 0 {
				line = line[:j]
			}
		}
		return withStderr(fmt.Sprintf("plugin %s wrote to stdout before its handshake: %q\n"+
			"A plugin must print nothing on stdout before sdk.Serve; log to stderr instead.", p.Path, line))
	case strings.Contains(msg, "Incompatible API version"):
		return withStderr(fmt.Sprintf("plugin %s speaks another plugin protocol version than this vmflow (%d): %s", p.Path, protocol.Version, msg))
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return withStderr(fmt.Sprintf("plugin %s did not complete its handshake within %s", p.Path, StartTimeout))
	}
	return withStderr(fmt.Sprintf("plugin %s: %v", p.Path, err))
}

// CallError explains a failed call: when the plugin process is gone, say
// that it crashed and show its last stderr lines.
func (p *Process) CallError(err error) error {
	if err == nil {
		return nil
	}
	p.mu.Lock()
	killed, hung := p.killed, p.hung
	p.mu.Unlock()
	if killed {
		return err
	}
	if hung != "" {
		return fmt.Errorf("%s", hung)
	}
	// The process may take a moment to be reaped after the stream breaks.
	for i := 0; i < 20 && !p.client.Exited(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	p.mu.Lock()
	hung = p.hung
	p.mu.Unlock()
	if hung != "" {
		return fmt.Errorf("%s", hung)
	}
	if p.client.Exited() {
		msg := fmt.Sprintf("plugin %s crashed", p.Path)
		if s := p.stderr.String(); s != "" {
			msg += "; its stderr ended with:\n" + indent(s)
		}
		return errors.New(msg)
	}
	return err
}

// Kill stops the plugin (gracefully first, then by force) and cuts its
// lifeline.
func (p *Process) Kill() {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	p.client.Kill()
	p.killGroup()
	if p.lifeline != nil {
		p.lifeline.Close()
		p.lifeline = nil
	}
}

// killGroup kills whatever is left in the plugin's process group.
func (p *Process) killGroup() {
	if p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Exited reports whether the plugin process has exited.
func (p *Process) Exited() bool { return p.client.Exited() }

// Pid returns the plugin's process id, or 0.
func (p *Process) Pid() int {
	if rc := p.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

// logWriter logs each line written to it at debug level.
func logWriter(logger hclog.Logger, stream string) io.Writer {
	return logger.Named(stream).StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})
}

// tail keeps the last bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
		if i := bytes.IndexByte(t.buf, '\n'); i >= 0 {
			t.buf = t.buf[i+1:]
		}
	}
	return len(b), nil
}

// String returns the last lines, with hclog JSON lines shown as
// "[level] message".
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimRight(string(t.buf), "\n"), "\n")
	kept := lines[:0]
	for _, l := range lines {
		var entry struct {
			Level   string `json:"@level"`
			Message string `json:"@message"`
		}
		if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &entry) == nil && entry.Message != "" {
			if entry.Level == "debug" || entry.Level == "trace" {
				continue
			}
			l = "[" + entry.Level + "] " + entry.Message
		}
		kept = append(kept, l)
	}
	lines = kept
	// A Go crash prints the reason, then every goroutine's stack: the
	// reason and the crashing goroutine's first frames say the most.
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "panic: ") || strings.HasPrefix(lines[i], "fatal error: ") {
			lines = lines[i:min(len(lines), i+10)]
			break
		}
	}
	if len(lines) > 12 {
		lines = lines[len(lines)-12:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// Protocol is the plugin protocol version the handshake agreed on.
func (p *Process) Protocol() int { return p.client.NegotiatedVersion() }
