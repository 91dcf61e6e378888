package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// nixFeatures turns flakes on from the command line, so nothing depends on
// the user's nix.conf.
var nixFeatures = []string{"--extra-experimental-features", "nix-command flakes"}

// minVersion is the oldest Nix with flakes, `nix build --expr` and
// --log-format internal-json in the form used here.
var minVersion = [3]int{2, 4, 0}

// nixVersion runs `nix --version` and parses "nix (Nix) 2.8.0".
func nixVersion(ctx context.Context) ([3]int, string, error) {
	path, err := exec.LookPath("nix")
	if err != nil {
		return [3]int{}, "", errors.New("nix is not installed (on Debian or Ubuntu: apt-get install nix-bin)")
	}
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return [3]int{}, "", fmt.Errorf("%s --version: %v", path, err)
	}
	m := regexp.MustCompile(`(\d+)\.(\d+)(?:\.(\d+))?`).FindStringSubmatch(string(out))
	if m == nil {
		return [3]int{}, "", fmt.Errorf("cannot read the nix version from %q", strings.TrimSpace(string(out)))
	}
	var v [3]int
	for i := range 3 {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	return v, m[0], nil
}

func older(a, b [3]int) bool {
	for i := range 3 {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// logLine is one line of `nix --log-format internal-json` ("@nix {…}").
type logLine struct {
	Action string            `json:"action"`
	ID     uint64            `json:"id"`
	Level  int               `json:"level"`
	Type   int               `json:"type"`
	Text   string            `json:"text"`
	Msg    string            `json:"msg"`
	Fields []json.RawMessage `json:"fields"`
}

// Activity and result types of nix's internal-json log.
const (
	actBuild        = 105
	actBuilds       = 104
	resBuildLogLine = 101
	resProgress     = 105
)

// reporter turns nix's log into vmflow events.
type reporter struct {
	log      func(level, msg string)
	progress func(done, expected int64, label string)

	mu     sync.Mutex
	builds int      // derivations nix started building
	tail   []string // the last build log lines and errors, for failures
	errors []string // nix's own error messages
}

func (r *reporter) keep(line string) {
	r.tail = append(r.tail, line)
	if len(r.tail) > 20 {
		r.tail = r.tail[len(r.tail)-20:]
	}
}

// consume reads nix's stderr: internal-json lines when json is set,
// plain lines otherwise.
func (r *reporter) consume(rd io.Reader, json bool) {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if json && strings.HasPrefix(line, "@nix ") {
			r.event(line[5:])
			continue
		}
		r.mu.Lock()
		r.keep(line)
		if strings.HasPrefix(line, "error:") {
			r.errors = append(r.errors, line)
		}
		r.mu.Unlock()
		r.log("info", line)
	}
}

func (r *reporter) event(raw string) {
	var l logLine
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case l.Action == "msg":
		msg := stripANSI(l.Msg)
		if l.Level == 0 {
			r.errors = append(r.errors, msg)
			r.keep(msg)
			r.log("error", msg)
		} else if l.Level <= 3 {
			r.log("info", msg)
		}
	case l.Action == "start" && l.Type == actBuild:
		r.builds++
		r.log("info", stripANSI(l.Text))
	case l.Action == "result" && l.Type == resBuildLogLine && len(l.Fields) > 0:
		var line string
		if json.Unmarshal(l.Fields[0], &line) == nil {
			line = stripANSI(line)
			r.keep(line)
			r.log("debug", line)
		}
	case l.Action == "result" && l.Type == resProgress && len(l.Fields) >= 2:
		var done, expected int64
		_ = json.Unmarshal(l.Fields[0], &done)
		_ = json.Unmarshal(l.Fields[1], &expected)
		if expected > 0 {
			r.progress(done, expected, "building")
		}
	}
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

func stripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

// failure explains a failed nix command: nix's own error, and for a
// failed build the last lines of its log.
func (r *reporter) failure(what string, err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := strings.TrimSpace(strings.Join(r.errors, "\n"))
	if msg == "" {
		msg = err.Error()
	}
	if r.builds > 0 && len(r.tail) > 0 {
		return fmt.Errorf("%s failed: %s\nlast lines of the build log:\n  %s", what, msg, strings.Join(r.tail, "\n  "))
	}
	return fmt.Errorf("%s failed: %s", what, msg)
}

// run runs nix with args, streaming its log to rep; stdout is returned.
func runNix(ctx context.Context, rep *reporter, jsonLog bool, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "nix", args...)
	// Cancelled, nix gets SIGINT first and stops its builds itself.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	rep.consume(stderr, jsonLog)
	err = cmd.Wait()
	return stdout.Bytes(), err
}
