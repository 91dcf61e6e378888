package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/vmflow/vmflow/core/engine"
)

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
	eng, mgr, err := a.newEngine(c, proj, a.logs(c.Bool("verbose"), a.stderr), nil)
	if err != nil {
		return err
	}
	defer mgr.Close()
	locked, diags := eng.LockPlugins(context.Background(), sources, others)
	if err := a.printDiags(diags); err != nil {
		return err
	}
	if c.Bool("json") {
		return a.printJSON(lockedOut("", eng.Trust.LockPath, locked))
	}
	a.printLocked(eng.Trust.LockPath, locked)
	return nil
}

// lockedOut is what init and lock print with --json.
func lockedOut(taskFile, lockFile string, locked []engine.Locked) writtenJSON {
	out := writtenJSON{TaskFile: taskFile, LockFile: lockFile, Locked: []lockedJSON{}}
	for _, l := range locked {
		out.Locked = append(out.Locked, lockedJSON{l.Key, l.Version, l.Protocol, l.Platforms, l.Hash, l.Path})
	}
	return out
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
