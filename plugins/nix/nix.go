package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	RawMsg *string           `json:"raw_msg"` // only errors have it
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

	mu       sync.Mutex
	builds   int      // derivations nix started building
	tail     []string // the last build log lines and errors, for failures
	errors   []string // nix's own error messages
	level0   []string // other messages nix printed at its error level
	lastLine time.Time
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
	inError := false
	for sc.Scan() {
		line := sc.Text()
		r.mu.Lock()
		r.lastLine = time.Now()
		r.mu.Unlock()
		if json && strings.HasPrefix(line, "@nix ") {
			r.event(line[5:])
			continue
		}
		r.mu.Lock()
		r.keep(line)
		// An error goes on over indented lines.
		if strings.HasPrefix(line, "error:") || (inError && strings.HasPrefix(line, " ")) {
			r.errors = append(r.errors, line)
			inError = true
		} else {
			inError = false
		}
		r.mu.Unlock()
		if strings.HasPrefix(line, "warning:") {
			r.log("warn", line)
		} else {
			r.log("info", line)
		}
	}
}

// silence is how long nix has printed nothing.
func (r *reporter) silence() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Since(r.lastLine)
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
		switch {
		// nix prints some warnings at its error level ("warning: the
		// group 'nixbld' specified in 'build-users-group' does not
		// exist"): they are not the error.
		case strings.HasPrefix(msg, "warning:"):
			r.log("warn", msg)
		case l.Level == 0 && (l.RawMsg != nil || strings.HasPrefix(msg, "error:")):
			r.errors = append(r.errors, msg)
			r.keep(msg)
			r.log("error", msg)
		case l.Level == 0:
			r.level0 = append(r.level0, msg)
			r.keep(msg)
			r.log("error", msg)
		case l.Level <= 3:
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

// failure explains a failed nix command: nix's own error (its error:
// lines, never a warning that came first), what to do about it when that
// is known, and for a failed build the last lines of its log.
func (r *reporter) failure(what string, err error, hint func(string) string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := strings.TrimSpace(strings.Join(r.errors, "\n"))
	if msg == "" {
		msg = strings.TrimSpace(strings.Join(r.level0, "\n"))
	}
	var silent *silentError
	if errors.As(err, &silent) {
		msg = strings.TrimSpace(err.Error() + "\n" + msg)
	}
	if msg == "" {
		msg = err.Error()
	}
	if h := hint(msg); h != "" {
		msg += "\n" + h
	}
	if r.builds > 0 && len(r.tail) > 0 {
		return fmt.Errorf("%s failed: %s\nlast lines of the build log:\n  %s", what, msg, strings.Join(r.tail, "\n  "))
	}
	return fmt.Errorf("%s failed: %s", what, msg)
}

// nixErrorText is the part of a nix command's plain stderr that is its
// error: from the first line starting with "error:" (warnings before it
// go), or all of it when there is no such line.
func nixErrorText(stderr []byte) string {
	text := strings.TrimSpace(stripANSI(string(stderr)))
	if strings.HasPrefix(text, "error:") {
		return text
	}
	if i := strings.Index(text, "\nerror:"); i >= 0 {
		return text[i+1:]
	}
	return text
}

// silentError is a nix command stopped because it printed nothing for
// longer than the plugin waits.
type silentError struct{ limit time.Duration }

func (e *silentError) Error() string {
	return fmt.Sprintf("nix printed nothing for %s and was stopped", e.limit)
}

// runNix runs nix with args, streaming its log to rep; stdout is
// returned. When nix prints nothing for silentLimit (nix's own
// --max-silent-time covers a builder; this covers nix itself: an
// evaluation or a daemon that hangs), it is stopped: the error is a
// *silentError.
func runNix(ctx context.Context, rep *reporter, jsonLog bool, silentLimit time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rep.mu.Lock()
	rep.lastLine = time.Now()
	rep.mu.Unlock()
	var silent atomic.Bool
	done := make(chan struct{})
	defer close(done)
	if silentLimit > 0 {
		go func() {
			tick := time.NewTicker(max(min(silentLimit/4, 10*time.Second), 10*time.Millisecond))
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					if rep.silence() >= silentLimit {
						silent.Store(true)
						cancel()
						return
					}
				}
			}
		}()
	}
	// A TMPDIR of its own, under which a local build's directory is made,
	// so that what the build leaves running is found and stopped
	// (leftovers.go).
	tmp, err := os.MkdirTemp("", "vmflow-nix-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "nix", args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	// Cancelled, nix gets SIGINT first and stops its builds itself; what
	// does not end within WaitDelay is killed, its pipes closed.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	// Through an io.Pipe, so that Wait (and its WaitDelay) ends the copy
	// even when nix never closes its stderr.
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		rep.consume(pr, jsonLog)
		_, _ = io.Copy(io.Discard, pr)
	}()
	err = cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	pw.Close()
	<-consumed
	// Only a command that started a build can leave one of its processes
	// running: where nix's log says none started, /proc is not scanned.
	if !jsonLog || rep.builds > 0 {
		if n := killBuildLeftovers(tmp); n > 0 && rep.log != nil {
			rep.log("warn", fmt.Sprintf("stopped %d process(es) the build left running", n))
		}
	}
	if silent.Load() {
		return stdout.Bytes(), &silentError{limit: silentLimit}
	}
	return stdout.Bytes(), err
}
