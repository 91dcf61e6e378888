// Package journal records each run under the state directory, one JSON
// line per event (completions fsynced), so that a run killed at any moment
// can be listed and resumed from its last completed step.
//
// Layout: <state>/runs/<id>/journal.jsonl. While a run is alive it holds a
// flock on its journal; a run whose journal says "running" but whose lock
// is free was interrupted.
package journal

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"golang.org/x/sys/unix"

	"github.com/vmflow/vmflow/core/lang"
	"github.com/vmflow/vmflow/core/lock"
	"github.com/vmflow/vmflow/internal/fsx"
)

// Step and run statuses.
const (
	Running     = "running"
	Succeeded   = "succeeded"
	Failed      = "failed"
	Cancelled   = "cancelled"
	Interrupted = "interrupted" // derived: "running" with nobody holding the run
	// RolledBack: an interrupted run whose steps vmflow resume --undo undid.
	RolledBack = "rolled_back"
	// Superseded: an unfinished run made moot by a later run of a task
	// that declares supersedes (purge): nothing is left to finish or undo.
	Superseded = "superseded"
	Skipped    = "skipped"
	Undone     = "undone"
	UndoFailed = "undo_failed"
)

// Value is a cty value with its type, as JSON: {"type": …, "value": …}.
// The type is kept whole, so that a value read back for a resume is the
// value the step saw (a list stays a list, where JSON alone would make
// it a tuple, which then fits no declared type).
//
// A value with sensitive parts (lang.Sensitive) is written with those
// parts null and the whole value sealed beside it ("sealed"), with the
// Key of the journal that writes it; Store.Load opens it again with the
// store's Key, or leaves the nulls when it has none (vmflow runs).
type Value struct {
	cty.Value
	key    *Key   // seals it when written
	sealed string // read back, not opened yet
}

type typedValue struct {
	Type   json.RawMessage `json:"type"`
	Value  json.RawMessage `json:"value"`
	Sealed string          `json:"sealed,omitempty"`
}

// MarshalJSON encodes the value and its type; sensitive parts only
// sealed.
func (v Value) MarshalJSON() ([]byte, error) {
	if v.Value == cty.NilVal {
		return ctyjson.SimpleJSONValue{Value: v.Value}.MarshalJSON()
	}
	val, sealed := v.Value, v.sealed
	if lang.IsSensitive(val) {
		var err error
		if sealed, err = sealValue(v.key, val); err != nil {
			return nil, fmt.Errorf("sealing a sensitive value: %w", err)
		}
		val = lang.Mask(val)
	}
	ty := val.Type()
	tb, err := ctyjson.MarshalType(ty)
	if err != nil {
		return nil, err
	}
	vb, err := ctyjson.Marshal(val, ty)
	if err != nil {
		return nil, err
	}
	return json.Marshal(typedValue{Type: tb, Value: vb, Sealed: sealed})
}

// Sealed reports whether the value has sensitive parts that are still
// sealed (read back without the key).
func (v *Value) Sealed() bool { return v != nil && v.sealed != "" }

// UnmarshalJSON decodes a value written by MarshalJSON, or by vmflow
// versions that wrote the value alone (its type then implied).
func (v *Value) UnmarshalJSON(b []byte) error {
	var tv typedValue
	if json.Unmarshal(b, &tv) == nil && len(tv.Type) > 0 && len(tv.Value) > 0 {
		if ty, err := ctyjson.UnmarshalType(tv.Type); err == nil {
			if val, err := ctyjson.Unmarshal(tv.Value, ty); err == nil {
				v.Value, v.sealed = val, tv.Sealed
				return nil
			}
		}
	}
	var s ctyjson.SimpleJSONValue
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	v.Value = s.Value
	return nil
}

