package host

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The lock file's text, written here rather than through hclwrite: the
// file has one fixed shape, and hclwrite brings go-cmp into the vmflow
// binary, whose package init (regexps) every command paid, about 1.5 ms,
// `vmflow list` and `vmflow status` included. lockfmt_test.go holds the
// output to be what hclwrite writes, byte for byte.

const lockHeader = "# Written by `vmflow lock`; commit it with tasks.hcl.\n" +
	"# vmflow runs a plugin only when its binary has this platform's hash here.\n"

// Bytes is the lock file's text: a block a plugin, sorted by source.
func (lf *LockFile) Bytes() []byte {
	var b strings.Builder
	b.WriteString(lockHeader)
	for _, k := range slices.Sorted(maps.Keys(lf.Plugins)) {
		p := lf.Plugins[k]
		fmt.Fprintf(&b, "\nplugin %s {\n", hclQuote(k))
		fmt.Fprintf(&b, "  version  = %s\n", hclQuote(p.Version))
		fmt.Fprintf(&b, "  protocol = %d\n", p.Protocol)
		if len(p.Hashes) == 0 {
			b.WriteString("  hashes   = {}\n}\n")
			continue
		}
		plats := slices.Sorted(maps.Keys(p.Hashes))
		keys := make([]string, len(plats))
		width := 0
		for i, plat := range plats {
			keys[i] = hclKey(plat)
			width = max(width, len(keys[i]))
		}
		b.WriteString("  hashes = {\n")
		for i, plat := range plats {
			fmt.Fprintf(&b, "    %-*s = %s\n", width, keys[i], hclQuote(p.Hashes[plat]))
		}
		b.WriteString("  }\n}\n")
	}
	return []byte(b.String())
}

// hclKey is an object key: bare when it is an identifier, else quoted.
func hclKey(s string) string {
	if hclsyntax.ValidIdentifier(s) {
		return s
	}
	return hclQuote(s)
}

// hclQuote is s as an HCL quoted string: escapes for quotes, backslashes
// and control characters, and "${" and "%{" doubled so that no template
// sequence is read into it.
func hclQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case (r == '$' || r == '%') && strings.HasPrefix(s[i+1:], "{"):
			b.WriteRune(r)
			b.WriteRune(r)
		case !unicode.IsPrint(r) && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		case !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
