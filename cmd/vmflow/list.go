package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/lang"
	"github.com/vmflow/vmflow/internal/cachefile"
)

// listTask is what vmflow list shows of a task (and --json prints).
type listTask struct {
	Name string `json:"name"`
	// Command is what runs it after "vmflow": its name, or "run NAME"
	// for a task named like one of vmflow's own commands.
	Command     string      `json:"command"`
	Description string      `json:"description,omitempty"`
	Usage       string      `json:"usage"`
	Wizard      bool        `json:"wizard,omitempty"`
	Params      []listParam `json:"params"`
}

type listParam struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Required    bool     `json:"required"`
	Default     any      `json:"default,omitempty"`
	Description string   `json:"description,omitempty"`
	Options     []string `json:"options,omitempty"`
	Prompt      string   `json:"prompt,omitempty"`
	Complete    string   `json:"complete,omitempty"`
}

func summarize(proj *config.Project, commands map[string]bool) []listTask {
	out := []listTask{}
	for _, t := range proj.Runnable() {
		lt := listTask{Name: t.Name, Command: t.Name, Description: t.Description, Usage: t.Usage(), Wizard: t.Wizard, Params: []listParam{}}
		if commands[t.Name] {
			lt.Command = "run " + t.Name
		}
		for _, p := range t.Params {
			lp := listParam{Name: p.Name, Type: typeLabel(p.Type), Required: p.Required(), Description: p.Description,
				Options: p.OptionArgs(), Prompt: p.Prompt, Complete: p.Complete}
			if !p.Required() {
				lp.Default = lang.PlainValue(p.Default)
			}
			lt.Params = append(lt.Params, lp)
		}
		out = append(out, lt)
	}
	return out
}

// printList renders tasks like just --list, or as JSON.
func printList(w io.Writer, tasks []listTask, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(tasks)
	}
	fmt.Fprintln(w, "Available tasks:")
	// Descriptions line up after the widest usage of at most listColumn
	// runes; a longer one (a task with many params) would push them all
	// off the screen, so its description goes on the next line, in the
	// same column.
	width := 0
	heads := make([]string, len(tasks))
	for i, t := range tasks {
		heads[i] = strings.TrimSpace(t.Command + " " + t.Usage)
		if n := utf8.RuneCountInString(heads[i]); n <= listColumn {
			width = max(width, n)
		}
	}
	for i, t := range tasks {
		if t.Description == "" {
			fmt.Fprintf(w, "    %s\n", heads[i])
			continue
		}
		n := utf8.RuneCountInString(heads[i])
		if n > width {
			fmt.Fprintf(w, "    %s\n", heads[i])
			heads[i], n = "", 0
		}
		fmt.Fprintf(w, "    %s%s # %s\n", heads[i], strings.Repeat(" ", width-n), t.Description)
	}
	return nil
}

// listColumn is the widest task usage vmflow list lines descriptions up
// after.
const listColumn = 40

// The list cache. vmflow list runs on every completion keystroke, and
// parsing the task files is most of its work; so list keeps what it
// showed, keyed by everything that could change it: vmflow's version, the
// variable values given (--var, VMFLOW_VAR_*), and the size and
// modification time of every file it read (the task files and .env). Any
// change is a miss, and the files are parsed again.

type fileStamp struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"` // -1: absent
	MTime int64  `json:"mtime"`
}

type listCacheFile struct {
	Key   string      `json:"key"`
	Files []fileStamp `json:"files"`
	Tasks []listTask  `json:"tasks"`
}

const listCacheVersion = "4" // 2: params' options and prompt, tasks' wizard; 3: command; 4: defaults as JSON values, complete

// listCachePath is where the cache of a root task file lives.
func listCachePath(root string) string {
	dir := cacheDir()
	if dir == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(dir, "list-"+hex.EncodeToString(sum[:8])+".json")
}

// cacheDir is vmflow's cache directory, ${XDG_CACHE_HOME:-~/.cache}/vmflow;
// "" without a home.
func cacheDir() string {
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache")
	}
	return filepath.Join(dir, "vmflow")
}

// listCacheKey covers what changes a listing besides the files.
func listCacheKey(root string, vars, environ []string) string {
	parts := []string{listCacheVersion, version, root}
	parts = append(parts, vars...)
	var env []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, config.VarEnvPrefix) {
			env = append(env, kv)
		}
	}
	sort.Strings(env)
	parts = append(parts, env...)
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])
}

func stamp(path string) fileStamp {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{Path: path, Size: -1}
	}
	return fileStamp{Path: path, Size: st.Size(), MTime: st.ModTime().UnixNano()}
}

// readListCache returns the cached listing if it is still true.
func readListCache(path, key string) ([]listTask, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var c listCacheFile
	if json.Unmarshal(b, &c) != nil || c.Key != key || len(c.Files) == 0 {
		return nil, false
	}
	for _, f := range c.Files {
		if stamp(f.Path) != f {
			return nil, false
		}
	}
	return c.Tasks, true
}

// writeListCache records a listing; failing to write only costs speed.
func writeListCache(path string, proj *config.Project, key string, tasks []listTask) {
	c := listCacheFile{Key: key, Tasks: tasks}
	for _, f := range proj.Files {
		c.Files = append(c.Files, stamp(f.Path))
	}
	c.Files = append(c.Files, stamp(filepath.Join(proj.Root.Dir, ".env")))
	if exe, err := os.Executable(); err == nil {
		c.Files = append(c.Files, stamp(exe)) // a rebuilt vmflow may list differently
	}
	b, err := json.Marshal(c)
	if err != nil {
		return
	}
	_ = cachefile.Write(path, b)
}
