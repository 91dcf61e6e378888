package fsx

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	if ents, err := ReadDir(filepath.Join(dir, "missing")); err != nil || ents != nil {
		t.Fatalf("a missing directory: %v, %v; want no entries and no error", ents, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if ents, err := ReadDir(dir); err != nil || len(ents) != 1 || ents[0].Name() != "f" {
		t.Fatalf("a directory with one file: %v, %v", ents, err)
	}
	if _, err := ReadDir(filepath.Join(dir, "f")); err == nil {
		t.Fatal("a file read as a directory gave no error")
	}
}

func TestSafeName(t *testing.T) {
	for _, c := range []struct {
		s     string
		limit int
		name  string
		clean bool
	}{
		{"vm-1_a.b", 0, "vm-1_a.b", true},
		{"a/b c", 0, "a_b_c", false},
		{"é", 0, "_", false},
		{"abcdef", 3, "abc", true},
		{"a/cdef", 3, "a_c", false},
		{"", 0, "", true},
	} {
		if name, clean := SafeName(c.s, c.limit); name != c.name || clean != c.clean {
			t.Errorf("SafeName(%q, %d) = %q, %v; want %q, %v", c.s, c.limit, name, clean, c.name, c.clean)
		}
	}
}

func TestSubDirs(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"b", "a"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if names, err := SubDirs(dir); err != nil || !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("SubDirs = %v, %v; want [a b]", names, err)
	}
	if names, err := SubDirs(filepath.Join(dir, "missing")); err != nil || names != nil {
		t.Fatalf("a missing directory: %v, %v; want none and no error", names, err)
	}
}
