// Package bench measures vmflow's own costs with Go benchmarks: starting
// a plugin, dispatching a step, running a graph. `vmflow list` against
// just and task is measured by list.sh (hyperfine). See README.md.
package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/engine"
	"github.com/vmflow/vmflow/core/host"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/internal/testbin"
)

// binDir holds every plugin binary, built once with the release tags.
var binDir string

// floorPlugin is the binary of bench/floor/plugin (not a vmflow plugin:
// its name keeps it out of the plugin glob).
const floorPlugin = "floor-plugin"

func TestMain(m *testing.M) {
	bins := testbin.Plugins()
	bins[floorPlugin] = "./bench/floor/plugin"
	os.Exit(testbin.Main(m.Run, &binDir, bins))
}

// BenchmarkPluginStart is what a run pays per plugin before its first
// step: fork/exec, go-plugin handshake with mutual TLS, and Describe.
// Its "floor" is the least any plugin start can cost under the same
// choices (benchFloorStart), timed in the same run.
func BenchmarkPluginStart(b *testing.B) {
	paths, _ := filepath.Glob(filepath.Join(binDir, host.Prefix+"*"))
	if len(paths) == 0 {
		b.Fatal("no plugin binaries built")
	}
	for _, p := range paths {
		b.Run(strings.TrimPrefix(filepath.Base(p), host.Prefix), func(b *testing.B) {
			for b.Loop() {
				proc, err := host.Start(context.Background(), p, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				proc.Kill()
				b.StartTimer()
			}
		})
	}
	b.Run("floor", benchFloorStart)
}

// BenchmarkPluginStartLocked is BenchmarkPluginStart for a plugin the lock
// file pins: the binary is hashed (once, through the descriptor that is
// then executed) before it starts. The difference is what a lock costs.
func BenchmarkPluginStartLocked(b *testing.B) {
	for _, name := range []string{"hello", "libvirt"} {
		p := filepath.Join(binDir, host.Prefix+name)
		_, sum, err := host.FileHash(p)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				proc, err := host.StartChecked(context.Background(), p, sum, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				proc.Kill()
				b.StartTimer()
			}
		})
	}
}

// project writes a task file and loads it.
func project(b *testing.B, src string) (*engine.Engine, *config.Project) {
	b.Helper()
	dir := b.TempDir()
	path := filepath.Join(dir, "tasks.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	proj, diags := config.Load(path, config.Options{})
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	mgr := host.NewManager(nil)
	b.Cleanup(mgr.Close)
	finder := host.NewFinder("", dir, map[string]string{host.PathEnv: binDir})
	return engine.New(proj, finder, mgr, filepath.Join(dir, "state"), nil), proj
}

func prepared(b *testing.B, e *engine.Engine, proj *config.Project) *engine.Plan {
	b.Helper()
	plan, diags := e.Prepare(context.Background(), proj.Task("t"), cty.EmptyObjectVal)
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	return plan
}

// BenchmarkStepDispatch runs a one-step task whose action does nothing,
// through a real plugin process: evaluation, the gRPC stream, events.
// Plugins are started once, as within a run.
func BenchmarkStepDispatch(b *testing.B) {
	e, proj := project(b, `
plugin "kit" { source = "testkit" }
task "t" {
  step "noop" { action = kit.noop }
}`)
	plan := prepared(b, e, proj)
	for b.Loop() {
		if res := e.Run(context.Background(), plan, engine.RunOptions{}); res.Status != journal.Succeeded {
			b.Fatal(res.Diags)
		}
	}
}

// graph50 is 50 no-op steps: ten chains of five, each step using the
// previous one's output, the chains independent of each other.
func graph50() string {
	var sb strings.Builder
	sb.WriteString("plugin \"kit\" { source = \"testkit\" }\ntask \"t\" {\n")
	for c := range 10 {
		for s := range 5 {
			fmt.Fprintf(&sb, "  step \"c%d_s%d\" {\n    action = kit.echo\n", c, s)
			if s == 0 {
				fmt.Fprintf(&sb, "    value = \"chain %d\"\n", c)
			} else {
				fmt.Fprintf(&sb, "    value = step.c%d_s%d.value\n", c, s-1)
			}
			sb.WriteString("  }\n")
		}
	}
	sb.WriteString("}\n")
	return sb.String()
}

// BenchmarkGraph50 runs the 50-step graph: without a journal, and as
// vmflow run does it, journaled (fsync per completed step) under a lock.
func BenchmarkGraph50(b *testing.B) {
	e, proj := project(b, graph50())
	plan := prepared(b, e, proj)
	b.Run("run", func(b *testing.B) {
		for b.Loop() {
			if res := e.Run(context.Background(), plan, engine.RunOptions{}); res.Status != journal.Succeeded {
				b.Fatal(res.Diags)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/50, "ns/step")
	})
	b.Run("journaled", func(b *testing.B) {
		plan.Locks = []string{"bench"}
		for b.Loop() {
			res, err := e.Execute(context.Background(), plan, engine.ExecOptions{})
			if err != nil || res.Status != journal.Succeeded {
				b.Fatal(err, res)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/50, "ns/step")
	})
}

// BenchmarkPrepare50 checks the 50-step task against its plugin's schema
// (type checks, references, Validate calls) without running it.
func BenchmarkPrepare50(b *testing.B) {
	e, proj := project(b, graph50())
	prepared(b, e, proj) // start the plugin outside the loop
	for b.Loop() {
		prepared(b, e, proj)
	}
}

// BenchmarkLoadLifecycle loads the shipped lifecycle (tasks.hcl, 2,000
// lines): in full, as vmflow list and validate do, and as a run of one
// task does once its index is written (core/config/lazy.go).
func BenchmarkLoadLifecycle(b *testing.B) {
	path := filepath.Join(testbin.Repo(), "tasks.hcl")
	for _, task := range []string{"", "status", "create"} {
		name := "full"
		if task != "" {
			name = "task=" + task
		}
		b.Run(name, func(b *testing.B) {
			o := config.Options{DeferMissingVars: true}
			if task != "" {
				o.Task, o.CacheDir, o.CacheSalt = task, b.TempDir(), "bench"
				config.Load(path, o) // writes the index
			}
			b.ReportAllocs()
			for b.Loop() {
				p, diags := config.Load(path, o)
				if diags.HasErrors() || p.Partial != (task != "") {
					b.Fatalf("partial %v: %v", p.Partial, diags)
				}
			}
		})
	}
}
