package builtin

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	at "github.com/vmflow/vmflow/internal/archivetest"
)

func TestRemove(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	b := newBackups(t, state)
	dir := t.TempDir()
	f := at.WriteFile(t, filepath.Join(dir, "f"), []byte("x"), 0o644)
	at.WriteFile(t, filepath.Join(dir, "tree", "a", "b"), []byte("x"), 0o400)
	tree := filepath.Join(dir, "tree")
	missing := filepath.Join(dir, "missing")

	out := b.ok("remove", map[string]any{"paths": []string{f, tree, missing}})
	if got := listOut(out, "removed"); !slices.Equal(got, []string{f, tree}) {
		t.Fatalf("removed = %v", got)
	}
	if left := at.Tree(t, dir); len(left) != 0 {
		t.Fatalf("left %v", left)
	}

	g := at.WriteFile(t, filepath.Join(dir, "g"), []byte("x"), 0o644)
	b.fails("remove", map[string]any{"paths": []string{g, missing}, "missing_ok": false}, "paths[1]", missing, "does not exist")
	if _, err := os.Stat(g); err != nil {
		t.Fatal("a failed remove removed something")
	}

	for i, bad := range []string{"/", "/..", state, state + "/", filepath.Dir(state), "relative/path"} {
		msg := b.fails("remove", map[string]any{"paths": []string{g, bad}}, "paths[1]")
		if !strings.Contains(msg, bad) && !strings.Contains(msg, filepath.Clean(bad)) {
			t.Errorf("%d: error %q does not name %q", i, msg, bad)
		}
	}
	if _, err := os.Stat(g); err != nil {
		t.Fatal("a refused remove removed something")
	}
	// Inside the state directory is fine.
	at.WriteFile(t, filepath.Join(state, "tmp", "x"), []byte("x"), 0o644)
	b.ok("remove", map[string]any{"paths": []string{filepath.Join(state, "tmp")}})
}
