package config

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
)

func badName(kind, name string, r hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Invalid %s name", kind),
		Detail:   fmt.Sprintf("%q is not a valid %s name: use letters, digits, '_' and '-', starting with a letter.", name, kind),
		Subject:  r.Ptr(),
	}
}

// blockContent reads a labelled block of this kind: its name, and its
// content by schema with the content's diagnostics, which it reports.
// The content is nil, and the name reported, when valid refuses the name.
func (l *loader) blockContent(kind string, b *hcl.Block, valid func(string) bool, schema *hcl.BodySchema) (string, *hcl.BodyContent, hcl.Diagnostics) {
	name := b.Labels[0]
	if !valid(name) {
		l.diags = append(l.diags, badName(kind, name, b.LabelRanges[0]))
		return name, nil, nil
	}
	content, diags := b.Body.Content(schema)
	l.diags = append(l.diags, diags...)
	return name, content, diags
}

// validTaskName: letters, digits, '_' and '-', starting with a letter. Dots
// separate include namespaces, so a task name never has one.
func validTaskName(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// sortedKeys lists a map's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// Suggest returns " Did you mean "x"?" for the closest name, or "". Among
// equally close names the first in sorted order wins, so the message is
// the same on every run.
func Suggest(name string, candidates []string) string {
	candidates = append([]string(nil), candidates...)
	sort.Strings(candidates)
	best, bestD := "", 3
	for _, c := range candidates {
		if d := levenshtein.Distance(name, c, nil); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

// checkTaskNames refuses two tasks of one name in different files (a
// flattened include gives its tasks the names they have in their file).
func (l *loader) checkTaskNames() {
	seen := map[string]*Task{}
	for _, t := range l.proj.Tasks {
		if prev, ok := seen[t.Name]; ok {
			if prev.File != t.File {
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: fmt.Sprintf("Duplicate task %q", t.Name),
					Detail:  fmt.Sprintf("Task %q is declared at %s already; a flattened include keeps its tasks' names, so they must not clash. Rename one, or drop flatten = true.", t.Name, prev.DeclRange),
					Subject: t.DeclRange.Ptr(),
				})
			}
			continue
		}
		seen[t.Name] = t
	}
}
