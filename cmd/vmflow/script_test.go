package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/vmflow/vmflow/internal/testbin"
	"github.com/vmflow/vmflow/internal/testenv"
	"github.com/vmflow/vmflow/internal/testlibvirt"
	"github.com/vmflow/vmflow/internal/testssh"
)

// binDir holds the real binaries the scripts run: vmflow and the plugins,
// built once for the whole test binary.
var binDir string

func TestMain(m *testing.M) {
	bins := testbin.Plugins()
	bins["vmflow"] = "./cmd/vmflow"
	os.Exit(testbin.Main(m.Run, &binDir, bins))
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
			stateDir := filepath.Join(env.WorkDir, "state")
			env.Setenv("VMFLOW_STATE_DIR", stateDir)
			// A script that used the libvirt plugin leaves its storage pool
			// (one per state dir): remove it, and what is in it.
			env.Defer(func() {
				if conn, err := testlibvirt.Connect(); err == nil {
					_ = testlibvirt.RemovePool(conn, testlibvirt.PoolName(stateDir))
					conn.Disconnect()
				}
			})
			env.Setenv("HOME", env.WorkDir)
			env.Setenv("XDG_CACHE_HOME", filepath.Join(env.WorkDir, ".cache"))
			env.Setenv("BIN", binDir)
			env.Setenv("REPO", testbin.Repo())
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "libvirt":
				// In CI every test runs: a missing libvirtd is a failure
				// there, not a skip.
				return testenv.CI() || testlibvirt.Up(), nil
			case "sshd":
				// The OpenSSH server the remote scripts run (sshd); in CI a
				// missing one is a failure.
				return testenv.CI() || testssh.Missing() == "", nil
			case "nix":
				// The scripts that run the real nix; make test installs
				// it, and in CI a missing one is a failure.
				_, err := exec.LookPath("nix")
				return testenv.CI() || err == nil, nil
			case "root":
				// Running vmflow as another user (userdir) needs root; in
				// CI a test that needs it fails instead of skipping.
				return testenv.CI() || os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfor":    cmdWaitFor,
			"noplugins":  cmdNoPlugins,
			"hasplugins": cmdHasPlugins,
			"countlines": cmdCountLines,
			"guest":      cmdGuest,
			"exits":      cmdExits,
			"userdir":    cmdUserDir,
			"sshd":       cmdSshd,
			"tlsproxy":   cmdTLSProxy,
			"install":    cmdInstall,
		},
	})
}

// waitfor FILE TEXT [SECONDS]: wait until FILE contains TEXT.
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: waitfor file text [seconds]")
	}
	limit := 20 * time.Second
	if len(args) > 2 {
		n, err := strconv.Atoi(args[2])
		ts.Check(err)
		limit = time.Duration(n) * time.Second
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(ts.MkAbs(args[0])); err == nil && strings.Contains(string(b), args[1]) {
			if neg {
				ts.Fatalf("%s contains %q", args[0], args[1])
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !neg {
		b, _ := os.ReadFile(ts.MkAbs(args[0]))
		ts.Fatalf("timed out waiting for %q in %s; it holds:\n%s", args[1], args[0], b)
	}
}

// install SRC DST: copy SRC to DST (making DST's directory) as an
// executable, mode 0755. The copy is written by install(1), a process of
// its own: an executable this test binary wrote can fail to run with
// "text file busy" (TestScriptsRunNoExecutableTheyWrote says why).
func cmdInstall(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: install src dst")
	}
	out, err := exec.Command("install", "-D", "-m", "0755", ts.MkAbs(args[0]), ts.MkAbs(args[1])).CombinedOutput()
	if err != nil {
		ts.Fatalf("install %s %s: %v\n%s", args[0], args[1], err, out)
	}
}

// countlines FILE TEXT N: FILE has exactly N lines equal to TEXT.
func cmdCountLines(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: countlines file text n")
	}
	want, err := strconv.Atoi(args[2])
	ts.Check(err)
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() == args[1] {
			n++
		}
	}
	if (n == want) == neg {
		ts.Fatalf("%s has %d line(s) %q, want %d", args[0], n, args[1], want)
	}
}

// pluginProcs lists the pids of plugin processes started from this
// script's work directory.
func pluginProcs(ts *testscript.TestScript) []int {
	var pids []int
	for _, p := range testbin.PluginsOf(ts.Getenv("VMFLOW_STATE_DIR")) {
		pids = append(pids, p.PID)
	}
	return pids
}

// hasplugins: wait until at least one plugin process of this script runs.
func cmdHasPlugins(ts *testscript.TestScript, neg bool, args []string) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if len(pluginProcs(ts)) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("no plugin process of this script is running")
}

