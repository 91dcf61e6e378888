package faults

import (
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmflow/vmflow/internal/testbin"
)

// TestFaults runs each task on the stub, kills vmflow or its plugin at a
// point of the run, recovers with a mode, and checks the invariants.
// Subtests: TestFaults/TASK/TARGET/POINT/MODE, e.g.
// TestFaults/create/plugin/change-define/undo.
func TestFaults(t *testing.T) {
	tasks := allTasks()
	commits := commitSteps(t, tasks)
	for _, ts := range tasks {
		if !only(*taskFlag, ts.name) {
			continue
		}
		t.Run(ts.name, func(t *testing.T) {
			ts.commit = commits[ts.name]
			ref := makeReference(t, ts)
			for _, c := range casesOf(t, ts, ref) {
				t.Run(c.target+"/"+c.p.name+"/"+c.mode, func(t *testing.T) {
					t.Parallel()
					runCase(t, ts, ref, c, commits)
				})
			}
		})
	}
}

// reference is a task's clean run: its setup state (the template every
// case starts from), its events, and its end state.
type reference struct {
	tmpl    string // the state dir after the setup
	events  []event
	normal  map[string]any
	elapsed time.Duration
	points  []point
}

func taskArgs(ts *taskSpec) []string {
	return append(append([]string{"--json", "--var", "backend=" + backend}, ts.args...), "--yes")
}

func setupArgs(cmd []string) []string {
	return append(append([]string{"--var", "backend=" + backend}, cmd...), "--yes")
}

func makeReference(t *testing.T, ts *taskSpec) *reference {
	dir := t.TempDir()
	e := newEnv(t, filepath.Join(dir, "setup"))
	for _, cmd := range ts.setup {
		if r := e.vmflow(setupArgs(cmd)...); r.code != 0 {
			t.Fatalf("setup of %s: %s\n%s", ts.name, r, r.tail())
		}
	}
	ref := &reference{tmpl: e.state}
	re := newEnv(t, filepath.Join(dir, "reference"))
	copyDir(t, e.state, re.state)
	r, watched := re.runKilled(taskArgs(ts), "", point{name: "clean", watchOnly: true})
	if r.code != 0 {
		t.Fatalf("the clean run of %s failed: %s\n%s", ts.name, r, r.tail())
	}
	keys := keyer{}
	for i := range r.events {
		r.events[i].key = keys.key(r.events[i])
	}
	ref.events, ref.elapsed = r.events, r.elapsed
	s := takeSnapshot(re.state)
	if s.err != nil {
		t.Fatalf("reading the clean run's state: %v", s.err)
	}
	ref.normal = s.normal()
	// The points: after each event, right after each claim and each
	// change of a step.
	for _, ev := range r.events {
		ref.points = append(ref.points, point{name: ev.key, event: ev.key, about: "right after event " + ev.key})
	}
	for _, ev := range r.events {
		if ev.Kind != "step_started" || changing[ev.Action] == nil {
			continue
		}
		claims := slices.Contains(watched.claimed, stepDir(ev.Step))
		if claims {
			ref.points = append(ref.points, point{name: "claim-" + ev.Step, claim: ev.Step, about: "right after step " + ev.Step + " (" + ev.Action + ") claimed what it is about to change"})
		}
		ref.points = append(ref.points, point{name: "change-" + ev.Step, change: ev.Step, area: changing[ev.Action], byClaim: claims,
			about: "right after step " + ev.Step + " (" + ev.Action + ") changed the state, before it reported"})
	}
	t.Logf("%s: clean run %v, %d events, %d points", ts.name, r.elapsed.Round(time.Millisecond), len(r.events), len(ref.points))
	return ref
}

type faultCase struct {
	target, mode string
	p            point
}

func modesOf(ts *taskSpec) []string {
	m := []string{"resume", "undo", "rerun"}
	if ts.made != "" {
		m = append(m, "purge")
	}
	return m
}

