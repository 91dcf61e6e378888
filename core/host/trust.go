package host

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

// LockFileName is the plugin lock file, beside the root task file.
const LockFileName = ".vmflow.lock.hcl"

// Platform is this machine's key in a lock entry's hashes: linux_amd64.
func Platform() string { return runtime.GOOS + "_" + runtime.GOARCH }

// LockFile is a parsed .vmflow.lock.hcl.
type LockFile struct {
	Path    string
	Plugins map[string]*LockedPlugin // by source key
}

// LockedPlugin is one plugin block of a lock file.
type LockedPlugin struct {
	Source   string
	Version  string
	Protocol int
	// Hashes: platform → "sha256:<hex>".
	Hashes map[string]string
}

// The lock file's schema: plugin "SOURCE" blocks of version, protocol
// and hashes (other attributes in a block are let be).
var (
	lockSchema       = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "plugin", LabelNames: []string{"source"}}}}
	lockPluginSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "version"}, {Name: "protocol"}, {Name: "hashes", Required: true}}}
)

// ReadLockFile reads a lock file; a file that does not exist gives
// (nil, nil). Errors name the file and line.
func ReadLockFile(path string) (*LockFile, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read the plugin lock file", Detail: err.Error()}}
	}
	f, diags := hclparse.NewParser().ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, diags
	}
	content, diags := f.Body.Content(lockSchema)
	type decoded struct {
		p      *LockedPlugin
		remain hcl.Body
	}
	var plugins []decoded
	for _, blk := range content.Blocks {
		pc, remain, ds := blk.Body.PartialContent(lockPluginSchema)
		diags = append(diags, ds...)
		p := &LockedPlugin{Source: blk.Labels[0]}
		diags = append(diags, decodeLockAttr(pc.Attributes["version"], &p.Version)...)
		diags = append(diags, decodeLockAttr(pc.Attributes["protocol"], &p.Protocol)...)
		diags = append(diags, decodeLockAttr(pc.Attributes["hashes"], &p.Hashes)...)
		plugins = append(plugins, decoded{p, remain})
	}
	if diags.HasErrors() {
		return nil, diags
	}
	lf := &LockFile{Path: path, Plugins: map[string]*LockedPlugin{}}
	for _, d := range plugins {
		p := d.p
		for plat, h := range p.Hashes {
			if !strings.HasPrefix(h, "sha256:") || len(h) != len("sha256:")+64 {
				return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid plugin lock file",
					Detail:  fmt.Sprintf("plugin %q: the hash for %s must be \"sha256:\" and 64 hex digits, got %q; `vmflow lock %s` writes it again.", p.Source, plat, h, p.Source),
					Subject: hclRangeOf(f, d.remain)}}
			}
		}
		lf.Plugins[p.Source] = p
	}
	return lf, nil
}

// decodeLockAttr puts an attribute's value into the Go value at to (a
// string, int or map of strings); a missing attribute leaves it as it is.
func decodeLockAttr(attr *hcl.Attribute, to any) hcl.Diagnostics {
	if attr == nil {
		return nil
	}
	val, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return diags
	}
	ty, err := gocty.ImpliedType(to)
	if err == nil {
		if val, err = convert.Convert(val, ty); err == nil {
			err = gocty.FromCtyValue(val, to)
		}
	}
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unsuitable value type",
			Detail: "Unsuitable value: " + err.Error(), Subject: attr.Expr.StartRange().Ptr(), Context: attr.Expr.Range().Ptr()}}
	}
	return nil
}

func hclRangeOf(f *hcl.File, b hcl.Body) *hcl.Range {
	if b != nil {
		r := b.MissingItemRange()
		return &r
	}
	r := f.Body.MissingItemRange()
	return &r
}

// Write writes the lock file atomically, plugins sorted by source.
func (lf *LockFile) Write() error {
	out := lf.Bytes()
	tmp := lf.Path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, lf.Path)
}

// FileHash is the sha256 of a file, as written in a lock: "sha256:<hex>".
func FileHash(path string) (string, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", nil, err
	}
	sum := h.Sum(nil)
	return "sha256:" + hex.EncodeToString(sum), sum, nil
}

// Trust decides whether a plugin binary may run: against the lock file
// when there is one, else by where it was found.
type Trust struct {
	// Lock is the project's lock file; nil when it has none.
	Lock *LockFile
	// LockPath is where the lock file is, or would be written.
	LockPath string
	// Trusted are the directories whose binaries run without a lock
	// (next to vmflow, VMFLOW_PLUGIN_PATH, PATH).
	Trusted []string
	// Platform is this machine's hash key (Platform() when empty).
	Platform string
}

// NewTrust builds the policy for a project whose root task file is in
// dir, with the trusted directories of a finder.
func NewTrust(dir string, f *Finder) (*Trust, hcl.Diagnostics) {
	t := &Trust{LockPath: filepath.Join(dir, LockFileName)}
	for _, d := range f.Dirs {
		if d.Reason != reasonBeside {
			t.Trusted = append(t.Trusted, d.Path)
		}
	}
	lf, diags := ReadLockFile(t.LockPath)
	t.Lock = lf
	return t, diags
}

// Key is a plugin source as the lock file names it: the source name, or
// for a path source the binary's path relative to the lock file.
func (t *Trust) Key(source, path string) string {
	if !strings.ContainsRune(source, '/') {
		return source
	}
	if rel, err := filepath.Rel(filepath.Dir(t.LockPath), path); err == nil {
		rel = filepath.ToSlash(rel)
		if !strings.HasPrefix(rel, "../") {
			rel = "./" + rel
		}
		return rel
	}
	return path
}

