package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vmflow/vmflow/core/event"
)

// Plain output (a log, a pipe, CI) shows a step's progress without
// flooding it: a transfer over in a blink is one line, a long one about
// ten, at least a second apart.
func TestPlainProgressLines(t *testing.T) {
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	progress := func(step string, at time.Duration, cur, total int64) event.Event {
		return event.Event{Kind: event.StepProgress, Time: start.Add(at), Step: step, Label: "importing", Current: cur, Total: total}
	}
	var out bytes.Buffer
	r := &plainRenderer{out: &out, shown: map[string]shownProgress{}}
	// A 4 MB import over in 33 ms, in 256 KiB updates.
	for i := int64(1); i <= 16; i++ {
		r.Emit(progress("fast", time.Duration(i)*2*time.Millisecond, i*256, 4096))
	}
	// A 10 GB one over 100 s, an update every 100 ms.
	for i := int64(1); i <= 1000; i++ {
		r.Emit(progress("slow", time.Duration(i)*100*time.Millisecond, i*10, 10000))
	}
	// No total known: the first line says it began.
	r.Emit(progress("open", 0, 0, 0))
	r.Emit(progress("open", 5*time.Second, 0, 0))

	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	var fast, slow, open []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "    fast: "):
			fast = append(fast, l)
		case strings.HasPrefix(l, "    slow: "):
			slow = append(slow, l)
		case strings.HasPrefix(l, "    open: "):
			open = append(open, l)
		}
	}
	if len(fast) != 1 || fast[0] != "    fast: importing 6% (256/4096)" {
		t.Errorf("a fast import shows %d line(s), want its first only:\n%s", len(fast), strings.Join(fast, "\n"))
	}
	if len(slow) < 9 || len(slow) > 11 || slow[0] != "    slow: importing 0% (10/10000)" {
		t.Errorf("a 100 s import shows %d line(s), want about ten from its first:\n%s", len(slow), strings.Join(slow, "\n"))
	}
	if len(open) != 1 {
		t.Errorf("progress without a total: %d lines, want 1", len(open))
	}
}
