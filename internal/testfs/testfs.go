// Package testfs writes the files a test sets up.
package testfs

import (
	"os"
	"path/filepath"
	"testing"
)

// Write writes text to the file name under dir (0644), making the
// directories it needs (0755).
func Write(tb testing.TB, dir, name, text string) {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
}
