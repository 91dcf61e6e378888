package journal

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/vmflow/vmflow/core/lang"
)

// KeyEnv names the journal key file, instead of the default.
const KeyEnv = "VMFLOW_KEY_FILE"

// KeyPath is where the key that seals sensitive journal values lives:
// $VMFLOW_KEY_FILE, else ${XDG_CONFIG_HOME:-~/.config}/vmflow/journal.key.
// It is outside the state directory on purpose: a copied, backed-up or
// shared state directory then holds no secret it can open.
func KeyPath(getenv func(string) string) string {
	if p := getenv(KeyEnv); p != "" {
		return p
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		if home == "" {
			return "" // no place for it: Key says so when it is needed
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "vmflow", "journal.key")
}

// Key seals and opens the sensitive parts of journaled values
// (XChaCha20-Poly1305, a random nonce per value). The file is read, or
// made (0600, 256 random bits), on first use.
type Key struct {
	Path string

	mu   sync.Mutex
	aead interface {
		Seal(dst, nonce, plaintext, additionalData []byte) []byte
		Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
		NonceSize() int
	}
}

// NewKey returns the key kept in path.
func NewKey(path string) *Key { return &Key{Path: path} }

func (k *Key) load(create bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.aead != nil {
		return nil
	}
	if k.Path == "" {
		return fmt.Errorf("no place for the journal key: set HOME, XDG_CONFIG_HOME or %s", KeyEnv)
	}
	b, err := os.ReadFile(k.Path)
	if errors.Is(err, os.ErrNotExist) && create {
		raw := make([]byte, chacha20poly1305.KeySize)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(k.Path), 0o700); err != nil {
			return fmt.Errorf("making the journal key %s: %w", k.Path, err)
		}
		if werr := writeNewKey(k.Path, raw); werr != nil && !errors.Is(werr, os.ErrExist) {
			return fmt.Errorf("making the journal key %s: %w", k.Path, werr)
		}
		b, err = os.ReadFile(k.Path) // another vmflow may have made it first
	}
	if err != nil {
		return fmt.Errorf("the journal key: %w", err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != chacha20poly1305.KeySize {
		return fmt.Errorf("the journal key %s is not %d hex-encoded bytes", k.Path, chacha20poly1305.KeySize)
	}
	aead, err := chacha20poly1305.NewX(raw)
	if err != nil {
		return err
	}
	k.aead = aead
	return nil
}

// writeNewKey writes a key file that must not exist yet, 0600.
func writeNewKey(path string, raw []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(hex.EncodeToString(raw) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (k *Key) seal(plain []byte) (string, error) {
	if k == nil {
		return "", errors.New("no key to seal a sensitive value with")
	}
	if err := k.load(true); err != nil {
		return "", err
	}
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(k.aead.Seal(nonce, nonce, plain, nil)), nil
}

func (k *Key) open(s string) ([]byte, error) {
	if k == nil {
		return nil, errors.New("no key given")
	}
	if err := k.load(false); err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) < k.aead.NonceSize() {
		return nil, errors.New("a sealed value is damaged")
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, b[:n], b[n:], nil)
	if err != nil {
		return nil, fmt.Errorf("a sealed value does not open with the key %s (sealed with another key?)", k.Path)
	}
	return plain, nil
}

// sealedValue is what is sealed: the whole value and where its
// sensitive parts are.
type sealedValue struct {
	Type  json.RawMessage    `json:"type"`
	Value json.RawMessage    `json:"value"`
	Paths [][]sealedPathStep `json:"paths"`
}

type sealedPathStep struct {
	Attr  string          `json:"attr,omitempty"`
	Index json.RawMessage `json:"index,omitempty"` // a string or a number
}

func encodePaths(ps []cty.Path) [][]sealedPathStep {
	out := make([][]sealedPathStep, 0, len(ps))
	for _, p := range ps {
		steps := []sealedPathStep{}
		for _, st := range p {
			switch st := st.(type) {
			case cty.GetAttrStep:
				steps = append(steps, sealedPathStep{Attr: st.Name})
			case cty.IndexStep:
				b, _ := ctyjson.Marshal(st.Key, st.Key.Type())
				steps = append(steps, sealedPathStep{Index: b})
			}
		}
		out = append(out, steps)
	}
	return out
}

func decodePaths(in [][]sealedPathStep) []cty.Path {
	out := make([]cty.Path, 0, len(in))
	for _, steps := range in {
		var p cty.Path
		for _, st := range steps {
			switch {
			case st.Attr != "":
				p = p.GetAttr(st.Attr)
			case len(st.Index) > 0 && st.Index[0] == '"':
				k, _ := ctyjson.Unmarshal(st.Index, cty.String)
				p = p.Index(k)
			case len(st.Index) > 0:
				k, _ := ctyjson.Unmarshal(st.Index, cty.Number)
				p = p.Index(k)
			}
		}
		out = append(out, p)
	}
	return out
}

// sealValue seals a value with sensitive parts.
func sealValue(k *Key, v cty.Value) (string, error) {
	u, paths := lang.SensitivePaths(v)
	tb, err := ctyjson.MarshalType(u.Type())
	if err != nil {
		return "", err
	}
	vb, err := ctyjson.Marshal(u, u.Type())
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(sealedValue{Type: tb, Value: vb, Paths: encodePaths(paths)})
	if err != nil {
		return "", err
	}
	return k.seal(b)
}

// openValue opens a sealed value, its sensitive parts marked again.
func openValue(k *Key, s string) (cty.Value, error) {
	b, err := k.open(s)
	if err != nil {
		return cty.NilVal, err
	}
	var sv sealedValue
	if err := json.Unmarshal(b, &sv); err != nil {
		return cty.NilVal, err
	}
	ty, err := ctyjson.UnmarshalType(sv.Type)
	if err != nil {
		return cty.NilVal, err
	}
	v, err := ctyjson.Unmarshal(sv.Value, ty)
	if err != nil {
		return cty.NilVal, err
	}
	return lang.Remark(v, decodePaths(sv.Paths)), nil
}