// Header is the first line of a journal.
type Header struct {
	ID      string `json:"id"`
	Task    string `json:"task"`
	File    string `json:"file"`
	FileSum string `json:"file_sum"`
	// Files are the checksums of every task file the run was loaded from
	// (the root, what it includes, a shipped file), by path; older
	// journals have FileSum alone.
	Files map[string]string `json:"files,omitempty"`
	// Plugins are the plugins the run uses, by local name, with their
	// source and version (hypervisor → "proxmox-stub 0.1.0").
	Plugins map[string]string `json:"plugins,omitempty"`
	// Hosts are the hosts of the plugins that name one, by local name
	// (hypervisor → "build1").
	Hosts map[string]string `json:"hosts,omitempty"`
	// Args are the command-line arguments as given, for display.
	Args   []string         `json:"args,omitempty"`
	Params Value            `json:"params"`
	Vars   map[string]Value `json:"vars"`
	// Locks are the lock keys the run holds (the VMs it changes): a new
	// run of the task on one of them waits for an interrupted one to be
	// resumed or rolled back.
	Locks []string  `json:"locks,omitempty"`
	PID   int       `json:"pid"`
	Start time.Time `json:"start"`
}

// Record is every later line.
type Record struct {
	Time    time.Time `json:"time"`
	Step    string    `json:"step,omitempty"`
	Action  string    `json:"action,omitempty"`
	Status  string    `json:"status"`
	Inputs  *Value    `json:"inputs,omitempty"`
	Outputs *Value    `json:"outputs,omitempty"`
	Error   string    `json:"error,omitempty"`
	// Commit marks the run's commit point: the completion of a commit
	// step, or the start of one that cannot be undone. From here on the
	// run only goes forward.
	Commit bool `json:"commit,omitempty"`
	// Refused marks a step that failed because its plugin refused its
	// inputs, which changes nothing: a commit point its start marked does
	// not hold.
	Refused bool `json:"refused,omitempty"`
}

// Store is the runs directory. Key seals sensitive values in the
// journals it writes and opens them in those it loads (nil: none).
type Store struct {
	Dir string
	Key *Key
}

// New returns the store under a state directory.
func New(stateDir string) *Store { return &Store{Dir: filepath.Join(stateDir, "runs")} }

// NewID makes a run id that sorts by time: 20261127-052300-3f2a.
func NewID(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// Run is an open journal, held by the live run.
type Run struct {
	ID   string
	path string
	mu   sync.Mutex
	f    *os.File
	// lost counts the records that could not be written (a full disk).
	lost int
	key  *Key
}

// Create starts a journal and holds it until Close.
func (s *Store) Create(h Header) (*Run, error) {
	dir := filepath.Join(s.Dir, h.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, "journal.jsonl")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking journal: %w", err)
	}
	r := &Run{ID: h.ID, path: p, f: f, key: s.Key}
	h.Params.key = s.Key
	for k, v := range h.Vars {
		v.key = s.Key
		h.Vars[k] = v
	}
	if err := r.write(h, true); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Reopen continues an existing journal (vmflow resume): it takes the
// journal's lock again and appends a record saying the run resumed.
func (s *Store) Reopen(id string) (*Run, error) {
	p := filepath.Join(s.Dir, id, "journal.jsonl")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("run %s is still running", id)
	}
	// A crash mid-write can leave a last line without its newline; start
	// on a fresh line so the next record stays readable.
	if b, err := os.ReadFile(p); err == nil && len(b) > 0 && b[len(b)-1] != '\n' {
		if _, err := f.Write([]byte{'\n'}); err != nil {
			f.Close()
			return nil, err
		}
	}
	r := &Run{ID: id, path: p, f: f, key: s.Key}
	if err := r.Append(Record{Status: Running}); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Mark appends a run-level record to a run that is not running (vmflow
// marks a run superseded this way), taking its lock meanwhile.
func (s *Store) Mark(id string, rec Record) error {
	p := filepath.Join(s.Dir, id, "journal.jsonl")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("run %s is running", id)
	}
	r := &Run{ID: id, path: p, f: f, key: s.Key}
	defer r.Close()
	if b, err := os.ReadFile(p); err == nil && len(b) > 0 && b[len(b)-1] != '\n' {
		if _, err := f.Write([]byte{'\n'}); err != nil {
			return err
		}
	}
	rec.Step = ""
	return r.Append(rec)
}

// Dir is the run's directory (logs live there too).
func (r *Run) Dir() string { return filepath.Dir(r.path) }

func (r *Run) write(v any, durable bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.writeLine(append(b, '\n'), durable); err != nil {
		r.lost++
		return err
	}
	return nil
}

// writeLine appends one line. A write that fails part-way (the disk
// filled up) is cut off again, so that no torn line swallows the records
// written after it.
func (r *Run) writeLine(line []byte, durable bool) error {
	fi, err := r.f.Stat()
	if err != nil {
		return err
	}
	if _, err := r.f.Write(line); err != nil {
		_ = r.f.Truncate(fi.Size())
		return err
	}
	if !durable {
		return nil
	}
	if err := unix.Fdatasync(int(r.f.Fd())); err != nil {
		_ = r.f.Truncate(fi.Size())
		return err
	}
	return nil
}

// Lost reports how many records could not be written: then the journal
// no longer tells all the run did.
func (r *Run) Lost() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lost
}

