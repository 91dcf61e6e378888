package config

import (
	"strings"
	"testing"
)

const sharedParamsFile = `
variable "backend" { default = "libvirt" }

param "name" {
  type        = string
  description = "VM name"
  complete    = "records:machines/${var.backend}"
}
param "snapshot" {
  type        = string
  description = "snapshot name"
}

task "snapshot" {
  params = [param.name, param.snapshot]
  param "keep" {
    type    = bool
    default = true
  }
  step "s" {
    action = builtin.assert
    condition = param.keep
    message   = "${param.name} ${param.snapshot}"
  }
}

task "start" {
  params = [param.name]
}

include "team" { path = "team.hcl" }
`

func TestSharedParams(t *testing.T) {
	p := mustLoad(t, memFS{
		root: sharedParamsFile,
		// An included file takes the including file's shared params, and
		// may declare one of its own of the same name.
		"/proj/team.hcl": `
param "snapshot" {
  type    = string
  default = "latest"
}
task "restore" {
  params = [param.name, param.snapshot]
}
`,
	}, Options{})
	snap := p.Task("snapshot")
	var names []string
	for _, q := range snap.Params {
		names = append(names, q.Name)
	}
	equalStrings(t, "snapshot's params, in order", names, []string{"name", "snapshot", "keep"})
	if got := snap.Param("name"); got.Description != "VM name" || got.Complete != "records:machines/libvirt" || !got.Required() {
		t.Errorf("snapshot's name param = %+v, want the shared definition (required, completed from machines/libvirt)", got)
	}
	if p.Task("start").Param("name") == snap.Param("name") {
		t.Error("two tasks share one *Param: each task needs its own copy")
	}
	restore := p.Task("team.restore")
	if restore == nil || restore.Param("name") == nil || restore.Param("name").Description != "VM name" {
		t.Fatalf("team.restore lacks the including file's shared param name: %+v", restore)
	}
	if q := restore.Param("snapshot"); q == nil || q.Required() {
		t.Errorf("team.restore's snapshot = %+v, want team.hcl's own (default \"latest\")", q)
	}
	if got := snap.Usage(); !strings.Contains(got, "NAME SNAPSHOT") {
		t.Errorf("usage %q: the shared params are positional, in the order listed", got)
	}
}

func TestSharedParamsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, task, summary, detail, at string
	}{
		{"unknown", `task "t" { params = [param.nmae] }`, "Reference to undeclared shared param", `No shared param "nmae"`, "tasks.hcl:8,22-32"},
		{"not a traversal", `task "t" { params = ["name"] }`, "Invalid params", "param.NAME", "tasks.hcl:8,22-28"},
		{"not a list", `task "t" { params = param.name }`, "Invalid params", "params = [param.name", "tasks.hcl:8,21-31"},
		{"twice", `task "t" {
  params = [param.name]
  param "name" { type = string }
}`, `Duplicate param "name"`, `takes the shared param "name" already`, "tasks.hcl:10,3-15"},
		{"required after optional", `task "t" {
  params = [param.opt, param.name]
}`, "Required param after an optional one", `"name"`, "tasks.hcl:9,24-34"},
		{"applies on another param", `param "gw" {
  default = ""
  applies = param.ip != ""
}`, "param.* is not allowed here", "var.* only", "tasks.hcl:10,13-21"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := `
param "name" { type = string }
param "opt" {
  type    = string
  default = ""
}

` + tc.task + "\n"
			_, diags := loadFS(memFS{root: src}, Options{})
			d := findDiag(diags, tc.summary)
			if d == nil {
				t.Fatalf("no %q diagnostic; got:\n%s", tc.summary, diagString(diags))
			}
			if !strings.Contains(d.Detail, tc.detail) {
				t.Errorf("detail %q lacks %q", d.Detail, tc.detail)
			}
			if d.Subject == nil || !strings.HasSuffix(d.Subject.String(), tc.at) {
				t.Errorf("subject %v, want …%s", d.Subject, tc.at)
			}
		})
	}
}
