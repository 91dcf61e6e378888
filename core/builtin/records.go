package builtin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/records"
	"github.com/vmflow/vmflow/core/sdk"
)

// Generators are the kinds of value record_write can make up once and
// then keep: identities a machine gets at creation.
var generators = map[string]func() (string, error){
	"uuid": newUUID,
	// A systemd machine id: 32 lowercase hex digits, not all zero (a v4
	// UUID without its dashes, as systemd makes them).
	"machine_id": func() (string, error) {
		id, err := newUUID()
		return strings.ReplaceAll(id, "-", ""), err
	},
	// A MAC in QEMU's range (52:54:00), as libvirt and Proxmox hand out.
	"mac": func() (string, error) {
		b, err := random(3)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]), nil
	},
}

// newUUID makes a random (version 4) UUID.
func newUUID() (string, error) {
	b, err := random(16)
	if err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

func random(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := rand.Read(b)
	return b, err
}

func generatorNames() string {
	var ns []string
	for n := range generators {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}

func recordInputs() []sdk.Attr {
	return []sdk.Attr{
		sdk.String("collection", `Where the record lives under the state directory, e.g. "machines/libvirt".`).Required(),
		sdk.String("name", "The record's name, e.g. the machine's.").Required(),
	}
}

func validRecord(ctx context.Context, r *sdk.Request) error {
	if r.Known("collection") {
		if err := records.CheckCollection(r.String("collection")); err != nil {
			return sdk.ArgError("collection", "%v", err)
		}
	}
	if r.Known("name") {
		if err := records.CheckName(r.String("name")); err != nil {
			return sdk.ArgError("name", "%v", err)
		}
	}
	return nil
}

func (s *state) ready() (records.Store, error) {
	d, err := s.requireDir()
	return records.Store{Root: d}, err
}

// named is the store and the record a request names (its collection and
// name inputs).
func (rs recordStore) named(r *sdk.Request) (store records.Store, collection, name string, err error) {
	store, err = rs.st.ready()
	return store, r.String("collection"), r.String("name"), err
}

// objectOf turns a record's values into an object (maps become objects,
// so that attributes of any type sit together).
func objectOf(v cty.Value) cty.Value {
	if v == cty.NilVal || v.IsNull() || !v.IsKnown() {
		return cty.EmptyObjectVal
	}
	if v.Type().IsObjectType() {
		return v
	}
	if v.Type().IsMapType() {
		m := map[string]cty.Value{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			m[k.AsString()] = e
		}
		return cty.ObjectVal(m)
	}
	return cty.EmptyObjectVal
}

// merge lays over's attributes over base's.
func merge(base, over cty.Value) cty.Value {
	m := map[string]cty.Value{}
	for k, v := range objectOf(base).AsValueMap() {
		m[k] = v
	}
	for k, v := range objectOf(over).AsValueMap() {
		m[k] = v
	}
	return cty.ObjectVal(m)
}

func secretsValue(s map[string]string) cty.Value {
	if len(s) == 0 {
		return cty.MapValEmpty(cty.String)
	}
	m := map[string]cty.Value{}
	for k, v := range s {
		m[k] = cty.StringVal(v)
	}
	return cty.MapVal(m)
}

// recordKey is record_write's claim of a record.
func recordKey(coll, name string) string { return "record " + coll + "/" + name }

// recordClaim is what record_write claims before it writes: the record
// as it was, for a later attempt of the step and for the undo.
type recordClaim struct {
	Existed         bool   `json:"existed"`
	Previous        string `json:"previous,omitempty"`
	PreviousSecrets string `json:"previous_secrets,omitempty"`
}

func newRecordClaim(old records.Record, exists bool) recordClaim {
	c := recordClaim{Existed: exists}
	if exists {
		if b, err := records.Encode(old.Values); err == nil {
			c.Previous = string(b)
		}
		if len(old.Secrets) > 0 {
			b, _ := json.Marshal(old.Secrets)
			c.PreviousSecrets = string(b)
		}
	}
	return c
}

// record is the record the claim holds.
func (c recordClaim) record() (records.Record, bool, error) {
	if !c.Existed {
		return records.Record{Values: cty.NullVal(cty.DynamicPseudoType)}, false, nil
	}
	rec, err := records.Decode([]byte(c.Previous))
	if err != nil {
		return rec, false, fmt.Errorf("the record as an interrupted attempt of this step found it: %v", err)
	}
	if c.PreviousSecrets != "" {
		if err := json.Unmarshal([]byte(c.PreviousSecrets), &rec.Secrets); err != nil {
			return rec, false, err
		}
	}
	return rec, true, nil
}

func recordActions(st *state) []*sdk.Action {
	rs := recordStore{st}
	write := &sdk.Action{
		Name: "record_write",
		Description: "Writes a record (a VM's machine record, say) to the state directory atomically: values as an object, secrets in a file only you can read (0600). " +
			"mode create refuses an existing record, update merges into one that must exist, replace writes it whole. " +
			"generate makes up identities once (uuid, machine_id, mac) and keeps those already in the record. Its undo puts the earlier record back, or removes a new one.",
		Inputs: append(recordInputs(),
			sdk.Attribute("values", sdk.TypeAny, "The record's values, an object: { memory = 2048, profiles = [\"dev\"] }."),
			sdk.StringMap("secrets", "Secret values, kept 0600 and never printed.").Sensitive(),
			sdk.StringMap("generate", "Attributes to make up when the record lacks them: attribute → kind ("+generatorNames()+")."),
			sdk.String("mode", "create, update or replace.").Default("replace"),
			sdk.String("from_file", "Take the values from a record.json written earlier (a backup's), under these values."),
		),
		Outputs: []sdk.Attr{
			sdk.Attribute("values", sdk.TypeAny, "The record as written, generated attributes included."),
			sdk.String("path", "The record's directory."),
			sdk.Bool("created", "Whether there was no record before."),
			sdk.String("previous", "The earlier record's values, as JSON (for the undo)."),
			sdk.String("previous_secrets", "The earlier record's secrets, as JSON (for the undo).").Sensitive(),
		},
		Validate: rs.validateWrite,
		Run:      rs.runWrite,
		Undo:     rs.undoWrite,
	}

	read := &sdk.Action{
		Name:        "record_read",
		Description: "Reads a record. A missing one is an error that names where it looked and the records there are, unless missing_ok is set.",
		Inputs: append(recordInputs(),
			sdk.Bool("missing_ok", "Succeed when there is no record (exists is then false and values an empty object).").Default(false),
		),
		Outputs: []sdk.Attr{
			sdk.Bool("exists", "Whether the record exists."),
			sdk.Attribute("values", sdk.TypeAny, "Its values, an object."),
			sdk.StringMap("secrets", "Its secrets.").Sensitive(),
			sdk.String("path", "Its directory."),
		},
		Validate: validRecord,
		Run:      rs.runRead,
	}

	del := &sdk.Action{
		Name:        "record_delete",
		Description: "Removes a record and its directory (whatever else was kept there too).",
		Inputs: append(recordInputs(),
			sdk.Bool("missing_ok", "Succeed when there is no record.").Default(false),
		),
		Outputs:  []sdk.Attr{sdk.Bool("deleted", "Whether a record was removed.")},
		Validate: validRecord,
		Run:      rs.runDelete,
	}

	list := &sdk.Action{
		Name:        "record_list",
		Description: "Lists the records of a collection, with their values.",
		Inputs: []sdk.Attr{
			sdk.String("collection", `The collection, e.g. "machines/libvirt".`).Required(),
			sdk.Bool("values", "false lists the names only: no record is read, so a listing stays as fast with many records as with few, and records is empty.").Default(true),
		},
		Outputs: []sdk.Attr{
			sdk.StringList("names", "Record names, sorted."),
			sdk.Attribute("records", sdk.TypeAny, "Each record's values, by name."),
		},
		Validate: rs.validateList,
		Run:      rs.runList,
	}
	return []*sdk.Action{write, read, del, list}
}

// recordStore holds the record actions' Validate, Run and Undo: one
// method each, on the state directory they keep records in.
type recordStore struct{ st *state }

func (rs recordStore) validateWrite(ctx context.Context, r *sdk.Request) error {
	if err := validRecord(ctx, r); err != nil {
		return err
	}
	if r.Known("mode") {
		switch r.String("mode") {
		case "create", "update", "replace":
		default:
			return sdk.ArgError("mode", "unknown mode %q: create, update or replace", r.String("mode"))
		}
	}
	if r.Known("values") {
		v := r.Value("values")
		if !v.IsNull() && !v.Type().IsObjectType() && !v.Type().IsMapType() {
			return sdk.ArgError("values", "must be an object, like { memory = 1024 }, not %s", v.Type().FriendlyName())
		}
	}
	if r.Known("generate") {
		for k, kind := range r.StringMap("generate") {
			if generators[kind] == nil {
				return sdk.ArgError("generate", "%s: unknown kind %q: %s", k, kind, generatorNames())
			}
		}
	}
	return nil
}

func (rs recordStore) runWrite(ctx context.Context, r *sdk.Request) error {
	store, coll, name, err := rs.named(r)
	if err != nil {
		return err
	}
	old, exists, err := store.Read(coll, name)
	if err != nil {
		return err
	}
	// The record as it was before this step: read now, or, when
	// an interrupted attempt of this step already wrote it, as
	// that attempt claimed it. A record this step created is no
	// "already exists", and its undo still restores or removes.
	var earlier recordClaim
	if r.Claimed(recordKey(coll, name), &earlier) {
		if old, exists, err = earlier.record(); err != nil {
			return err
		}
		r.Log("an interrupted attempt of this step may have written %s; writing it again", store.Dir(coll, name))
	} else if err := r.Claim(recordKey(coll, name), newRecordClaim(old, exists)); err != nil {
		return err
	}
	switch mode := r.String("mode"); {
	case mode == "create" && exists:
		return fmt.Errorf("a record for %s already exists (%s)", name, store.Dir(coll, name))
	case mode == "update" && !exists:
		return fmt.Errorf("there is no record for %s in %s", name, filepath.Dir(store.Dir(coll, name)))
	}
	base := cty.EmptyObjectVal
	if r.String("mode") == "update" {
		base = old.Values
	}
	if f := r.String("from_file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return sdk.ArgError("from_file", "%v", err)
		}
		rec, err := records.Decode(b)
		if err != nil {
			return sdk.ArgError("from_file", "%s: %v", f, err)
		}
		base = merge(base, rec.Values)
	}
	vals := merge(base, r.Value("values"))
	m := vals.AsValueMap()
	if m == nil {
		m = map[string]cty.Value{}
	}
	prev := objectOf(old.Values).AsValueMap()
	for attr, kind := range r.StringMap("generate") {
		if v, ok := m[attr]; ok && !v.IsNull() {
			continue
		}
		if v, ok := prev[attr]; ok && !v.IsNull() {
			m[attr] = v
			continue
		}
		g, err := generators[kind]()
		if err != nil {
			return err
		}
		m[attr] = cty.StringVal(g)
	}
	vals = cty.ObjectVal(m)
	secrets := map[string]string{}
	if r.String("mode") == "update" {
		for k, v := range old.Secrets {
			secrets[k] = v
		}
	}
	for k, v := range r.StringMap("secrets") {
		secrets[k] = v
	}
	// The undo needs the earlier record: keep it in the outputs.
	prevJSON, prevSecrets := "", ""
	if exists {
		b, err := records.Encode(old.Values)
		if err != nil {
			return err
		}
		prevJSON = string(b)
		sb, _ := json.Marshal(old.Secrets)
		prevSecrets = string(sb)
	}
	if err := store.Write(coll, name, records.Record{Values: vals, Secrets: secrets}); err != nil {
		return err
	}
	r.Log("wrote %s", filepath.Join(store.Dir(coll, name), "record.json"))
	return errors.Join(r.Set("values", vals), r.Set("path", store.Dir(coll, name)), r.Set("created", !exists),
		r.Set("previous", prevJSON), r.Set("previous_secrets", prevSecrets))
}

func (rs recordStore) undoWrite(ctx context.Context, r *sdk.Request) error {
	store, coll, name, err := rs.named(r)
	if err != nil {
		return err
	}
	var created bool
	prev, prevSecrets := r.OutputString("previous"), r.OutputString("previous_secrets")
	if v := r.Output("created"); v != cty.NilVal && !v.IsNull() {
		created = v.True()
	}
	if r.Interrupted() {
		var earlier recordClaim
		if !r.Claimed(recordKey(coll, name), &earlier) {
			return nil
		}
		created, prev, prevSecrets = !earlier.Existed, earlier.Previous, earlier.PreviousSecrets
	}
	if created {
		_, err := store.Delete(coll, name)
		return err
	}
	if prev == "" {
		return nil
	}
	rec, err := records.Decode([]byte(prev))
	if err != nil {
		return err
	}
	if prevSecrets != "" && prevSecrets != "null" {
		if err := json.Unmarshal([]byte(prevSecrets), &rec.Secrets); err != nil {
			return err
		}
	}
	return store.Write(coll, name, rec)
}

func (rs recordStore) runRead(ctx context.Context, r *sdk.Request) error {
	store, coll, name, err := rs.named(r)
	if err != nil {
		return err
	}
	rec, exists, err := store.Read(coll, name)
	if err != nil {
		return err
	}
	if !exists && !r.Bool("missing_ok") {
		return missing(store, coll, name)
	}
	return errors.Join(r.Set("exists", exists), r.Set("values", objectOf(rec.Values)),
		r.Set("secrets", secretsValue(rec.Secrets)), r.Set("path", store.Dir(coll, name)))
}

func (rs recordStore) runDelete(ctx context.Context, r *sdk.Request) error {
	store, coll, name, err := rs.named(r)
	if err != nil {
		return err
	}
	ok, err := store.Delete(coll, name)
	if err != nil {
		return err
	}
	if !ok && !r.Bool("missing_ok") {
		return missing(store, coll, name)
	}
	if ok {
		r.Log("removed %s", store.Dir(coll, name))
	}
	return r.Set("deleted", ok)
}

func (rs recordStore) validateList(ctx context.Context, r *sdk.Request) error {
	if r.Known("collection") {
		if err := records.CheckCollection(r.String("collection")); err != nil {
			return sdk.ArgError("collection", "%v", err)
		}
	}
	return nil
}

func (rs recordStore) runList(ctx context.Context, r *sdk.Request) error {
	store, err := rs.st.ready()
	if err != nil {
		return err
	}
	coll := r.String("collection")
	names, err := store.List(coll)
	if err != nil {
		return err
	}
	recs := map[string]cty.Value{}
	if r.Bool("values") { // else names only: no record is read
		for _, n := range names {
			rec, ok, err := store.Read(coll, n)
			if err != nil {
				return err
			}
			if ok {
				recs[n] = objectOf(rec.Values)
			}
		}
	}
	if names == nil {
		names = []string{}
	}
	if err := r.Set("names", names); err != nil {
		return err
	}
	return r.Set("records", cty.ObjectVal(recs))
}

// missing is the error for a record that is not there: where vmflow
// looked, and what is there instead.
func missing(store records.Store, coll, name string) error {
	names, _ := store.List(coll)
	msg := fmt.Sprintf("no record for %s in %s", name, filepath.Dir(store.Dir(coll, name)))
	if len(names) > 0 {
		msg += "; there are: " + strings.Join(names, ", ")
	} else {
		msg += " (it holds none)"
	}
	return errors.New(msg)
}
