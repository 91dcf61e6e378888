package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/internal/testbin"
	"github.com/vmflow/vmflow/internal/testenv"
)

// requireNix skips without nix, except in CI, where every test must run.
func requireNix(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("nix"); err == nil {
		return
	}
	testenv.Unavailable(t, "nix is not installed (make test installs nix-bin)")
}

// offline keeps nix from asking binary caches: these machines reach none.
// The test flake builds with the host's /bin/sh and qemu-img, so only
// without nix's sandbox (on by default): root's nix takes that from the
// command line; a daemon takes it from its own configuration only
// (scripts/nix-setup.sh starts it so).
var offline = []string{"--option", "substituters", "", "--option", "sandbox", "false"}

type harness struct {
	t      testing.TB
	p      protocol.Conn
	schema *protocol.Schema
	state  string
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessConfig(t, nil)
}

// newHarnessConfig configures the plugin with the given config attributes.
func newHarnessConfig(t testing.TB, config map[string]cty.Value) *harness {
	t.Helper()
	requireNix(t)
	p, err := sdk.InProcess(newPlugin())
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	h := &harness{t: t, p: p, state: t.TempDir()}
	h.schema, _ = p.Describe(context.Background())
	// The work dir is testdata, as if the task file lived there.
	cfg := cty.EmptyObjectVal
	if config != nil {
		cfg = cty.ObjectVal(config)
	}
	if ds, err := p.Configure(context.Background(), cfg, protocol.Env{StateDir: h.state, WorkDir: filepath.Join(wd, "testdata")}); err != nil || ds.HasErrors() {
		t.Fatal(err, ds.Err())
	}
	return h
}

func (h *harness) try(action string, args map[string]any) (cty.Value, []protocol.Event, error) {
	h.t.Helper()
	a, _ := h.schema.Action(action)
	vals := map[string]cty.Value{}
	for k, v := range args {
		at, _ := a.Inputs.Get(k)
		cv, err := gocty.ToCtyValue(v, at.Type)
		if err != nil {
			h.t.Fatal(err)
		}
		vals[k] = cv
	}
	in, err := a.Inputs.ApplyDefaults(cty.ObjectVal(vals))
	if err != nil {
		h.t.Fatal(err)
	}
	if ds, err := h.p.Validate(context.Background(), action, in); err != nil || ds.HasErrors() {
		return cty.NilVal, nil, errJoin(err, ds.Err())
	}
	var events []protocol.Event
	out, ds, err := h.p.Run(context.Background(), protocol.RunRequest{Action: action, Inputs: in}, func(e protocol.Event) { events = append(events, e) })
	return out, events, errJoin(err, ds.Err())
}

func errJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (h *harness) build(profiles ...string) cty.Value {
	h.t.Helper()
	out, _, err := h.try("build", map[string]any{"profiles": profiles, "flake": "flake", "extra_args": offline})
	if err != nil {
		h.t.Fatalf("build %v: %v", profiles, err)
	}
	return out
}

func str(v cty.Value, k string) string { return v.GetAttr(k).AsString() }

