package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/vmflow/vmflow/core/builtin"
	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/host"
	"github.com/vmflow/vmflow/core/lang"
	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
)

// builtinPlugin returns the built-in actions as seen from one task file:
// commands run in that file's directory.
func (e *Engine) builtinPlugin(ctx context.Context, f *config.File) *PluginInstance {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.builtins[f]; p != nil {
		return p
	}
	impl, err := sdk.InProcess(builtin.New(e.Project.Env))
	if err != nil {
		panic(err) // the built-in schema is ours; this is a vmflow bug
	}
	schema, _ := impl.Describe(ctx)
	_, _ = impl.Configure(ctx, cty.EmptyObjectVal, protocol.Env{StateDir: e.StateDir, WorkDir: f.WorkDir})
	p := &PluginInstance{Name: config.BuiltinPlugin, Source: config.BuiltinPlugin, Schema: schema, impl: impl}
	e.builtins[f] = p
	return p
}

// instance starts and configures the plugin behind a plugin block (once per
// block, however many steps use it).
func (e *Engine) instance(ctx context.Context, d *config.PluginDecl) (*PluginInstance, hcl.Diagnostics) {
	b := entry(&e.mu, e.instances, d)
	b.once.Do(func() { b.p, b.diags = e.newInstance(ctx, d) })
	return b.p, b.diags
}

func (e *Engine) newInstance(ctx context.Context, d *config.PluginDecl) (*PluginInstance, hcl.Diagnostics) {
	vctx := d.File.EvalContext(cty.NilVal, cty.NilVal)
	sv, diags := d.Source.Value(vctx)
	if diags.HasErrors() {
		return nil, diags
	}
	sv = lang.Unmarked(sv)
	if sv.IsNull() || !sv.IsKnown() || sv.Type() != cty.String || sv.AsString() == "" {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Invalid plugin source",
			Detail:  fmt.Sprintf("The source of plugin %q must be a plugin name (libvirt) or a path to its binary.", d.Name),
			Subject: d.Source.Range().Ptr(),
		}}
	}
	source := sv.AsString()
	cfg, cfgRange := cty.EmptyObjectVal, d.DeclRange
	if d.Config != nil {
		if cfg, diags = d.Config.Value(vctx); diags.HasErrors() {
			return nil, diags
		}
		cfg = lang.Unmarked(cfg) // a plugin's config goes to the plugin only
		cfgRange = d.Config.Range()
	}
	hostName := ""
	if d.Host != nil {
		hv, diags := d.Host.Value(vctx)
		if diags.HasErrors() {
			return nil, diags
		}
		if hv.ContainsMarked() {
			return nil, hcl.Diagnostics{{
				Severity: hcl.DiagError, Summary: "Invalid plugin host",
				Detail:  fmt.Sprintf("The host of plugin %q is shown in clear (the run header, vmflow runs): it cannot come from a sensitive value.", d.Name),
				Subject: d.Host.Range().Ptr(),
			}}
		}
		if !hv.IsNull() {
			if hv, err := convert.Convert(hv, cty.String); err != nil || !hv.IsKnown() {
				return nil, hcl.Diagnostics{{
					Severity: hcl.DiagError, Summary: "Invalid plugin host",
					Detail:  fmt.Sprintf("The host of plugin %q must be a string (a host's name), or null for none.", d.Name),
					Subject: d.Host.Range().Ptr(),
				}}
			} else {
				hostName = hv.AsString()
			}
		}
	}
	limit, diags := configureLimit(d, vctx)
	if diags.HasErrors() {
		return nil, diags
	}
	env := protocol.Env{StateDir: e.StateDir, WorkDir: d.File.Dir}
	fail := func(summary string, err error) (*PluginInstance, hcl.Diagnostics) {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary,
			Detail: fmt.Sprintf("plugin %q (source %q): %v", d.Name, source, err), Subject: d.Source.Range().Ptr()}}
	}

	p := &PluginInstance{Name: d.Name, Source: source, Host: hostName, limit: limit}
	var configure func(cv cty.Value) (protocol.Diagnostics, error)
	if sp, ok := e.InProcess[source]; ok {
		impl, err := sdk.InProcess(sp)
		if err != nil {
			return fail("Invalid plugin", err)
		}
		p.impl = impl
		p.Schema, _ = impl.Describe(ctx)
		configure = func(cv cty.Value) (protocol.Diagnostics, error) {
			return configureWithin(ctx, limit, func(ctx context.Context) (protocol.Diagnostics, error) { return impl.Configure(ctx, cv, env) })
		}
	} else {
		path, err := e.Finder.Find(source, d.File.Dir)
		if err != nil {
			return fail("Plugin not found", err)
		}
		key, err := ctyjson.Marshal(cfg, cty.DynamicPseudoType)
		if err != nil {
			key = []byte(fmt.Sprint(cfg))
		}
		sum, err := e.Trust.Check(source, path)
		if err != nil {
			var re *host.RefusedError
			if errors.As(err, &re) && re.Kind == host.RefusedMismatch {
				return fail("Plugin does not match the lock file", err)
			}
			return fail("Plugin not trusted", err)
		}
		proc, err := e.Plugins.GetChecked(ctx, path, string(key), sum)
		var ce *host.ChecksumError
		if errors.As(err, &ce) {
			return fail("Plugin does not match the lock file", e.Trust.Mismatch(source, path))
		}
		if err != nil {
			return fail("Plugin failed to start", err)
		}
		p.Path, p.Schema, p.impl, p.proc = path, proc.Schema, proc.Conn, proc
		// A process shared by several plugin blocks is configured once.
		configure = func(cv cty.Value) (protocol.Diagnostics, error) {
			co := entry(&e.mu, e.configured, proc)
			co.once.Do(func() {
				co.diags, co.err = configureWithin(ctx, limit, func(ctx context.Context) (protocol.Diagnostics, error) { return proc.Configure(ctx, cv, env) })
			})
			return co.diags, co.err
		}
		p.restart = func(ctx context.Context, cv cty.Value) (*host.Process, error) {
			np, err := e.Plugins.Restart(ctx, path, string(key))
			if err != nil {
				return nil, err
			}
			ds, err := configureWithin(ctx, limit, func(ctx context.Context) (protocol.Diagnostics, error) { return np.Configure(ctx, cv, env) })
			if err != nil || ds.HasErrors() {
				if err == nil {
					err = ds.Err()
				}
				return nil, fmt.Errorf("configuring: %w", err)
			}
			return np, nil
		}
	}

	// Check the config against the plugin's config schema, then hand it over.
	cv, diags := checkObject(cfg, p.Schema.Config, cfgRange, fmt.Sprintf("plugin %s config", p.Label()))
	if diags.HasErrors() {
		return nil, diags
	}
	p.config = cv
	pds, err := configure(cv)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Plugin configuration failed",
			Detail: fmt.Sprintf("plugin %s: %v", p.Label(), p.callError(err)), Subject: cfgRange.Ptr(),
		}}
	}
	if pds.HasErrors() {
		return nil, pluginDiags(pds, func(string) hcl.Range { return cfgRange }, cfgRange, "plugin "+p.Label())
	}
	return p, nil
}

