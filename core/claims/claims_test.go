package claims

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReadReplace(t *testing.T) {
	state := t.TempDir()
	dir := Dir(state, "libvirt", "20261127-052300-3f2a", "var")
	if _, ok, err := Read(dir, "volume demo-var"); ok || err != nil {
		t.Fatalf("before any claim: ok=%v err=%v", ok, err)
	}
	if Any(dir) {
		t.Fatal("Any before any claim")
	}
	if err := Write(dir, "volume demo-var", map[string]int{"ino": 7}); err != nil {
		t.Fatal(err)
	}
	c, ok, err := Read(dir, "volume demo-var")
	if err != nil || !ok || c.Key != "volume demo-var" || string(c.Data) != `{"ino":7}` || c.PID != os.Getpid() {
		t.Fatalf("read back: %+v ok=%v err=%v", c, ok, err)
	}
	if err := Write(dir, "volume demo-var", nil); err != nil {
		t.Fatal(err)
	}
	if c, _, _ := Read(dir, "volume demo-var"); len(c.Data) != 0 {
		t.Fatalf("claiming again keeps the old data: %s", c.Data)
	}
	if !Any(dir) {
		t.Fatal("Any after a claim")
	}
	// Private: a claim may hold what a record held.
	for _, p := range []string{Root(state), filepath.Dir(filepath.Dir(dir)), filepath.Dir(dir), dir} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v", p, st.Mode(), err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
	st, _ := os.Stat(filepath.Join(dir, ents[0].Name()))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("claim file mode %v", st.Mode())
	}
}

func TestKeysNeverShareAFile(t *testing.T) {
	seen := map[string]string{}
	for _, k := range []string{"volume a/b", "volume a_b", "volume a b", "record machines/libvirt/demo", ".hidden", "../../etc"} {
		f := fileName(k)
		if other, ok := seen[f]; ok {
			t.Fatalf("%q and %q share %s", k, other, f)
		}
		if filepath.Base(f) != f || f[0] == '.' {
			t.Fatalf("%q: unsafe file name %q", k, f)
		}
		seen[f] = k
	}
	if got := segment(".."); got == ".." || filepath.Base(got) != got {
		t.Fatalf("segment(..) = %q", got)
	}
	if got := segment("run-1"); got != "run-1" {
		t.Fatalf("segment(run-1) = %q", got)
	}
}

func TestRemoveRunTakesEveryPluginsClaimsOfThatRunOnly(t *testing.T) {
	state := t.TempDir()
	for _, c := range []struct{ plugin, run, step string }{
		{"libvirt", "r1", "var"}, {"builtin", "r1", "record"}, {"libvirt", "r2", "var"},
	} {
		if err := Write(Dir(state, c.plugin, c.run, c.step), "k", nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveRun(state, "r1"); err != nil {
		t.Fatal(err)
	}
	if Any(Dir(state, "libvirt", "r1", "var")) || Any(Dir(state, "builtin", "r1", "record")) {
		t.Fatal("r1's claims are left")
	}
	if !Any(Dir(state, "libvirt", "r2", "var")) {
		t.Fatal("r2's claim went too")
	}
	if _, err := os.Stat(filepath.Join(Root(state), "builtin")); !os.IsNotExist(err) {
		t.Fatalf("an empty plugin directory is left: %v", err)
	}
	if err := RemoveRun(t.TempDir(), "r1"); err != nil {
		t.Fatalf("no claims at all: %v", err)
	}
}
