package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/vmflow/vmflow/internal/testbin"
)

// Examples of docs/task-file.md that a script runs as written: the doc's
// copy and the script's must stay the same, so the doc cannot drift.
func TestTaskFileExamplesAreTested(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testbin.Repo(), "docs", "task-file.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range []struct{ what, pattern, script, file string }{
		{"the lead example", "(?s)```hcl\n(.*?)```", "doc_task_file.txtar", "proj/tasks.hcl"},
		{"the completion example", "(?s)```hcl completion\n(.*?)```", "doc_completion.txtar", "tasks.hcl"},
		{"the shared-params example", "(?s)### Shared params\n.*?```hcl\n(.*?)```", "doc_shared_params.txtar", "tasks.hcl"},
		{"the plugin timeout example", "(?s)```hcl plugin-timeout\n(.*?)```", "configure_hang.txtar", "doc.hcl"},
		{"the variable options example", "(?s)```hcl variable-options\n(.*?)```", "doc_variable_options.txtar", "tasks.hcl"},
		{"the task-call example", "(?s)```hcl task-call\n(.*?)```", "doc_task_call.txtar", "tasks.hcl"},
	} {
		m := regexp.MustCompile(ex.pattern).FindSubmatch(doc)
		if m == nil {
			t.Errorf("docs/task-file.md lacks %s", ex.what)
			continue
		}
		ar, err := txtar.ParseFile(filepath.Join("testdata", "script", ex.script))
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(ar.Files, func(f txtar.File) bool { return f.Name == ex.file })
		switch {
		case i < 0:
			t.Errorf("%s has no %s", ex.script, ex.file)
		case string(ar.Files[i].Data) != string(m[1]):
			t.Errorf("%s in docs/task-file.md and %s of %s differ:\n--- doc\n%s\n--- test\n%s", ex.what, ex.file, ex.script, m[1], ar.Files[i].Data)
		}
	}
}

// Every command docs/lifecycle.md shows under "Per-VM settings" is run,
// as written, by doc_settings.txtar.
func TestLifecycleSettingsDocIsTested(t *testing.T) {
	lifecycleSectionIsTested(t, "Per-VM settings", "doc_settings.txtar")
}

// The commands of "More than one host" are run by doc_hosts.txtar, and
// the .env it shows is the script's.
func TestLifecycleHostsDocIsTested(t *testing.T) {
	section := lifecycleSectionIsTested(t, "More than one host", "doc_hosts.txtar")
	m := regexp.MustCompile("(?s)```\n(VMFLOW_VAR_.*?)```").FindSubmatch(section)
	if m == nil {
		t.Fatal(`"More than one host" shows no .env`)
	}
	ar, err := txtar.ParseFile(filepath.Join("testdata", "script", "doc_hosts.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ar.Files {
		if f.Name == ".env" {
			if string(f.Data) != string(m[1]) {
				t.Fatalf("the .env of docs/lifecycle.md and doc_hosts.txtar differ:\n--- doc\n%s\n--- test\n%s", m[1], f.Data)
			}
			return
		}
	}
	t.Fatal("doc_hosts.txtar has no .env")
}

// lifecycleSectionIsTested checks that every vmflow command in the sh
// examples of a section of docs/lifecycle.md is run, as written, by the
// script; it returns the section.
func lifecycleSectionIsTested(t *testing.T, title, scriptName string) []byte {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(testbin.Repo(), "docs", "lifecycle.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?s)## ` + regexp.QuoteMeta(title) + `\n(.*?)\n## `).FindSubmatch(doc)
	if section == nil {
		t.Fatalf(`docs/lifecycle.md has no %q section`, title)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "script", scriptName))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllSubmatch(section[1], -1) {
		for _, line := range regexp.MustCompile(`(?m)^vmflow .*$`).FindAll(block[1], -1) {
			cmd := regexp.MustCompile(`\s+#.*$`).ReplaceAll(line, nil)
			n++
			if !regexp.MustCompile(`(?m)^exec ` + regexp.QuoteMeta(string(cmd)) + `$`).Match(script) {
				t.Errorf("docs/lifecycle.md shows %q, which %s does not run", cmd, scriptName)
			}
		}
	}
	if n == 0 {
		t.Fatalf(`no vmflow command in the %q examples`, title)
	}
	return section[1]
}

// docCommandsNotRun are the commands the docs show that no script can run
// here, each with the reason; every other command a doc shows is run,
// as written, by a script.
var docCommandsNotRun = map[string]string{
	"vmflow create agent --profiles claude,dev,docker": "builds the real NixOS image, from nixpkgs, which these machines cannot reach; profiles/ is checked by offline evaluation (profiles/nix_test.go)",
	"vmflow ssh agent": "needs that image's VM",
	"vmflow create web --var 'uri=qemu+ssh://root@build1/system?keyfile=/home/me/.ssh/id_ed25519&known_hosts=/home/me/.ssh/known_hosts' \\": "a real remote host; vm_ssh.txtar runs the same over 127.0.0.1 through a real sshd",
	"vmflow create":      "the wizard, on a terminal: TestWizardImageSource and the other wizard tests drive it on a pty",
	"vmflow create demo": "its error needs a run of create demo that vmflow was killed in: vm_kill.txtar makes one and checks the message (interrupted.txtar on its own task file)",
	"vmflow snapshot web before --var 'uri=…'": "the same remote host (vm_ssh.txtar)",
}

// Every vmflow command README.md and docs/*.md show in a shell block is
// run, as written, by a script of testdata/script (exec or ! exec), or is
// in docCommandsNotRun with the reason. A synopsis (TASK, ARGS…, [flags])
// is not a command.
func TestDocCommandsAreTested(t *testing.T) {
	docs, _ := filepath.Glob(filepath.Join(testbin.Repo(), "docs", "*.md"))
	docs = append(docs, filepath.Join(testbin.Repo(), "README.md"))
	scripts, _ := filepath.Glob(filepath.Join("testdata", "script", "*.txtar"))
	run := map[string]bool{}
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)^!? ?exec (vmflow .*)$`).FindAllSubmatch(b, -1) {
			run[string(m[1])] = true
		}
	}
	synopsis := regexp.MustCompile(`…|\[|\b[A-Z][A-Z_]{2,}\b`)
	n := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range shellLines(string(b)) {
			{
				cmd := strings.TrimPrefix(strings.TrimSpace(line), "$ ")
				if !strings.HasPrefix(cmd, "vmflow ") {
					continue
				}
				cmd = regexp.MustCompile(`\s+#.*$`).ReplaceAllString(cmd, "")
				if _, ok := docCommandsNotRun[cmd]; ok {
					continue
				}
				if synopsis.MatchString(strings.TrimPrefix(cmd, "vmflow ")) {
					continue
				}
				n++
				if !run[cmd] {
					t.Errorf("%s shows %q, which no script of testdata/script runs (exec %s)", filepath.Base(doc), cmd, cmd)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d commands found in the docs", n)
	}
}

// shellLines are the lines of a markdown text's shell blocks: fenced
// with sh, bash, console or no language.
func shellLines(md string) []string {
	var out []string
	in, shell := false, false
	for _, line := range strings.Split(md, "\n") {
		if fence, ok := strings.CutPrefix(strings.TrimSpace(line), "```"); ok {
			if in {
				in = false
				continue
			}
			in = true
			lang, _, _ := strings.Cut(fence, " ")
			shell = lang == "" || lang == "sh" || lang == "bash" || lang == "console"
			continue
		}
		if in && shell {
			out = append(out, line)
		}
	}
	return out
}
