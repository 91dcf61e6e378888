// Package host finds plugin binaries and runs them: it starts each plugin
// process through go-plugin (gRPC only, versioned handshake, mutual TLS),
// hands it a lifeline so it can never outlive vmflow, and turns start-up
// failures into messages that say what the plugin did wrong.
package host

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Prefix is the file-name prefix of every plugin binary.
const Prefix = "vmflow-plugin-"

// reasonBeside marks the project's own plugin directory: binaries found
// there run only once locked (trust.go).
const reasonBeside = "beside the task file"

// PathEnv is the environment variable with extra plugin directories.
const PathEnv = "VMFLOW_PLUGIN_PATH"

// Finder locates plugin binaries. Directories are searched in this order:
// next to the vmflow binary, VMFLOW_PLUGIN_PATH, .vmflow/plugins beside the
// task file, then PATH.
type Finder struct {
	Dirs []SearchDir
}

// SearchDir is one directory and why it is searched.
type SearchDir struct {
	Path   string
	Reason string
}

// NewFinder builds the search path. exe is the vmflow binary, taskDir the
// directory of the task file ("" for none), env the environment.
func NewFinder(exe, taskDir string, env map[string]string) *Finder {
	f := &Finder{}
	add := func(p, why string) {
		if p == "" {
			return
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		for _, d := range f.Dirs {
			if d.Path == p {
				return
			}
		}
		f.Dirs = append(f.Dirs, SearchDir{Path: p, Reason: why})
	}
	if exe != "" {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		add(filepath.Dir(exe), "next to vmflow")
	}
	for _, p := range filepath.SplitList(env[PathEnv]) {
		add(p, PathEnv)
	}
	if taskDir != "" {
		add(filepath.Join(taskDir, ".vmflow", "plugins"), reasonBeside)
	}
	for _, p := range filepath.SplitList(env["PATH"]) {
		add(p, "PATH")
	}
	return f
}

// NotFoundError says where a plugin was looked for.
type NotFoundError struct {
	Source   string
	Searched []SearchDir
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no plugin binary %s%s found; searched:", Prefix, e.Source)
	for _, d := range e.Searched {
		fmt.Fprintf(&b, "\n  %s (%s)", d.Path, d.Reason)
	}
	return b.String()
}

// Find returns the binary for a plugin source. A source containing a slash
// is a path (relative to baseDir); otherwise it is a name looked up as
// vmflow-plugin-<source>.
func (f *Finder) Find(source, baseDir string) (string, error) {
	if strings.ContainsRune(source, '/') {
		p := source
		if !filepath.IsAbs(p) {
			p = filepath.Join(baseDir, p)
		}
		if err := executable(p); err != nil {
			return "", fmt.Errorf("plugin %s: %w", p, err)
		}
		return p, nil
	}
	name := Prefix + source
	dirs := f.dirsFor(baseDir)
	for _, d := range dirs {
		p := filepath.Join(d.Path, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", &NotFoundError{Source: source, Searched: dirs}
}

// dirsFor is the search path for a plugin block in a task file in
// baseDir: .vmflow/plugins beside that file joins the path, after the one
// beside the root task file and before PATH.
func (f *Finder) dirsFor(baseDir string) []SearchDir {
	if baseDir == "" {
		return f.Dirs
	}
	extra := SearchDir{Path: filepath.Join(baseDir, ".vmflow", "plugins"), Reason: "beside the task file that declares it"}
	if abs, err := filepath.Abs(extra.Path); err == nil {
		extra.Path = abs
	}
	out := make([]SearchDir, 0, len(f.Dirs)+1)
	added := false
	for _, d := range f.Dirs {
		if d.Path == extra.Path {
			return f.Dirs
		}
		if !added && d.Reason == "PATH" {
			out = append(out, extra)
			added = true
		}
		out = append(out, d)
	}
	if !added {
		out = append(out, extra)
	}
	return out
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// Found is a plugin binary on the search path.
type Found struct {
	Name string // the source name: libvirt
	Path string
	Dir  SearchDir
	// Shadows lists binaries of the same name later on the path.
	Shadows []string
}

// All lists every plugin binary on the search path; the first one of each
// name wins, as in Find.
func (f *Finder) All() []Found {
	byName := map[string]*Found{}
	var names []string
	for _, d := range f.Dirs {
		ents, err := os.ReadDir(d.Path)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), Prefix) {
				continue
			}
			p := filepath.Join(d.Path, e.Name())
			if executable(p) != nil {
				continue
			}
			name := strings.TrimPrefix(e.Name(), Prefix)
			if fd, ok := byName[name]; ok {
				fd.Shadows = append(fd.Shadows, p)
				continue
			}
			byName[name] = &Found{Name: name, Path: p, Dir: d}
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := make([]Found, len(names))
	for i, n := range names {
		out[i] = *byName[n]
	}
	return out
}
