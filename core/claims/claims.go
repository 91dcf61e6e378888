// Package claims keeps the durable notes a plugin action writes before it
// creates or changes something, so that a later attempt of the same step
// of the same run can tell its own leftovers from what it must not touch.
//
// vmflow runs a step again when the run is resumed after an interruption
// (vmflow killed): the earlier attempt may have half-done its work. A
// claim says "attempt of step S of run R was about to make K". Plugins use
// them through core/sdk (Request.Claim, Request.Claimed); the engine
// removes a run's claims once the run can no longer be resumed.
//
// Layout: <state>/claims/<plugin>/<run id>/<step>/<key>.json, directories
// 0700 and files 0600 (a claim's data may hold what a record held). Each
// claim is written atomically and durably: a temporary file, fsync,
// rename, fsync of the directory (and of every directory made for it).
package claims

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

	"github.com/vmflow/vmflow/internal/atomicfile"
	"github.com/vmflow/vmflow/internal/fsx"
)

// Root is the directory of every claim under a state directory.
func Root(stateDir string) string { return filepath.Join(stateDir, "claims") }

// Dir is where one step's claims live.
func Dir(stateDir, plugin, runID, step string) string {
	return filepath.Join(Root(stateDir), segment(plugin), segment(runID), segment(step))
}

// Claim is one claim as stored.
type Claim struct {
	Key  string          `json:"key"`
	Data json.RawMessage `json:"data,omitempty"`
	Time time.Time       `json:"time"`
	PID  int             `json:"pid"`
}

// segment makes a name safe as one path element: run ids, step and
// plugin names are already; anything else keeps a readable form with a
// hash of the original.
func segment(s string) string {
	name, clean := fsx.SafeName(s, 0)
	if clean && s != "" && s != "." && s != ".." && !strings.HasPrefix(s, ".") {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return strings.TrimLeft(name, ".") + "~" + hex.EncodeToString(sum[:4])
}

// fileName is a key's file: readable, and always with a hash of the key,
// so that "volume a/b" and "volume a_b" never share one.
func fileName(key string) string {
	name, _ := fsx.SafeName(key, 80)
	sum := sha256.Sum256([]byte(key))
	return strings.TrimLeft(name, ".") + "~" + hex.EncodeToString(sum[:6]) + ".json"
}

// Write records a claim durably in dir; data (any JSON-encodable value,
// or nil) rides along. A claim of the same key is replaced.
func Write(dir, key string, data any) error {
	if key == "" {
		return errors.New("a claim needs a key")
	}
	c := Claim{Key: key, Time: time.Now().UTC(), PID: os.Getpid()}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("claim %q: %w", key, err)
		}
		c.Data = b
	}
	doc, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := mkdirAllSync(dir); err != nil {
		return fmt.Errorf("claim %q: %w", key, err)
	}
	err = atomicfile.Write(filepath.Join(dir, fileName(key)), append(doc, '\n'), 0o600, ".claim-*")
	if err != nil {
		return fmt.Errorf("claim %q: %w", key, err)
	}
	return nil
}

// Read returns the claim of key in dir, and false when there is none.
func Read(dir, key string) (*Claim, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileName(key)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var c Claim
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, true, fmt.Errorf("claim %q (%s): %v", key, filepath.Join(dir, fileName(key)), err)
	}
	return &c, true, nil
}

// List returns every claim in dir, sorted by key.
func List(dir string) ([]Claim, error) {
	ents, err := fsx.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Claim
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var c Claim
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("claim %s: %v", filepath.Join(dir, e.Name()), err)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Any reports whether dir holds at least one claim.
func Any(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			return true
		}
	}
	return false
}

// RemoveRun removes every claim of a run, whichever plugin made it:
// <state>/claims/*/<run id>. The engine calls it when the run can no
// longer be resumed (it succeeded, or it was rolled back).
func RemoveRun(stateDir, runID string) error {
	if runID == "" {
		return nil
	}
	plugins, err := fsx.SubDirs(Root(stateDir))
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range plugins {
		pdir := filepath.Join(Root(stateDir), p)
		if err := os.RemoveAll(filepath.Join(pdir, segment(runID))); err != nil {
			errs = append(errs, err)
		}
		// An empty plugin directory goes too (it fails harmlessly when
		// another run's claims are still in it).
		_ = os.Remove(pdir)
	}
	return errors.Join(errs...)
}

// mkdirAllSync makes dir and its missing parents (0700), fsyncing the
// parent of each directory it makes, so that a claim written into it
// survives a crash of the machine too.
func mkdirAllSync(dir string) error {
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		return err
	}
	return atomicfile.SyncDir(parent)
}
