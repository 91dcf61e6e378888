package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/urfave/cli/v2"

	"github.com/vmflow/vmflow"
)

// The default lifecycle ships inside the binary (vmflow.Lifecycle). The
// loader reads task files from disk, and nix builds the profiles flake
// from a directory, so it is written out, when first used, once per
// content: ${XDG_CACHE_HOME:-~/.cache}/vmflow/builtin/<hash>/tasks.hcl and
// profiles/ (the state directory's builtin/ without a home).

// builtinFile finds a task file vmflow ships, writing it out if needed.
func (a *app) builtinFile(name string) (string, error) {
	if name != "lifecycle" {
		return "", fmt.Errorf("vmflow ships no task file %q (it ships: lifecycle)", name)
	}
	if a.builtinPath == "" && a.builtinErr == nil {
		base := cacheDir()
		if base == "" {
			if sd, err := resolveStateDir(a.pre.stateDir); err == nil {
				base = sd
			}
		}
		if base == "" {
			a.builtinErr = errors.New("no directory to write it to: set HOME or XDG_CACHE_HOME")
		} else if files, err := builtinFiles(base); err != nil {
			a.builtinErr = fmt.Errorf("writing it out: %w", err)
		} else {
			a.builtinPath = files["lifecycle"]
		}
	}
	return a.builtinPath, a.builtinErr
}

// builtinDir is where the shipped files of this build are written.
func builtinDir(stateDir string) (string, error) {
	h := sha256.New()
	var names []string
	err := fs.WalkDir(vmflow.Lifecycle, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := vmflow.Lifecycle.ReadFile(n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return filepath.Join(stateDir, "builtin", hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// builtinFiles writes the shipped files out if they are not there yet
// (into a temporary directory renamed into place, so that a reader never
// sees half of them) and returns where each shipped task file is.
func builtinFiles(stateDir string) (map[string]string, error) {
	dir, err := builtinDir(stateDir)
	if err != nil {
		return nil, err
	}
	files := map[string]string{"lifecycle": filepath.Join(dir, "tasks.hcl")}
	if _, err := os.Stat(files["lifecycle"]); err == nil {
		return files, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return files, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-")
	if err != nil {
		return files, err
	}
	defer os.RemoveAll(tmp)
	err = fs.WalkDir(vmflow.Lifecycle, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		to := filepath.Join(tmp, p)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := vmflow.Lifecycle.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		return files, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return files, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(files["lifecycle"]); serr == nil {
			return files, nil // another vmflow wrote it meanwhile
		}
		return files, err
	}
	return files, nil
}

// builtinNote tells a user who has no task file where the tasks come from.
const builtinNote = "No tasks.hcl in this directory or a parent: these are the tasks of the default lifecycle built into vmflow. `vmflow init` writes a tasks.hcl of your own that includes it."

// initTemplate is what vmflow init writes: the default lifecycle included
// with its tasks' own names, and commented examples of a task of one's
// own (TestInitExamples runs them).
const initTemplate = `# This project's vmflow tasks. ` + "`vmflow list`" + ` shows them.
#
# The default VM lifecycle ships with vmflow (create, start, ssh, snapshot,
# upgrade, backup, destroy, …). It is included here with its tasks' own
# names, and it is updated when vmflow is.
include "vm" {
  path    = "vmflow:lifecycle"
  flatten = true
}

# A task of your own that gives create other defaults, by calling it:
#
# task "dev-vm" {
#   description = "A bigger VM for development"
#   param "name" { type = string }
#   step "vm" {
#     task     = "create"
#     name     = param.name
#     memory   = 4096
#     vcpus    = 2
#     var_size = "40G"
#   }
#   output "ssh" { value = step.vm.ssh }
# }

# A task of your own with a local command after a default task:
#
# task "snapshot-and-note" {
#   param "name" { type = string }
#   param "snapshot" { type = string }
#   step "snap" {
#     task     = "snapshot"
#     name     = param.name
#     snapshot = param.snapshot
#   }
#   step "note" {
#     action     = builtin.exec
#     argv       = ["sh", "-c", "echo \"$1 $2\" >> snapshots.log", "sh", param.name, param.snapshot]
#     depends_on = [step.snap]
#   }
# }
`

func (a *app) cmdInit(c *cli.Context) error {
	path := "tasks.hcl"
	// A tasks.hcl in a parent directory stops being the one vmflow finds
	// here once this one exists: say so, as the user may have meant to
	// add to that project's file.
	shadowed := ""
	if c.String("file") != "" {
		path = c.String("file")
	} else if found, err := findTaskFile(""); err == nil {
		if wd, err := os.Getwd(); err == nil && filepath.Dir(found) != wd {
			shadowed = found
		}
	}
	if _, err := os.Stat(path); err == nil {
		return usageErr("%s exists already; nothing was written", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(initTemplate); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if c.Bool("json") {
		fmt.Fprintf(a.stderr, "Wrote %s.\n", path)
	} else {
		fmt.Fprintf(a.stdout, "Wrote %s: it includes the default lifecycle (`vmflow list` shows its tasks) and shows, in comments, how to add tasks of your own.\n", path)
	}
	if shadowed != "" {
		fmt.Fprintf(a.stderr, "Note: %s, in a parent directory, was the task file here; from now on vmflow uses the new %s in this directory and below.\n", shadowed, path)
	}
	return a.initLock(c, path)
}

// initLock writes the lock file for the task file init wrote: the
// plugins it uses with the current variable values. A plugin that cannot
// be locked (not installed yet) leaves the task file written and says how
// to lock later.
func (a *app) initLock(c *cli.Context, path string) error {
	a.usingBuiltin = false
	a.load(path, c.StringSlice("var"), false)
	if a.projErr.HasErrors() {
		return a.printDiags(a.projErr)
	}
	eng, mgr, err := a.newEngine(c, a.proj, a.logs(c.Bool("verbose"), a.stderr), nil)
	if err != nil {
		return err
	}
	defer mgr.Close()
	locked, diags := eng.LockPlugins(context.Background(), nil, nil)
	if diags.HasErrors() {
		for _, d := range diags {
			d.Severity = hcl.DiagWarning
		}
		_ = a.printDiags(diags)
		fmt.Fprintf(a.stderr, "No %s was written; `vmflow lock` writes it once the plugins are installed.\n", lockName)
		if c.Bool("json") {
			return a.printJSON(writtenJSON{TaskFile: path, Locked: []lockedJSON{}})
		}
		return nil
	}
	if c.Bool("json") {
		return a.printJSON(lockedOut(path, eng.Trust.LockPath, locked))
	}
	a.printLocked(eng.Trust.LockPath, locked)
	return nil
}
