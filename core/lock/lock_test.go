package lock

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSecondHolderIsRefusedWithTheHolderNamed(t *testing.T) {
	dir := t.TempDir()
	h := Holder{Run: "run-1", Task: "upgrade", PID: os.Getpid(), Since: time.Now()}
	first, err := Acquire(dir, []string{"demo"}, h)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir, []string{"other", "demo"}, Holder{Run: "run-2", PID: 1})
	var he *HeldError
	if !errors.As(err, &he) || he.Key != "demo" || he.Holder == nil || he.Holder.Run != "run-1" || he.Holder.Task != "upgrade" {
		t.Fatalf("err = %v", err)
	}
	// "other" was taken then released again: nothing is half-held.
	o, err := Acquire(dir, []string{"other"}, h)
	if err != nil {
		t.Fatalf("other should be free: %v", err)
	}
	o.Release()
	first.Release()
	again, err := Acquire(dir, []string{"demo"}, h)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again.Release()
}

func TestFileName(t *testing.T) {
	cases := map[string]string{
		"demo":      "demo.lock",
		"vm-1.prod": "vm-1.prod.lock",
	}
	for key, want := range cases {
		if got := FileName(key); got != want {
			t.Errorf("FileName(%q) = %q, want %q", key, got, want)
		}
	}
	// Keys that would escape the directory or collide get a hash.
	a, b := FileName("../etc/passwd"), FileName("__etc_passwd")
	if strings.Contains(a, "/") || a == b || !strings.HasSuffix(a, ".lock") {
		t.Errorf("FileName gave %q and %q", a, b)
	}
}