func TestBuildCacheHitAndGCRoot(t *testing.T) {
	h := newHarness(t)
	// Derivations of this test only: the first build really builds, and
	// the unrooted image below is no other test's rooted one (vm_nix,
	// running beside this package, roots core+docker).
	stamp(t)
	first := h.build("nvidia", "dev", "dev")
	if !first.GetAttr("built").True() {
		t.Fatal("the first build was a cache hit")
	}
	var profiles []string
	_ = gocty.FromCtyValue(first.GetAttr("profiles"), &profiles)
	if strings.Join(profiles, ",") != "core,dev,docker,nvidia" {
		t.Fatalf("normalised profiles = %v", profiles)
	}
	image := str(first, "image")
	if !strings.HasPrefix(image, "/nix/store/") || !strings.HasSuffix(image, ".qcow2") {
		t.Fatalf("image = %s", image)
	}
	if b, _ := os.ReadFile(filepath.Join(str(first, "store_path"), "profiles")); strings.TrimSpace(string(b)) != "core dev docker nvidia" {
		t.Fatalf("the image was built for %q", b)
	}
	if !strings.HasPrefix(str(first, "content_id"), "sha256-") {
		t.Fatalf("content id %q", str(first, "content_id"))
	}
	// The system the image boots: what its guest sees as /run/current-system.
	if sys := str(first, "system"); !strings.HasPrefix(sys, "/nix/store/") || !strings.HasSuffix(sys, "-vmflow-test-system-core-dev-docker-nvidia") {
		t.Fatalf("system = %q", sys)
	} else if _, err := os.Stat(filepath.Join(sys, "init")); err != nil {
		t.Fatalf("system %s: %v", sys, err)
	}

	// The same set, asked for differently: a cache hit on the same image.
	second := h.build("docker", "nvidia", "core", "dev")
	if second.GetAttr("built").True() || str(second, "store_path") != str(first, "store_path") || str(second, "content_id") != str(first, "content_id") {
		t.Fatalf("second build: built=%v %s vs %s", second.GetAttr("built").True(), str(second, "store_path"), str(first, "store_path"))
	}

	// The GC root keeps the image through a garbage collection, while an
	// image nothing roots is collected.
	root := str(first, "gc_root")
	if target, err := os.Readlink(root); err != nil || target != str(first, "store_path") {
		t.Fatalf("gc root %s -> %s (%v)", root, target, err)
	}
	unrooted := nixBuildUnrooted(t, "core", "docker")
	if out, err := exec.Command("nix-collect-garbage", storeArgs(t)...).CombinedOutput(); err != nil {
		t.Fatalf("nix-collect-garbage: %v\n%s", err, out)
	}
	if _, err := os.Stat(image); err != nil {
		t.Fatalf("the rooted image did not survive nix-collect-garbage: %v", err)
	}
	if _, err := os.Stat(unrooted); err == nil {
		t.Fatalf("an unrooted image survived nix-collect-garbage; the check above proves nothing")
	}

	// Releasing the root lets the next collection take the image.
	if out, _, err := h.try("release", map[string]any{"gc_root": root}); err != nil || !out.GetAttr("released").True() {
		t.Fatalf("release: %v", err)
	}
	exec.Command("nix-collect-garbage", storeArgs(t)...).Run()
	if _, err := os.Stat(image); err == nil {
		t.Fatal("the image outlived its released root")
	}
}

