package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/host"
)

// Locked is one plugin vmflow lock recorded.
type Locked struct {
	Key, Version, Path, Hash string
	Protocol                 int
	// Platforms whose hashes the entry holds.
	Platforms []string
}

// LockPlugins writes the project's lock file (e.Trust.LockPath): the
// plugins named by sources (as a plugin block's source is written), or
// with none, every plugin the tasks use, with the variable values loaded
// and, where a source reads a variable with options, with each of them
// (locked where the plugin is found).
// Each is started once, unchecked (locking is the act of trusting it), to
// ask its version; others adds, by platform, hashes of binaries built for
// other platforms found in a directory.
func (e *Engine) LockPlugins(ctx context.Context, sources []string, others map[string]string) ([]Locked, hcl.Diagnostics) {
	type want struct {
		source, baseDir string
		rng             *hcl.Range
		label           string
		// optional: a source the block names only with other values of
		// its variables' options; locked where it is found.
		optional bool
	}
	var wants []want
	seen := map[string]bool{}
	if len(sources) > 0 {
		for _, s := range sources {
			wants = append(wants, want{source: s, baseDir: e.Project.Root.Dir, label: fmt.Sprintf("plugin source %q", s)})
		}
	} else {
		decls := map[*config.PluginDecl]bool{}
		for _, t := range e.Project.Tasks {
			for _, s := range t.Steps {
				if s.Plugin == "" || s.Plugin == config.BuiltinPlugin {
					continue
				}
				if d := t.File.Plugin(s.Plugin); d != nil && !decls[d] {
					decls[d] = true
					v, diags := d.Source.Value(d.File.EvalContext(cty.NilVal, cty.NilVal))
					if diags.HasErrors() {
						return nil, diags
					}
					v, _ = v.UnmarkDeep()
					if !v.IsKnown() || v.IsNull() || v.Type() != cty.String || v.AsString() == "" {
						return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid plugin source",
							Detail:  fmt.Sprintf("The source of plugin %q must be a plugin name or a path to its binary, known before the run.", d.Name),
							Subject: d.Source.Range().Ptr()}}
					}
					// The source as the variables are now (Sources gives
					// it first), then as the options of those it reads
					// would make it (the backend a --var swaps to runs
					// without a new lock).
					for _, src := range d.Sources() {
						k := d.File.Dir + "\x00" + src
						if seen[k] {
							continue
						}
						seen[k] = true
						wants = append(wants, want{source: src, baseDir: d.File.Dir, rng: d.Source.Range().Ptr(),
							label: fmt.Sprintf("plugin %q (source %q)", d.Name, src), optional: src != v.AsString()})
					}
				}
			}
		}
	}
	trust := e.Trust
	if trust.Lock == nil {
		trust.Lock = &host.LockFile{Path: trust.LockPath, Plugins: map[string]*host.LockedPlugin{}}
	}
	var out []Locked
	var diags hcl.Diagnostics
	for _, w := range wants {
		fail := func(err error) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot lock the plugin",
				Detail: fmt.Sprintf("%s: %v", w.label, err), Subject: w.rng})
		}
		path, err := e.Finder.Find(w.source, w.baseDir)
		if err != nil {
			if !w.optional {
				fail(err)
			}
			continue
		}
		hash, _, err := host.FileHash(path)
		if err != nil {
			fail(err)
			continue
		}
		proc, err := host.Start(ctx, path, e.Logger)
		if err != nil {
			fail(err)
			continue
		}
		version, protocol := proc.Schema.Version, proc.Protocol()
		proc.Kill()
		key := trust.Key(w.source, path)
		trust.Lock.Record(key, version, protocol, host.Platform(), hash)
		for plat, dir := range others {
			other := filepath.Join(dir, filepath.Base(path))
			if _, err := os.Stat(other); err != nil {
				fail(fmt.Errorf("--platform %s: %w", plat, err))
				continue
			}
			h, _, err := host.FileHash(other)
			if err != nil {
				fail(err)
				continue
			}
			trust.Lock.Record(key, version, protocol, plat, h)
		}
		var plats []string
		for p := range trust.Lock.Plugins[key].Hashes {
			plats = append(plats, p)
		}
		sort.Strings(plats)
		out = append(out, Locked{Key: key, Version: version, Path: path, Hash: hash, Protocol: protocol, Platforms: plats})
	}
	if diags.HasErrors() {
		return nil, diags
	}
	if err := trust.Lock.Write(); err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot write the plugin lock file", Detail: err.Error()}}
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].Key, out[j].Key) < 0 })
	return out, nil
}
