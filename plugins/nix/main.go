// Command vmflow-plugin-nix builds immutable NixOS images from composable
// profiles with the real `nix build`, streams nix's progress, and keeps a
// GC root per image under vmflow's state dir so an image in use is never
// garbage-collected.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmflow/vmflow/core/sdk"
)

var version = "0.1.0"

type plugin struct {
	stateDir, workDir string
	// maxSilent: a build that prints nothing for this long fails (nix's
	// --max-silent-time), from the config's max_silent_time.
	maxSilent time.Duration

	mu     sync.Mutex
	stores map[string]storeMode // decided once per store settings of extra_args
}

// defaultMaxSilent is max_silent_time's default: long enough for the
// quiet phases of a NixOS image build (writing and converting the disk
// image), short enough that a hung build does not hold a run for hours.
const defaultMaxSilent = 30 * time.Minute

// store decides, once, how this plugin reaches the nix store (see
// detectStore) and says so in the log.
func (p *plugin) store(ctx context.Context, r *sdk.Request, extra []string) (storeMode, error) {
	s, _ := optionValue(extra, "store")
	g, _ := optionValue(extra, "build-users-group")
	key := s + "\x00" + g
	p.mu.Lock()
	mode, ok := p.stores[key]
	p.mu.Unlock()
	if !ok {
		var err error
		if mode, err = detectStore(ctx, extra); err != nil {
			return storeMode{}, err
		}
		p.mu.Lock()
		if p.stores == nil {
			p.stores = map[string]storeMode{}
		}
		p.stores[key] = mode
		p.mu.Unlock()
	}
	r.Log("%s", mode.Note)
	return mode, nil
}

// storeProfiles is store, and the profiles the flake knows read through
// that store.
func (p *plugin) storeProfiles(ctx context.Context, r *sdk.Request, flake string, extra []string) (storeMode, map[string]profileInfo, error) {
	mode, err := p.store(ctx, r, extra)
	if err != nil {
		return storeMode{}, nil, err
	}
	known, err := knownProfiles(ctx, flake, mode.Args)
	return mode, known, err
}

// silentLimits are the limit on a silent build (max_silent_time, or
// --max-silent-time in extra_args), the nix arguments that set it (none
// when extra_args does), and how long the plugin waits for nix itself to
// print anything before it stops it: a little longer, so that nix's own,
// clearer error comes first.
func (p *plugin) silentLimits(extra []string) (limit time.Duration, nixArgs []string, watchdog time.Duration) {
	limit = p.maxSilent
	if limit <= 0 {
		limit = defaultMaxSilent
	}
	if v, ok := optionValue(extra, "max-silent-time"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			limit = time.Duration(n) * time.Second
		}
	} else {
		nixArgs = []string{"--max-silent-time", strconv.Itoa(int(max(limit/time.Second, 1)))}
	}
	return limit, nixArgs, limit + min(limit, time.Minute)
}

// hint says what to do about a nix error, when that is known.
func (p *plugin) hint(mode storeMode, silentLimit time.Duration) func(string) string {
	return func(msg string) string {
		switch {
		case strings.Contains(msg, "specified in 'build-users-group' does not exist") && mode.Kind == "daemon":
			return "The nix-daemon is set to build as the users of a group that does not exist: as root, create the group with build users " +
				"(groupadd --system nixbld; useradd --system --gid nixbld --groups nixbld --home-dir /var/empty --shell /usr/sbin/nologin nixbld1, … nixbld10, " +
				"as Debian's nix-setup-systemd and vmflow's scripts/nix-setup.sh do) and restart nix-daemon."
		case strings.Contains(msg, "specified in 'build-users-group' does not exist"):
			return "Create the group with build users (as root: vmflow's scripts/nix-setup.sh does it), or leave build-users-group out of the build's arguments: " +
				"vmflow then builds as root without build users."
		case strings.Contains(msg, "seconds of silence") || strings.Contains(msg, "nix printed nothing for"):
			return fmt.Sprintf("The build printed nothing for too long (max_silent_time, now %s). If it is only slow, raise max_silent_time in the nix plugin's config "+
				"(plugin \"nix\" { config = { max_silent_time = \"2h\" } }) or pass [\"--max-silent-time\", \"SECONDS\"] in the build's extra_args (nix_args).", silentLimit)
		case strings.Contains(msg, "is not allowed to connect to the Nix daemon"):
			return fmt.Sprintf("The nix-daemon's allowed-users setting leaves %s out: add the user (or a group of it, as @group) to allowed-users in the daemon's nix.conf and restart it.", userName())
		}
		return ""
	}
}