func casesOf(t *testing.T, ts *taskSpec, ref *reference) []faultCase {
	byName := map[string]point{}
	for _, p := range ref.points {
		byName[p.name] = p
	}
	byName["stdout"] = point{name: "stdout", pipe: "stdout", about: "vmflow --json … | head -1"}
	byName["stderr"] = point{name: "stderr", pipe: "stderr", about: "vmflow … 2>&1 | head -3"}
	var out []faultCase
	add := func(c faultCase) {
		if only(*targetFlag, c.target) && only(*modeFlag, c.mode) && onlyContains(*pointFlag, c.p.name) {
			out = append(out, c)
		}
	}
	if !*soakFlag {
		for _, s := range ts.sample {
			// target/point/mode, where a point may name a called
			// task's step by its path (change-vm/define).
			f := strings.Split(s, "/")
			p, ok := point{}, false
			if len(f) >= 3 {
				p, ok = byName[strings.Join(f[1:len(f)-1], "/")]
			}
			if !ok {
				t.Errorf("sample case %s of %s: no such point in the clean run (it has: %v)", s, ts.name, sortedKeys(byName))
				continue
			}
			add(faultCase{target: f[0], p: p, mode: f[len(f)-1]})
		}
		return out
	}
	for _, target := range []string{"vmflow", "plugin"} {
		for _, p := range ref.points {
			if (strings.HasPrefix(p.name, "log-") || strings.HasPrefix(p.name, "progress-")) && !*logsFlag {
				// A plugin logs after its change: such a point is its
				// step's change point, a little later.
				continue
			}
			for _, m := range modesOf(ts) {
				add(faultCase{target: target, p: p, mode: m})
			}
		}
		// Random times: within the clean run's length (and a little
		// after), from the printed seed, the same for the same seed.
		window := (ref.elapsed*6/5/(50*time.Millisecond) + 1) * 50 * time.Millisecond
		for _, m := range modesOf(ts) {
			for i := 0; i < *randomFlag; i++ {
				h := fnv.New64a()
				fmt.Fprintf(h, "%s/%s/%s/%d", ts.name, target, m, i)
				rng := rand.New(rand.NewPCG(uint64(*seedFlag), h.Sum64()))
				d := time.Duration(rng.Int64N(int64(window)))
				add(faultCase{target: target, mode: m, p: point{name: fmt.Sprintf("random-%d", i), delay: d,
					about: fmt.Sprintf("%v after vmflow started (seed %d, window %v)", d.Round(time.Microsecond), *seedFlag, window)}})
			}
		}
	}
	add(faultCase{target: "pipe", p: byName["stdout"], mode: "-"})
	add(faultCase{target: "pipe", p: byName["stderr"], mode: "-"})
	return out
}

// runCase is one kill and its recovery, then the checks.
func runCase(t *testing.T, ts *taskSpec, ref *reference, fc faultCase, commits map[string][]string) {
	figures.cases.Add(1)
	dir := t.TempDir()
	if *keepFlag {
		var err error
		if dir, err = os.MkdirTemp("", "vmflow-fault-case-"); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, dir)
	copyDir(t, ref.tmpl, e.state)
	c := &checker{e: e}
	e.note("# %s: %s, target %s, recovery %s", ts.name, fc.p.about, fc.target, fc.mode)
	before := takeSnapshot(e.state)
	if before.err != nil {
		t.Fatal(before.err)
	}
	beforeRuns := map[string]bool{}
	if ents, err := os.ReadDir(filepath.Join(e.state, "runs")); err == nil {
		for _, ent := range ents {
			beforeRuns[ent.Name()] = true
		}
	}

	r, k := e.runKilled(taskArgs(ts), fc.target, fc.p)
	runID := ""
	for _, ev := range r.events {
		if ev.Run != "" {
			runID = ev.Run
			break
		}
	}
	runs := c.runs()
	if runID == "" {
		for id := range runs {
			if !beforeRuns[id] {
				runID = id
			}
		}
	}
	if fc.target == "vmflow" && k.landed {
		// Its plugins follow it (their lifeline closes).
		c.plugins("after vmflow was killed")
	}
	if r.hung {
		c.fail("hang", "%s\n%s", r, r.tail())
	}
	if fc.target == "pipe" {
		c.pipe(r, runs[runID])
	}

	want := c.recover(ts, fc, r, runs[runID], runID, before)

	after := takeSnapshot(e.state)
	if after.err != nil {
		c.fail("end-state", "the state cannot be read: %v", after.err)
	}
	switch want {
	case "result":
		c.endState(after, ref.normal, "the state after the recovery differs from a clean run of "+ts.name, true)
	case "before":
		c.endState(after, before.exact(), "the state after the rollback differs from the state before the run", false)
	}
	c.orphans(after)
	c.whole(after)
	c.paused(after)
	c.stray(after)
	c.tmp()
	c.plugins("after the recovery")
	c.purge(ts.vms)
	c.tmp()
	// The runs, the recovery's and the purges' too, once they all ended.
	c.claims(c.runs(), commits, true)
	c.plugins("after the purge")

	if len(c.vs) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "%d violation(s):\n", len(c.vs))
		for _, v := range c.vs {
			fmt.Fprintf(&b, "  [%s] %s\n", v.check, v.msg)
		}
		fmt.Fprintf(&b, "how it went (in %s, with VMFLOW_STATE_DIR=%s; setup: %s):\n%s", testbin.Repo(), e.state, setupText(ts), e.transcript.String())
		t.Error(b.String())
	} else if testing.Verbose() || *verboseFlag {
		t.Log("\n" + e.transcript.String())
	}
}

