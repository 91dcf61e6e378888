package main

import (
	"io"
	"sync"

	"github.com/vmflow/vmflow/core/lang"
)

// redactWriters hold the writers logs go to and the redactor they mask
// secrets with (none until a plan is prepared).
type redactWriters struct {
	mu  sync.Mutex
	red *lang.Redactor
}

func (r *redactWriters) set(red *lang.Redactor) {
	r.mu.Lock()
	r.red = red
	r.mu.Unlock()
}

func (r *redactWriters) wrap(w io.Writer) io.Writer {
	return &redactWriter{r: r, w: w}
}

type redactWriter struct {
	r *redactWriters
	w io.Writer
}

func (rw *redactWriter) Write(p []byte) (int, error) {
	rw.r.mu.Lock()
	red := rw.r.red
	rw.r.mu.Unlock()
	if red == nil {
		return rw.w.Write(p)
	}
	if _, err := io.WriteString(rw.w, red.Redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// redact masks the plan's secrets in the logs from now on.
func (l logs) redact(red *lang.Redactor) { l.red.set(red) }
