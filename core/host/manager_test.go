package host

import (
	"context"
	"path/filepath"
	"testing"
)

// A process started ahead is the one GetChecked returns, whatever its
// key; one nobody takes is stopped at Close.
func TestPrestartIsTakenOnce(t *testing.T) {
	hello := filepath.Join(binDir, "vmflow-plugin-hello")
	_, sum, err := FileHash(hello)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(nil)
	m.Prestart(hello, sum)
	m.Prestart(hello, nil) // another sum: not taken below
	spare := m.spares[0]
	p, err := m.GetChecked(context.Background(), hello, "config-a", sum)
	if err != nil {
		t.Fatal(err)
	}
	if p != spare.p {
		t.Fatal("GetChecked started a process instead of taking the one started ahead")
	}
	if len(m.spares) != 1 || m.spares[0].sum != nil {
		t.Fatalf("spares left: %d, want the one without a sum", len(m.spares))
	}
	q, err := m.GetChecked(context.Background(), hello, "config-b", sum)
	if err != nil {
		t.Fatal(err)
	}
	if q == p {
		t.Fatal("a second key got the process another key took")
	}
	left := m.spares[0]
	m.Close()
	<-left.done
	for _, proc := range []*Process{p, q, left.p} {
		if !proc.Gone() {
			t.Fatalf("process %d still running after Close", proc.Pid())
		}
	}
}

// A spare that failed to start does not stand in: the binary is started
// again, and that start's error is the one returned.
func TestPrestartFailureStartsAgain(t *testing.T) {
	m := NewManager(nil)
	defer m.Close()
	missing := filepath.Join(t.TempDir(), "vmflow-plugin-none")
	m.Prestart(missing, nil)
	if _, err := m.GetChecked(context.Background(), missing, "", nil); err == nil {
		t.Fatal("no error for a binary that does not exist")
	}
}