func setupText(ts *taskSpec) string {
	if len(ts.setup) == 0 {
		return "none"
	}
	var s []string
	for _, cmd := range ts.setup {
		s = append(s, "vmflow "+strings.Join(setupArgs(cmd), " "))
	}
	return strings.Join(s, "; ")
}

// pipe: a closed output never stops a run: vmflow is not killed by
// SIGPIPE and leaves its run finished (done, or undone).
func (c *checker) pipe(r cmdResult, ri *runInfo) {
	if r.signal != 0 || r.code == 141 {
		c.fail("pipe", "%s after its output was closed\n%s", r, r.tail())
	}
	if ri != nil && (ri.Status == "interrupted" || ri.Status == "running") {
		c.fail("pipe", "run %s is left %s after its output was closed", ri.ID, ri.Status)
	}
}

// recover does what a user would after the kill, by mode, and returns
// what the state must then be: "result" (as after a clean run), "before"
// (as before the run), or "" (unknown: a recovery step failed, already
// reported).
func (c *checker) recover(ts *taskSpec, fc faultCase, r cmdResult, ri *runInfo, runID string, before *snapshot) string {
	e := c.e
	rerun := func(why string) string {
		rr := e.vmflow(taskArgs(ts)...)
		if c.expect(rr, 0, "recovery", why) {
			return "result"
		}
		return ""
	}
	if ri == nil {
		// Killed before the run had a journal: nothing ran.
		return rerun("the task again: the first run never started")
	}
	committed := ri.committed(ts.commit)
	committing := ri.committing(ts.commit)
	switch ri.Status {
	case "succeeded":
		return "result"
	case "interrupted", "running":
		switch fc.mode {
		case "resume", "-":
			rr := e.vmflow("--json", "resume", runID)
			if c.expect(rr, 0, "recovery", "resume of the interrupted run") {
				return "result"
			}
			return ""
		case "undo":
			return c.undoOrForward(ts, runID, committed, committing)
		case "rerun":
			rr := e.vmflow(taskArgs(ts)...)
			if rr.code == 0 {
				c.fail("rerun", "%s: the task ran again although run %s is interrupted", rr, runID)
				return "result"
			}
			if !c.expect(rr, 2, "rerun", "refused: run "+runID+" is interrupted") {
				return ""
			}
			if !strings.Contains(rr.stderr, runID) {
				c.fail("rerun", "%s: the refusal does not name the interrupted run %s\n%s", rr, runID, rr.tail())
			}
			switch c.undoOrForward(ts, runID, committed, committing) {
			case "before":
				return rerun("the task again after the rollback")
			case "result":
				return "result"
			}
			return ""
		case "purge":
			rr := e.vmflow(setupArgs([]string{"purge", ts.made})...)
			if !c.expect(rr, 0, "recovery", "purge of "+ts.made+" after an interrupted "+ts.name) {
				return ""
			}
			return rerun("the task again after a purge of " + ts.made + ": an interrupted run of a purged VM must not block it")
		}
	case "failed", "cancelled", "rolled_back":
		// vmflow ended the run itself (its plugin was killed).
		if committed == "" && committing != "" && !ri.undone {
			// Stopped in its commit step and left resumable: accepted,
			// as that step's change may be made and have no undo.
			committed = committing + " (failed)"
		}
		if committed != "" && !ri.undone {
			// Past its commit point: nothing undone, it stays resumable.
			if fc.mode == "undo" {
				rr := e.vmflow("--json", "resume", runID, "--undo")
				if rr.code != 2 {
					c.fail("commit", "%s: run %s failed after its commit point %s, yet resume --undo was not refused with exit 2\n%s", rr, runID, committed, rr.tail())
					if rr.code == 0 {
						return "before"
					}
				}
			}
			rr := e.vmflow("--json", "resume", runID)
			if c.expect(rr, 0, "recovery", "resume of a run that failed after its commit point "+committed) {
				return "result"
			}
			return ""
		}
		for _, st := range sortedKeys(ri.steps) {
			if ri.steps[st] == "undo_failed" {
				c.fail("undo", "run %s: the undo of step %s failed after the plugin was killed", runID, st)
			}
		}
		if committed != "" {
			// What it committed cannot be undone: no state to compare.
			c.fail("commit", "run %s completed its commit point %s, then failed, and its steps were undone (status %s)", runID, committed, ri.Status)
		} else {
			// Undone by vmflow: the state must be the one before the run.
			c.endState(takeSnapshot(e.state), before.exact(), fmt.Sprintf("run %s failed (%s) and was undone by vmflow, but the state differs from the one before the run", runID, ri.Status), false)
		}
		return rerun("the task again after run " + runID + " failed and was undone")
	}
	c.fail("runs", "run %s is %s after the kill: not a status the suite knows", runID, ri.Status)
	return ""
}

