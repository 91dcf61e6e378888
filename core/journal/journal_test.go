package journal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
)

func TestJournalRoundTripAndInterruptedRuns(t *testing.T) {
	s := New(t.TempDir())
	params := cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("demo"), "memory": cty.NumberIntVal(2048)})
	id := NewID(time.Now())
	r, err := s.Create(Header{ID: id, Task: "create", Params: Value{Value: params}, PID: os.Getpid(), Start: time.Now(), Args: []string{"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	out := Value{Value: cty.ObjectVal(map[string]cty.Value{"path": cty.StringVal("/var/lib/x.qcow2")})}
	in := Value{Value: cty.ObjectVal(map[string]cty.Value{"size": cty.NumberIntVal(10)})}
	for _, rec := range []Record{
		{Step: "disk", Status: Running, Inputs: &in},
		{Step: "disk", Status: Succeeded, Outputs: &out},
		{Step: "define", Status: Running},
	} {
		if err := r.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	// While the run holds its journal it is running.
	st, err := s.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != Running {
		t.Fatalf("status %s", st.Status)
	}
	if got := st.Header.Params.GetAttr("memory"); !got.RawEquals(cty.NumberIntVal(2048)) {
		t.Fatalf("params %#v", st.Header.Params)
	}
	disk := st.Steps["disk"]
	if disk.Status != Succeeded || disk.Outputs.GetAttr("path").AsString() != "/var/lib/x.qcow2" || disk.Inputs.GetAttr("size").AsBigFloat().String() != "10" {
		t.Fatalf("disk record %+v", disk)
	}
	// The process dies without a final record: the run is interrupted.
	r.Close()
	st, _ = s.Load(id)
	if st.Status != Interrupted {
		t.Fatalf("status after close %s", st.Status)
	}
	// A torn last line (a crash mid-write) is ignored.
	f, _ := os.OpenFile(filepath.Join(s.Dir, id, "journal.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"step":"define","sta`)
	f.Close()
	if st, err = s.Load(id); err != nil || st.Steps["define"].Status != Running {
		t.Fatalf("after torn line: %v %+v", err, st)
	}

	// Resume appends to the same journal.
	r2, err := s.Reopen(id)
	if err != nil {
		t.Fatal(err)
	}
	r2.Append(Record{Status: Succeeded})
	r2.Close()
	st, _ = s.Load(id)
	if st.Status != Succeeded {
		t.Fatalf("status after resume %s", st.Status)
	}
}

func TestResolve(t *testing.T) {
	s := New(t.TempDir())
	base := time.Now()
	for i, id := range []string{"20261127-050000-aaaa", "20261127-060000-bbcc", "20261127-060000-bbbb"} {
		r, err := s.Create(Header{ID: id, Task: "t", Params: Value{Value: cty.EmptyObjectVal}, Start: base.Add(time.Duration(i) * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	// The newest by start time, even where the ids share a second.
	if id, _ := s.Resolve("last"); id != "20261127-060000-bbbb" {
		t.Errorf("last = %s", id)
	}
	if id, _ := s.Resolve("20261127-05"); id != "20261127-050000-aaaa" {
		t.Errorf("prefix = %s", id)
	}
	if _, err := s.Resolve("20261127-060000-bb"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous: %v", err)
	}
	if _, err := s.Resolve("nope"); err == nil {
		t.Error("unknown id resolved")
	}
	runs, _ := s.List()
	if len(runs) != 3 || runs[0].Header.ID != "20261127-060000-bbbb" {
		t.Errorf("list order %v", runs)
	}
}

// Completed lists the steps that stand succeeded, in the order they did;
// a step undone drops out, one run again keeps its latest place.
func TestCompletedOrderAndUndoing(t *testing.T) {
	s := New(t.TempDir())
	id := NewID(time.Now())
	r, err := s.Create(Header{ID: id, Task: "t", Locks: []string{"demo"}, Start: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range []Record{
		{Step: "a", Status: Succeeded}, {Step: "b", Status: Succeeded}, {Step: "c", Status: Running},
		{Status: Running}, // resumed
		{Step: "a", Status: Succeeded}, {Step: "c", Status: Succeeded}, {Step: "d", Status: Running},
	} {
		if err := r.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	st, err := s.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(st.Completed, ","); got != "b,a,c" || st.Undoing() || strings.Join(st.Header.Locks, ",") != "demo" {
		t.Fatalf("completed %s, undoing %v, locks %v", got, st.Undoing(), st.Header.Locks)
	}
	r, _ = s.Reopen(id)
	_ = r.Append(Record{Step: "c", Status: Undone})
	r.Close()
	st, _ = s.Load(id)
	if got := strings.Join(st.Completed, ","); got != "b,a" || !st.Undoing() || st.Status != Interrupted {
		t.Fatalf("after an undo: completed %s, undoing %v, status %s", got, st.Undoing(), st.Status)
	}
}

// Values keep their types across a journal: a list stays a list (JSON
// alone would read it back as a tuple, which fits no declared type), and
// a journal written before types were kept still reads.
func TestValueKeepsItsType(t *testing.T) {
	v := cty.ObjectVal(map[string]cty.Value{
		"profiles": cty.ListVal([]cty.Value{cty.StringVal("core"), cty.StringVal("dev")}),
		"none":     cty.ListValEmpty(cty.String),
		"size":     cty.NumberIntVal(3),
		"tags":     cty.MapVal(map[string]cty.Value{"a": cty.StringVal("b")}),
	})
	b, err := json.Marshal(Value{Value: v})
	if err != nil {
		t.Fatal(err)
	}
	var back Value
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Type().Equals(v.Type()) || !back.RawEquals(v) {
		t.Fatalf("read back %#v (%s), wrote %#v", back.Value, back.Type().FriendlyName(), v)
	}
	var legacy Value
	if err := json.Unmarshal([]byte(`{"profiles":["core"],"size":3}`), &legacy); err != nil || !legacy.Type().IsObjectType() {
		t.Fatalf("an untyped value: %v %#v", err, legacy.Value)
	}
}
