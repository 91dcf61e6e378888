package host

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// hclwriteLock is the lock file as hclwrite writes it (what Write used
// before): the reference LockFile.Bytes is held to.
func hclwriteLock(lf *LockFile) []byte {
	out := hclwrite.NewEmptyFile()
	body := out.Body()
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Bytes: []byte(lockHeader)}})
	for _, k := range slices.Sorted(maps.Keys(lf.Plugins)) {
		p := lf.Plugins[k]
		body.AppendNewline()
		b := body.AppendNewBlock("plugin", []string{k}).Body()
		b.SetAttributeValue("version", cty.StringVal(p.Version))
		b.SetAttributeValue("protocol", cty.NumberIntVal(int64(p.Protocol)))
		hs := map[string]cty.Value{}
		for plat, h := range p.Hashes {
			hs[plat] = cty.StringVal(h)
		}
		if len(hs) == 0 {
			b.SetAttributeValue("hashes", cty.EmptyObjectVal)
		} else {
			b.SetAttributeValue("hashes", cty.ObjectVal(hs))
		}
	}
	return out.Bytes()
}

func TestLockFileText(t *testing.T) {
	sum := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := map[string]map[string]*LockedPlugin{
		"none": {},
		"one":  {"libvirt": {Source: "libvirt", Version: "1.2.0", Protocol: 1, Hashes: map[string]string{"linux_amd64": sum}}},
		"several platforms and plugins": {
			"proxmox-stub": {Source: "proxmox-stub", Version: "dev", Protocol: 1, Hashes: map[string]string{"linux_amd64": sum, "darwin_arm64": sum, "linux_arm64": sum}},
			"nix":          {Source: "nix", Version: "7ec82ca-dirty", Protocol: 12, Hashes: map[string]string{"linux_amd64": sum}},
		},
		"no hashes": {"hello": {Source: "hello", Version: "0.1.0", Protocol: 1, Hashes: map[string]string{}}},
		"odd strings": {
			"./plugins/my \"own\" ${x}": {Source: "x", Version: "v%{if}1\\2\t\n\x01\u00e9\U0001F600\u200b", Protocol: 1, Hashes: map[string]string{"linux-amd64": sum, "${p}": sum}},
		},
	}
	for name, plugins := range cases {
		t.Run(name, func(t *testing.T) {
			lf := &LockFile{Path: t.TempDir() + "/" + LockFileName, Plugins: plugins}
			got, want := string(lf.Bytes()), string(hclwriteLock(lf))
			if got != want {
				t.Fatalf("lock file text differs from hclwrite's:\n--- got\n%s\n--- hclwrite\n%s", got, want)
			}
			// And it reads back as what was written.
			if err := lf.Write(); err != nil {
				t.Fatal(err)
			}
			back, diags := ReadLockFile(lf.Path)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if len(back.Plugins) != len(plugins) {
				t.Fatalf("read back %d plugins, wrote %d", len(back.Plugins), len(plugins))
			}
			for k, p := range plugins {
				b := back.Plugins[k]
				if b == nil || b.Version != p.Version || b.Protocol != p.Protocol || !maps.Equal(b.Hashes, p.Hashes) {
					t.Fatalf("plugin %q read back as %+v, wrote %+v", k, b, p)
				}
			}
		})
	}
}

// A lock file that is not what vmflow writes is an error at its line,
// and nothing of it is used.
func TestLockFileErrors(t *testing.T) {
	sum := `"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"`
	cases := map[string]struct{ src, want string }{
		"hashes not an object":  {"plugin \"a\" {\n  version = \"1\"\n  hashes = \"x\"\n}\n", ":3,13-14: Unsuitable value type"},
		"protocol not a number": {"plugin \"a\" {\n  protocol = \"one\"\n  hashes = {}\n}\n", ":2,15-18: Unsuitable value type"},
		"no hashes":             {"plugin \"a\" {\n  version = \"1\"\n}\n", ":1,12-12: Missing required argument"},
		"a short hash":          {"plugin \"a\" {\n  hashes = { linux_amd64 = \"sha256:00\" }\n}\n", `Invalid plugin lock file; plugin "a": the hash for linux_amd64 must be "sha256:" and 64 hex digits`},
		"another block":         {"plugin \"a\" {\n  hashes = {}\n}\nprovider \"b\" {}\n", ":4,1-9: Unsupported block type"},
		"an attribute outside":  {"version = 1\nplugin \"a\" {\n  hashes = { linux_amd64 = " + sum + " }\n}\n", ":1,1-8: Unsupported argument"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), LockFileName)
			if err := os.WriteFile(path, []byte(c.src), 0o644); err != nil {
				t.Fatal(err)
			}
			lf, diags := ReadLockFile(path)
			if lf != nil || !diags.HasErrors() {
				t.Fatalf("read %+v, %v; want an error", lf, diags)
			}
			if !strings.Contains(diags.Error(), c.want) {
				t.Fatalf("error %q does not say %q", diags.Error(), c.want)
			}
		})
	}
}
