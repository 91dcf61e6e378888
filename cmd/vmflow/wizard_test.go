package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"

	"github.com/vmflow/vmflow/internal/testbin"
)

// The harness these tests use, a pseudo-terminal and a terminal emulator
// the real binary draws on, is in wizard_pty_test.go.

const allDefaults = `name=web
profiles=base
memory=2048
vcpus=2
var_size=10G
network=nat
ip=
`

// TestWizardAnswers walks the whole wizard the way `just create` asked:
// a name, profiles (multi-select), memory (a bad number first, re-asked
// with the reason), vcpus and network (selects), a default accepted with
// Enter, and a static IP. The task gets the answers, and the printed
// command line, run without a terminal, gives the task the same values.
func TestWizardAnswers(t *testing.T) {
	w := newWizardEnv(t)
	s := w.start(t, "create")
	s.ask("Name of the new VM?", "demo", keyEnter)
	s.waitScreen("Profiles to apply")
	s.waitScreen("default: base")
	s.send(keyDown, keySpace, keyEnter) // base stays selected, dev too
	s.ask("Memory in MiB?", keyCtrlU, "lots", keyEnter)
	s.waitScreen(`a number is required, got "lots"`)
	s.send(keyCtrlU, "4096", keyEnter)
	s.ask("How many vCPUs?", keyDown, keyEnter) // 2 (the default) → 4
	s.ask("Size of /var?", keyEnter)
	s.ask("Which network?", keyDown, keyEnter)
	s.ask("Static IP (empty: DHCP)?", "10.0.0.5", keyEnter)
	want := "name=demo\nprofiles=base,dev\nmemory=4096\nvcpus=4\nvar_size=10G\nnetwork=bridge\nip=10.0.0.5\n"
	w.ran(t, s, want)
	const line = "vmflow create --name=demo --profiles=base,dev --memory=4096 --vcpus=4 --var_size=10G --network=bridge --ip=10.0.0.5"
	if !strings.Contains(s.output(), "Running: "+line+"\r\n") {
		t.Fatalf("no %q in the output:\n%s", line, s.output())
	}

	// The printed command asks nothing and does the same.
	if err := os.Remove(w.out); err != nil {
		t.Fatal(err)
	}
	if code, out := w.runPlain(t, strings.Fields(line)[1:]...); code != 0 {
		t.Fatalf("rerun: exit code %d:\n%s", code, out)
	}
	if got := w.received(t); got != want {
		t.Fatalf("the rerun received:\n%s\nwant:\n%s", got, want)
	}
}

// TestWizardDefaults: params given on the command line are not asked for
// (here through `vmflow run`); Enter takes each preselected default.
func TestWizardDefaults(t *testing.T) {
	w := newWizardEnv(t)
	s := w.start(t, "run", "create", "web", "--memory", "2048")
	s.ask("Profiles to apply", keyEnter)
	s.ask("How many vCPUs?", keyEnter)
	s.ask("Size of /var?", keyEnter)
	s.ask("Which network?", keyEnter)
	s.ask("Static IP (empty: DHCP)?", keyEnter)
	w.ran(t, s, allDefaults)
	out := s.output()
	for _, q := range []string{"Name of the new VM?", "Memory in MiB?"} {
		if strings.Contains(out, q) {
			t.Errorf("asked %q though the command line gave it", q)
		}
	}
	if strings.Contains(out, "DNS servers?") {
		t.Errorf("asked for a param with ask = false")
	}
	const line = "Running: vmflow run create web --memory 2048 --profiles=base --vcpus=2 --var_size=10G --network=nat --ip=''\r\n"
	if !strings.Contains(out, line) {
		t.Errorf("no %q in the output:\n%s", line, out)
	}
}

// TestWizardAbort: Ctrl-C or Esc leaves the wizard with exit code 130,
// and the task does not run.
func TestWizardAbort(t *testing.T) {
	for _, tc := range []struct{ name, key string }{{"ctrl-c", keyCtrlC}, {"esc", keyEsc}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWizardEnv(t)
			s := w.start(t, "create")
			s.ask("Name of the new VM?", "demo", keyEnter)
			s.ask("Profiles to apply", tc.key)
			if code := s.exit(); code != exitInterrupted {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, exitInterrupted, s.output())
			}
			if got := w.received(t); got != "" {
				t.Fatalf("the task ran after the wizard was aborted:\n%s", got)
			}
			if out := s.output(); !strings.Contains(out, "wizard aborted; nothing ran") || strings.Contains(out, "Running:") {
				t.Errorf("output:\n%s", out)
			}
		})
	}
}

