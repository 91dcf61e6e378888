// Package faults is vmflow's fault-injection suite. It runs the real
// binaries (vmflow and its plugins, built as `make build` builds them) on
// the proxmox-stub backend, kills vmflow or the hypervisor plugin with
// SIGKILL at every boundary of a task's run (after each --json event, right
// after each change a step makes to the state directory, and at random
// times), recovers the way a user would (vmflow resume RUN, vmflow resume
// RUN --undo, or running the task again), and then checks named
// invariants: nothing in the backend without a machine record, every
// record's VM whole, the end state the task and the recovery call for, no
// paused VM, no leftovers in tmp/, no claims of finished runs, no plugin
// process left, and a purge that leaves nothing.
//
// Plain `go test ./faults` runs a deterministic sample that covers every
// task, both kill targets and every recovery mode in a few minutes;
// `go test ./faults -soak` (or VMFLOW_FAULTS_SOAK=1) runs every boundary ×
// target × mode, and random kills. See README.md beside this file.
package faults

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmflow/vmflow/internal/testbin"
)

var (
	soakFlag    = flag.Bool("soak", false, "every boundary × target × mode, and random kills (also VMFLOW_FAULTS_SOAK=1)")
	taskFlag    = flag.String("faults.task", "", "only these tasks (comma-separated)")
	targetFlag  = flag.String("faults.target", "", "only these kill targets: vmflow, plugin, pipe (comma-separated)")
	modeFlag    = flag.String("faults.mode", "", "only these recovery modes: resume, undo, rerun, purge (comma-separated)")
	pointFlag   = flag.String("faults.point", "", "only kill points whose name contains one of these (comma-separated)")
	seedFlag    = flag.Int64("faults.seed", 0, "seed of the random kill times (default: from the clock; printed)")
	randomFlag  = flag.Int("faults.random", 3, "random kill times per task × target × mode in the soak")
	logsFlag    = flag.Bool("faults.logs", false, "the soak kills after every log and progress event too")
	keepFlag    = flag.Bool("faults.keep", false, "keep each case's state directory (printed) instead of removing it")
	verboseFlag = flag.Bool("faults.v", false, "log every command a case runs, with its output")
)

// binDir holds vmflow and the plugins, built once for the test binary.
var binDir string

// imageFile is the small file every case passes as --var image.
var imageFile string

func TestMain(m *testing.M) {
	flag.Parse()
	if v := os.Getenv("VMFLOW_FAULTS_SOAK"); v != "" && v != "0" && v != "false" {
		*soakFlag = true
	}
	if *seedFlag == 0 {
		*seedFlag = time.Now().UnixNano() % 1_000_000_007
	}
	bins := testbin.Plugins()
	bins["vmflow"] = "./cmd/vmflow"
	code := testbin.Main(func() int {
		d, err := os.MkdirTemp("", "vmflow-faults-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(d)
		imageFile = filepath.Join(d, "img")
		// The stub reads an image's format and size, nothing more; 1 MiB
		// of raw data is an image to it.
		if err := os.WriteFile(imageFile, make([]byte, 1<<20), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		code := m.Run()
		figures.print()
		return code
	}, &binDir, bins)
	os.Exit(code)
}

// figures are what the suite prints at the end.
type tally struct {
	mu         sync.Mutex
	cases      atomic.Int64 // fault cases run
	commands   atomic.Int64 // vmflow invocations
	kills      atomic.Int64 // SIGKILLs sent
	landed     atomic.Int64 // of which landed while the run was still going
	violations map[string]int
	cases0     map[string]int // violating cases by check
}

var figures = &tally{violations: map[string]int{}, cases0: map[string]int{}}

func (f *tally) violation(check string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.violations[check]++
}

func (f *tally) print() {
	if f.cases.Load() == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "faults: %d cases, %d vmflow commands, %d kills, %d landed mid-run (seed %d, soak %v)\n",
		f.cases.Load(), f.commands.Load(), f.kills.Load(), f.landed.Load(), *seedFlag, *soakFlag)
	total := 0
	var names []string
	for n, c := range f.violations {
		names = append(names, n)
		total += c
	}
	sort.Strings(names)
	fmt.Fprintf(&b, "faults: invariant violations: %d\n", total)
	for _, n := range names {
		fmt.Fprintf(&b, "faults:   %-10s %s\n", n, strconv.Itoa(f.violations[n]))
	}
	fmt.Print(b.String())
}

// only reports whether value passes a comma-separated filter flag.
func only(filter, value string) bool {
	if filter == "" {
		return true
	}
	for _, f := range strings.Split(filter, ",") {
		if strings.TrimSpace(f) == value {
			return true
		}
	}
	return false
}

// onlyContains reports whether value contains one of a comma-separated
// filter's words.
func onlyContains(filter, value string) bool {
	if filter == "" {
		return true
	}
	for _, f := range strings.Split(filter, ",") {
		if f = strings.TrimSpace(f); f != "" && strings.Contains(value, f) {
			return true
		}
	}
	return false
}
