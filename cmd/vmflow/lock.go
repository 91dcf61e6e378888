package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/engine"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/core/lang"
)

// ---- lock ----

func (a *app) cmdLock(c *cli.Context) error {
	proj, err := a.project(c, nil)
	if err != nil {
		return err
	}
	if a.usingBuiltin {
		return usageErr("no tasks.hcl in this directory or a parent: vmflow lock writes %s beside one (`vmflow init` writes one, and its lock)", lockName)
	}
	if err := a.requireVars(); err != nil {
		return err
	}
	// --platform may also follow the sources: vmflow lock hello --platform …
	platforms := c.StringSlice("platform")
	var sources []string
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		switch arg := args[i]; {
		case arg == "--platform" || arg == "-platform":
			if i+1 >= len(args) {
				return usageErr("--platform needs a value: --platform OS_ARCH=DIR")
			}
			i++
			platforms = append(platforms, args[i])
		case strings.HasPrefix(arg, "--platform="):
			platforms = append(platforms, strings.TrimPrefix(arg, "--platform="))
		case strings.HasPrefix(arg, "-"):
			return usageErr("unknown flag %s; vmflow lock --help shows its flags", arg)
		default:
			sources = append(sources, arg)
		}
	}
	others := map[string]string{}
	for _, p := range platforms {
		plat, dir, ok := strings.Cut(p, "=")
		if !ok || plat == "" || dir == "" || strings.ContainsAny(plat, "/ ") {
			return usageErr("--platform %q: write OS_ARCH=DIR, e.g. --platform linux_arm64=./dist/linux_arm64", p)
		}
		others[plat] = dir
	}
	eng, mgr, err := a.newEngine(c, proj, a.logs(c.Bool("verbose"), a.stderr))
	if err != nil {
		return err
	}
	defer mgr.Close()
	locked, diags := eng.LockPlugins(context.Background(), sources, others)
	if err := a.printDiags(diags); err != nil {
		return err
	}
	a.printLocked(eng.Trust.LockPath, locked)
	return nil
}

const lockName = ".vmflow.lock.hcl"

func (a *app) printLocked(path string, locked []engine.Locked) {
	shown := path
	if wd, err := filepath.Abs("."); err == nil {
		if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
			shown = rel
		}
	}
	fmt.Fprintf(a.stdout, "Locked %d plugin(s) in %s (commit it with the task file):\n", len(locked), shown)
	for _, l := range locked {
		fmt.Fprintf(a.stdout, "  %s %s  protocol %d  %s  %s  (%s)\n", l.Key, l.Version, l.Protocol, strings.Join(l.Platforms, ","), l.Hash, l.Path)
	}
}

// ---- output ----

// cmdOutput prints one output of a succeeded run: the one place a
// sensitive value is shown, because the user asked for it by name. A
// string prints as it is (for scripts), anything else as HCL.
func (a *app) cmdOutput(c *cli.Context) error {
	if c.NArg() != 2 {
		return usageErr("name the run and the output: vmflow output RUN NAME (see vmflow runs; `last` is the newest)")
	}
	store, err := a.journals(c)
	if err != nil {
		return err
	}
	id, err := store.Resolve(c.Args().Get(0))
	if err != nil {
		return usageErr("%v", err)
	}
	st, err := store.Load(id)
	if err != nil {
		return err
	}
	name := c.Args().Get(1)
	if st.Status != journal.Succeeded {
		return usageErr("run %s (task %s) did not succeed (%s): it has no outputs", id, st.Header.Task, st.Status)
	}
	var names []string
	var v cty.Value
	if st.Outputs != nil && st.Outputs.Value != cty.NilVal && st.Outputs.Type().IsObjectType() {
		for n := range st.Outputs.Type().AttributeTypes() {
			names = append(names, n)
		}
		if st.Outputs.Type().HasAttribute(name) {
			v = st.Outputs.GetAttr(name)
		}
	}
	if v == cty.NilVal {
		sort.Strings(names)
		list := strings.Join(names, ", ")
		if list == "" {
			list = "none"
		}
		return usageErr("run %s (task %s) has no output %q.%s Its outputs: %s", id, st.Header.Task, name, config.Suggest(name, names), list)
	}
	if st.Sealed != nil {
		return usageErr("output %s of run %s is sealed with a key that cannot open it here: %v", name, id, st.Sealed)
	}
	v = lang.Unmarked(v)
	if v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
		fmt.Fprintln(a.stdout, v.AsString())
		return nil
	}
	fmt.Fprintln(a.stdout, lang.FormatValue(v))
	return nil
}
