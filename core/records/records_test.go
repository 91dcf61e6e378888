package records

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestWriteReadKeepsTypes(t *testing.T) {
	s := Store{Root: t.TempDir()}
	v := cty.ObjectVal(map[string]cty.Value{
		"memory":   cty.NumberIntVal(2048),
		"profiles": cty.ListVal([]cty.Value{cty.StringVal("dev"), cty.StringVal("rust")}),
		"ok":       cty.True,
	})
	if err := s.Write("machines/libvirt", "a", Record{Values: v, Secrets: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Read("machines/libvirt", "a")
	if err != nil || !ok {
		t.Fatalf("read: %v %v", ok, err)
	}
	if !got.Values.RawEquals(v) {
		t.Errorf("values = %#v, want %#v", got.Values, v)
	}
	if got.Secrets["k"] != "v" {
		t.Errorf("secrets = %v", got.Secrets)
	}
	// Writing again without secrets removes the secrets file; nothing
	// temporary is left in the directory.
	if err := s.Write("machines/libvirt", "a", Record{Values: v}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(s.Dir("machines/libvirt", "a"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"record.json"}) {
		t.Errorf("record dir holds %v", names)
	}
}

func TestListAndDelete(t *testing.T) {
	s := Store{Root: t.TempDir()}
	for _, n := range []string{"b", "a"} {
		if err := s.Write("m", n, Record{}); err != nil {
			t.Fatal(err)
		}
	}
	// A directory without a record, and a stray file, are not records.
	os.MkdirAll(filepath.Join(s.Root, "m", "half"), 0o700)
	os.WriteFile(filepath.Join(s.Root, "m", "file"), nil, 0o600)
	names, err := s.List("m")
	if err != nil || !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("list = %v, %v", names, err)
	}
	if ok, err := s.Delete("m", "a"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if ok, _ := s.Delete("m", "a"); ok {
		t.Error("second delete found a record")
	}
	if _, err := os.Stat(s.Dir("m", "a")); !os.IsNotExist(err) {
		t.Errorf("record dir after delete: %v", err)
	}
	if names, _ := s.List("none"); names != nil {
		t.Errorf("missing collection lists %v", names)
	}
}

func TestRefusals(t *testing.T) {
	s := Store{Root: t.TempDir()}
	for _, c := range []struct{ coll, name, want string }{
		{"../x", "a", "collection"},
		{"m/", "a", "collection"},
		{"m", "../a", "record name"},
		{"m", "", "record name"},
	} {
		if err := s.Write(c.coll, c.name, Record{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Write(%q, %q) = %v, want %q", c.coll, c.name, err, c.want)
		}
	}
	if err := s.Write("m", "a", Record{Values: cty.StringVal("x")}); err == nil || !strings.Contains(err.Error(), "must be an object") {
		t.Errorf("string values: %v", err)
	}
	if err := s.Write("m", "a", Record{Values: cty.ObjectVal(map[string]cty.Value{"x": cty.UnknownVal(cty.String)})}); err == nil {
		t.Error("unknown values were written")
	}
	if ents, _ := os.ReadDir(s.Root); len(ents) != 0 {
		t.Errorf("refused writes left %d entries", len(ents))
	}
}

// A write killed half-way leaves a temporary file (and, for a new record,
// a directory with nothing else): the next write removes it, a delete
// removes such a directory; a live writer's file is left alone.
func TestWhatAKilledWriteLeft(t *testing.T) {
	s := Store{Root: t.TempDir()}
	dir := s.Dir("machines/x", "k")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A pid no process has (beyond pid_max).
	dead := filepath.Join(dir, ".record.json.tmp-99999999-123")
	live := filepath.Join(dir, fmt.Sprintf(".record.json.tmp-%d-456", os.Getpid()))
	for _, f := range []string{dead, live} {
		if err := os.WriteFile(f, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if names, _ := s.List("machines/x"); len(names) != 0 {
		t.Fatalf("a directory without record.json is listed: %v", names)
	}
	if err := s.Write("machines/x", "k", Record{Values: cty.ObjectVal(map[string]cty.Value{"a": cty.True})}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Fatalf("the dead writer's temporary file: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("a live writer's temporary file went: %v", err)
	}
	// Only a half-made record's directory, no record: delete removes it.
	half := s.Dir("machines/x", "half")
	if err := os.MkdirAll(half, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(half, ".record.json.tmp-99999999-1"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if gone, err := s.Delete("machines/x", "half"); err != nil || gone {
		t.Fatalf("delete of a half-made record: %v %v", gone, err)
	}
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Fatalf("the half-made record's directory: %v", err)
	}
}
