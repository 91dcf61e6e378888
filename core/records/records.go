// Package records is vmflow's machine state store: small documents kept
// under the state directory, one directory per record, such as a VM's
// machine record (its profiles, sizes, identity and image) under
// machines/<backend>/<name>/.
//
// A record is written atomically (a temporary file, fsync, rename, fsync
// of the directory), so a crash leaves the old record or the new one,
// never half of one. Its values keep their types (numbers stay numbers,
// lists stay lists). Secrets go to a separate file readable only by the
// owner (0600); the values file is 0644 inside a 0700 directory.
package records

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/vmflow/vmflow/internal/atomicfile"
	"github.com/vmflow/vmflow/internal/fsx"
)

const (
	valuesFile  = "record.json"
	secretsFile = "secrets.json"
)

// Record is one stored document.
type Record struct {
	// Values is an object (or null for none).
	Values cty.Value
	// Secrets are kept in a file only the owner can read.
	Secrets map[string]string
}

// Store keeps records under Root.
type Store struct {
	Root string
}

var (
	segment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// CheckCollection checks a collection path such as "machines/libvirt":
// one or more segments of letters, digits, '.', '_' and '-'.
func CheckCollection(c string) error {
	if c == "" {
		return errors.New("collection is empty")
	}
	for _, s := range strings.Split(c, "/") {
		if !segment.MatchString(s) || s == "." || s == ".." {
			return fmt.Errorf("collection %q: each part must start with a letter or digit and hold only letters, digits, '.', '_' and '-'", c)
		}
	}
	return nil
}

// CheckName checks a record name: one segment.
func CheckName(n string) error {
	if !segment.MatchString(n) || n == "." || n == ".." {
		return fmt.Errorf("record name %q must start with a letter or digit and hold only letters, digits, '.', '_' and '-'", n)
	}
	return nil
}

// Dir is where a record lives.
func (s Store) Dir(collection, name string) string {
	return filepath.Join(s.Root, filepath.FromSlash(collection), name)
}

type document struct {
	// Type is the cty type of Values, so that numbers and lists come back
	// as they went in.
	Type   json.RawMessage `json:"type"`
	Values json.RawMessage `json:"values"`
}

// Read returns the record, and false when there is none.
func (s Store) Read(collection, name string) (Record, bool, error) {
	if err := check(collection, name); err != nil {
		return Record{}, false, err
	}
	dir := s.Dir(collection, name)
	b, err := os.ReadFile(filepath.Join(dir, valuesFile))
	if errors.Is(err, os.ErrNotExist) {
		return Record{Values: cty.NullVal(cty.DynamicPseudoType)}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	rec, err := Decode(b)
	if err != nil {
		return Record{}, false, fmt.Errorf("%s: %v", filepath.Join(dir, valuesFile), err)
	}
	sb, err := os.ReadFile(filepath.Join(dir, secretsFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return Record{}, false, err
	default:
		if err := json.Unmarshal(sb, &rec.Secrets); err != nil {
			return Record{}, false, fmt.Errorf("%s: %v", filepath.Join(dir, secretsFile), err)
		}
	}
	return rec, true, nil
}

// Decode reads a record.json document.
func Decode(b []byte) (Record, error) {
	var doc document
	if err := json.Unmarshal(b, &doc); err != nil {
		return Record{}, err
	}
	ty, err := ctyjson.UnmarshalType(doc.Type)
	if err != nil {
		return Record{}, fmt.Errorf("type: %v", err)
	}
	v, err := ctyjson.Unmarshal(doc.Values, ty)
	if err != nil {
		return Record{}, fmt.Errorf("values: %v", err)
	}
	return Record{Values: v}, nil
}

// Write stores the record atomically, replacing any earlier one. Values
// must be an object or null and wholly known.
func (s Store) Write(collection, name string, rec Record) error {
	if err := check(collection, name); err != nil {
		return err
	}
	v := rec.Values
	if v == cty.NilVal || v.IsNull() {
		v = cty.EmptyObjectVal
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		return fmt.Errorf("record values must be an object, not %s", v.Type().FriendlyName())
	}
	doc, err := Encode(v)
	if err != nil {
		return err
	}
	dir := s.Dir(collection, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	removeStaleTemps(dir)
	// Secrets first: a record never names secrets that are not there.
	if len(rec.Secrets) > 0 {
		sb, err := json.MarshalIndent(rec.Secrets, "", "  ")
		if err != nil {
			return err
		}
		if err := writeAtomic(dir, secretsFile, append(sb, '\n'), 0o600); err != nil {
			return err
		}
	} else if err := os.Remove(filepath.Join(dir, secretsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return writeAtomic(dir, valuesFile, append(doc, '\n'), 0o644)
}

// Encode writes values as a record.json document.
func Encode(v cty.Value) ([]byte, error) {
	if v == cty.NilVal || v.IsNull() {
		v = cty.EmptyObjectVal
	}
	if !v.IsWhollyKnown() {
		return nil, errors.New("record values are not all known")
	}
	tb, err := ctyjson.MarshalType(v.Type())
	if err != nil {
		return nil, err
	}
	vb, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(document{Type: tb, Values: vb}, "", "  ")
}

// Delete removes the record's directory. It reports whether there was one.
func (s Store) Delete(collection, name string) (bool, error) {
	if err := check(collection, name); err != nil {
		return false, err
	}
	dir := s.Dir(collection, name)
	if _, err := os.Stat(filepath.Join(dir, valuesFile)); errors.Is(err, os.ErrNotExist) {
		// No record; a directory a write killed half-way left (nothing
		// but its temporary files) goes all the same.
		if ents, err := os.ReadDir(dir); err == nil && onlyTemps(ents) {
			return false, os.RemoveAll(dir)
		}
		return false, nil
	}
	// Rename first, so that a crash never leaves half a record behind
	// under its name.
	gone := filepath.Join(filepath.Dir(dir), "."+name+".deleted")
	_ = os.RemoveAll(gone)
	if err := os.Rename(dir, gone); err != nil {
		return false, err
	}
	_ = atomicfile.SyncDir(filepath.Dir(dir))
	return true, os.RemoveAll(gone)
}

// List returns the names of the records in a collection, sorted.
func (s Store) List(collection string) ([]string, error) {
	if err := CheckCollection(collection); err != nil {
		return nil, err
	}
	ents, err := fsx.ReadDir(filepath.Join(s.Root, filepath.FromSlash(collection)))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() || CheckName(e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.Root, filepath.FromSlash(collection), e.Name(), valuesFile)); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

func check(collection, name string) error {
	if err := CheckCollection(collection); err != nil {
		return err
	}
	return CheckName(name)
}

// writeAtomic writes dir/name through a temporary file in the same
// directory: the old content or the new one, never a mix. The temporary
// file's name holds the writer's pid (.record.json.tmp-PID-N), so that
// one a killed writer left is known for a leftover (removeStaleTemps).
func writeAtomic(dir, name string, data []byte, mode os.FileMode) error {
	return atomicfile.Write(filepath.Join(dir, name), data, mode, fmt.Sprintf(".%s.tmp-%d-*", name, os.Getpid()))
}

// tempRE matches writeAtomic's temporary files, with the writer's pid.
var tempRE = regexp.MustCompile(`^\.(?:` + regexp.QuoteMeta(valuesFile) + `|` + regexp.QuoteMeta(secretsFile) + `)\.tmp-(\d+)-\d+$`)

// removeStaleTemps removes the temporary files of writers that are gone
// (vmflow killed during a write); a live writer's are left alone.
func removeStaleTemps(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		m := tempRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		if pid, err := strconv.Atoi(m[1]); err == nil && !alive(pid) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// onlyTemps reports whether a record directory holds nothing but
// temporary files of writes (or nothing at all).
func onlyTemps(ents []os.DirEntry) bool {
	for _, e := range ents {
		if !tempRE.MatchString(e.Name()) {
			return false
		}
	}
	return true
}

// alive reports whether a process exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
