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

// A param's applies may use a param declared after it: that one counts
// with the value the command line gave, else its default (the wizard asks
// where the image comes from unless --image is given).
func TestParamAppliesLaterParam(t *testing.T) {
	p := mustLoad(t, memFS{root: `
task "create" {
  param "source" {
    default = "nix"
    applies = param.image == ""
  }
  param "image" {
    default = ""
    applies = param.source == "image"
  }
}
`}, Options{})
	task := p.Task("create")
	src, img := task.Param("source"), task.Param("image")
	if !task.ParamApplies(src, nil) {
		t.Error("source does not apply with no image given")
	}
	if task.ParamApplies(src, map[string]cty.Value{"image": cty.StringVal("disk.img")}) {
		t.Error("source applies with an image given")
	}
	if task.ParamApplies(img, nil) || !task.ParamApplies(img, map[string]cty.Value{"source": cty.StringVal("image")}) {
		t.Error("image's applies does not follow source")
	}
}

func TestParamAppliesRefs(t *testing.T) {
	for _, tc := range []struct{ applies, want string }{
		{`param.latter != ""`, `no param "latter"`},
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
