package faults

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmflow/vmflow/internal/testbin"
)

// Running the real vmflow, reading its --json events, and killing it or
// its plugin at a chosen point.

// event is one --json line of vmflow (core/event.Event, the fields the
// suite reads).
type event struct {
	Kind    string `json:"event"`
	Run     string `json:"run"`
	Step    string `json:"step"`
	Action  string `json:"action"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Error   string `json:"error"`
	// key names the event within its run: started-define, log-var-1…
	key string
}

// keyer names events the same way in every run of a task: by kind and
// step, numbered when a kind repeats for a step (log lines).
type keyer map[string]int

func (k keyer) key(e event) string {
	short := map[string]string{"step_started": "started", "step_done": "done", "step_failed": "failed", "step_skipped": "skipped"}[e.Kind]
	if short == "" {
		short = e.Kind
	}
	base := short
	if e.Step != "" {
		base += "-" + e.Step
	}
	k[base]++
	n := k[base]
	if e.Kind == "log" || e.Kind == "progress" {
		return fmt.Sprintf("%s-%d", base, n)
	}
	if n > 1 {
		return fmt.Sprintf("%s-%d", base, n)
	}
	return base
}

// cmdResult is what one vmflow command did.
type cmdResult struct {
	args           []string
	code           int            // exit code; -1 when a signal ended it
	signal         syscall.Signal // the signal that ended it, if any
	stdout, stderr string
	events         []event
	elapsed        time.Duration
	hung           bool // it did not end within the limit and was killed
}

func (r cmdResult) String() string {
	how := fmt.Sprintf("exit %d", r.code)
	if r.signal != 0 {
		how = "killed by " + r.signal.String()
	}
	if r.hung {
		how += " (hung: killed by the suite)"
	}
	return fmt.Sprintf("`vmflow %s`: %s", strings.Join(r.args, " "), how)
}

// tail is the last lines of the command's stderr (and of its stdout when
// it was not --json), for violation reports.
func (r cmdResult) tail() string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if l != "" {
			lines = append(lines, "    stderr| "+l)
		}
	}
	if len(r.events) == 0 {
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if l != "" {
				lines = append(lines, "    stdout| "+l)
			}
		}
	}
	if len(lines) > 12 {
		lines = append([]string{"    …"}, lines[len(lines)-12:]...)
	}
	return strings.Join(lines, "\n")
}

// commandLimit bounds every vmflow command: on the stub, each takes well
// under a second.
const commandLimit = 2 * time.Minute

// env is one case's world: its own state dir, HOME and transcript.
type env struct {
	t     testing.TB
	dir   string // the case's directory (HOME)
	state string // VMFLOW_STATE_DIR
	// plugin is the hypervisor plugin's binary, the plugin target.
	plugin string
	// transcript of every command run, printed when the case fails.
	mu         sync.Mutex
	transcript strings.Builder
}

func newEnv(t testing.TB, dir string) *env {
	e := &env{t: t, dir: dir, state: filepath.Join(dir, "state"), plugin: "vmflow-plugin-proxmox-stub"}
	if err := os.MkdirAll(e.state, 0o700); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "VMFLOW_STATE_DIR", k == "HOME", k == "XDG_CACHE_HOME", k == "XDG_STATE_HOME",
			k == "SSH_AUTH_SOCK", k == "PATH", k == "VMFLOW_PLUGIN_PATH", k == "NO_COLOR",
			strings.HasPrefix(k, "VMFLOW_VAR_"):
			continue
		}
		out = append(out, kv)
	}
	return append(out,
		"VMFLOW_STATE_DIR="+e.state,
		"HOME="+e.dir,
		"XDG_CACHE_HOME="+filepath.Join(e.dir, ".cache"),
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"NO_COLOR=1",
	)
}

func (e *env) command(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, "vmflow"), args...)
	cmd.Dir = testbin.Repo() // its tasks.hcl is the one the users run
	cmd.Env = e.environ()
	return cmd
}

func (e *env) note(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(&e.transcript, format+"\n", args...)
}

func (e *env) record(r cmdResult) {
	figures.commands.Add(1)
	e.note("$ vmflow %s   # %s, %s", strings.Join(r.args, " "), strings.TrimPrefix(r.String(), "`vmflow "+strings.Join(r.args, " ")+"`: "), r.elapsed.Round(time.Millisecond))
	if *verboseFlag {
		if r.stdout != "" {
			e.note("%s", indent(r.stdout, "  stdout| "))
		}
		if r.stderr != "" {
			e.note("%s", indent(r.stderr, "  stderr| "))
		}
	}
}

func indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// vmflow runs one command to its end.
func (e *env) vmflow(args ...string) cmdResult {
	cmd := e.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("starting vmflow: %v", err)
	}
	r := cmdResult{args: args}
	r.hung = waitLimit(cmd, commandLimit)
	r.elapsed = time.Since(start)
	r.code, r.signal = exitOf(cmd)
	r.stdout, r.stderr = out.String(), errb.String()
	for _, l := range strings.Split(r.stdout, "\n") {
		var ev event
		if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &ev) == nil && ev.Kind != "" {
			r.events = append(r.events, ev)
		}
	}
	e.record(r)
	return r
}

// waitLimit waits for cmd, killing it after limit; it reports whether it
// had to.
func waitLimit(cmd *exec.Cmd, limit time.Duration) bool {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return false
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		return true
	}
}

func exitOf(cmd *exec.Cmd) (int, syscall.Signal) {
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return -1, ws.Signal()
	}
	return cmd.ProcessState.ExitCode(), 0
}

// point is where a run is interrupted.
type point struct {
	// name is the subtest's name: run_started, started-define, done-save,
	// log-var-1, claim-define, change-define, random-3, stdout, stderr.
	name string
	// what triggers the kill:
	event  string // after this --json event
	claim  string // right after this step's first claim
	change string // right after the first change to the state dir while this step runs
	// area: where the change step's changes go (state dir prefixes);
	// byClaim: the step claims before it changes, so its claim arms the
	// trigger (in the same inotify queue as the change: exact), rather
	// than its step_started event (read from another pipe: a change by
	// an earlier step, reported late, could pass for its own).
	area    []string
	byClaim bool
	// watchOnly: no kill; the run's claims are recorded (the clean run).
	watchOnly bool
	delay     time.Duration // this long after vmflow started
	pipe      string        // stdout or stderr: closed early, after the first lines
	// about says in words where it is, for reports.
	about string
}

// kill is what the killer did.
type kill struct {
	sent   bool   // a SIGKILL went out
	landed bool   // while the run was still going
	what   string // what was killed, and after what
	// claimed: the steps seen claiming, in order.
	claimed []string
}

// runKilled runs a task with --json and kills the target (vmflow or
// plugin) at p; for a pipe point it closes vmflow's output early instead.
func (e *env) runKilled(args []string, target string, p point) (cmdResult, kill) {
	if p.pipe != "" {
		return e.runPiped(args, p)
	}
	cmd := e.command(args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb

	kr := &killRun{e: e, cmd: cmd, target: target, last: "no event yet"}
	var w *watcher
	if p.claim != "" || p.change != "" || p.watchOnly {
		w, err = watch(e.state, func(c change) {
			kr.mu.Lock()
			defer kr.mu.Unlock()
			if kr.k.sent {
				return
			}
			switch {
			case c.claimStep != "":
				if !slices.Contains(kr.k.claimed, c.claimStep) {
					kr.k.claimed = append(kr.k.claimed, c.claimStep)
				}
				if p.claim != "" && c.claimStep == stepDir(p.claim) {
					kr.kill("right after step " + p.claim + " claimed " + c.path)
				}
				if p.change != "" && c.claimStep == stepDir(p.change) {
					kr.armed = true
				}
			case kr.armed && p.change != "" && inArea(c.path, p.area):
				kr.kill("right after step " + p.change + " changed " + c.path)
			}
		})
		if err != nil {
			e.t.Fatal(err)
		}
		defer w.close()
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	if p.delay > 0 {
		timer := time.AfterFunc(p.delay, func() {
			kr.mu.Lock()
			defer kr.mu.Unlock()
			kr.kill(fmt.Sprintf("%v after it started", p.delay))
		})
		defer timer.Stop()
	}
	readDone := make(chan struct{})
	var raw bytes.Buffer
	go func() {
		defer close(readDone)
		keys := keyer{}
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			line := sc.Bytes()
			raw.Write(line)
			raw.WriteByte('\n')
			var ev event
			if json.Unmarshal(line, &ev) != nil || ev.Kind == "" {
				continue
			}
			kr.mu.Lock()
			ev.key = keys.key(ev)
			kr.events = append(kr.events, ev)
			kr.last = ev.key
			if ev.Kind == "run_started" && target == "plugin" {
				kr.plugins = pluginChildren(cmd.Process.Pid, e.plugin)
			}
			if p.event != "" && ev.key == p.event {
				kr.kill("right after event " + ev.key)
			}
			if p.change != "" && ev.Step == p.change {
				switch ev.Kind {
				case "step_started":
					kr.armed = kr.armed || !p.byClaim
				case "step_done", "step_failed":
					kr.armed = false
				}
			}
			kr.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	// Reading ends when every writer is gone: vmflow, and anything that
	// inherited its stdout.
	select {
	case <-readDone:
	case <-time.After(commandLimit):
	}
	r := cmdResult{args: args}
	r.hung = waitLimit(cmd, 10*time.Second)
	r.elapsed = time.Since(start)
	r.code, r.signal = exitOf(cmd)
	kr.mu.Lock()
	r.events = kr.events
	r.stdout, r.stderr = raw.String(), errb.String()
	if !kr.k.sent && !p.watchOnly {
		kr.k.what = "no kill: the run ended before the point came (last event: " + kr.last + ")"
	}
	if target == "vmflow" {
		// Killed mid-run, or it had ended by itself.
		kr.k.landed = kr.k.sent && r.signal == syscall.SIGKILL
	}
	if target == "vmflow" && kr.k.landed && len(kr.events) > 0 {
		// What it wrote before it died is read by now: where it was.
		kr.k.what += "; its last event: " + kr.events[len(kr.events)-1].key
	}
	if kr.k.landed {
		figures.landed.Add(1)
	}
	kk := kr.k
	kr.mu.Unlock()
	e.record(r)
	if kk.what != "" {
		e.note("  %s", kk.what)
	}
	return r, kk
}

// killRun is what runKilled's watcher, timer and reader share, under mu.
type killRun struct {
	e      *env
	cmd    *exec.Cmd
	target string
	mu     sync.Mutex
	events []event
	k      kill
	armed  bool // a change trigger: its step runs
	// plugins: the stub's processes, found once the run started, so
	// that a kill goes out at once.
	plugins []int
	last    string
}

// kill sends the kill, once (with mu held): SIGKILL to vmflow, or to the
// plugin's processes.
func (kr *killRun) kill(why string) {
	if kr.k.sent {
		return
	}
	kr.k.sent = true
	figures.kills.Add(1)
	switch kr.target {
	case "vmflow":
		_ = kr.cmd.Process.Signal(syscall.SIGKILL)
		kr.k.what = fmt.Sprintf("SIGKILL vmflow (pid %d) %s (last event: %s)", kr.cmd.Process.Pid, why, kr.last)
	case "plugin":
		pids := kr.plugins
		if len(pids) == 0 {
			pids = pluginChildren(kr.cmd.Process.Pid, kr.e.plugin)
		}
		for _, pid := range pids {
			// Plugins live only as long as vmflow (their lifeline):
			// one that is there to kill is killed mid-run.
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				kr.k.landed = true
			}
		}
		kr.k.what = fmt.Sprintf("SIGKILL %s %v %s (last event: %s)", kr.e.plugin, pids, why, kr.last)
	}
}

// runPiped runs a task with its output on a pipe that the reader closes
// after the first line, as `vmflow … | head -1` does: --json events on
// stdout, or the plain output with stderr on the same pipe (`2>&1 | head
// -3`).
func (e *env) runPiped(args []string, p point) (cmdResult, kill) {
	if p.pipe == "stderr" {
		// The plain output, on a pipe with stderr: no --json.
		var plain []string
		for _, a := range args {
			if a != "--json" {
				plain = append(plain, a)
			}
		}
		args = plain
	}
	cmd := e.command(args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		e.t.Fatal(err)
	}
	var errb bytes.Buffer
	lines := 1
	cmd.Stdout = pw
	if p.pipe == "stderr" {
		cmd.Stderr = pw
		lines = 3
	} else {
		cmd.Stderr = &errb
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	pw.Close()
	var head bytes.Buffer
	br := bufio.NewReader(pr)
	for i := 0; i < lines; i++ {
		l, err := br.ReadString('\n')
		head.WriteString(l)
		if err != nil {
			break
		}
	}
	pr.Close() // head exits
	r := cmdResult{args: args}
	r.hung = waitLimit(cmd, commandLimit)
	r.elapsed = time.Since(start)
	r.code, r.signal = exitOf(cmd)
	r.stdout, r.stderr = head.String(), errb.String()
	e.record(r)
	k := kill{what: fmt.Sprintf("output (%s) closed after %d line(s)", p.pipe, lines)}
	e.note("  %s", k.what)
	return r, k
}

// inArea: a path under one of the prefixes (all, when there are none).
func inArea(path string, area []string) bool {
	if len(area) == 0 {
		return true
	}
	for _, a := range area {
		if path == a || strings.HasPrefix(path, a+"/") {
			return true
		}
	}
	return false
}

// pluginChildren lists the processes whose parent is pid and whose
// executable is named name.
func pluginChildren(pid int, name string) []int {
	var out []int
	for _, child := range testbin.PIDs() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if ppid != pid {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", child))
		if err == nil && filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == name {
			out = append(out, child)
		}
	}
	return out
}

// pluginsOf lists the plugin processes started for a state dir.
func pluginsOf(state string) []string {
	var out []string
	for _, p := range testbin.PluginsOf(state) {
		out = append(out, p.String())
	}
	return out
}
