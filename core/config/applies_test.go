package config

import (
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

const appliesSrc = `
variable "image" { default = "" }
task "create" {
  param "profiles" {
    type    = list(string)
    default = []
    applies = var.image == ""
  }
  param "static_ip" { default = "" }
  param "gateway" {
    default = ""
    applies = param.static_ip != ""
  }
  param "note" { default = "" }
}
`

func TestParamApplies(t *testing.T) {
	p := mustLoad(t, memFS{root: appliesSrc}, Options{})
	task := p.Task("create")
	gw, prof, note := task.Param("gateway"), task.Param("profiles"), task.Param("note")
	if task.ParamApplies(gw, nil) {
		t.Error("gateway applies with the default static_ip \"\"")
	}
	if !task.ParamApplies(gw, map[string]cty.Value{"static_ip": cty.StringVal("10.0.0.5/24")}) {
		t.Error("gateway does not apply with a static_ip")
	}
	if !task.ParamApplies(prof, nil) || !task.ParamApplies(note, nil) {
		t.Error("profiles (no image) or note (no applies) does not apply")
	}
	p = mustLoad(t, memFS{root: appliesSrc}, Options{Vars: []string{"image=disk.img"}})
	if task := p.Task("create"); task.ParamApplies(task.Param("profiles"), nil) {
		t.Error("profiles applies with --var image")
	}
	if got := task.Param("gateway").Complete; got != "" {
		t.Errorf("complete = %q without one", got)
	}
}

func TestParamAppliesRefs(t *testing.T) {
	for _, tc := range []struct{ applies, want string }{
		{`param.later != ""`, `no param "later"`},
		{`step.x.ok`, "step.* is not allowed here"},
	} {
		src := "task \"t\" {\n  param \"a\" {\n    default = \"\"\n    applies = " + tc.applies + "\n  }\n  param \"later\" { default = \"\" }\n}\n"
		_, diags := loadFS(memFS{root: src}, Options{})
		if !diags.HasErrors() || !strings.Contains(diagString(diags), tc.want) {
			t.Errorf("applies = %s: want an error %q, got:\n%s", tc.applies, tc.want, diagString(diags))
		}
	}
	_, diags := loadFS(memFS{root: "task \"t\" {\n  param \"a\" { complete = \"files:*\" }\n}\n"}, Options{})
	if !diags.HasErrors() || !strings.Contains(diagString(diags), "records:COLLECTION") {
		t.Errorf("complete = \"files:*\": got:\n%s", diagString(diags))
	}
}
