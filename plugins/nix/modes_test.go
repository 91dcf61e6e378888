package main

// The ways the plugin reaches the nix store (see detectStore), each with
// the real nix: as root without build users, as root with them, through
// the nix-daemon as root and as a normal user, and as a normal user
// without a daemon or without access to it. The normal-user cases run this
// test binary again as that user (see TestMain and runAsUser).
// scripts/nix-setup.sh (run by make test) makes the build users, the
// daemon, and the user vmflow-test.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/internal/testenv"
)

// childEnv, when set, makes this test binary run one plugin action as
// described in it (a childRequest, JSON) instead of the tests.
const childEnv = "VMFLOW_NIX_TEST_CHILD"

func TestMain(m *testing.M) {
	if req := os.Getenv(childEnv); req != "" {
		os.Exit(child(req))
	}
	os.Exit(m.Run())
}

type childRequest struct {
	State, WorkDir string
	Action         string
	Inputs         map[string]any
}

type childResult struct {
	Outputs map[string]any
	Logs    []string
	Error   string
}

// child runs one action in-process and prints a childResult.
func child(raw string) int {
	var req childRequest
	if err := json.Unmarshal([]byte(raw), &req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	res := childResult{}
	out, logs, err := runAction(req)
	res.Logs = logs
	if err != nil {
		res.Error = err.Error()
	} else {
		res.Outputs = out
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func runAction(req childRequest) (map[string]any, []string, error) {
	p, err := sdk.InProcess(newPlugin())
	if err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	schema, _ := p.Describe(ctx)
	if ds, err := p.Configure(ctx, cty.EmptyObjectVal, protocol.Env{StateDir: req.State, WorkDir: req.WorkDir}); err != nil || ds.HasErrors() {
		return nil, nil, errors.Join(err, ds.Err())
	}
	a, _ := schema.Action(req.Action)
	vals := map[string]cty.Value{}
	for k, v := range req.Inputs {
		at, _ := a.Inputs.Get(k)
		if l, ok := v.([]any); ok {
			s := make([]string, len(l))
			for i := range l {
				s[i] = l[i].(string)
			}
			v = s
		}
		cv, err := gocty.ToCtyValue(v, at.Type)
		if err != nil {
			return nil, nil, err
		}
		vals[k] = cv
	}
	in, err := a.Inputs.ApplyDefaults(cty.ObjectVal(vals))
	if err != nil {
		return nil, nil, err
	}
	var logs []string
	out, ds, err := p.Run(ctx, protocol.RunRequest{Action: req.Action, Inputs: in}, func(e protocol.Event) {
		if e.Message != "" {
			logs = append(logs, e.Message)
		}
	})
	if err = errJoin(err, ds.Err()); err != nil {
		return nil, logs, err
	}
	outputs := map[string]any{}
	for k, v := range out.AsValueMap() {
		switch {
		case v.IsNull():
		case v.Type() == cty.String:
			outputs[k] = v.AsString()
		case v.Type() == cty.Bool:
			outputs[k] = v.True()
		}
	}
	return outputs, logs, nil
}

// requireSetup fails (in CI) or skips when what scripts/nix-setup.sh
// makes is missing: root to run as, the build users, the daemon, the user.
func requireSetup(t *testing.T, needs ...string) {
	t.Helper()
	requireNix(t)
	var missing []string
	for _, n := range needs {
		switch n {
		case "root":
			if os.Geteuid() != 0 {
				missing = append(missing, "running as root")
			}
		case "nixbld":
			if !groupExists("nixbld") {
				missing = append(missing, "the group nixbld with build users")
			}
		case "daemon":
			_, socket := nixPaths()
			if checkDaemon(context.Background(), "daemon", socket) != nil {
				missing = append(missing, "a nix-daemon on "+socket)
			}
		default: // a user
			if _, err := user.Lookup(n); err != nil {
				missing = append(missing, "the user "+n)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "this test needs " + strings.Join(missing, ", ") + " (make test sets them up with scripts/nix-setup.sh)"
	testenv.Unavailable(t, "%s", msg)
}

// stamp makes the test flake's derivations new (VMFLOW_TEST_STAMP), so a
// build really builds.
func stamp(t testing.TB) string {
	s := fmt.Sprintf("%s-%d-%d", t.Name(), os.Getpid(), time.Now().UnixNano())
	t.Setenv("VMFLOW_TEST_STAMP", s)
	return s
}

// nixConf points nix (and so the plugin) at a nix.conf of these lines
// only, instead of /etc/nix/nix.conf and the user's.
func nixConf(t *testing.T, lines ...string) {
	dir := t.TempDir()
	file := filepath.Join(dir, "nix.conf")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NIX_CONF_DIR", dir)
	t.Setenv("NIX_USER_CONF_FILES", file)
	t.Setenv("NIX_REMOTE", "")
}

func logged(events []protocol.Event, want string) bool {
	for _, e := range events {
		if strings.Contains(e.Message, want) {
			return true
		}
	}
	return false
}

func builder(t *testing.T, storePath string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(storePath, "builder"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// (a) Root on a machine where nix was just installed: nix's default
// build-users-group names a group that does not exist, and every build
// used to fail with "the group 'nixbld' specified in 'build-users-group'
// does not exist". A nix.conf naming a group that does not exist stands
// for that here, whether or not this machine has nixbld by now.
func TestModeRootWithoutBuildUsers(t *testing.T) {
	requireSetup(t, "root")
	nixConf(t, "build-users-group = vmflow-test-no-such-group")
	stamp(t)
	h := newHarness(t)
	out, events, err := h.try("build", map[string]any{"profiles": []string{"dev"}, "flake": "flake", "extra_args": offline})
	if err != nil {
		t.Fatalf("build as root without build users: %v", err)
	}
	if !out.GetAttr("built").True() {
		t.Fatal("nothing was built; the test proves nothing")
	}
	if !logged(events, "building as root without build users (build-users-group vmflow-test-no-such-group does not exist") {
		t.Fatalf("the log does not say how nix builds: %v", events)
	}
	if b := builder(t, str(out, "store_path")); b != "root" {
		t.Fatalf("the builder ran as %s, want root", b)
	}
	// list_profiles reaches the store the same way.
	if _, _, err := h.try("list_profiles", map[string]any{"flake": "flake"}); err != nil {
		t.Fatal(err)
	}
}

// A build-users-group that exists is never overridden: root's builds run
// as its users, whether or not a daemon runs.
func TestModeRootWithBuildUsers(t *testing.T) {
	requireSetup(t, "root", "nixbld")
	nixConf(t, "build-users-group = nixbld")
	stamp(t)
	h := newHarness(t)
	out, events, err := h.try("build", map[string]any{"profiles": []string{"dev"}, "flake": "flake", "extra_args": offline})
	if err != nil {
		t.Fatal(err)
	}
	if !logged(events, "using the local store /nix/var/nix as root, building as the users of group nixbld") {
		t.Fatalf("log: %v", events)
	}
	if b := builder(t, str(out, "store_path")); !strings.HasPrefix(b, "nixbld") {
		t.Fatalf("the builder ran as %s, want a user of nixbld", b)
	}
}

// (b) Root with the store set to the daemon (NIX_REMOTE=daemon, as
// Debian's nix-setup-systemd sets for sessions): the daemon builds, as its
// build users.
func TestModeRootThroughDaemon(t *testing.T) {
	requireSetup(t, "root", "daemon")
	nixConf(t)
	t.Setenv("NIX_REMOTE", "daemon")
	stamp(t)
	h := newHarness(t)
	out, events, err := h.try("build", map[string]any{"profiles": []string{"dev"}, "flake": "flake", "extra_args": offline})
	if err != nil {
		t.Fatal(err)
	}
	if !logged(events, `nix: using the nix-daemon at /nix/var/nix/daemon-socket/socket (store "daemon" is configured)`) {
		t.Fatalf("log: %v", events)
	}
	if b := builder(t, str(out, "store_path")); !strings.HasPrefix(b, "nixbld") {
		t.Fatalf("the builder ran as %s, want the daemon's build user", b)
	}
}

// (b) A normal user, with the daemon running: the store is not writable,
// so the plugin builds through the daemon, and roots the image.
func TestModeUserThroughDaemon(t *testing.T) {
	requireSetup(t, "root", "daemon", "vmflow-test")
	st := stamp(t)
	res, state := runAsUser(t, "vmflow-test", "build", map[string]any{"profiles": []string{"dev"}, "flake": "flake", "extra_args": []string{"--option", "substituters", ""}},
		"VMFLOW_TEST_STAMP="+st)
	if res.Error != "" {
		t.Fatalf("build as vmflow-test through the daemon: %s\nlog:\n%s", res.Error, strings.Join(res.Logs, "\n"))
	}
	if !slices.Contains(res.Logs, "nix: using the nix-daemon at /nix/var/nix/daemon-socket/socket (the store /nix/var/nix is not writable by vmflow-test)") {
		t.Fatalf("log: %v", res.Logs)
	}
	if res.Outputs["built"] != true {
		t.Fatal("nothing was built; the test proves nothing")
	}
	storePath := res.Outputs["store_path"].(string)
	if b := builder(t, storePath); !strings.HasPrefix(b, "nixbld") {
		t.Fatalf("the builder ran as %s, want the daemon's build user", b)
	}
	root := res.Outputs["gc_root"].(string)
	if !strings.HasPrefix(root, filepath.Join(state, "nix", "gcroots")+"/") {
		t.Fatalf("gc root %s", root)
	}
	if target, err := os.Readlink(root); err != nil || target != storePath {
		t.Fatalf("gc root %s -> %s (%v)", root, target, err)
	}
	// The daemon knows the root: the image survives a collection.
	if out, err := exec.Command("nix-store", "--gc", "--print-roots").Output(); err != nil || !strings.Contains(string(out), root+" -> "+storePath) {
		t.Fatalf("nix does not list %s as a root: %v\n%s", root, err, out)
	}
}

// (c) A normal user without a daemon: the build fails before anything is
// built, saying why and what to do. NIX_DAEMON_SOCKET_PATH (read by nix
// and the plugin alike) names a socket no daemon serves.
func TestModeUserWithoutDaemon(t *testing.T) {
	requireSetup(t, "root", "vmflow-test")
	dir := t.TempDir()
	chmodUp(t, dir)
	socket := filepath.Join(dir, "socket")
	build := map[string]any{"profiles": []string{"dev"}, "flake": "flake", "extra_args": []string{"--option", "substituters", ""}}

	res, _ := runAsUser(t, "vmflow-test", "build", build, "NIX_DAEMON_SOCKET_PATH="+socket)
	want := "the nix store (/nix/var/nix) is not writable by vmflow-test and no nix-daemon is running (no socket " + socket + "). " +
		"Start the daemon as root (with systemd: systemctl start nix-daemon; without: nix-daemon &"
	if !strings.HasPrefix(res.Error, want) || !strings.Contains(res.Error, "or run vmflow as root") {
		t.Fatalf("without a daemon: %q", res.Error)
	}
	if logged(toEvents(res.Logs), "building") {
		t.Fatalf("something was built: %v", res.Logs)
	}

	// A socket left by a daemon that stopped.
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	os.Chmod(socket, 0o666)
	res, _ = runAsUser(t, "vmflow-test", "build", build, "NIX_DAEMON_SOCKET_PATH="+socket)
	if !strings.HasPrefix(res.Error, "the nix-daemon socket "+socket+" is there but no daemon answers on it (the daemon stopped): start it as root") {
		t.Fatalf("with a dead daemon's socket: %q", res.Error)
	}
}

// (c) A normal user the daemon's socket is closed to (Debian opens it to
// the group nix-users only): the message names the group to join.
func TestModeUserNotInDaemonGroup(t *testing.T) {
	requireSetup(t, "root", "daemon", "nobody")
	_, socket := nixPaths()
	st, err := os.Stat(filepath.Dir(socket))
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Gid)))
	if err != nil || st.Mode().Perm()&0o007 != 0 {
		t.Fatalf("%s is open to everyone (%v, %v): scripts/nix-setup.sh closes it to all but group nix-users", filepath.Dir(socket), st.Mode(), err)
	}
	res, _ := runAsUser(t, "nobody", "list_profiles", map[string]any{"flake": "flake"})
	want := fmt.Sprintf("nobody may not open the nix-daemon socket %s: %s is open to group %s only. Add nobody to it (as root: usermod -aG %s nobody) and log in again, or run vmflow as root",
		socket, filepath.Dir(socket), g.Name, g.Name)
	if res.Error != want {
		t.Fatalf("as nobody:\n got %q\nwant %q", res.Error, want)
	}
}

func toEvents(logs []string) []protocol.Event {
	ev := make([]protocol.Event, len(logs))
	for i, l := range logs {
		ev[i].Message = l
	}
	return ev
}

// chmodUp opens dir and its parents below the system temp dir to others,
// so that another user can reach what is in it.
func chmodUp(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// runAsUser runs one plugin action in a copy of this test binary as the
// given user (with the user's groups), in a state dir and home of its
// own, and returns what the action gave and the state dir.
func runAsUser(t *testing.T, name, action string, inputs map[string]any, env ...string) (childResult, string) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	var groups []uint32
	gids, _ := u.GroupIds()
	for _, g := range gids {
		n, _ := strconv.Atoi(g)
		groups = append(groups, uint32(n))
	}

	dir := t.TempDir()
	chmodUp(t, dir)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "nix.test")
	copyFile(t, exe, bin, 0o755)
	state, home := filepath.Join(dir, "state"), filepath.Join(dir, "home")
	for _, d := range []string{state, home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	wd, _ := os.Getwd()
	req, _ := json.Marshal(childRequest{State: state, WorkDir: filepath.Join(wd, "testdata"), Action: action, Inputs: inputs})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = wd
	cmd.Env = append([]string{
		childEnv + "=" + string(req),
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "USER=" + name, "LOGNAME=" + name,
	}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the plugin as %s: %v\n%s", name, err, stderr.Bytes())
	}
	var res childResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("the plugin as %s printed %q (%v)\n%s", name, out, err, stderr.Bytes())
	}
	return res, state
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