// flakeDir resolves the flake input against the task file's directory.
func (p *plugin) flakeDir(r *sdk.Request) (string, error) {
	dir := r.String("flake")
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(p.workDir, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "flake.nix")); err != nil {
		return "", sdk.ArgError("flake", "no flake.nix in %s", dir)
	}
	return filepath.Clean(dir), nil
}

func (p *plugin) gcRoots() string { return filepath.Join(p.stateDir, "nix", "gcroots") }

// checkNix fails clearly when nix is missing or too old.
func checkNix(ctx context.Context) error {
	v, text, err := nixVersion(ctx)
	if err != nil {
		return err
	}
	if older(v, minVersion) {
		return fmt.Errorf("nix %s is too old: building flakes with --expr and --log-format internal-json needs nix %d.%d or later", text, minVersion[0], minVersion[1])
	}
	return nil
}

// storeHash is the hash part of a store path: /nix/store/<hash>-name.
func storeHash(path string) string {
	base := filepath.Base(path)
	h, _, _ := strings.Cut(base, "-")
	return h
}

func (p *plugin) build(ctx context.Context, r *sdk.Request) error {
	if err := checkNix(ctx); err != nil {
		return err
	}
	flake, err := p.flakeDir(r)
	if err != nil {
		return err
	}
	extra := r.Strings("extra_args")
	mode, known, err := p.storeProfiles(ctx, r, flake, extra)
	if err != nil {
		return err
	}
	profiles, added, err := normalize(r.Strings("profiles"), known)
	if err != nil {
		return sdk.ArgError("profiles", "%v", err)
	}
	for _, a := range added {
		r.Log("adding profile %s", a)
	}
	system := r.String("system")
	quoted := make([]string, len(profiles))
	for i, pr := range profiles {
		quoted[i] = fmt.Sprintf("%q", pr)
	}
	expr := fmt.Sprintf("(builtins.getFlake %q).lib.mkImage { profiles = [ %s ]; system = %q; }",
		"path:"+flake, strings.Join(quoted, " "), system)

	// Build into a pending root, then root the result by its store path:
	// a root per image, so an older image a VM still runs stays rooted.
	if err := os.MkdirAll(p.gcRoots(), 0o755); err != nil {
		return err
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	pending := filepath.Join(p.gcRoots(), ".pending-"+hex.EncodeToString(rnd[:]))
	defer os.Remove(pending)

	rep := &reporter{
		log: func(level, msg string) {
			if level == "debug" {
				r.Logger().Debug(msg)
			} else if level == "error" {
				r.Logger().Error(msg)
			} else {
				r.Log("%s", msg)
			}
		},
		progress: func(done, expected int64, label string) { r.Progress(done, expected, label) },
	}
	silentLimit, silentArgs, watchdog := p.silentLimits(extra)
	args := append(append([]string{}, nixFeatures...), "build")
	args = append(append(append(args, mode.Args...), silentArgs...), "--log-format", "internal-json",
		"--impure", "--json", "--out-link", pending, "--expr", expr)
	args = append(args, extra...)
	start := time.Now()
	out, err := runNix(ctx, rep, true, watchdog, args...)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		what := "building the image"
		if rep.builds == 0 {
			what = "evaluating the image"
		}
		return rep.failure(what, err, p.hint(mode, silentLimit))
	}
	var results []struct {
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(out, &results); err != nil || len(results) == 0 || results[0].Outputs["out"] == "" {
		return fmt.Errorf("nix build printed no output path: %s", strings.TrimSpace(string(out)))
	}
	storePath := results[0].Outputs["out"]
	root := filepath.Join(p.gcRoots(), storeHash(storePath)+"-"+strings.Join(profiles, "+"))
	createdRoot := false
	if _, err := os.Lstat(root); err != nil {
		args := append(append([]string{}, mode.Args...), "--realise", storePath, "--add-root", root)
		if out, err := exec.CommandContext(ctx, "nix-store", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("registering the GC root %s: %v: %s", root, err, nixErrorText(out))
		}
		createdRoot = true
	}
	image, err := findImage(storePath)
	if err != nil {
		return err
	}
	info, err := exec.CommandContext(ctx, "nix", append(append(append([]string{}, nixFeatures...), "path-info", "--json", storePath), mode.Args...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("nix path-info %s: %s", storePath, nixErrorText(ee.Stderr))
		}
		return fmt.Errorf("nix path-info %s: %w", storePath, err)
	}
	var pinfo []struct {
		NarHash string `json:"narHash"`
	}
	if err := json.Unmarshal(info, &pinfo); err != nil || len(pinfo) == 0 {
		return fmt.Errorf("nix path-info %s: unreadable answer", storePath)
	}
	built := rep.builds > 0
	if built {
		r.Log("built %s in %s", storePath, time.Since(start).Round(time.Millisecond))
	} else {
		r.Log("%s was already built (cache hit)", storePath)
	}
	return errors.Join(
		r.Set("image", image), r.Set("store_path", storePath), r.Set("content_id", pinfo[0].NarHash),
		r.Set("profiles", profiles), r.Set("gc_root", root), r.Set("built", built),
		r.Set("kernel", optional(storePath, "kernel")), r.Set("initrd", optional(storePath, "initrd")),
		r.Set("cmdline", readOptional(storePath, "cmdline")), r.Set("new_root", createdRoot),
		r.Set("system", systemOf(storePath)),
	)
}

// systemOf is the NixOS system an image boots (its toplevel link), the
// store path a running guest sees as /run/current-system; "" when the
// build has none.
func systemOf(out string) string {
	target, err := os.Readlink(filepath.Join(out, "toplevel"))
	if err != nil || !filepath.IsAbs(target) {
		return ""
	}
	return target
}

// findImage finds the disk image in a build's output: the output itself
// when it is a file, else the one *.qcow2 (or *.img) inside it.
func findImage(out string) (string, error) {
	st, err := os.Stat(out)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return out, nil
	}
	for _, pat := range []string{"*.qcow2", "*.img", "*.raw"} {
		m, _ := filepath.Glob(filepath.Join(out, pat))
		if len(m) == 1 {
			return m[0], nil
		}
		if len(m) > 1 {
			return "", fmt.Errorf("%s holds several images: %s", out, strings.Join(m, ", "))
		}
	}
	return "", fmt.Errorf("%s holds no disk image (*.qcow2)", out)
}

