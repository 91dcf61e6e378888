package main

import (
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
)

func testTask() *config.Task {
	return &config.Task{Name: "create", Params: []*config.Param{
		{Name: "name", Type: cty.String, Default: cty.NilVal},
		{Name: "memory", Type: cty.Number, Default: cty.NumberIntVal(2048)},
		{Name: "force", Type: cty.Bool, Default: cty.False},
		{Name: "profiles", Type: cty.List(cty.String), Default: cty.ListValEmpty(cty.String)},
	}}
}

func TestParseTaskArgs(t *testing.T) {
	cases := []struct {
		args  []string
		pos   []string
		named map[string]string
		vars  []string
		keep  bool
		yes   bool
		err   string
	}{
		{args: []string{"demo", "4096"}, pos: []string{"demo", "4096"}},
		{args: []string{"demo", "--memory", "4096"}, pos: []string{"demo"}, named: map[string]string{"memory": "4096"}},
		{args: []string{"--memory=4096", "demo"}, pos: []string{"demo"}, named: map[string]string{"memory": "4096"}},
		{args: []string{"demo", "--force"}, pos: []string{"demo"}, named: map[string]string{"force": "true"}},
		{args: []string{"demo", "--profiles", "a", "--profiles", "b"}, pos: []string{"demo"}, named: map[string]string{"profiles": "a,b"}},
		{args: []string{"demo", "--var", "backend=x", "--keep-on-failure"}, pos: []string{"demo"}, vars: []string{"backend=x"}, keep: true},
		{args: []string{"--", "--weird-name"}, pos: []string{"--weird-name"}},
		{args: []string{"demo", "--yes"}, pos: []string{"demo"}, yes: true},
		{args: []string{"-y", "demo"}, pos: []string{"demo"}, yes: true},
		{args: []string{"demo", "-1"}, pos: []string{"demo", "-1"}},
		{args: []string{"demo", "--memroy", "1"}, err: `task create: unknown flag --memroy. Did you mean "memory"? Params: --name, --memory, --force, --profiles. Arguments that start with '-' go after --: vmflow create … -- --memroy`},
		{args: []string{"demo", "--memory"}, err: "task create: flag --memory needs a value"},
		{args: []string{"--name", "a", "--name", "b"}, err: "task create: --name given twice"},
	}
	for _, c := range cases {
		ta, err := parseTaskArgs(testTask(), c.args)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%v: err = %v, want %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		if !slices.Equal(ta.positional, c.pos) || !slices.Equal(ta.vars, c.vars) || ta.keepOnFailure != c.keep || ta.yes != c.yes {
			t.Errorf("%v: got %+v", c.args, ta)
		}
		for k, v := range c.named {
			if ta.named[k] != v {
				t.Errorf("%v: named[%s] = %q, want %q", c.args, k, ta.named[k], v)
			}
		}
		if len(ta.named) != len(c.named) {
			t.Errorf("%v: named = %v", c.args, ta.named)
		}
	}
}

