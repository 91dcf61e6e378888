package host

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func plugin(t *testing.T, dir, name string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, Prefix+name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSearchOrder(t *testing.T) {
	root := t.TempDir()
	exeDir := filepath.Join(root, "bin")
	envDir := filepath.Join(root, "env")
	task := filepath.Join(root, "proj")
	pathDir := filepath.Join(root, "path")
	exe := filepath.Join(exeDir, "vmflow")
	plugin(t, exeDir, "a")
	plugin(t, envDir, "a")
	plugin(t, envDir, "b")
	plugin(t, filepath.Join(task, ".vmflow", "plugins"), "b")
	plugin(t, filepath.Join(task, ".vmflow", "plugins"), "c")
	plugin(t, pathDir, "c")
	plugin(t, pathDir, "d")
	os.WriteFile(filepath.Join(pathDir, Prefix+"noexec"), nil, 0o644)

	f := NewFinder(exe, task, map[string]string{PathEnv: envDir, "PATH": pathDir})
	want := map[string]string{
		"a": filepath.Join(exeDir, Prefix+"a"),
		"b": filepath.Join(envDir, Prefix+"b"),
		"c": filepath.Join(task, ".vmflow", "plugins", Prefix+"c"),
		"d": filepath.Join(pathDir, Prefix+"d"),
	}
	for name, p := range want {
		got, err := f.Find(name, task)
		if err != nil || got != p {
			t.Errorf("Find(%s) = %s, %v; want %s", name, got, err, p)
		}
	}
	_, err := f.Find("noexec", task)
	var nf *NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "beside the task file") {
		t.Errorf("not-executable plugin: %v", err)
	}
	// A path source is taken relative to the task file.
	own := plugin(t, filepath.Join(task, "tools"), "own")
	if got, err := f.Find("./tools/"+Prefix+"own", task); err != nil || got != own {
		t.Errorf("path source: %s %v", got, err)
	}
	all := f.All()
	if len(all) != 4 || all[0].Name != "a" || len(all[0].Shadows) != 1 {
		t.Errorf("All = %+v", all)
	}
}

// A plugin block in an included file also finds plugins in .vmflow/plugins
// beside that file, after those beside the root task file and before
// PATH.
func TestSearchBesideTheDeclaringFile(t *testing.T) {
	root := t.TempDir()
	task := filepath.Join(root, "proj")
	shared := filepath.Join(root, "shared")
	pathDir := filepath.Join(root, "path")
	plugin(t, filepath.Join(task, ".vmflow", "plugins"), "a")
	plugin(t, filepath.Join(shared, ".vmflow", "plugins"), "a")
	plugin(t, filepath.Join(shared, ".vmflow", "plugins"), "b")
	plugin(t, pathDir, "b")
	plugin(t, pathDir, "c")
	f := NewFinder("", task, map[string]string{"PATH": pathDir})
	want := map[string]string{
		"a": filepath.Join(task, ".vmflow", "plugins", Prefix+"a"),
		"b": filepath.Join(shared, ".vmflow", "plugins", Prefix+"b"),
		"c": filepath.Join(pathDir, Prefix+"c"),
	}
	for name, p := range want {
		if got, err := f.Find(name, shared); err != nil || got != p {
			t.Errorf("Find(%s) from the shared file = %s, %v; want %s", name, got, err, p)
		}
	}
	if got, err := f.Find("b", task); err != nil || got != filepath.Join(pathDir, Prefix+"b") {
		t.Errorf("Find(b) from the root file = %s, %v: the shared file's directory is not its to search", got, err)
	}
	_, err := f.Find("nosuch", shared)
	if err == nil || !strings.Contains(err.Error(), "beside the task file that declares it") {
		t.Errorf("not found: %v", err)
	}
}
