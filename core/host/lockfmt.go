package host

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/vmflow/vmflow/core/lang"
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
		fmt.Fprintf(&b, "\nplugin %s {\n", lang.QuoteString(k))
		fmt.Fprintf(&b, "  version  = %s\n", lang.QuoteString(p.Version))
		fmt.Fprintf(&b, "  protocol = %d\n", p.Protocol)
		if len(p.Hashes) == 0 {
			b.WriteString("  hashes   = {}\n}\n")
			continue
		}
		plats := slices.Sorted(maps.Keys(p.Hashes))
		keys := make([]string, len(plats))
		width := 0
		for i, plat := range plats {
			keys[i] = lang.ObjectKey(plat)
			width = max(width, len(keys[i]))
		}
		b.WriteString("  hashes = {\n")
		for i, plat := range plats {
			fmt.Fprintf(&b, "    %-*s = %s\n", width, keys[i], lang.QuoteString(p.Hashes[plat]))
		}
		b.WriteString("  }\n}\n")
	}
	return []byte(b.String())
}
