// Package profiles_test checks the profiles flake with the real nix, the
// real nixpkgs lib of NixOS 25.05 and the real home-manager release-25.05
// (tests/inputs), on machines that cannot download nixpkgs: the
// flake's nixpkgs input is replaced by that lib plus a stand-in for
// lib.nixosSystem (tests/standin, see tests/README.md), its home-manager
// input by the real source. No image is built.
package profiles_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vmflow/vmflow/internal/testenv"
)

// need fails the test under CI and skips it elsewhere when a tool the test
// runs is missing. make test installs all of them (scripts/deps.sh).
func need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, "%s is not installed (make test installs it: scripts/deps.sh)", tool)
		}
	}
}

// needRoot fails the test under CI and skips it elsewhere when it does
// not run as root; what says why it needs root.
func needRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	testenv.Unavailable(t, "%s: needs root", what)
}

// inputsDir holds the pinned offline inputs: $VMFLOW_NIX_INPUTS, else
// tests/inputs, where the repository carries them (1.2 MB), so that a
// clone anywhere runs these tests with nothing fetched.
func inputsDir() string {
	if d := os.Getenv("VMFLOW_NIX_INPUTS"); d != "" {
		return d
	}
	d, _ := filepath.Abs(filepath.Join("tests", "inputs"))
	return d
}

const (
	libTarball = "nixpkgs-lib-25.05-07aef7a.tar.gz"
	hmTarball  = "home-manager-release-25.05-44831a7.tar.gz"
)

var (
	setupOnce sync.Once
	setupErr  error
	workDir   string // holds nixpkgs/ (lib + stand-in) and home-manager/
	setupSkip string
)

// setupInputs unpacks the two tarballs (after checking them against
// SHA256SUMS) and assembles the stand-in nixpkgs flake, once per run.
func setupInputs(t testing.TB) (nixpkgs, homeManager string) {
	t.Helper()
	need(t, "nix", "tar", "sha256sum")
	setupOnce.Do(func() {
		dir := inputsDir()
		if _, err := os.Stat(filepath.Join(dir, libTarball)); err != nil {
			setupSkip = fmt.Sprintf("the offline nix inputs are not in %s (set VMFLOW_NIX_INPUTS)", dir)
			return
		}
		workDir, setupErr = os.MkdirTemp("", "vmflow-profiles-test-")
		if setupErr != nil {
			return
		}
		run := func(dir string, name string, args ...string) {
			if setupErr != nil {
				return
			}
			cmd := exec.Command(name, args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				setupErr = fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
			}
		}
		run(dir, "sha256sum", "--quiet", "-c", "SHA256SUMS")
		run(workDir, "tar", "xzf", filepath.Join(dir, libTarball))
		run(workDir, "tar", "xzf", filepath.Join(dir, hmTarball))
		standin, _ := filepath.Abs(filepath.Join("tests", "standin"))
		run(workDir, "cp", "-r", standin+"/.", filepath.Join(workDir, "nixpkgs-lib"))
	})
	if setupSkip != "" {
		testenv.Unavailable(t, "%s", setupSkip)
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return filepath.Join(workDir, "nixpkgs-lib"), filepath.Join(workDir, "home-manager")
}

func TestMain(m *testing.M) {
	if helper := os.Getenv(helperEnv); helper != "" {
		os.Exit(runHelper(helper))
	}
	code := m.Run()
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	os.Exit(code)
}

// evalFlake evaluates the profiles flake's output attr, applies fn (a Nix
// function, may be "") and returns the JSON result, or the error text.
func evalFlake(t testing.TB, attr, fn string) (string, error) {
	t.Helper()
	nixpkgs, hm := setupInputs(t)
	flake, _ := filepath.Abs(".")
	args := []string{
		"--extra-experimental-features", "nix-command flakes",
		"--option", "substituters", "",
		"eval", "--json", "--no-write-lock-file",
		"--override-input", "nixpkgs", "path:" + nixpkgs,
		"--override-input", "home-manager", "path:" + hm,
		"path:" + flake + "#" + attr,
	}
	if fn != "" {
		args = append(args, "--apply", fn)
	}
	cmd := exec.Command("nix", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v: %s", err, errorText(stderr.String()))
	}
	return stdout.String(), nil
}

// errorText drops nix's notes about the lock file and inputs.
func errorText(s string) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "warning: not writing modified lock file") ||
			strings.HasPrefix(line, "• Added input") || strings.HasPrefix(line, "    follows") ||
			strings.HasPrefix(line, "    'path:") || line == "" {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

// eval is evalFlake that must succeed, decoding the result into v.
func eval(t testing.TB, attr, fn string, v any) {
	t.Helper()
	out, err := evalFlake(t, attr, fn)
	if err != nil {
		t.Fatalf("evaluating %s (%s): %v", attr, fn, err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s: %v: %s", attr, err, out)
	}
}

// evalFails is evalFlake that must fail with an error holding every want.
func evalFails(t testing.TB, attr, fn string, want ...string) {
	t.Helper()
	out, err := evalFlake(t, attr, fn)
	if err == nil {
		t.Fatalf("evaluating %s (%s) succeeded with %s; want an error with %q", attr, fn, out, want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("evaluating %s (%s): the error lacks %q:\n%v", attr, fn, w, err)
		}
	}
}

// image is a Nix function applying mkImage to args (a Nix attribute set
// body) and then body to the result, bound to `img`; the flake's `lib` is
// the argument, and `cfg` is the evaluated configuration.
func image(args, body string) string {
	return fmt.Sprintf("lib: let img = lib.mkImage { %s }; cfg = img.passthru.nixos.config; in %s", args, body)
}
