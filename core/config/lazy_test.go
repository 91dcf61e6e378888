package config

import (
	"strings"
	"testing"
)

const lazyFile = `
variable "greeting" {
  type    = string
  default = "hi"
}
plugin "p" {
  source = "hello"
}
task "a" {
  description = "calls b, ${var.greeting}"
  param "n" {
    type    = string
    default = var.greeting
  }
  step "one" {
    task = "b"
  }
}
task "b" {
  step "x" {
    action = p.greet
  }
}
task "c" {
  description = "not needed by a"
  step "y" {
    action = p.greet
  }
}
`

func loadLazily(t *testing.T, files memFS, dir string, vars ...string) *Project {
	t.Helper()
	return mustLoad(t, files, Options{Task: "a", CacheDir: dir, CacheSalt: "test", Vars: vars})
}

func taskNames(p *Project) string { return strings.Join(p.TaskNames(), " ") }

// A task run again loads only itself and what it calls, with the same
// positions and values as a full load.
func TestLazyLoadKeepsWhatTheTaskNeeds(t *testing.T) {
	dir := t.TempDir()
	files := memFS{root: lazyFile}
	full := loadLazily(t, files, dir)
	if full.Partial || taskNames(full) != "a b c" {
		t.Fatalf("first load: partial %v, tasks %s", full.Partial, taskNames(full))
	}
	part := loadLazily(t, files, dir)
	if !part.Partial || taskNames(part) != "a b" {
		t.Fatalf("second load: partial %v, tasks %s", part.Partial, taskNames(part))
	}
	fa, pa := full.Task("a"), part.Task("a")
	if pa.DeclRange != fa.DeclRange || pa.Description != fa.Description || pa.Steps[0].Called != part.Task("b") {
		t.Fatalf("task a differs: %v %q, want %v %q", pa.DeclRange, pa.Description, fa.DeclRange, fa.Description)
	}
	if !pa.Params[0].Default.RawEquals(fa.Params[0].Default) || pa.Steps[0].DeclRange != fa.Steps[0].DeclRange {
		t.Fatal("param default or step position differs")
	}
	if string(part.Sources["/proj/tasks.hcl"].Bytes) != lazyFile && string(part.Sources[DisplayPath(root)].Bytes) != lazyFile {
		t.Fatal("diagnostics would quote the blanked source")
	}
	if part.Root.Sum != full.Root.Sum {
		t.Fatal("the file's sum changed")
	}
}

// Whatever could change what the left-out tasks report makes the load a
// full one: other variable values, another content, a function called in
// what load evaluates, an include, a task that does not exist.
func TestLazyLoadFallsBackToFull(t *testing.T) {
	dir := t.TempDir()
	files := memFS{root: lazyFile}
	loadLazily(t, files, dir)
	if p := loadLazily(t, files, dir, "greeting=hello"); p.Partial {
		t.Fatal("partial with another variable value")
	}
	// That full load replaced the index for its values.
	if p := loadLazily(t, files, dir, "greeting=hello"); !p.Partial {
		t.Fatal("not partial the second time with the same values")
	}
	files[root] = lazyFile + "\n# changed\n"
	if p := loadLazily(t, files, dir); p.Partial {
		t.Fatal("partial after the file changed")
	}

	for name, src := range map[string]string{
		"function":   strings.Replace(lazyFile, `"not needed by a"`, `upper("not needed by a")`, 1),
		"include":    lazyFile + "include \"x\" {\n  path = \"x.hcl\"\n}\n",
		"error in c": strings.Replace(lazyFile, `"not needed by a"`, "\"not needed by a\"\n  bogus = 1", 1),
	} {
		files := memFS{root: src, "/proj/x.hcl": "task \"d\" {}\n"}
		dir := t.TempDir()
		o := Options{Task: "a", CacheDir: dir, CacheSalt: "test"}
		loadFS(files, o)
		p, _ := loadFS(files, o)
		if p.Partial {
			t.Errorf("%s: a partial load", name)
		}
	}
	if p, _ := loadFS(memFS{root: lazyFile}, Options{Task: "nope", CacheDir: dir, CacheSalt: "test"}); p.Partial {
		t.Fatal("partial for a task that does not exist")
	}
}

// An error in a task the run does not need is still reported when it
// comes from a variable's value.
func TestLazyLoadReportsErrorsElsewhere(t *testing.T) {
	dir := t.TempDir()
	src := strings.Replace(lazyFile, `description = "not needed by a"`, `description = "not needed by a"
  param "k" {
    type    = number
    default = var.greeting
  }`, 1)
	files := memFS{root: src}
	loadLazily(t, files, dir, "greeting=5")
	if p := loadLazily(t, files, dir, "greeting=5"); !p.Partial {
		t.Fatal("not partial")
	}
	_, diags := loadFS(files, Options{Task: "a", CacheDir: dir, CacheSalt: "test", Vars: []string{"greeting=five"}})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "default") {
		t.Fatalf("the error in task c was not reported: %v", diags)
	}
}
