// Package testenv holds the rule for a test that cannot run on this
// machine (a tool, a daemon or root missing): in CI, where `make test` has
// set everything up and every test must run, it fails; elsewhere it skips.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// CI reports whether the tests run in CI ($CI is "true").
func CI() bool { return os.Getenv("CI") == "true" }

// Unavailable ends a test that cannot run here for the reason why
// (formatted with args): it fails in CI and skips elsewhere.
func Unavailable(t testing.TB, why string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(why, args...)
	if CI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