// Append writes a record. Records that resume depends on (a step done,
// undone or failed, the run's end) are fsynced; a "running" record is
// not: if it is lost the step was not done, and resume runs it anyway.
// A killed vmflow loses nothing either way: the kernel has the write.
func (r *Run) Append(rec Record) error {
	if rec.Time.IsZero() {
		rec.Time = time.Now()
	}
	for _, v := range []*Value{rec.Inputs, rec.Outputs} {
		if v != nil {
			v.key = r.key
		}
	}
	return r.write(rec, rec.Status != Running)
}

// Close releases the journal.
func (r *Run) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// State is a journal read back.
type State struct {
	Header Header
	// Status of the run: running, succeeded, failed, cancelled, interrupted.
	Status string
	End    time.Time
	Error  string
	// Steps holds each step's latest record.
	Steps map[string]Record
	// Order lists steps in the order they first appeared.
	Order []string
	// Completed lists the steps whose latest record says they succeeded,
	// in the order they did.
	Completed []string
	// CompletionOrder lists every step that completed at some point, in
	// the order of its last completion, whatever happened to it later
	// (undone, or an undo that failed).
	CompletionOrder []string
	// Committed names the commit step whose completion committed the run
	// ("" when none did): the run can then only go forward.
	Committed string
	// Outputs are the task's outputs, from the record that ended a
	// succeeded run.
	Outputs *Value
	// Sealed says why sensitive values could not be opened (no key, or
	// another key): they read as nulls then.
	Sealed error
}

// open opens a sealed value with the store's key, noting a failure.
func (s *Store) open(st *State, v *Value) {
	if v == nil || v.sealed == "" || s.Key == nil {
		return
	}
	val, err := openValue(s.Key, v.sealed)
	if err != nil {
		if st.Sealed == nil {
			st.Sealed = err
		}
		return
	}
	v.Value, v.sealed = val, ""
}

// UndoFailed lists the steps whose latest record is an undo that failed.
func (st *State) UndoFailed() []string {
	var out []string
	for _, name := range st.Order {
		if st.Steps[name].Status == UndoFailed {
			out = append(out, name)
		}
	}
	return out
}

// Undoing reports whether the run had started undoing its steps (a
// failure's rollback, or vmflow resume --undo): some step's latest record
// is an undo.
func (st *State) Undoing() bool {
	for _, rec := range st.Steps {
		if rec.Status == Undone || rec.Status == UndoFailed {
			return true
		}
	}
	return false
}

// ErrNotFound is returned for an unknown run id.
var ErrNotFound = errors.New("no such run")