func (t *Trust) platform() string {
	if t.Platform != "" {
		return t.Platform
	}
	return Platform()
}

// TrustedDir reports whether a binary lies in a directory whose binaries
// run without a lock.
func (t *Trust) TrustedDir(path string) bool {
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	for _, d := range t.Trusted {
		if d == dir {
			return true
		}
	}
	return false
}

// Why a binary was refused.
const (
	RefusedMismatch    = "mismatch"     // the lock has another hash
	RefusedNotLocked   = "not locked"   // the lock does not list it
	RefusedNoPlatform  = "no platform"  // the lock has no hash for this platform
	RefusedUntrustedAt = "project-only" // no lock, and found inside the project
)

// RefusedError says why a plugin binary is not run, with what the user
// checks and the command that updates the lock.
type RefusedError struct {
	Kind     string
	Key      string // the lock's name for it
	Path     string
	Expected string
	Actual   string
	LockPath string
	Platform string
}

func (e *RefusedError) Error() string {
	lock := filepath.Base(e.LockPath)
	fix := fmt.Sprintf("`vmflow lock %s`", e.Key)
	switch e.Kind {
	case RefusedMismatch:
		return fmt.Sprintf("%s does not match %s: expected %s, found %s. It was not run. If you changed it on purpose (a rebuild, an upgrade), check it, then %s updates the lock", e.Path, lock, e.Expected, e.Actual, fix)
	case RefusedNotLocked:
		return fmt.Sprintf("%s is not in %s (found %s, %s). It was not run. Check it, then %s adds it", e.Key, lock, e.Path, e.Actual, fix)
	case RefusedNoPlatform:
		return fmt.Sprintf("%s has no hash for %s in %s (found %s, %s; expected one of %s). It was not run. Check it, then %s adds this platform's hash", e.Key, e.Platform, lock, e.Path, e.Actual, e.Expected, fix)
	}
	return fmt.Sprintf("%s is part of the project, not an installed plugin, and no %s lists it: vmflow runs a project's own plugin binaries only once they are locked. It was not run. Check it, then %s (%s) writes %s", e.Path, lock, fix, e.Actual, lock)
}

// Check decides whether the binary at path, found for source, may run,
// and returns the sha256 StartChecked must find when it starts it (nil: no
// check needed, as for an installed plugin of a project without a lock).
// A locked plugin's binary is hashed once, by StartChecked right before
// exec; when that refuses it (ChecksumError), Mismatch says so with both
// hashes.
func (t *Trust) Check(source, path string) ([]byte, error) {
	if t == nil {
		return nil, nil
	}
	key := t.Key(source, path)
	if t.Lock == nil {
		if t.TrustedDir(path) {
			return nil, nil
		}
		actual, _, err := FileHash(path)
		if err != nil {
			return nil, err
		}
		return nil, &RefusedError{Kind: RefusedUntrustedAt, Key: key, Path: path, Actual: actual, LockPath: t.LockPath}
	}
	refuse := func(kind, expected string) ([]byte, error) {
		actual, _, err := FileHash(path)
		if err != nil {
			return nil, err
		}
		return nil, &RefusedError{Kind: kind, Key: key, Path: path, Expected: expected, Actual: actual, LockPath: t.Lock.Path, Platform: t.platform()}
	}
	lp := t.Lock.Plugins[key]
	if lp == nil {
		return refuse(RefusedNotLocked, "")
	}
	want, ok := lp.Hashes[t.platform()]
	if !ok {
		var others []string
		for _, h := range lp.Hashes {
			others = append(others, h)
		}
		sort.Strings(others)
		return refuse(RefusedNoPlatform, strings.Join(others, ", "))
	}
	sum, err := hex.DecodeString(strings.TrimPrefix(want, "sha256:"))
	if err != nil || len(sum) != sha256.Size {
		return refuse(RefusedMismatch, want)
	}
	return sum, nil
}

// Mismatch is the error for a locked binary whose hash is not the lock's
// (StartChecked refused to start it), with both hashes.
func (t *Trust) Mismatch(source, path string) error {
	key := t.Key(source, path)
	actual, _, err := FileHash(path)
	if err != nil {
		return err
	}
	want := ""
	if t.Lock != nil && t.Lock.Plugins[key] != nil {
		want = t.Lock.Plugins[key].Hashes[t.platform()]
	}
	lockPath := t.LockPath
	if t.Lock != nil {
		lockPath = t.Lock.Path
	}
	return &RefusedError{Kind: RefusedMismatch, Key: key, Path: path, Expected: want, Actual: actual, LockPath: lockPath, Platform: t.platform()}
}

// ChecksumError is a binary StartChecked refused to start: it does not have
// the sha256 it was started with.
type ChecksumError struct{ Path string }

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("plugin %s changed after vmflow checked it against the lock file; it was not run", e.Path)
}

// Record sets a plugin's entry for one platform: an entry of the same
// version and protocol keeps the other platforms' hashes; a new version
// starts afresh, for the others' hashes are of the old binaries.
func (lf *LockFile) Record(key, version string, protocol int, platform, hash string) {
	p := lf.Plugins[key]
	if p == nil || p.Version != version || p.Protocol != protocol {
		p = &LockedPlugin{Source: key, Version: version, Protocol: protocol, Hashes: map[string]string{}}
		lf.Plugins[key] = p
	}
	if p.Hashes == nil {
		p.Hashes = map[string]string{}
	}
	p.Hashes[platform] = hash
}