// storeArgs are the options the plugin gives nix on this machine (see
// detectStore), for the nix commands the tests run themselves.
func storeArgs(t *testing.T) []string {
	t.Helper()
	mode, err := detectStore(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return mode.Args
}

// nixBuildUnrooted builds an image with nix directly and no GC root.
func nixBuildUnrooted(t *testing.T, profiles ...string) string {
	t.Helper()
	wd, _ := os.Getwd()
	expr := `(builtins.getFlake "path:` + filepath.Join(wd, "testdata", "flake") + `").lib.mkImage { profiles = [ "` + strings.Join(profiles, `" "`) + `" ]; }`
	args := append(append(append([]string{}, nixFeatures...), "build", "--impure", "--no-link", "--json", "--expr", expr), offline...)
	out, err := exec.Command("nix", append(args, storeArgs(t)...)...).Output()
	if err != nil {
		t.Fatalf("nix build: %v", err)
	}
	i := strings.Index(string(out), `"out":"`)
	if i < 0 {
		t.Fatalf("nix build printed %s", out)
	}
	rest := string(out)[i+len(`"out":"`):]
	return rest[:strings.Index(rest, `"`)]
}

func TestBuildErrors(t *testing.T) {
	h := newHarness(t)
	_, _, err := h.try("build", map[string]any{"profiles": []string{"dev", "gaming"}, "flake": "flake", "extra_args": offline})
	if err == nil || !strings.Contains(err.Error(), `unknown profile "gaming"; the known profiles are: broken, core, dev, docker, nvidia`) {
		t.Fatalf("unknown profile: %v", err)
	}
	_, _, err = h.try("build", map[string]any{"profiles": []string{"broken"}, "flake": "flake", "extra_args": offline})
	if err == nil || !strings.Contains(err.Error(), "building the image failed") || !strings.Contains(err.Error(), "profile broken cannot be built") {
		t.Fatalf("broken derivation: %v", err)
	}
	_, _, err = h.try("build", map[string]any{"flake": "evalerror", "extra_args": offline})
	if err == nil || !strings.Contains(err.Error(), "evaluating the image failed") || !strings.Contains(err.Error(), "this test flake refuses to evaluate core") {
		t.Fatalf("evaluation error: %v", err)
	}
	_, _, err = h.try("build", map[string]any{"flake": "nowhere"})
	if err == nil || !strings.Contains(err.Error(), "no flake.nix in") {
		t.Fatalf("missing flake: %v", err)
	}
	_, _, err = h.try("release", map[string]any{"gc_root": "/etc/passwd"})
	if err == nil || !strings.Contains(err.Error(), "is not one of vmflow's GC roots") {
		t.Fatalf("release outside the roots: %v", err)
	}
}

func TestListProfiles(t *testing.T) {
	h := newHarness(t)
	out, _, err := h.try("list_profiles", map[string]any{"flake": "flake"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	_ = gocty.FromCtyValue(out.GetAttr("profiles"), &names)
	if strings.Join(names, ",") != "broken,core,dev,docker,nvidia" {
		t.Fatalf("profiles %v", names)
	}
	var req map[string][]string
	_ = gocty.FromCtyValue(out.GetAttr("requires"), &req)
	if strings.Join(req["nvidia"], ",") != "docker" {
		t.Fatalf("requires %v", req)
	}
}

func TestVersionCheck(t *testing.T) {
	if !older([3]int{2, 3, 9}, minVersion) || older([3]int{2, 8, 0}, minVersion) || older(minVersion, minVersion) {
		t.Fatal("version comparison")
	}
	t.Setenv("PATH", t.TempDir())
	if err := checkNix(context.Background()); err == nil || !strings.Contains(err.Error(), "nix is not installed") {
		t.Fatalf("without nix: %v", err)
	}
}

// BenchmarkBuild compares a first build of an image with a cache hit on
// it: the store path is deleted before each "first" iteration.
func BenchmarkBuild(b *testing.B) {
	h := newHarness(b)
	stamp(b)
	build := func() cty.Value {
		out, _, err := h.try("build", map[string]any{"profiles": []string{"dev"}, "flake": "flake", "extra_args": offline})
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	out := build()
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			os.Remove(str(out, "gc_root"))
			if msg, err := exec.Command("nix-store", "--delete", str(out, "store_path")).CombinedOutput(); err != nil {
				b.Fatalf("nix-store --delete: %v: %s", err, msg)
			}
			b.StartTimer()
			if !build().GetAttr("built").True() {
				b.Fatal("not built")
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if build().GetAttr("built").True() {
				b.Fatal("built again")
			}
		}
	})
}

// A build-users-group the build's arguments name is kept even when it does
// not exist; nix then fails, and the message is nix's error, not the
// warnings nix prints at its error level before it ("warning: the group
// … does not exist", which a summary once quoted instead of the error).
func TestBuildErrorIsNixsErrorNotItsWarning(t *testing.T) {
	h := newHarness(t)
	stamp(t)
	args := append([]string{"--option", "build-users-group", "vmflow-test-no-such-group"}, offline...)
	_, events, err := h.try("build", map[string]any{"profiles": []string{"dev"}, "flake": "flake", "extra_args": args})
	if err == nil {
		t.Fatal("a build with a build-users-group that does not exist succeeded")
	}
	msg := err.Error()
	want := "failed: error: the group 'vmflow-test-no-such-group' specified in 'build-users-group' does not exist\n"
	if !strings.Contains(msg, want) || strings.Contains(msg, "warning:") {
		t.Fatalf("the message is not nix's error:\n%s", msg)
	}
	if !strings.Contains(msg, "Create the group with build users") {
		t.Fatalf("the message does not say what to do:\n%s", msg)
	}
	if !logged(events, "warning: the group 'vmflow-test-no-such-group' specified in 'build-users-group' does not exist") {
		t.Fatalf("nix's warning is not in the log: %v", events)
	}
}

// silentBuild builds the flake "silent" (one line, then nothing for ten
// minutes) with max_silent_time 2s and these extra_args, which must fail;
// it returns the error's message, how long the build took, and its stamp.
func silentBuild(t *testing.T, extraArgs []string) (msg string, took time.Duration, st string) {
	t.Helper()
	h := newHarnessConfig(t, map[string]cty.Value{"max_silent_time": cty.StringVal("2s")})
	st = stamp(t)
	start := time.Now()
	_, _, err := h.try("build", map[string]any{"flake": "silent", "extra_args": extraArgs})
	took = time.Since(start)
	if err == nil {
		t.Fatal("a silent build succeeded")
	}
	return err.Error(), took, st
}

// A build that prints nothing for max_silent_time fails (nix's
// --max-silent-time) soon after, with nix's error and what to change.
func TestSilentBuildFails(t *testing.T) {
	msg, took, st := silentBuild(t, offline)
	if !strings.HasPrefix(msg, "building the image failed: error: building of '/nix/store/") || !strings.Contains(msg, "timed out after 2 seconds of silence") {
		t.Fatalf("the message is not nix's timeout:\n%s", msg)
	}
	if !strings.Contains(msg, "max_silent_time, now 2s") {
		t.Fatalf("the message does not say what to change:\n%s", msg)
	}
	if took > 30*time.Second {
		t.Fatalf("the silent build failed only after %s", took)
	}
	noSleeper(t, st)
}

// When nix's own limit is off (--max-silent-time 0 in the build's
// arguments), the plugin still stops nix once it has printed nothing for
// a little longer than max_silent_time.
func TestSilentNixIsStopped(t *testing.T) {
	msg, took, st := silentBuild(t, append([]string{"--max-silent-time", "0"}, offline...))
	if !strings.HasPrefix(msg, "building the image failed: nix printed nothing for 4s and was stopped") || !strings.Contains(msg, "raise max_silent_time") {
		t.Fatalf("message:\n%s", msg)
	}
	if took > 40*time.Second {
		t.Fatalf("the silent build failed only after %s", took)
	}
	noSleeper(t, st)
}

// noSleeper checks that the silent flake's builder (sleep 600) is gone.
// A build that started a process in a session of its own (a daemon,
// which nix's stop of the builder's process group does not reach)
// leaves nothing running once the build has ended.
func TestBuildLeavesNothingRunning(t *testing.T) {
	h := newHarness(t)
	st := stamp(t)
	t.Cleanup(func() {
		for _, pid := range builderPIDs(st) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// As root with no build users (build-users-group empty, or no such
	// group), nix runs the builder as root, and nothing of nix's ends a
	// process in another session.
	args := append([]string{"--option", "build-users-group", ""}, offline...)
	_, events, err := h.try("build", map[string]any{"flake": "leaky", "extra_args": args})
	if err == nil {
		t.Fatal("the leaky build succeeded")
	}
	if pids := builderPIDs(st); len(pids) > 0 {
		t.Fatalf("the build's daemon still runs: pids %v", pids)
	}
	said := false
	for _, e := range events {
		said = said || strings.Contains(e.Message, "stopped 1 process(es) the build left running")
	}
	if !said {
		t.Errorf("the plugin did not say it stopped the leftover: %v", events)
	}
}

func noSleeper(t *testing.T, stamp string) {
	t.Helper()
	// The builder is found by its derivation's stamp, in its environment:
	// any other "sleep 600" on the machine is not this test's business.
	for range 50 {
		if len(builderPIDs(stamp)) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the silent build's builder still runs: pids %v", builderPIDs(stamp))
}

// builderPIDs lists the processes of the build whose derivation has this
// stamp (derivation attributes are the builder's environment).
func builderPIDs(stamp string) []int {
	var pids []int
	for _, pid := range testbin.PIDs() {
		env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if err == nil && bytes.Contains(append([]byte{0}, env...), []byte("\x00stamp="+stamp+"\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestOptionValue(t *testing.T) {
	for _, c := range []struct {
		args       []string
		name, want string
		ok         bool
	}{
		{[]string{"--option", "substituters", "", "--store", "daemon"}, "store", "daemon", true},
		{[]string{"--option", "store", "unix:///run/s", "-L"}, "store", "unix:///run/s", true},
		{[]string{"--option", "build-users-group", ""}, "build-users-group", "", true},
		{[]string{"--max-silent-time", "7200"}, "max-silent-time", "7200", true},
		{[]string{"--option", "substituters", ""}, "store", "", false},
		{[]string{"--store"}, "store", "", false},
	} {
		if v, ok := optionValue(c.args, c.name); v != c.want || ok != c.ok {
			t.Errorf("optionValue(%q, %s) = %q, %v", c.args, c.name, v, ok)
		}
	}
	if got := nixErrorText([]byte("warning: a\nwarning: b\nerror: c\n       d\n")); got != "error: c\n       d" {
		t.Errorf("nixErrorText: %q", got)
	}
}
