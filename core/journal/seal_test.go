package journal

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/lang"
)

// A sensitive part of a journaled value is written sealed only, and
// reads back whole, marked again, with the key; without it, it reads as
// null and the state says why.
func TestSealedValues(t *testing.T) {
	dir := t.TempDir()
	key := NewKey(filepath.Join(t.TempDir(), "cfg", "journal.key"))
	s := New(dir)
	s.Key = key
	secret := "hunter2-very-secret"
	vars := map[string]Value{"token": {Value: cty.StringVal(secret).Mark(lang.Sensitive)}, "name": {Value: cty.StringVal("demo")}}
	id := NewID(time.Now())
	r, err := s.Create(Header{ID: id, Task: "t", Params: Value{Value: cty.EmptyObjectVal}, Vars: vars, Start: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	in := cty.ObjectVal(map[string]cty.Value{
		"files": cty.MapVal(map[string]cty.Value{"a": cty.StringVal("plain"), "b": cty.StringVal(secret).Mark(lang.Sensitive)}),
		"argv":  cty.ListVal([]cty.Value{cty.StringVal("echo"), cty.StringVal(secret).Mark(lang.Sensitive)}),
	})
	if err := r.Append(Record{Step: "x", Status: Succeeded, Inputs: &Value{Value: in}, Outputs: &Value{Value: cty.EmptyObjectVal}}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "runs", id, "journal.jsonl"))
	if bytes.Contains(b, []byte(secret)) || !bytes.Contains(b, []byte(`"sealed":`)) || !bytes.Contains(b, []byte(`"plain"`)) {
		t.Fatalf("journal:\n%s", b)
	}
	if fi, err := os.Stat(key.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}

	st, err := s.Load(id)
	if err != nil || st.Sealed != nil {
		t.Fatal(err, st.Sealed)
	}
	got := st.Steps["x"].Inputs.Value
	if !lang.Unmarked(got).Equals(lang.Unmarked(in)).True() || !got.GetAttr("argv").Index(cty.NumberIntVal(1)).IsMarked() || got.GetAttr("argv").Index(cty.NumberIntVal(0)).IsMarked() {
		t.Fatalf("inputs read back: %#v", got)
	}
	if v := st.Header.Vars["token"].Value; !v.IsMarked() || lang.Unmarked(v).AsString() != secret {
		t.Fatalf("token read back: %#v", v)
	}

	// Without the key (or another key): nulls, and the reason.
	other := New(dir)
	other.Key = NewKey(filepath.Join(t.TempDir(), "other.key"))
	st, err = other.Load(id)
	if err != nil || st.Sealed == nil || !strings.Contains(st.Sealed.Error(), "other.key") {
		t.Fatalf("other key: %v %v", err, st.Sealed)
	}
	if v := st.Header.Vars["token"].Value; !v.IsNull() {
		t.Fatalf("token without the key: %#v", v)
	}
	st, err = New(dir).Load(id) // vmflow runs: no key needed
	if err != nil || st.Header.Vars["name"].Value.AsString() != "demo" {
		t.Fatal(err)
	}
}

// The key lives outside the state directory: VMFLOW_KEY_FILE, else the
// user's config directory; with neither HOME nor XDG_CONFIG_HOME there is
// no place for it, and sealing says so rather than write a key anywhere.
func TestKeyPath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{KeyEnv: "/k/key", "HOME": "/h"}, "/k/key"},
		{map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/vmflow/journal.key"},
		{map[string]string{"HOME": "/h"}, "/h/.config/vmflow/journal.key"},
	} {
		if got := KeyPath(env(c.env)); got != c.want {
			t.Errorf("KeyPath(%v) = %q, want %q", c.env, got, c.want)
		}
	}
	if _, err := NewKey("").seal([]byte("x")); err == nil || !strings.Contains(err.Error(), KeyEnv) {
		t.Errorf("sealing without a key path: %v", err)
	}
}
