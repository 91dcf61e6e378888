package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"

	"github.com/vmflow/vmflow/internal/cachefile"
)

// Loading only what a run needs. Parsing is most of the time a command
// spends in Load (the shipped lifecycle has 2,000 lines and ~80 tasks),
// while a run of one task reads a handful of them. So, given
// Options.Task and Options.CacheDir, Load keeps an index of the root
// file: where each task block lies and which tasks each one calls,
// stored under the sha256 of the file's content, and written only after a
// full load that found nothing to report (no error, no warning). On a
// later load of the same content the blocks of the other tasks are
// blanked out (spaces, newlines kept, so every position stays the same)
// before parsing, and Project.Partial says the project lacks them.
//
// What the skipped tasks would have reported is known from that clean
// load only if it cannot have changed: their load-time evaluation
// (descriptions, param defaults and options) sees only variables and
// locals, so the index also holds a hash of those values, and a load
// whose values differ (another --var, .env or environment) parses the
// whole file again; an index is not written when such an attribute calls
// a function (which could read files or the environment), when a value
// is sensitive (not even its hash is kept), or when the file includes
// others. A partial load that reports anything is thrown away for a
// full one, which then reports it.

const indexVersion = "1"

// indexFileData is what the index file of a root file holds: an index per
// key (builds of vmflow, versions of the file), a few at most.
type indexFileData struct {
	Indexes map[string]*lazyIndex `json:"indexes"`
}

const maxIndexes = 8

type lazyIndex struct {
	Key   string `json:"key"`
	State string `json:"state"` // hash of the root's variable and local values
	// Tasks are the task blocks: their byte ranges and the tasks each
	// one's steps call (directly or not), itself included.
	Tasks []indexTask `json:"tasks"`
}

type indexTask struct {
	Name  string   `json:"name"`
	Start int      `json:"start"`
	End   int      `json:"end"`
	Needs []string `json:"needs"`
}

// lazyLoad is one Load's use of the index.
type lazyLoad struct {
	path, file, key string
	src             []byte     // the root's content, read once: the key was made of it, and it is what is parsed
	index           *lazyIndex // nil: no usable index (a full load)
	keep            map[string]bool
	// failed: the partial load cannot stand in for the full one.
	failed bool
}

func indexFile(dir, abs string) string {
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(dir, "index-"+hex.EncodeToString(sum[:8])+".json")
}

func (l *loader) startLazy(abs string) *lazyLoad {
	o := l.opts
	if o.Task == "" || o.CacheDir == "" || o.Overrides != nil {
		return nil
	}
	src, err := o.ReadFile(abs)
	if err != nil {
		return nil
	}
	h := sha256.New()
	for _, s := range []string{indexVersion, o.CacheSalt, abs, o.RootWorkDir} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(src)
	lz := &lazyLoad{path: abs, file: indexFile(o.CacheDir, abs), key: hex.EncodeToString(h.Sum(nil)), src: src}
	b, err := os.ReadFile(lz.file)
	if err != nil {
		return lz
	}
	var data indexFileData
	if json.Unmarshal(b, &data) != nil || data.Indexes[lz.key] == nil || data.Indexes[lz.key].Key != lz.key {
		return lz
	}
	ix := *data.Indexes[lz.key]
	for _, t := range ix.Tasks {
		if t.Name == o.Task && len(t.Needs) > 0 {
			lz.keep = map[string]bool{}
			for _, n := range t.Needs {
				lz.keep[n] = true
			}
		}
		if t.Start < 0 || t.End > len(src) || t.Start > t.End {
			return lz
		}
	}
	if lz.keep != nil {
		lz.index = &ix
	}
	return lz
}

// read reads the file at abs: the root as startLazy read it (so what is
// parsed is what the key was made of), any other file with readFile.
func (lz *lazyLoad) read(abs string, readFile func(string) ([]byte, error)) ([]byte, error) {
	if lz != nil && abs == lz.path {
		return lz.src, nil
	}
	return readFile(abs)
}

// source is what is parsed of the file at abs: with an index, its
// unneeded task blocks blanked.
func (lz *lazyLoad) source(abs string, src []byte) []byte {
	if lz == nil || abs != lz.path || lz.index == nil {
		return src
	}
	out := append([]byte(nil), src...)
	for _, t := range lz.index.Tasks {
		if lz.keep[t.Name] {
			continue
		}
		for i := t.Start; i < t.End; i++ {
			if c := out[i]; c != '\n' && c != '\r' {
				out[i] = ' '
			}
		}
	}
	return out
}