// noplugins: within five seconds, no plugin process of this script is
// left.
func cmdNoPlugins(ts *testscript.TestScript, neg bool, args []string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := pluginProcs(ts)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("plugin processes outlived vmflow: %v", pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// guest: build the Debian test guest (cached) and set $GUEST to its dir.
func cmdGuest(ts *testscript.TestScript, neg bool, args []string) {
	out := filepath.Join(testbin.Repo(), ".cache", "guest")
	b, err := exec.Command(filepath.Join(testbin.Repo(), "testdata", "guest", "build.sh"), out).CombinedOutput()
	if err != nil {
		ts.Fatalf("building the test guest: %v\n%s", err, b)
	}
	ts.Setenv("GUEST", out)
}

// exits CODE COMMAND ARGS…: run the command (like exec) and check its exit
// code; stdout and stderr are then checked as after exec.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: exits code command args...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got, ok := exitCode(err)
	if !ok {
		ts.Fatalf("%v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// exitCode is the exit code of a command that ran, given what running it
// returned (0 for no error); false when err says it did not run to its end.
func exitCode(err error) (int, bool) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, true
	case errors.As(err, &ee):
		return ee.ExitCode(), true
	}
	return 0, false
}

// testUser is the normal user, in the libvirt group, that vm_user.txtar
// runs vmflow as; scripts/test-user.sh (run by make test) makes it.
const testUser = "vmflow-test"

// userdir: make a directory the test user owns, to be its HOME (and so
// hold its state directory), and set $UDIR to it. The script's own work
// dir is root's and closed to others, as is the directory of the binaries
// under test, which this opens for reading. The directory, and the pool
// the libvirt plugin made for the state directory vmflow uses by default
// there, are removed when the script ends.
func cmdUserDir(ts *testscript.TestScript, neg bool, args []string) {
	u, err := user.Lookup(testUser)
	if err != nil {
		ts.Fatalf("%v: scripts/test-user.sh makes it (make test runs it, through scripts/services.sh)", err)
	}
	gids, err := u.GroupIds()
	ts.Check(err)
	lg, err := user.LookupGroup("libvirt")
	if err != nil || !slices.Contains(gids, lg.Gid) {
		ts.Fatalf("user %s is not in the libvirt group: scripts/test-user.sh puts it there", testUser)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "vmflow-user-")
	ts.Check(err)
	ts.Defer(func() {
		if conn, err := testlibvirt.Connect(); err == nil {
			_ = testlibvirt.RemovePool(conn, testlibvirt.PoolName(filepath.Join(dir, ".local", "state", "vmflow")))
			conn.Disconnect()
		}
		os.RemoveAll(dir)
	})
	ts.Check(os.Chown(dir, uid, gid))
	ts.Check(os.Chmod(dir, 0o700))
	ts.Check(os.Chmod(binDir, 0o755))
	ts.Setenv("UDIR", dir)
}

// sshd: run a real OpenSSH server on 127.0.0.1 for the rest of the script
// (internal/testssh: generated host and client keys, the client's
// authorized for the current user), and set $SSH_URI to this machine's
// libvirtd through it (qemu+ssh://USER@127.0.0.1:PORT/system?keyfile=…&
// known_hosts=…), $SSH_USER, $SSH_PORT, $SSH_KEY, $SSH_KNOWN_HOSTS (which
// holds the host key), $SSH_FINGERPRINT_RE (the host key's, quoted for
// stdout and stderr) and $SSH_LOG.
// tlsproxy: a TLS endpoint on 127.0.0.1 that checks client certificates
// and carries each connection to this machine's libvirtd, as a remote
// host's libvirtd listening for qemu+tls:// would (testlibvirt.TLSProxy):
// TLS_URI is qemu:///system through it, TLS_PKI the client's pkipath,
// TLS_LOG its log of the connections it accepted.
func cmdTLSProxy(ts *testscript.TestScript, neg bool, args []string) {
	p, err := testlibvirt.StartTLSProxy(ts.MkAbs("tlsproxy"))
	if err != nil {
		ts.Fatalf("starting the TLS endpoint: %v", err)
	}
	ts.Defer(p.Stop)
	ts.Setenv("TLS_URI", p.URI("/system"))
	ts.Setenv("TLS_PKI", p.PKI)
	ts.Setenv("TLS_PORT", p.Port)
	ts.Setenv("TLS_LOG", p.Log)
}

func cmdSshd(ts *testscript.TestScript, neg bool, args []string) {
	if why := testssh.Missing(); why != "" {
		ts.Fatalf("%s", why)
	}
	s, err := testssh.StartIn(ts.MkAbs("sshd"))
	if err != nil {
		ts.Fatalf("starting sshd: %v", err)
	}
	ts.Defer(s.Stop)
	ts.Setenv("SSH_URI", s.URI("/system"))
	ts.Setenv("SSH_USER", s.User)
	ts.Setenv("SSH_PORT", s.Port)
	ts.Setenv("SSH_KEY", s.KeyFile)
	ts.Setenv("SSH_KNOWN_HOSTS", s.KnownHosts)
	// As a regular expression: a fingerprint may hold '+' and '/'.
	ts.Setenv("SSH_FINGERPRINT_RE", regexp.QuoteMeta(s.HostKeyFingerprint))
	ts.Setenv("SSH_LOG", s.Log)
}
