package config

import (
	"errors"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

const argsTasks = `
task "create" {
  param "name" {
    type = string
  }
  param "memory" {
    type    = number
    default = 1024
  }
  param "start" {
    type    = bool
    default = true
  }
  step "s" { action = builtin.exec }
}
task "install" {
  param "host" {}
  param "packages" {
    type = list(string)
  }
  step "s" { action = builtin.exec }
}
task "tag" {
  param "tags" {
    type    = set(string)
    default = []
  }
  step "s" { action = builtin.exec }
}
task "none" {
  step "s" { action = builtin.exec }
}
task "conf" {
  param "labels" {
    type    = map(string)
    default = {}
  }
  param "ports" {
    type    = list(number)
    default = [22]
  }
  step "s" { action = builtin.exec }
}
task "vm" {
  param "network" {
    options = ["nat", "bridge"]
  }
  param "vcpus" {
    type    = number
    default = 2
    options = [1, 2, 4]
  }
  param "profiles" {
    type    = list(string)
    default = []
    options = ["base", "dev", "gui"]
  }
  step "s" { action = builtin.exec }
}
include "team" {
  path = "team.hcl"
}
`

const argsTeam = `
task "build" {
  param "target" {}
  step "s" { action = builtin.exec }
}
`

func argsProject(t *testing.T) *Project {
	t.Helper()
	return mustLoad(t, memFS{root: argsTasks, "/proj/team.hcl": argsTeam}, Options{})
}

func TestUsageAndVariadic(t *testing.T) {
	p := argsProject(t)
	for _, tc := range []struct {
		task     string
		usage    string
		variadic bool
	}{
		{"create", "NAME [MEMORY] [START]", false},
		{"install", "HOST PACKAGES…", true},
		{"tag", "[TAGS…]", true},
		{"none", "", false},
		{"conf", "[LABELS] [PORTS…]", true},
		{"team.build", "TARGET", false},
	} {
		tk := p.Task(tc.task)
		if tk == nil {
			t.Fatalf("no task %s", tc.task)
		}
		if got := tk.Usage(); got != tc.usage {
			t.Errorf("%s: Usage() = %q, want %q", tc.task, got, tc.usage)
		}
		if got := tk.Variadic(); got != tc.variadic {
			t.Errorf("%s: Variadic() = %v, want %v", tc.task, got, tc.variadic)
		}
	}
}

// bindArgsCase is one call of BindArgs and what it must give.
type bindArgsCase struct {
	name       string
	task       string
	positional []string
	named      map[string]string
	want       cty.Value
	wantErr    string // the whole error message
}

// runBindArgs calls BindArgs of each case's task of argsProject.
func runBindArgs(t *testing.T, tests []bindArgsCase) {
	p := argsProject(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk := p.Task(tc.task)
			if tk == nil {
				t.Fatalf("no task %s", tc.task)
			}
			got, err := tk.BindArgs(tc.positional, tc.named)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("BindArgs = %#v, want error %q", got, tc.wantErr)
				}
				var ae *ArgError
				if !errors.As(err, &ae) {
					t.Errorf("error %T is not an *ArgError", err)
				}
				if err.Error() != tc.wantErr {
					t.Errorf("error = %q\nwant    %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("BindArgs: %v", err)
			}
			if !got.RawEquals(tc.want) {
				t.Errorf("BindArgs = %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// TestBindArgs: positional and named arguments of a task, their defaults,
// types and errors.
func TestBindArgs(t *testing.T) {
	runBindArgs(t, []bindArgsCase{
		{
			name: "positional, all", task: "create",
			positional: []string{"web", "4096", "false"},
			want:       obj(map[string]cty.Value{"name": str("web"), "memory": num(4096), "start": cty.False}),
		},
		{
			name: "positional, defaults fill the rest", task: "create",
			positional: []string{"web"},
			want:       obj(map[string]cty.Value{"name": str("web"), "memory": num(1024), "start": cty.True}),
		},
		{
			name: "named only", task: "create",
			named: map[string]string{"name": "db", "memory": " 2048 "},
			want:  obj(map[string]cty.Value{"name": str("db"), "memory": num(2048), "start": cty.True}),
		},
		{
			name: "positional and named", task: "create",
			positional: []string{"web"}, named: map[string]string{"start": "false"},
			want: obj(map[string]cty.Value{"name": str("web"), "memory": num(1024), "start": cty.False}),
		},
		{
			name: "named skips a positional slot", task: "create",
			positional: []string{"web"}, named: map[string]string{"start": "0", "memory": "1"},
			want: obj(map[string]cty.Value{"name": str("web"), "memory": num(1), "start": cty.False}),
		},
		{
			name: "a string keeps its spaces and commas", task: "create",
			positional: []string{" a, b "},
			want:       obj(map[string]cty.Value{"name": str(" a, b "), "memory": num(1024), "start": cty.True}),
		},
		{
			name: "too many", task: "create",
			positional: []string{"web", "1", "true", "extra"},
			wantErr:    `task create takes at most 3 argument(s) (NAME [MEMORY] [START]), got 4: unexpected "extra"`,
		},
		{
			name: "unknown named param", task: "create",
			named:   map[string]string{"nmae": "x"},
			wantErr: `task create has no param "nmae" (params: name, memory, start)`,
		},
		{
			name: "both positional and named", task: "create",
			positional: []string{"web"}, named: map[string]string{"name": "db"},
			wantErr: "param name given both by position and as --name",
		},
		{
			name: "missing required", task: "create",
			wantErr: "task create: missing required param name (usage: create NAME [MEMORY] [START])",
		},
		{
			name: "wrong type positional", task: "create",
			positional: []string{"web", "lots"},
			wantErr:    `task create: param memory: a number is required, got "lots"`,
		},
		{
			name: "wrong type named", task: "create",
			positional: []string{"web"}, named: map[string]string{"start": "yes"},
			wantErr: `task create: param start: a bool (true or false) is required, got "yes"`,
		},
	})
}

// TestBindArgsVariadic: a trailing list or set param collects the rest.
func TestBindArgsVariadic(t *testing.T) {
	runBindArgs(t, []bindArgsCase{
		{
			name: "variadic collects the rest", task: "install",
			positional: []string{"h1", "vim", "git", "curl"},
			want:       obj(map[string]cty.Value{"host": str("h1"), "packages": strList("vim", "git", "curl")}),
		},
		{
			name: "variadic with one", task: "install",
			positional: []string{"h1", "vim"},
			want:       obj(map[string]cty.Value{"host": str("h1"), "packages": strList("vim")}),
		},
		{
			name: "variadic named, comma-separated", task: "install",
			positional: []string{"h1"}, named: map[string]string{"packages": "vim,git"},
			want: obj(map[string]cty.Value{"host": str("h1"), "packages": strList("vim", "git")}),
		},
		{
			name: "variadic named, HCL", task: "install",
			positional: []string{"h1"}, named: map[string]string{"packages": `["a,b"]`},
			want: obj(map[string]cty.Value{"host": str("h1"), "packages": strList("a,b")}),
		},
		{
			// A single positional argument may be comma-separated; with
			// several, each is split as well.
			name: "variadic keeps each argument whole", task: "install",
			positional: []string{"h1", "a,b", "c"},
			want:       obj(map[string]cty.Value{"host": str("h1"), "packages": strList("a,b", "c")}),
		},
		{
			name: "variadic required and missing", task: "install",
			positional: []string{"h1"},
			wantErr:    "task install: missing required param packages (usage: install HOST PACKAGES…)",
		},
		{
			name: "variadic given both ways", task: "install",
			positional: []string{"h1", "vim", "git"}, named: map[string]string{"packages": "x"},
			wantErr: "param packages given both by position and as --packages",
		},
		{
			name: "optional variadic set dedups", task: "tag",
			positional: []string{"b", "a", "b"},
			want:       obj(map[string]cty.Value{"tags": cty.SetVal([]cty.Value{str("a"), str("b")})}),
		},
		{
			name: "optional variadic default", task: "tag",
			want: obj(map[string]cty.Value{"tags": cty.SetValEmpty(cty.String)}),
		},
	})
}

// TestBindArgsNoParams: a task without params takes no arguments.
func TestBindArgsNoParams(t *testing.T) {
	runBindArgs(t, []bindArgsCase{
		{
			name: "no params, no args", task: "none",
			want: cty.EmptyObjectVal,
		},
		{
			name: "no params, an arg", task: "none",
			positional: []string{"x"},
			wantErr:    `task none takes at most 0 argument(s) (), got 1: unexpected "x"`,
		},
		{
			name: "no params, a named arg", task: "none",
			named:   map[string]string{"x": "1"},
			wantErr: `task none has no param "x" (params: none)`,
		},
	})
}

// TestBindArgsCollections: map and list params, given as HCL or by their
// defaults.
func TestBindArgsCollections(t *testing.T) {
	runBindArgs(t, []bindArgsCase{
		{
			name: "map param as HCL, list of numbers variadic", task: "conf",
			positional: []string{`{ env = "dev" }`, "80", "443"},
			want: obj(map[string]cty.Value{
				"labels": cty.MapVal(map[string]cty.Value{"env": str("dev")}),
				"ports":  cty.ListVal([]cty.Value{num(80), num(443)}),
			}),
		},
		{
			name: "defaults of collection params", task: "conf",
			want: obj(map[string]cty.Value{"labels": cty.MapValEmpty(cty.String), "ports": cty.ListVal([]cty.Value{num(22)})}),
		},
		{
			name: "bad map param", task: "conf",
			positional: []string{"env=dev"},
			wantErr:    "task conf: param labels: not a valid map(string): Extra characters after expression",
		},
	})
}

// TestBindArgsOptions: params with options accept only those.
func TestBindArgsOptions(t *testing.T) {
	runBindArgs(t, []bindArgsCase{
		{
			name: "options accept their values", task: "vm",
			positional: []string{"bridge", "4", "gui", "base"},
			want:       obj(map[string]cty.Value{"network": str("bridge"), "vcpus": num(4), "profiles": strList("gui", "base")}),
		},
		{
			name: "options, named list", task: "vm",
			named: map[string]string{"network": "nat", "profiles": "dev,gui"},
			want:  obj(map[string]cty.Value{"network": str("nat"), "vcpus": num(2), "profiles": strList("dev", "gui")}),
		},
		{
			name: "a string outside the options", task: "vm",
			positional: []string{"host"},
			wantErr:    `task vm: param network: "host" is not one of its options: "nat", "bridge"`,
		},
		{
			name: "a number outside the options", task: "vm",
			named:   map[string]string{"network": "nat", "vcpus": "3"},
			wantErr: `task vm: param vcpus: 3 is not one of its options: 1, 2, 4`,
		},
		{
			name: "a list element outside the options", task: "vm",
			positional: []string{"nat", "1", "base", "devel"},
			wantErr:    `task vm: param profiles: "devel" is not one of its options: "base", "dev", "gui"`,
		},
		{
			name: "options are case-sensitive", task: "vm",
			named:   map[string]string{"network": "NAT"},
			wantErr: `task vm: param network: "NAT" is not one of its options: "nat", "bridge"`,
		},
	})
}

// TestBindArgsIncluded: a task of an include, named qualified.
func TestBindArgsIncluded(t *testing.T) {
	runBindArgs(t, []bindArgsCase{
		{
			name: "included task names itself qualified", task: "team.build",
			positional: []string{"a", "b"},
			wantErr:    `task team.build takes at most 1 argument(s) (TARGET), got 2: unexpected "b"`,
		},
		{
			name: "included task", task: "team.build",
			named: map[string]string{"target": "x"},
			want:  obj(map[string]cty.Value{"target": str("x")}),
		},
	})
}

// TestBindArgsVariadicBracket: each positional argument a trailing list
// param collects is one element; an argument that happens to start with
// '[' must not turn the whole list into an HCL expression.
func TestBindArgsVariadicBracket(t *testing.T) {
	p := argsProject(t)
	got, err := p.Task("install").BindArgs([]string{"h1", "[draft].txt", "notes.txt"}, nil)
	if err != nil {
		t.Fatalf("install h1 '[draft].txt' notes.txt: %v", err)
	}
	want := cty.ObjectVal(map[string]cty.Value{
		"host":     cty.StringVal("h1"),
		"packages": cty.ListVal([]cty.Value{cty.StringVal("[draft].txt"), cty.StringVal("notes.txt")}),
	})
	if !got.RawEquals(want) {
		t.Errorf("BindArgs = %#v, want %#v", got, want)
	}
}

func TestUnknownParams(t *testing.T) {
	p := argsProject(t)
	got := p.Task("create").UnknownParams()
	want := cty.ObjectVal(map[string]cty.Value{
		"name":   cty.UnknownVal(cty.String),
		"memory": cty.UnknownVal(cty.Number),
		"start":  cty.UnknownVal(cty.Bool),
	})
	if !got.RawEquals(want) {
		t.Errorf("UnknownParams = %#v, want %#v", got, want)
	}
	if got := p.Task("none").UnknownParams(); !got.RawEquals(cty.EmptyObjectVal) {
		t.Errorf("UnknownParams of a task without params = %#v", got)
	}
	tk := p.Task("create")
	if tk.Param("memory").Required() || !tk.Param("name").Required() {
		t.Error("Required")
	}
}

// TestSortArgsAndBind: SortArgs says which params the command line gave
// (the wizard asks for the others), and Bind fills in the rest.
func TestSortArgsAndBind(t *testing.T) {
	tk := argsProject(t).Task("vm")
	raw, err := tk.SortArgs([]string{"nat"}, map[string]string{"profiles": "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 2 || raw["network"][0] != "nat" || raw["profiles"][0] != "dev" {
		t.Fatalf("SortArgs = %v", raw)
	}
	raw["vcpus"] = []string{"4"} // an answer
	got, err := tk.Bind(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := cty.ObjectVal(map[string]cty.Value{
		"network": cty.StringVal("nat"), "vcpus": cty.NumberIntVal(4),
		"profiles": cty.ListVal([]cty.Value{cty.StringVal("dev")}),
	})
	if !got.RawEquals(want) {
		t.Errorf("Bind = %#v, want %#v", got, want)
	}
	if _, err := tk.ParseParam(tk.Param("vcpus"), []string{"many"}); err == nil ||
		err.Error() != `task vm: param vcpus: a number is required, got "many"` {
		t.Errorf("ParseParam(many) = %v", err)
	}
}
