package journal

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmflow/vmflow/internal/testbin"
)

// A record that does not fit on a full disk is lost whole: the journal
// counts it, and the records written once there is room again stay
// readable (a torn line would swallow the next record).
func TestRecordLostOnAFullDisk(t *testing.T) {
	dir := t.TempDir()
	testbin.SmallDisk(t, dir, "64k")
	s := New(filepath.Join(dir, "runs"))
	id := NewID(time.Now())
	r, err := s.Create(Header{ID: id, Task: "t", PID: os.Getpid(), Start: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Append(Record{Step: "a", Status: Succeeded}); err != nil {
		t.Fatal(err)
	}
	// Fill the disk but for a few bytes, then write a record larger than
	// that: part of it fits.
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, int64(fs.Bavail)*fs.Bsize-100), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Append(Record{Step: "b", Status: UndoFailed, Error: strings.Repeat("no space ", 2000)}); err == nil {
		t.Fatal("a record larger than the room left was written")
	}
	if r.Lost() != 1 {
		t.Fatalf("lost %d records, want 1", r.Lost())
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := r.Append(Record{Step: "c", Status: Succeeded}); err != nil {
		t.Fatal(err)
	}
	if err := r.Append(Record{Status: Failed}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != Failed || len(st.Order) != 2 || st.Order[0] != "a" || st.Order[1] != "c" {
		t.Fatalf("read back: status %s, steps %v", st.Status, st.Order)
	}
}