func TestHoistGlobalFlags(t *testing.T) {
	cases := []struct{ in, want []string }{
		{[]string{"vmflow", "list", "-f", "x.hcl"}, []string{"vmflow", "-f", "x.hcl", "list"}},
		{[]string{"vmflow", "--json", "runs", "--limit", "3", "-v"}, []string{"vmflow", "--json", "-v", "runs", "--limit", "3"}},
		{[]string{"vmflow", "resume", "last", "--var=a=b"}, []string{"vmflow", "--var=a=b", "resume", "last"}},
		{[]string{"vmflow", "list", "--yes"}, []string{"vmflow", "--yes", "list"}},
		// Task commands parse their own flags.
		{[]string{"vmflow", "create", "demo", "-f", "x"}, []string{"vmflow", "create", "demo", "-f", "x"}},
		{[]string{"vmflow", "-f", "x", "list", "--", "-v"}, []string{"vmflow", "-f", "x", "list", "--", "-v"}},
	}
	for _, c := range cases {
		if got := hoistGlobalFlags(c.in); !slices.Equal(got, c.want) {
			t.Errorf("hoist(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// SIGTERM, as a service manager or `kill` sends it, cancels the run like
// Ctrl-C; a second one abandons the undos.
func TestSignalContexts(t *testing.T) {
	var seen []int
	runCtx, undoCtx, stop := signalContexts(func(n int) { seen = append(seen, n) })
	defer stop()
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case <-runCtx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not cancel the run")
	}
	if undoCtx.Err() != nil {
		t.Fatal("the first signal must leave the undos running")
	}
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	select {
	case <-undoCtx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a second signal did not abandon the undos")
	}
	if !slices.Equal(seen, []int{1, 2}) {
		t.Fatalf("signals seen %v", seen)
	}
}

// A param named like a run flag wins over it: a task may have a param
// "yes".
func TestParseTaskArgsParamNamedYes(t *testing.T) {
	tk := &config.Task{Name: "t", Params: []*config.Param{{Name: "yes", Type: cty.Bool, Default: cty.False}}}
	ta, err := parseTaskArgs(tk, []string{"--yes"})
	if err != nil {
		t.Fatal(err)
	}
	if ta.yes || ta.named["yes"] != "true" {
		t.Fatalf("got yes=%v named=%v", ta.yes, ta.named)
	}
}

func TestCommandLine(t *testing.T) {
	p := func(name string) *config.Param { return &config.Param{Name: name} }
	cases := []struct {
		args    []string
		answers []answer
		want    string
	}{
		{[]string{"/usr/bin/vmflow", "create"}, []answer{{param: p("name"), raw: "web"}, {param: p("ip"), raw: ""}},
			"vmflow create --name=web --ip=''"},
		{[]string{"vmflow", "-f", "my tasks.hcl", "run", "create", "--", "-odd"}, []answer{{param: p("note"), raw: "it's"}},
			`vmflow -f 'my tasks.hcl' run create --note='it'\''s' -- -odd`},
		{[]string{"vmflow", "create"}, []answer{{param: p("profiles"), raw: `["a,b", "c"]`}},
			`vmflow create --profiles='["a,b", "c"]'`},
	}
	for _, c := range cases {
		if got := commandLine(c.args, c.answers); got != c.want {
			t.Errorf("commandLine(%q) = %s\nwant %s", c.args, got, c.want)
		}
	}
}

// vmflow exec b1 ls -l /: once a trailing list param has a value, a flag
// vmflow does not know is one of its values; vmflow's own flags still
// work, and before the list begins an unknown flag is an error.
func TestParseTaskArgsTrailingList(t *testing.T) {
	exec := &config.Task{Name: "exec", Params: []*config.Param{
		{Name: "name", Type: cty.String, Default: cty.NilVal},
		{Name: "command", Type: cty.List(cty.String), Default: cty.NilVal},
	}}
	ta, err := parseTaskArgs(exec, []string{"b1", "ls", "-l", "--all", "/"})
	if err != nil || !slices.Equal(ta.positional, []string{"b1", "ls", "-l", "--all", "/"}) {
		t.Fatalf("%+v %v", ta, err)
	}
	ta, err = parseTaskArgs(exec, []string{"--name", "b1", "ls", "-l"})
	if err != nil || !slices.Equal(ta.positional, []string{"ls", "-l"}) {
		t.Fatalf("named first: %+v %v", ta, err)
	}
	ta, err = parseTaskArgs(exec, []string{"b1", "ls", "--json"})
	if err != nil || !ta.json || !slices.Equal(ta.positional, []string{"b1", "ls"}) {
		t.Fatalf("a flag of vmflow's own: %+v %v", ta, err)
	}
	if _, err := parseTaskArgs(exec, []string{"b1", "-l"}); err == nil {
		t.Fatal("an unknown flag before the command began was taken")
	}
}

// The list cache's fast path sees every global flag: --parallelism, which
// list ignores, must not send `vmflow --parallelism 2 list` the slow way.
func TestListOnly(t *testing.T) {
	cases := []struct {
		args         []string
		asJSON, list bool
	}{
		{[]string{"list"}, false, true},
		{[]string{"--json", "list"}, true, true},
		{[]string{"-f", "x.hcl", "--var", "a=b", "-v", "list"}, false, true},
		{[]string{"--state-dir=/s", "list", "--json"}, true, true},
		{[]string{"--parallelism", "2", "list"}, false, true},
		{[]string{"--parallelism=2", "list"}, false, true},
		{[]string{"list", "extra"}, false, false},
		{[]string{"runs"}, false, false},
		{[]string{"-f", "list"}, false, false},
	}
	for _, c := range cases {
		if asJSON, ok := listOnly(c.args); asJSON != c.asJSON || ok != c.list {
			t.Errorf("listOnly(%q) = %v, %v; want %v, %v", c.args, asJSON, ok, c.asJSON, c.list)
		}
	}
}
