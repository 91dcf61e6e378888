package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
	"github.com/creack/pty"
)

// The wizard's tests run the real vmflow binary on a pseudo-terminal and
// type at it. A terminal emulator (x/vt) keeps the screen the program
// draws, so a test waits until a question is on the screen before it
// answers, and never sleeps to synchronise. The tasks in
// testdata/wizard/tasks.hcl write the params they received to
// $WIZARD_OUT, so the tests check what the task got, not what was shown.

const (
	ptyCols, ptyRows = 200, 50
	// waitLimit bounds every wait for the screen or for the process.
	waitLimit = 20 * time.Second
)

// Keys as a terminal sends them.
const (
	keyEnter = "\r"
	keyDown  = "\x1b[B"
	keySpace = " "
	keyCtrlC = "\x03"
	keyCtrlU = "\x15" // clears the text before the cursor
	keyEsc   = "\x1b"
)

// session is one vmflow process on a pseudo-terminal.
type session struct {
	t    *testing.T
	pty  *os.File
	term *vt.SafeEmulator
	cmd  *exec.Cmd

	mu      sync.Mutex
	raw     bytes.Buffer  // everything the program wrote, as written
	changed chan struct{} // signalled after each write to term
	drained chan struct{} // closed when all the output has been read
	exited  chan struct{} // closed when the process has exited
	waitErr error
}

// wizardEnv is a fresh environment for one vmflow run: its own state
// directory and output file.
type wizardEnv struct {
	dir, out   string
	env        []string
	cols, rows uint16 // the pty's size
}

func newWizardEnv(t *testing.T) *wizardEnv {
	t.Helper()
	dir, err := filepath.Abs("testdata/wizard")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out.txt")
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + tmp,
		"XDG_CACHE_HOME=" + filepath.Join(tmp, "cache"),
		"VMFLOW_STATE_DIR=" + filepath.Join(tmp, "state"),
		"WIZARD_OUT=" + out,
		"TERM=xterm-256color",
		"LANG=C.UTF-8",
	}
	return &wizardEnv{dir: dir, out: out, env: env, cols: ptyCols, rows: ptyRows}
}

// received is what the task wrote to $WIZARD_OUT; "" when it did not run.
func (w *wizardEnv) received(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(w.out)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ran waits for the session's vmflow to exit 0, and checks that the task
// received want.
func (w *wizardEnv) ran(t *testing.T, s *session, want string) {
	t.Helper()
	if code := s.exit(); code != 0 {
		t.Fatalf("exit code %d; output:\n%s", code, s.output())
	}
	if got := w.received(t); got != want {
		t.Fatalf("the task received:\n%s\nwant:\n%s", got, want)
	}
}

// start runs vmflow ARGS… with stdin, stdout and stderr on a new
// pseudo-terminal.
func (w *wizardEnv) start(t *testing.T, args ...string) *session {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "vmflow"), args...)
	cmd.Dir, cmd.Env = w.dir, w.env
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: w.cols, Rows: w.rows})
	if err != nil {
		t.Fatalf("starting vmflow on a pty: %v", err)
	}
	s := &session{
		t: t, pty: f, cmd: cmd, term: vt.NewSafeEmulator(ptyCols, ptyRows),
		changed: make(chan struct{}, 1), drained: make(chan struct{}), exited: make(chan struct{}),
	}
	// The program's output goes to the emulator; the emulator's answers
	// to the program's queries (cursor position, colours) go back.
	go func() {
		defer close(s.drained)
		buf := make([]byte, 32*1024)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				s.mu.Lock()
				s.raw.Write(buf[:n])
				s.mu.Unlock()
				_, _ = s.term.Write(buf[:n])
				select {
				case s.changed <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return // EIO once the program has exited
			}
		}
	}()
	go func() { _, _ = io.Copy(f, s.term) }()
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = cmd.Process.Kill()
			<-s.exited
		}
		_ = s.term.Close()
		_ = f.Close()
	})
	return s
}

// screen is the text on the emulated screen.
func (s *session) screen() string {
	return ansi.Strip(s.term.Render())
}

// output is everything the program wrote, without escape sequences.
func (s *session) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ansi.Strip(s.raw.String())
}

// waitScreen waits until the screen shows text.
func (s *session) waitScreen(text string) {
	s.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		if strings.Contains(s.screen(), text) {
			return
		}
		select {
		case <-s.changed:
		case <-s.exited:
			// The last output may still be on its way to the emulator.
			select {
			case <-s.drained:
			case <-deadline.C:
			}
			if strings.Contains(s.screen(), text) {
				return
			}
			s.t.Fatalf("vmflow exited (%v) before showing %q; the screen:\n%s\nits output:\n%s", s.waitErr, text, s.screen(), s.output())
		case <-deadline.C:
			s.t.Fatalf("timed out waiting for %q; the screen:\n%s", text, s.screen())
		}
	}
}

// ask waits for a question, then types the keys that answer it.
func (s *session) ask(question string, keys ...string) {
	s.t.Helper()
	s.waitScreen(question)
	s.send(keys...)
}

func (s *session) send(keys ...string) {
	s.t.Helper()
	for _, k := range keys {
		if _, err := s.pty.Write([]byte(k)); err != nil {
			s.t.Fatalf("typing %q: %v", k, err)
		}
	}
}

// exit waits for the process and the last of its output, and returns
// its exit code.
func (s *session) exit() int {
	s.t.Helper()
	timeout := time.After(waitLimit)
	select {
	case <-s.exited:
	case <-timeout:
		s.t.Fatalf("vmflow did not exit; the screen:\n%s", s.screen())
	}
	select {
	case <-s.drained:
	case <-timeout:
		s.t.Fatalf("the pty stayed open after vmflow exited; the screen:\n%s", s.screen())
	}
	code, ok := exitCode(s.waitErr)
	if !ok {
		s.t.Fatalf("waiting for vmflow: %v", s.waitErr)
	}
	return code
}

// runPlain runs vmflow without a terminal: stdin, stdout and stderr are
// pipes.
func (w *wizardEnv) runPlain(t *testing.T, args ...string) (code int, out string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "vmflow"), args...)
	cmd.Dir, cmd.Env = w.dir, w.env
	cmd.Stdin = strings.NewReader("demo\n") // an answer nobody may read
	b, err := runWithTimeout(cmd)
	code, ok := exitCode(err)
	if !ok {
		t.Fatalf("vmflow %v: %v", args, err)
	}
	return code, string(b)
}

func runWithTimeout(cmd *exec.Cmd) ([]byte, error) {
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.Bytes(), err
	case <-time.After(waitLimit):
		_ = cmd.Process.Kill()
		<-done
		return buf.Bytes(), errors.New("timed out")
	}
}

// asked reports whether output shows any question of the test tasks.
func asked(output string) bool {
	for _, q := range []string{"Name of the new VM?", "Profiles to apply", "Memory in MiB?", "Plain name?"} {
		if strings.Contains(output, q) {
			return true
		}
	}
	return false
}
