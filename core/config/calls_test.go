package config

import (
	"fmt"
	"strings"
	"testing"
)

// A task of an included file calls its own file's task by its local name
// and the root's by its name; an optional include that is not there is
// skipped, one that is missing without optional is an error naming it.
func TestCallsAcrossIncludesAndOptionalIncludes(t *testing.T) {
	files := memFS{
		root: `
include "team" {
  path = "team.hcl"
}
include "mine" {
  path     = "mine.hcl"
  optional = true
}
task "base" {}
`,
		"/proj/team.hcl": `
task "helper" {
  internal = true
}
task "create" {
  step "a" {
    task = "helper"
  }
  step "b" {
    task = "base"
  }
}
`,
	}
	p := mustLoad(t, files, Options{})
	c := p.Task("team.create")
	if c.Steps[0].Called != p.Task("team.helper") || c.Steps[1].Called != p.Task("base") {
		t.Fatalf("calls bound to %v and %v", c.Steps[0].Called, c.Steps[1].Called)
	}
	if got := strings.Join(p.RunnableNames(), " "); got != "base team.create" {
		t.Fatalf("runnable: %s", got)
	}
	if got := strings.Join(p.Callers(p.Task("team.helper")), " "); got != "team.create" {
		t.Fatalf("callers: %s", got)
	}
	files[root] = strings.Replace(files[root], "optional = true", "", 1)
	if _, diags := loadFS(files, Options{}); !diags.HasErrors() || !strings.Contains(diags.Error(), "mine.hcl") {
		t.Fatalf("a missing include that is not optional: %v", diags)
	}
}

// An included file sees the variables and plugins of the file that
// includes it, unless it declares its own of that name.
func TestIncludeSeesTheIncludersVariablesAndPlugins(t *testing.T) {
	files := memFS{
		root: `
variable "uri" { default = "qemu:///system" }
variable "backend" { default = "libvirt" }
plugin "hypervisor" { source = "libvirt" }
include "team" {
  path = "team.hcl"
}
`,
		"/proj/team.hcl": `
variable "backend" { default = "proxmox-stub" }
task "create" {
  step "a" {
    action = hypervisor.define
    x      = "${var.uri} ${var.backend}"
  }
}
`,
	}
	p := mustLoad(t, files, Options{Vars: []string{"uri=qemu+ssh://h/system"}})
	team := p.Task("team.create").File
	if team.Plugin("hypervisor") != p.Root.Plugins["hypervisor"] {
		t.Fatal("the include does not see the root's plugin block")
	}
	if got := team.VarValues.GetAttr("uri").AsString(); got != "qemu+ssh://h/system" {
		t.Fatalf("var.uri in the include: %s", got)
	}
	if got := team.VarValues.GetAttr("backend").AsString(); got != "proxmox-stub" {
		t.Fatalf("var.backend the include declares itself: %s", got)
	}
}

// includeLifecycle includes the task file vmflow ships as lifecycle,
// flattened: its tasks keep their own names.
const includeLifecycle = `
include "vm" {
  path    = "vmflow:lifecycle"
  flatten = true
}
`

// A flattened include keeps its tasks' names, so a personal file can wrap
// the default create under a name of its own; a task file vmflow ships is
// included by its vmflow: name; two tasks of one name are refused.
func TestFlattenAndBuiltinIncludes(t *testing.T) {
	files := memFS{
		root: includeLifecycle + `
task "dev-vm" {
  step "vm" {
    task   = "create"
    memory = 4096
  }
}
`,
		"/usr/share/vmflow/tasks.hcl": `
task "create" {
  param "memory" {
    type    = number
    default = 1024
  }
}
`,
	}
	shipped := func(name string) (string, error) {
		if name != "lifecycle" {
			return "", fmt.Errorf("vmflow ships no task file %q (it ships: lifecycle)", name)
		}
		return "/usr/share/vmflow/tasks.hcl", nil
	}
	p := mustLoad(t, files, Options{Builtin: shipped})
	if got := strings.Join(p.TaskNames(), " "); got != "dev-vm create" {
		t.Fatalf("tasks: %s", got)
	}
	if p.Task("dev-vm").Steps[0].Called != p.Task("create") {
		t.Fatal("dev-vm does not call the included create")
	}
	if _, diags := loadFS(files, Options{}); !diags.HasErrors() || !strings.Contains(diags.Error(), `vmflow ships no task file "lifecycle"`) {
		t.Fatalf("unknown built-in file: %v", diags)
	}
	files[root] += "task \"create\" {}\n"
	if _, diags := loadFS(files, Options{Builtin: shipped}); !diags.HasErrors() || !strings.Contains(diags.Error(), `Duplicate task "create"`) {
		t.Fatalf("a clash: %v", diags)
	}
}

// A task file vmflow ships takes relative paths from where its includer
// works (the user's project), not from where it was written out.
func TestShippedFileWorksWhereTheUserDoes(t *testing.T) {
	files := memFS{
		root:                         includeLifecycle,
		"/state/builtin/x/tasks.hcl": `task "create" {}`,
	}
	p := mustLoad(t, files, Options{Builtin: func(string) (string, error) { return "/state/builtin/x/tasks.hcl", nil }})
	f := p.Task("create").File
	if f.Dir != "/state/builtin/x" || f.WorkDir != "/proj" {
		t.Fatalf("dir %s, work dir %s", f.Dir, f.WorkDir)
	}
	p, diags := loadFS(memFS{"/state/builtin/x/tasks.hcl": `task "create" {}`, root: ""}, Options{})
	if diags.HasErrors() || p.Root.WorkDir != "/proj" {
		t.Fatalf("a file of its own works in its directory: %s %v", p.Root.WorkDir, diags)
	}
}