// TestRequiredParamPrompt: a task without wizard = true asks only for a
// missing required param, on a terminal.
func TestRequiredParamPrompt(t *testing.T) {
	w := newWizardEnv(t)
	s := w.start(t, "plain")
	s.ask("Plain name?", "solo", keyEnter)
	w.ran(t, s, "name=solo\nsize=1\n")
	if out := s.output(); !strings.Contains(out, "Running: vmflow plain --name=solo\r\n") {
		t.Errorf("output:\n%s", out)
	}
}

// TestNoQuestions: with --yes (before or after the task name) or without
// a terminal, vmflow asks nothing: a missing required param is the usual
// error (exit 2), and otherwise the task runs with the defaults.
func TestNoQuestions(t *testing.T) {
	const missing = "missing required param name"
	for _, args := range [][]string{
		{"--yes", "create"},
		{"create", "--yes"},
		{"-y", "run", "create"},
		{"plain", "-y"},
	} {
		t.Run("pty "+strings.Join(args, " "), func(t *testing.T) {
			w := newWizardEnv(t)
			s := w.start(t, args...)
			if code := s.exit(); code != exitUsage {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, exitUsage, s.output())
			}
			out := s.output()
			if !strings.Contains(out, missing) || asked(out) {
				t.Errorf("output:\n%s", out)
			}
		})
	}
	// Terminals the questions cannot be drawn on count as none: TERM=dumb
	// (the run's own output is plain there too), and a terminal without a
	// size, as a serial console may be.
	t.Run("pty TERM=dumb", func(t *testing.T) {
		w := newWizardEnv(t)
		w.env = append(w.env, "TERM=dumb")
		s := w.start(t, "create")
		if code := s.exit(); code != exitUsage || !strings.Contains(s.output(), missing) || asked(s.output()) {
			t.Fatalf("exit code %d, want %d; output:\n%s", code, exitUsage, s.output())
		}
	})
	t.Run("pty without a size", func(t *testing.T) {
		w := newWizardEnv(t)
		w.cols, w.rows = 0, 0
		s := w.start(t, "create")
		if code := s.exit(); code != exitUsage || !strings.Contains(s.output(), missing) || asked(s.output()) {
			t.Fatalf("exit code %d, want %d; output:\n%s", code, exitUsage, s.output())
		}
	})
	t.Run("pty create web --yes", func(t *testing.T) {
		w := newWizardEnv(t)
		s := w.start(t, "create", "web", "--yes")
		w.ran(t, s, allDefaults)
	})
	for _, args := range [][]string{{"create"}, {"plain"}, {"run", "create"}} {
		t.Run("no tty "+strings.Join(args, " "), func(t *testing.T) {
			w := newWizardEnv(t)
			code, out := w.runPlain(t, args...)
			if code != exitUsage || !strings.Contains(out, missing) {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, exitUsage, out)
			}
			if w.received(t) != "" {
				t.Fatal("the task ran")
			}
		})
	}
	t.Run("no tty create web", func(t *testing.T) {
		w := newWizardEnv(t)
		if code, out := w.runPlain(t, "create", "web"); code != 0 {
			t.Fatalf("exit code %d:\n%s", code, out)
		}
		if got := w.received(t); got != allDefaults {
			t.Fatalf("the task received:\n%s\nwant:\n%s", got, allDefaults)
		}
	})
	// A terminal on stdin alone is not enough: the questions would be
	// drawn where the output goes.
	t.Run("stdin tty, stdout pipe", func(t *testing.T) {
		w := newWizardEnv(t)
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		defer tty.Close()
		cmd := exec.Command(filepath.Join(binDir, "vmflow"), "create")
		cmd.Dir, cmd.Env, cmd.Stdin = w.dir, w.env, tty
		b, err := runWithTimeout(cmd)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || !strings.Contains(string(b), missing) {
			t.Fatalf("err %v; output:\n%s", err, b)
		}
	})
}

// TestWizardBadArgument: a value outside a param's options is an error
// before anything is asked.
func TestWizardBadArgument(t *testing.T) {
	w := newWizardEnv(t)
	s := w.start(t, "create", "--network", "host")
	if code := s.exit(); code != exitUsage {
		t.Fatalf("exit code %d, want %d; output:\n%s", code, exitUsage, s.output())
	}
	out := s.output()
	if !strings.Contains(out, `param network: "host" is not one of its options: "nat", "bridge"`) || asked(out) {
		t.Errorf("output:\n%s", out)
	}
}