// undoOrForward rolls an interrupted run back with resume --undo; past
// its commit point the undo must be refused (exit 2), and then the run is
// resumed instead.
//
// A run interrupted in a commit step (committing) may be undone, or, as
// its change may be made and have no undo, be refused like a committed
// one: either is accepted.
func (c *checker) undoOrForward(ts *taskSpec, runID, committed, committing string) string {
	e := c.e
	rr := e.vmflow("--json", "resume", runID, "--undo")
	if committed != "" || (committing != "" && rr.code == 2) {
		if committed == "" {
			committed = committing + " (interrupted)"
		}
		if rr.code == 2 {
			// Refused, as it must be: forward.
			rf := e.vmflow("--json", "resume", runID)
			if c.expect(rf, 0, "recovery", "resume after --undo was refused past the commit point "+committed) {
				return "result"
			}
			return ""
		}
		c.fail("commit", "%s: run %s had completed its commit point %s, yet resume --undo was not refused (exit 2)\n%s", rr, runID, committed, rr.tail())
		// What it committed cannot be undone: no state to compare.
		return ""
	}
	switch rr.code {
	case 0:
		if n := len(rr.events); n > 0 && rr.events[n-1].Status != "rolled_back" {
			c.fail("recovery", "%s: exit 0, but the run ended %q, not rolled_back", rr, rr.events[n-1].Status)
		}
		return "before"
	case 1:
		c.fail("undo", "%s: an undo failed\n%s", rr, rr.tail())
		// Failed undos are retried by another resume --undo.
		r2 := e.vmflow("--json", "resume", runID, "--undo")
		if c.expect(r2, 0, "undo", "resume --undo again retries the undos that failed") {
			return "before"
		}
		return ""
	}
	c.expect(rr, 0, "recovery", "resume --undo of the interrupted run (no commit point completed)")
	return ""
}

var commitRE = regexp.MustCompile(`^\s*commit\s*=\s*true\b`)

// commitSteps are the commit points: the intended ones (taskSpec.commit)
// and whatever tasks.hcl marks `commit = true`.
func commitSteps(t *testing.T, tasks []*taskSpec) map[string][]string {
	out := map[string][]string{}
	for _, ts := range tasks {
		out[ts.name] = append([]string(nil), ts.commit...)
	}
	b, err := os.ReadFile(filepath.Join(testbin.Repo(), "tasks.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	task, step := "", ""
	taskRE := regexp.MustCompile(`^task "([^"]+)"`)
	stepRE := regexp.MustCompile(`^\s+step "([^"]+)"`)
	for _, l := range strings.Split(string(b), "\n") {
		if m := taskRE.FindStringSubmatch(l); m != nil {
			task, step = m[1], ""
		} else if m := stepRE.FindStringSubmatch(l); m != nil {
			step = m[1]
		} else if commitRE.MatchString(l) && task != "" && step != "" {
			found := false
			for _, s := range out[task] {
				found = found || s == step
			}
			if !found {
				out[task] = append(out[task], step)
			}
		}
	}
	return out
}

// copyDir copies a state dir (files, modes, symlinks).
func copyDir(t testing.TB, src, dst string) {
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, r)
		switch {
		case info.IsDir():
			return os.MkdirAll(to, info.Mode().Perm())
		case info.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, to)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}