// checkObject converts a config object to the attributes' object type:
// unknown attributes, missing required ones and wrong types are errors.
func checkObject(v cty.Value, attrs protocol.Attributes, rng hcl.Range, what string) (cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	if v.IsNull() {
		v = cty.EmptyObjectVal
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		return cty.NilVal, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid config", Detail: what + " must be an object: { name = value }.", Subject: rng.Ptr()}}
	}
	given := map[string]cty.Value{}
	if v.IsKnown() {
		given = v.AsValueMap()
	}
	names := make([]string, 0, len(given))
	for k := range given {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := attrs.Get(k); !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Unsupported config attribute",
				Detail:  fmt.Sprintf("%s has no attribute %q.%s", what, k, suggestAttr(k, attrs)),
				Subject: rng.Ptr(),
			})
		}
	}
	vals := map[string]cty.Value{}
	for _, a := range attrs {
		gv, ok := given[a.Name]
		if !ok || gv.IsNull() {
			if a.Required {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Missing required config attribute",
					Detail: fmt.Sprintf("%s requires %q: %s", what, a.Name, a.Description), Subject: rng.Ptr(),
				})
				continue
			}
			gv = cty.NullVal(a.Type)
			if a.Default != cty.NilVal {
				gv = a.Default
			}
		}
		cv, err := convert.Convert(gv, a.Type)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid config attribute",
				Detail: fmt.Sprintf("%s: %q: %v.", what, a.Name, err), Subject: rng.Ptr(),
			})
			continue
		}
		vals[a.Name] = cv
	}
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	if len(vals) == 0 {
		return cty.EmptyObjectVal, nil
	}
	return cty.ObjectVal(vals), nil
}

// entry returns m's entry for k, made on first use; mu guards m.
func entry[K comparable, V any](mu *sync.Mutex, m map[K]*V, k K) *V {
	mu.Lock()
	defer mu.Unlock()
	v, ok := m[k]
	if !ok {
		v = new(V)
		m[k] = v
	}
	return v
}