// TestWizardAppliesDependsOnAnswer: a param whose applies depends on an
// earlier answer is asked only when it applies: no gateway question
// after an empty IP, one after an IP; the printed command line holds
// only what was asked.
func TestWizardAppliesDependsOnAnswer(t *testing.T) {
	t.Run("dhcp", func(t *testing.T) {
		w := newWizardEnv(t)
		s := w.start(t, "net")
		s.ask("Net profiles?", keyEnter)
		s.ask("Net IP (empty: DHCP)?", keyEnter)
		w.ran(t, s, "profiles=base\nip=\ngateway=\n")
		out := s.output()
		if strings.Contains(out, "Net gateway?") {
			t.Errorf("asked for a gateway without an IP:\n%s", out)
		}
		if !strings.Contains(out, "Running: vmflow net --profiles=base --ip=''\r\n") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("static", func(t *testing.T) {
		w := newWizardEnv(t)
		s := w.start(t, "net")
		s.ask("Net profiles?", keyEnter)
		s.ask("Net IP (empty: DHCP)?", "10.0.0.5", keyEnter)
		s.ask("Net gateway?", "10.0.0.1", keyEnter)
		w.ran(t, s, "profiles=base\nip=10.0.0.5\ngateway=10.0.0.1\n")
	})
}

// TestWizardAppliesFromVars: a param that does not apply with the
// variables and params given (profiles with --var image, gateway with
// --ip given empty) is not asked at all.
func TestWizardAppliesFromVars(t *testing.T) {
	w := newWizardEnv(t)
	s := w.start(t, "net", "--var", "image=disk.img", "--ip=")
	// Nothing to ask: the task runs at once.
	w.ran(t, s, "profiles=base\nip=\ngateway=\n")
	out := s.output()
	for _, q := range []string{"Net profiles?", "Net gateway?", "Net IP"} {
		if strings.Contains(out, q) {
			t.Errorf("asked %q:\n%s", q, out)
		}
	}
	// Given on the command line, a param is taken even where it does
	// not apply: applies only spares questions.
	s = w.start(t, "net", "--var", "image=disk.img", "--ip", "10.0.0.9")
	s.ask("Net gateway?", keyCtrlU, "10.0.0.1", keyEnter)
	w.ran(t, s, "profiles=base\nip=10.0.0.9\ngateway=10.0.0.1\n")
}

// TestWizardImageSource: the default lifecycle's create asks where the
// image comes from, then only what that source needs: an image file, not
// the profiles a nix build would take. Given --image, it asks neither.
// Run on the proxmox-stub, which runs no guest.
func TestWizardImageSource(t *testing.T) {
	w := newWizardEnv(t)
	w.dir = t.TempDir()
	img := filepath.Join(w.dir, "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	tasks := filepath.Join(testbin.Repo(), "tasks.hcl")
	rest := []string{"MiB of RAM", "virtual CPUs", "size of the /var disk", "nat or bridge:NAME", "a fixed address", "inbound TCP ports", "console login passwords"}

	s := w.start(t, "-f", tasks, "--var", "backend=proxmox-stub", "create")
	s.ask("Name of the new VM", "w1", keyEnter)
	s.ask("Where does its boot image come from?", keyDown, keyEnter) // nix, image, kernel
	s.ask("Image file", img, keyEnter)
	for _, q := range rest {
		s.ask(q, keyEnter)
	}
	if code := s.exit(); code != 0 {
		t.Fatalf("exit code %d; output:\n%s", code, s.output())
	}
	out := s.output()
	for _, q := range []string{"Profiles (core is always in)", "Kernel file", "Initrd file"} {
		if strings.Contains(out, q) {
			t.Errorf("asked %q, which an image file does not need:\n%s", q, out)
		}
	}
	if !strings.Contains(out, "--source=image --image="+img) {
		t.Errorf("the equivalent command line does not name the source and the image:\n%s", out)
	}
	_, status := w.runPlain(t, "-f", tasks, "--var", "backend=proxmox-stub", "status", "w1")
	if !strings.Contains(status, `image = "`+img+`"`) {
		t.Errorf("w1's record does not name the image file:\n%s", status)
	}

	// --image on the command line says where the image comes from.
	s = w.start(t, "-f", tasks, "--var", "backend=proxmox-stub", "create", "w2", "--image", img)
	s.ask(rest[0], keyEsc)
	if code := s.exit(); code != exitInterrupted {
		t.Fatalf("exit code %d, want %d; output:\n%s", code, exitInterrupted, s.output())
	}
	if out := s.output(); strings.Contains(out, "Where does its boot image come from?") || strings.Contains(out, "Image file") {
		t.Errorf("asked for the image source with --image given:\n%s", out)
	}

	// A nix build asks for the profiles.
	s = w.start(t, "-f", tasks, "--var", "backend=proxmox-stub", "create", "w3")
	s.ask("Where does its boot image come from?", keyEnter)
	s.ask("Profiles (core is always in)", keyEsc)
	if code := s.exit(); code != exitInterrupted {
		t.Fatalf("exit code %d, want %d; output:\n%s", code, exitInterrupted, s.output())
	}
}