// checkState compares the root's variable and local values with the
// index's, once they are known.
func (lz *lazyLoad) checkState(f *File) {
	if lz == nil || lz.index == nil || f.Path != lz.path {
		return
	}
	if s, ok := stateHash(f); !ok || s != lz.index.State {
		lz.failed = true
	}
}

// stateHash hashes a file's variable and local values; false when they
// cannot be hashed or must not be (sensitive).
func stateHash(f *File) (string, bool) {
	h := sha256.New()
	for _, v := range []cty.Value{f.VarValues, f.LocalValues} {
		if v == cty.NilVal {
			h.Write([]byte{0})
			continue
		}
		if v.ContainsMarked() {
			return "", false
		}
		b, err := ctymsgpack.Marshal(v, cty.DynamicPseudoType)
		if err != nil {
			return "", false
		}
		h.Write([]byte{1})
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

// finish decides what a Load with lz returns: a partial load that went
// wrong is redone in full (redo); a clean full load writes the index.
func (l *loader) finishLazy(lz *lazyLoad, hf *hcl.File) (redo bool) {
	if lz == nil {
		return false
	}
	if lz.index != nil {
		return lz.failed || len(l.diags) > 0 || l.proj.Task(l.opts.Task) == nil
	}
	if len(l.diags) > 0 || len(l.proj.Files) != 1 || hf == nil || l.proj.Root == nil {
		return false
	}
	body, ok := hf.Body.(*hclsyntax.Body)
	if !ok {
		return false
	}
	state, ok := stateHash(l.proj.Root)
	if !ok {
		return false
	}
	ix := lazyIndex{Key: lz.key, State: state}
	for _, b := range body.Blocks {
		switch b.Type {
		case "include":
			return false
		case "task":
			if len(b.Labels) != 1 || callsFunctions(b) {
				return false
			}
			t := l.proj.Task(b.Labels[0])
			if t == nil {
				return false
			}
			r := b.Range()
			it := indexTask{Name: t.Name, Start: r.Start.Byte, End: r.End.Byte}
			if !t.Internal { // refusing to run one names its callers: all tasks
				it.Needs = needs(t)
			}
			ix.Tasks = append(ix.Tasks, it)
		}
	}
	var file indexFileData
	if b, err := os.ReadFile(lz.file); err == nil {
		_ = json.Unmarshal(b, &file)
	}
	if old := file.Indexes[lz.key]; old != nil && old.State == ix.State {
		return false // the same index is there (a task that cannot be partial)
	}
	if file.Indexes == nil || len(file.Indexes) >= maxIndexes {
		file.Indexes = map[string]*lazyIndex{}
	}
	file.Indexes[lz.key] = &ix
	data, err := json.Marshal(file)
	if err != nil {
		return false
	}
	_ = cachefile.Write(lz.file, data)
	return false
}

// needs lists t and the tasks its steps call, directly or not.
func needs(t *Task) []string {
	seen := map[string]bool{}
	var walk func(*Task)
	walk = func(t *Task) {
		if seen[t.Name] {
			return
		}
		seen[t.Name] = true
		for _, s := range t.Steps {
			if s.Called != nil {
				walk(s.Called)
			}
		}
	}
	walk(t)
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// loadEvaluated are the attributes of a task or param that Load
// evaluates with variables, locals and functions (tasks.go); the others
// are literals (evaluated without any), type expressions, or kept for the
// run (applies).
var loadEvaluated = map[string]bool{"description": true, "prompt": true, "complete": true, "default": true, "options": true}

// callsFunctions tells whether what Load evaluates of a task block (its
// own attributes and its params') calls a function.
func callsFunctions(b *hclsyntax.Block) bool {
	calls := false
	check := func(attrs hclsyntax.Attributes) {
		for name, a := range attrs {
			if !loadEvaluated[name] {
				continue
			}
			hclsyntax.VisitAll(a.Expr, func(n hclsyntax.Node) hcl.Diagnostics {
				if _, ok := n.(*hclsyntax.FunctionCallExpr); ok {
					calls = true
				}
				return nil
			})
		}
	}
	check(b.Body.Attributes)
	for _, pb := range b.Body.Blocks {
		if pb.Type == "param" {
			check(pb.Body.Attributes)
		}
	}
	return calls
}