// Resolve finds a run by id or unique prefix; "last" is the newest run.
func (s *Store) Resolve(id string) (string, error) {
	ids, err := s.ids()
	if err != nil {
		return "", err
	}
	if id == "last" || id == "latest" {
		runs, err := s.List()
		if err != nil {
			return "", err
		}
		if len(runs) == 0 {
			return "", fmt.Errorf("%w: there are no runs yet", ErrNotFound)
		}
		return runs[0].Header.ID, nil
	}
	var match []string
	for _, x := range ids {
		if x == id {
			return x, nil
		}
		if strings.HasPrefix(x, id) {
			match = append(match, x)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("%w %q (see vmflow runs)", ErrNotFound, id)
	case 1:
		return match[0], nil
	}
	return "", fmt.Errorf("run id %q is ambiguous: %s", id, strings.Join(match, ", "))
}

func (s *Store) ids() ([]string, error) {
	ids, err := fsx.SubDirs(s.Dir)
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// Load reads a run's journal.
func (s *Store) Load(id string) (*State, error) {
	p := filepath.Join(s.Dir, id, "journal.jsonl")
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w %q", ErrNotFound, id)
		}
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	st := &State{Steps: map[string]Record{}, Status: Running}
	first := true
	for sc.Scan() {
		line := sc.Bytes()
		if first {
			if err := json.Unmarshal(line, &st.Header); err != nil {
				return nil, fmt.Errorf("run %s: bad journal header: %w", id, err)
			}
			s.open(st, &st.Header.Params)
			for k, v := range st.Header.Vars {
				s.open(st, &v)
				st.Header.Vars[k] = v
			}
			first = false
			continue
		}
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			continue // a line torn by a crash mid-write
		}
		s.open(st, rec.Inputs)
		s.open(st, rec.Outputs)
		if rec.Step == "" {
			st.Status, st.End, st.Error = rec.Status, rec.Time, rec.Error
			st.Outputs = rec.Outputs
			continue
		}
		if _, ok := st.Steps[rec.Step]; !ok {
			st.Order = append(st.Order, rec.Step)
		}
		prev, had := st.Steps[rec.Step]
		if rec.Outputs == nil && had {
			rec.Outputs = prev.Outputs // undo records keep the outputs they undid
		}
		if rec.Inputs == nil && had {
			rec.Inputs = prev.Inputs
		}
		st.Steps[rec.Step] = rec
		if rec.Commit && st.Committed == "" {
			st.Committed = rec.Step
		}
		if rec.Refused && st.Committed == rec.Step {
			st.Committed = ""
		}
		if rec.Status == Succeeded {
			st.Completed = append(st.Completed, rec.Step)
		}
	}
	// A step that ran again, or was undone, keeps only its latest place.
	seen := map[string]bool{}
	var completed []string
	for i := len(st.Completed) - 1; i >= 0; i-- {
		name := st.Completed[i]
		if !seen[name] && st.Steps[name].Status == Succeeded {
			completed = append(completed, name)
		}
		seen[name] = true
	}
	slices.Reverse(completed)
	seen = map[string]bool{}
	for i := len(st.Completed) - 1; i >= 0; i-- {
		if name := st.Completed[i]; !seen[name] {
			seen[name] = true
			st.CompletionOrder = append(st.CompletionOrder, name)
		}
	}
	slices.Reverse(st.CompletionOrder)
	st.Completed = completed
	if first {
		return nil, fmt.Errorf("run %s: empty journal", id)
	}
	if st.Status == Running {
		if free, err := lock.TryFile(p); err == nil && free {
			st.Status = Interrupted
		}
	}
	return st, nil
}

// List loads every run, newest first. Unreadable journals are skipped.
func (s *Store) List() ([]*State, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	out := make([]*State, 0, len(ids))
	for _, id := range ids {
		if st, err := s.Load(id); err == nil {
			out = append(out, st)
		}
	}
	// Ids sort by the second; the start time orders runs within one.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Header.Start.After(out[j].Header.Start) })
	return out, nil
}
