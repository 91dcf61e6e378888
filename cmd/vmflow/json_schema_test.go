package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vmflow/vmflow/internal/testbin"
	"github.com/vmflow/vmflow/internal/testfs"
)

// The --json output has one schema, docs/events.schema.json: every
// event and document the real binary prints, on the proxmox-stub and
// on bad input, must match it, and every event kind core/event declares
// must be in it.

const schemaFile = "docs/events.schema.json"

func compileSchema(t *testing.T, defs ...string) map[string]*jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join(testbin.Repo(), schemaFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("events.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]*jsonschema.Schema{}
	for _, d := range defs {
		s, err := c.Compile("events.schema.json#/$defs/" + d)
		if err != nil {
			t.Fatalf("%s: %v", schemaFile, err)
		}
		out[d] = s
	}
	return out
}

// declaredKinds reads the event kinds core/event declares (constants of
// type Kind), from its source, so that a new one cannot be forgotten.
func declaredKinds(t *testing.T) []string {
	t.Helper()
	fs := token.NewFileSet()
	f, err := parser.ParseFile(fs, filepath.Join(testbin.Repo(), "core", "event", "event.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, sp := range gd.Specs {
			vs := sp.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Kind" {
				continue
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok {
					s, _ := strconv.Unquote(lit.Value)
					kinds = append(kinds, s)
				}
			}
		}
	}
	if len(kinds) < 10 {
		t.Fatalf("found only %d event kinds in core/event: %v", len(kinds), kinds)
	}
	return kinds
}

