package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/vmflow/vmflow/core/engine"
	"github.com/vmflow/vmflow/core/host"
	"github.com/vmflow/vmflow/internal/cachefile"
)

// Starting plugins while the task file loads. Loading the lifecycle
// (2,000 lines) and starting a plugin each take tens of milliseconds, and
// on a machine with two cores they can overlap. A task's plugins are only
// known once the file is loaded, so vmflow remembers which binaries a
// command started, keyed by everything that could change the choice (the
// root task file's content, the command, the variables given); the next
// time the same key comes up it starts those binaries, after the same
// trust check as any start, while it loads. The engine then takes such a
// process instead of starting one (host.Manager.Prestart); a guess that no
// longer fits is stopped unused. So the memory only saves time, it never
// decides what runs.

// prestarted holds what was started ahead, for execute to take over.
type prestarted struct {
	mgr *host.Manager
	lg  logs
	out *switchWriter
}

// switchWriter writes to a writer chosen later: the plugins' log lines
// go to the renderer, which exists only once the task runs.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return len(p), nil
	}
	return s.w.Write(p)
}

func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

// prestartFile holds, per key, the plugins that command line started;
// a few dozen keys at most (an older one makes room for a new one).
type prestartFile struct {
	Commands map[string][]prestartPlugin `json:"commands"`
}

const prestartMax = 32

type prestartPlugin struct {
	Source string `json:"source"`
	Path   string `json:"path"`
}

const prestartVersion = "1"

// prestartKey is the memory's key for a command line, and the file it is
// kept in; "" when there is no cache directory or the command is not one
// that may run a task.
func (a *app) prestartKey(root string, args []string) (key, path string) {
	dir := cacheDir()
	if dir == "" {
		return "", ""
	}
	// Logs are set up for the renderer's level; -v and --json runs start
	// their plugins the usual way.
	for _, s := range args {
		if s == "--" {
			break
		}
		switch name, _, _ := splitFlag(s); {
		case !strings.HasPrefix(s, "-"):
		case name == "v" || name == "verbose" || name == "json" || name == "h" || name == "help":
			return "", ""
		}
	}
	task := a.taskOf(args)
	if task == "" {
		return "", ""
	}
	words := []string{commandName(args), task}
	src, err := os.ReadFile(root)
	if err != nil {
		return "", ""
	}
	h := sha256.New()
	parts := append([]string{prestartVersion, buildStamp(), root}, words...)
	parts = append(parts, a.pre.vars...)
	var env []string
	for _, kv := range a.environ {
		if strings.HasPrefix(kv, "VMFLOW_VAR_") {
			env = append(env, kv)
		}
	}
	sort.Strings(env)
	parts = append(parts, env...)
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	h.Write(src)
	sum := sha256.Sum256([]byte(root))
	return hex.EncodeToString(h.Sum(nil)), filepath.Join(dir, "plugins-"+hex.EncodeToString(sum[:8])+".json")
}

// taskOf is the task a command line runs (vmflow TASK …, vmflow run TASK
// …, vmflow plan TASK …), or "" for another command.
func (a *app) taskOf(args []string) string {
	cmd := commandName(args)
	if cmd == "" || cmd == "help" || cmd == "h" {
		return ""
	}
	if cmd != "run" && cmd != "plan" {
		for _, c := range a.builtinCommands() {
			if c.Name == cmd || slices.Contains(c.Aliases, cmd) {
				return ""
			}
		}
		return cmd
	}
	for i, s := range args {
		if s == cmd {
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				return args[i+1]
			}
			break
		}
	}
	return ""
}

// prestart starts the plugins remembered for this command line, if any.
func (a *app) prestart(root string, args []string) {
	key, path := a.prestartKey(root, args)
	if key == "" {
		return
	}
	a.startKey, a.startFile = key, path
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var f prestartFile
	if json.Unmarshal(b, &f) != nil || len(f.Commands[key]) == 0 {
		return
	}
	out := &switchWriter{}
	lg := a.logs(false, out)
	finder := a.finder(filepath.Dir(root))
	trust, diags := host.NewTrust(filepath.Dir(root), finder)
	if diags.HasErrors() {
		return
	}
	mgr := host.NewManager(lg.plugins)
	for _, p := range f.Commands[key] {
		sum, err := trust.Check(p.Source, p.Path)
		if err != nil {
			continue // the run will say why
		}
		mgr.Prestart(p.Path, sum)
	}
	a.early = &prestarted{mgr: mgr, lg: lg, out: out}
	// The starts are goroutines queued behind this one, which is about
	// to parse for ~20 ms; another core picked them up 0.4-4 ms later
	// (median ~2). Yielding runs them first, so the plugins are
	// executed sooner; the parse continues on the other core.
	runtime.Gosched()
}

// takePrestarted hands the prestarted plugins and their logs to a run
// with the renderer's log writer, or nil when there are none or the run
// wants other logs.
func (a *app) takePrestarted(verbose bool, out io.Writer) *prestarted {
	e := a.early
	a.early = nil
	if e == nil {
		return nil
	}
	if verbose {
		e.mgr.Close()
		return nil
	}
	e.out.set(out)
	return e
}

// rememberPlugins records the binaries a prepared plan runs on, for the
// next run of the same command line.
func (a *app) rememberPlugins(plan *engine.Plan) {
	if a.startKey == "" {
		return
	}
	plugins := []prestartPlugin{}
	seen := map[string]bool{}
	for _, ps := range plan.Steps {
		p := ps.Plugin
		if p == nil || p.Path == "" || seen[p.Path] {
			continue
		}
		seen[p.Path] = true
		plugins = append(plugins, prestartPlugin{Source: p.Source, Path: p.Path})
	}
	sort.Slice(plugins, func(i, j int) bool { return plugins[i].Path < plugins[j].Path })
	var f prestartFile
	if old, err := os.ReadFile(a.startFile); err == nil && json.Unmarshal(old, &f) == nil {
		if prev, ok := f.Commands[a.startKey]; ok && slices.Equal(prev, plugins) {
			return
		}
	}
	if f.Commands == nil || len(f.Commands) >= prestartMax {
		f.Commands = map[string][]prestartPlugin{}
	}
	f.Commands[a.startKey] = plugins
	b, err := json.Marshal(f)
	if err != nil {
		return
	}
	_ = cachefile.Write(a.startFile, b)
}

// buildStamp tells this vmflow binary from another: its version, and
// the size and time of its file (a rebuilt "dev" binary may load
// differently).
func buildStamp() string {
	s := version
	if exe, err := os.Executable(); err == nil {
		st := stamp(exe)
		s += fmt.Sprintf("\x00%s\x00%d\x00%d", st.Path, st.Size, st.MTime)
	}
	return s
}
