package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// TestScriptsRunNoExecutableTheyWrote keeps the scripts clear of a race
// that failed CI once ("fork/exec $WORK/vbin/vmflow: text file busy").
// Scripts run in parallel in one test binary. A file that binary writes
// (testscript's cp, or a file of the archive) is open for writing in it
// for a moment; a parallel script that forks in that moment gives its
// child a copy of the descriptor, which the child holds until it execs.
// Linux refuses to execute a file open for writing (ETXTBSY), so such a
// file run as a program (made executable with chmod, or a binary copied
// with cp, which keeps its mode) fails to start, now and then. The install
// command (cmdInstall) writes an executable in a process of its own.
func TestScriptsRunNoExecutableTheyWrote(t *testing.T) {
	files, err := filepath.Glob("testdata/script/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		a, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(a.Comment), "\n") {
			w := strings.Fields(line)
			if len(w) > 0 && w[0] == "!" {
				w = w[1:]
			}
			if len(w) < 3 {
				continue
			}
			// chmod +x, or cp of a binary (cp keeps its mode).
			mode, err := strconv.ParseUint(w[1], 8, 32)
			if w[0] == "chmod" && err == nil && mode&0o111 != 0 || w[0] == "cp" && strings.HasPrefix(w[1], "$BIN/") {
				t.Errorf("%s:%d: %q makes an executable this test binary writes; running it can fail with \"text file busy\". Use install SRC DST, which writes it in a process of its own", f, i+1, line)
			}
		}
	}
}