// readOptional returns the trimmed content of out/name, or "".
func readOptional(out, name string) string {
	b, err := os.ReadFile(filepath.Join(out, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// optional returns out/name when it exists, else "".
func optional(out, name string) string {
	p := filepath.Join(out, name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

func newPlugin() *sdk.Plugin {
	p := &plugin{}
	return &sdk.Plugin{
		Name:        "nix",
		Version:     version,
		Description: "Builds immutable NixOS images from composable profiles with nix build.",
		Config: []sdk.Attr{
			sdk.String("max_silent_time", "A nix build that prints nothing for this long fails (nix's --max-silent-time), e.g. \"30m\", \"2h\". "+
				"A build's extra_args may set --max-silent-time (seconds) instead.").Default(defaultMaxSilent.String()),
		},
		Configure: func(ctx context.Context, r *sdk.Request) error {
			p.stateDir, p.workDir = r.Env.StateDir, r.Env.WorkDir
			d, err := time.ParseDuration(r.String("max_silent_time"))
			if err != nil || d < time.Second {
				return sdk.ArgError("max_silent_time", "%q is not a duration of a second or more (e.g. \"30m\", \"2h\")", r.String("max_silent_time"))
			}
			p.maxSilent = d
			p.mu.Lock()
			p.stores = nil
			p.mu.Unlock()
			return nil
		},
		Actions: actions(p),
	}
}

func main() { sdk.Serve(newPlugin()) }

func actions(p *plugin) []*sdk.Action {
	flake := sdk.String("flake", "The flake directory, relative to the task file.").Default("profiles")
	return []*sdk.Action{
		{
			Name: "build",
			Description: "Builds the image for a set of profiles (core is always in; required profiles are added; the set is sorted, " +
				"so the same set gives the same image) with nix build, and keeps a GC root for it under vmflow's state dir. " +
				"A first build of a NixOS image can take long: the step's default timeout is 2h; a build silent for max_silent_time fails sooner.",
			Timeout: 2 * time.Hour,
			Inputs: []sdk.Attr{
				sdk.StringList("profiles", "Profiles to compose.").Default([]string{}),
				flake,
				sdk.String("system", "The Nix system.").Default("x86_64-linux"),
				sdk.StringList("extra_args", "More arguments for nix build, e.g. [\"--option\", \"substituters\", \"\"] offline.").Default([]string{}),
			},
			Outputs: []sdk.Attr{
				sdk.String("image", "The disk image (qcow2) in the store."),
				sdk.String("store_path", "The build's store path."),
				sdk.String("content_id", "The output's content hash (nix's narHash)."),
				sdk.StringList("profiles", "The profiles, normalised."),
				sdk.String("gc_root", "The GC root that keeps the image."),
				sdk.Bool("built", "Whether nix built anything (false: a cache hit)."),
				sdk.String("kernel", "The kernel, for direct kernel boot, when the build has one."),
				sdk.String("initrd", "The initrd, when the build has one."),
				sdk.String("cmdline", "The kernel command line for direct kernel boot (it holds init=…), when the build has one."),
				sdk.Bool("new_root", "Whether this step created the GC root."),
				sdk.String("system", "The NixOS system the image boots (its toplevel), as a running guest's /run/current-system names it; \"\" when the build has none."),
			},
			Validate: func(ctx context.Context, r *sdk.Request) error {
				if r.Known("flake") {
					if _, err := p.flakeDir(r); err != nil {
						return err
					}
				}
				return nil
			},
			Run: p.build,
			Undo: func(ctx context.Context, r *sdk.Request) error {
				// A root this step made goes; the image stays in the store
				// until a garbage collection.
				if v := r.Output("new_root"); !v.IsNull() && v.True() {
					if err := os.Remove(r.OutputString("gc_root")); err != nil && !os.IsNotExist(err) {
						return err
					}
				}
				return nil
			},
		},
		{
			Name:        "list_profiles",
			Description: "Lists the profiles the flake offers, and what each requires.",
			Timeout:     10 * time.Minute,
			Inputs:      []sdk.Attr{flake},
			Outputs: []sdk.Attr{
				sdk.StringList("profiles", "Profile names, sorted."),
				sdk.Attribute("requires", sdk.MapOf(sdk.ListOf(sdk.TypeString)), "What each profile requires."),
			},
			Run: func(ctx context.Context, r *sdk.Request) error {
				dir, err := p.flakeDir(r)
				if err != nil {
					return err
				}
				if err := checkNix(ctx); err != nil {
					return err
				}
				_, known, err := p.storeProfiles(ctx, r, dir, nil)
				if err != nil {
					return err
				}
				req := map[string][]string{}
				for n, info := range known {
					req[n] = append([]string{}, info.Requires...)
				}
				return errors.Join(r.Set("profiles", sortedNames(known)), r.Set("requires", req))
			},
		},
		{
			Name:        "release",
			Description: "Drops the GC root that keeps an image, once no VM uses it; nix may then collect it.",
			Timeout:     time.Minute,
			Inputs:      []sdk.Attr{sdk.String("gc_root", "The gc_root a build returned.").Required()},
			Outputs:     []sdk.Attr{sdk.Bool("released", "Whether a root was removed.")},
			Run: func(ctx context.Context, r *sdk.Request) error {
				root := filepath.Clean(r.String("gc_root"))
				if filepath.Dir(root) != p.gcRoots() {
					return sdk.ArgError("gc_root", "%s is not one of vmflow's GC roots (%s)", root, p.gcRoots())
				}
				err := os.Remove(root)
				if os.IsNotExist(err) {
					return r.Set("released", false)
				}
				if err != nil {
					return err
				}
				return r.Set("released", true)
			},
		},
	}
}
