package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/vmflow/vmflow/internal/testbin"
)

// The lead example of docs/task-file.md is run by doc_task_file.txtar;
// this keeps the two copies the same, so the doc cannot drift.
func TestTaskFileDocExampleIsTested(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testbin.Repo(), "docs", "task-file.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```hcl\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/task-file.md has no hcl example")
	}
	ar, err := txtar.ParseFile(filepath.Join("testdata", "script", "doc_task_file.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ar.Files {
		if f.Name == "proj/tasks.hcl" {
			if string(f.Data) != string(m[1]) {
				t.Fatalf("the example in docs/task-file.md and proj/tasks.hcl of doc_task_file.txtar differ:\n--- doc\n%s\n--- test\n%s", m[1], f.Data)
			}
			return
		}
	}
	t.Fatal("doc_task_file.txtar has no proj/tasks.hcl")
}

// The completion example of docs/task-file.md is run by
// doc_completion.txtar.
func TestTaskFileCompletionExampleIsTested(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testbin.Repo(), "docs", "task-file.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```hcl completion\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/task-file.md has no completion example")
	}
	ar, err := txtar.ParseFile(filepath.Join("testdata", "script", "doc_completion.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ar.Files {
		if f.Name == "tasks.hcl" {
			if string(f.Data) != string(m[1]) {
				t.Fatalf("the completion example in docs/task-file.md and tasks.hcl of doc_completion.txtar differ:\n--- doc\n%s\n--- test\n%s", m[1], f.Data)
			}
			return
		}
	}
	t.Fatal("doc_completion.txtar has no tasks.hcl")
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
