// Package lock takes exclusive, process-wide locks on keys (usually a VM's
// name) with flock(2), so two runs on the same machine never interleave. A
// lock dies with its process: a killed run never leaves a stale lock.
package lock

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmflow/vmflow/internal/fsx"
)

// Holder describes who holds a lock; it is written into the lock file.
type Holder struct {
	Run     string    `json:"run"`
	Task    string    `json:"task"`
	PID     int       `json:"pid"`
	Since   time.Time `json:"since"`
	Command string    `json:"command,omitempty"`
}

// HeldError is returned when a key is locked by another run.
type HeldError struct {
	Key    string
	Holder *Holder // nil when the holder could not be read
}

func (e *HeldError) Error() string {
	if e.Holder == nil {
		return fmt.Sprintf("%q is locked by another vmflow run", e.Key)
	}
	return fmt.Sprintf("%q is locked by run %s (task %s, pid %d) since %s",
		e.Key, e.Holder.Run, e.Holder.Task, e.Holder.PID, e.Holder.Since.Local().Format("15:04:05"))
}

// Set is a set of held locks.
type Set struct {
	files []*os.File
}

// FileName is the lock file name for a key: readable where the key is
// simple, with a hash suffix when characters had to be replaced.
func FileName(key string) string {
	name, clean := fsx.SafeName(key, 0)
	if !clean || name == "" || strings.HasPrefix(name, ".") {
		sum := sha256.Sum256([]byte(key))
		name += "-" + hex.EncodeToString(sum[:4])
	}
	return name + ".lock"
}

// Acquire takes every key's lock at once, without waiting. Keys are taken
// in sorted order; if one is held, the ones already taken are released and
// a *HeldError is returned.
func Acquire(dir string, keys []string, h Holder) (*Set, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	keys = append([]string(nil), keys...)
	sort.Strings(keys)
	s := &Set{}
	for i, k := range keys {
		if i > 0 && keys[i-1] == k {
			continue
		}
		f, err := acquire(filepath.Join(dir, FileName(k)), k, h)
		if err != nil {
			s.Release()
			return nil, err
		}
		s.files = append(s.files, f)
	}
	return s, nil
}

func acquire(path, key string, h Holder) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &HeldError{Key: key, Holder: readHolder(path)}
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	b, _ := json.Marshal(h)
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(append(b, '\n'), 0)
	}
	return f, nil
}

func readHolder(path string) *Holder {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var h Holder
	if json.Unmarshal(b, &h) != nil || h.PID == 0 {
		return nil
	}
	return &h
}

// Release drops every lock of the set.
func (s *Set) Release() {
	if s == nil {
		return
	}
	for _, f := range s.files {
		_ = f.Truncate(0)
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}
	s.files = nil
}

// TryFile reports whether a file's flock is free (nobody holds it), without
// keeping it. Used to tell an interrupted run from a live one.
func TryFile(path string) (free bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return false, nil
		}
		return false, err
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return true, nil
}