func TestJSONSchemaCoversEveryEventKind(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testbin.Repo(), schemaFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Defs struct {
			Events map[string]json.RawMessage `json:"events"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	kinds := declaredKinds(t)
	for _, k := range kinds {
		if _, ok := doc.Defs.Events[k]; !ok {
			t.Errorf("event kind %q (core/event) has no schema in %s ($defs/events/%s)", k, schemaFile, k)
		}
	}
	for k := range doc.Defs.Events {
		if !slices.Contains(kinds, k) {
			t.Errorf("%s describes an event %q that core/event does not declare", schemaFile, k)
		}
	}
	// The schema rejects an event of a kind it does not know, and one
	// with a member its kind does not have.
	s := compileSchema(t, "event")["event"]
	for _, bad := range []string{
		`{"time":"2026-01-01T00:00:00Z","event":"no_such_event"}`,
		`{"time":"2026-01-01T00:00:00Z","event":"run_done","status":"succeeded","no_such_member":1}`,
		`{"time":"yesterday","event":"run_done","status":"succeeded"}`,
	} {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if s.Validate(v) == nil {
			t.Errorf("the schema accepts %s", bad)
		}
	}
}

const jsonTasks = `variable "backend" { default = "proxmox-stub" }
plugin "hypervisor" {
  source = var.backend
  host   = "build1" # run_started's and runs' hosts
}
plugin "kit" {
  source = "testkit"
}
task "hello" {
  description = "Say hello"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "tags" {
    type    = list(string)
    default = ["a", "b"]
  }
  param "memory" {
    type    = number
    default = 512
  }
  step "state" {
    action = hypervisor.list
  }
  step "count" {
    action = kit.progress
    steps  = 2
  }
  step "never" {
    action = builtin.exec
    argv   = ["true"]
    if     = false
  }
  output "greeting" { value = "hello ${param.name}" }
}
task "fails" {
  step "first" {
    action = kit.record
    file   = "record.txt"
    text   = "first"
  }
  step "second" {
    action     = kit.record
    file       = "record.txt"
    text       = "second"
    fail       = true
    depends_on = [step.first]
  }
}
task "calls" {
  step "inner" {
    task = "hello"
    name = "inner"
  }
}
`

// jsonCase is one command line and what its --json output is.
type jsonCase struct {
	args []string
	// def is the schema definition its stdout matches: "event" for a
	// stream of events (one per line), else a document.
	def  string
	code int
	// kinds are event kinds it must print.
	kinds []string
}

func TestJSONOutputMatchesSchema(t *testing.T) {
	dir := t.TempDir()
	testfs.Write(t, dir, "tasks.hcl", jsonTasks)
	if err := os.Mkdir(filepath.Join(dir, "fresh"), 0o755); err != nil {
		t.Fatal(err)
	}
	testfs.Write(t, dir, "bad/tasks.hcl", "task \"x\" {\n  step \"a\" {\n    action = nosuch.thing\n  }\n}\n")
	env := append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VMFLOW_STATE_DIR="+filepath.Join(dir, "state"), "HOME="+dir, "XDG_CACHE_HOME="+filepath.Join(dir, ".cache"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, ".config"))
	schemas := compileSchema(t, "event", "list", "vars", "runs", "plugins", "version", "written", "output")

	cases := []jsonCase{
		{args: []string{"--json", "hello", "web"}, def: "event", kinds: []string{"run_started", "step_started", "progress", "log", "step_done", "step_skipped", "run_done"}},
		{args: []string{"output", "--json", "last", "greeting"}, def: "output"},
		{args: []string{"calls", "--json"}, def: "event", kinds: []string{"call_started", "run_done"}},
		{args: []string{"--json", "fails"}, def: "event", code: 1, kinds: []string{"step_failed", "undo_started", "undo_done", "run_done", "error"}},
		{args: []string{"plan", "hello", "web", "--json"}, def: "event", kinds: []string{"plan"}},
		{args: []string{"validate", "--json"}, def: "event", kinds: []string{"validated"}},
		{args: []string{"list", "--json"}, def: "list"},
		{args: []string{"vars", "--json"}, def: "vars"},
		{args: []string{"runs", "--json"}, def: "runs"},
		{args: []string{"plugins", "--json", "proxmox-stub", "testkit"}, def: "plugins"},
		{args: []string{"version", "--json"}, def: "version"},
		// Errors before the run.
		{args: []string{"list", "--bogus", "--json"}, def: "event", code: 2, kinds: []string{"error"}},
		{args: []string{"--json", "-f", "nope.hcl", "list"}, def: "event", code: 2, kinds: []string{"error"}},
		{args: []string{"--json", "hello"}, def: "event", code: 2, kinds: []string{"error"}},
		{args: []string{"--json", "hello", "web", "--memory", "lots"}, def: "event", code: 2, kinds: []string{"error"}},
		{args: []string{"--json", "nosuch"}, def: "event", code: 2, kinds: []string{"error"}},
		{args: []string{"--json", "-f", "bad/tasks.hcl", "validate"}, def: "event", code: 2, kinds: []string{"error"}},
		{args: []string{"--json", "-f", "bad/tasks.hcl", "plan", "x"}, def: "event", code: 2, kinds: []string{"error"}},
		{args: []string{"--json", "--var", "backend=no-such-backend", "hello", "web"}, def: "event", code: 2, kinds: []string{"error"}},
		{args: []string{"--json", "resume", "nosuch"}, def: "event", code: 2, kinds: []string{"error"}},
		{args: []string{"--json", "output", "last", "nosuch"}, def: "event", code: 2, kinds: []string{"error"}},
		{args: []string{"--json", "lock"}, def: "written"},
		{args: []string{"--json", "-f", "fresh/tasks.hcl", "--var", "backend=proxmox-stub", "init"}, def: "written"},
		{args: []string{"--json", "-f", "fresh/tasks.hcl", "init"}, def: "event", code: 2, kinds: []string{"error"}},
	}
	validated := 0
	for _, tc := range cases {
		name := strings.Join(tc.args, " ")
		cmd := exec.Command(filepath.Join(binDir, "vmflow"), tc.args...)
		cmd.Dir, cmd.Env = dir, env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code, ok := exitCode(err)
		if !ok {
			t.Fatalf("%s: %v", name, err)
		}
		if code != tc.code {
			t.Errorf("vmflow %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", name, code, tc.code, stdout.String(), stderr.String())
			continue
		}
		if tc.def != "event" {
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(stdout.Bytes()))
			if err != nil {
				t.Errorf("vmflow %s: stdout is not one JSON document: %v\n%s", name, err, stdout.String())
				continue
			}
			if err := schemas[tc.def].Validate(v); err != nil {
				t.Errorf("vmflow %s: stdout does not match $defs/%s: %v\n%s", name, tc.def, err, stdout.String())
			}
			validated++
			continue
		}
		seen := map[string]int{}
		var last map[string]any
		sc := bufio.NewScanner(bytes.NewReader(stdout.Bytes()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
			if err != nil {
				t.Errorf("vmflow %s: a line of stdout is not JSON: %v\n%s", name, err, line)
				continue
			}
			if err := schemas["event"].Validate(v); err != nil {
				t.Errorf("vmflow %s: event does not match the schema: %v\n%s", name, err, line)
			}
			validated++
			m, _ := v.(map[string]any)
			k, _ := m["event"].(string)
			seen[k]++
			last = m
		}
		for _, k := range tc.kinds {
			if seen[k] == 0 {
				t.Errorf("vmflow %s: no %s event; stdout:\n%s\nstderr:\n%s", name, k, stdout.String(), stderr.String())
			}
		}
		// A command that fails says why as its last event.
		if code != 0 && (last == nil || !slices.Contains([]any{"error", "run_done"}, last["event"])) {
			t.Errorf("vmflow %s: exit %d, but the last event is %v", name, code, last)
		}
	}
	if validated < len(cases)+15 {
		t.Errorf("only %d JSON values were checked", validated)
	}
}
