package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// decodeLocals reads a file's locals blocks: named values worked out once,
// when the file loads, from variables, functions and other locals, and
// usable wherever the file's expressions are (local.NAME).
func (l *loader) decodeLocals(f *File, blocks []*hcl.Block) {
	f.LocalValues = cty.EmptyObjectVal
	attrs := map[string]*hcl.Attribute{}
	for _, b := range blocks {
		as, diags := b.Body.JustAttributes()
		l.diags = append(l.diags, diags...)
		for _, a := range as {
			if !hclsyntax.ValidIdentifier(a.Name) {
				l.diags = append(l.diags, badName("local", a.Name, a.NameRange))
				continue
			}
			if prev, ok := attrs[a.Name]; ok {
				l.diags = append(l.diags, duplicate("local", a.Name, a.Range, prev.Range))
				continue
			}
			attrs[a.Name] = a
		}
	}
	// Each local may use variables and other locals: check the references,
	// then work them out in the order they need.
	bad := map[string]bool{}
	for _, name := range sortedKeys(attrs) {
		a := attrs[name]
		for _, tr := range a.Expr.Variables() {
			rng := tr.SourceRange()
			switch root := tr.RootName(); {
			case root == "var":
				if len(tr) > 1 && !f.declaresVar(attrName(tr[1])) {
					l.diags = append(l.diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Reference to undeclared variable",
						Detail:  fmt.Sprintf("No variable %q is declared in this file.", attrName(tr[1])),
						Subject: rng.Ptr(),
					})
					bad[name] = true
				}
			case root == "local":
				if len(tr) < 2 || attrs[attrName(tr[1])] == nil {
					ref := ""
					if len(tr) > 1 {
						ref = attrName(tr[1])
					}
					l.diags = append(l.diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Reference to undeclared local",
						Detail:  fmt.Sprintf("No local %q is declared in this file.%s", ref, Suggest(ref, sortedKeys(attrs))),
						Subject: rng.Ptr(),
					})
					bad[name] = true
				}
			default:
				l.diags = append(l.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: fmt.Sprintf("%s.* is not allowed in a local", root),
					Detail:  "A file's locals are worked out when the file loads, from var.* and other local.* values (and functions); params and steps are not known then.",
					Subject: rng.Ptr(),
				})
				bad[name] = true
			}
		}
	}
	vals := map[string]cty.Value{}
	pending := sortedKeys(attrs)
	for len(pending) > 0 {
		var next []string
		for _, name := range pending {
			if bad[name] {
				continue
			}
			a := attrs[name]
			ready := true
			for _, tr := range a.Expr.Variables() {
				if tr.RootName() != "local" {
					continue
				}
				dep := attrName(tr[1])
				if bad[dep] {
					bad[name] = true // reported where dep is
					ready = false
					break
				}
				if _, ok := vals[dep]; !ok {
					ready = false
				}
			}
			if bad[name] {
				continue
			}
			if !ready {
				next = append(next, name)
				continue
			}
			ectx := f.varContext()
			ectx.Variables["local"] = objectOfValues(vals)
			v, diags := a.Expr.Value(ectx)
			l.diags = append(l.diags, diags...)
			if diags.HasErrors() {
				bad[name] = true
				continue
			}
			vals[name] = v
		}
		if len(next) == len(pending) {
			sort.Strings(next)
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Locals refer to each other",
				Detail:  fmt.Sprintf("These locals need each other to be worked out: %s.", strings.Join(next, ", ")),
				Subject: attrs[next[0]].Range.Ptr(),
			})
			break
		}
		pending = next
	}
	f.LocalNames = sortedKeys(attrs)
	f.LocalValues = objectOfValues(vals)
}

func (f *File) declaresLocal(name string) bool {
	for _, n := range f.LocalNames {
		if n == name {
			return true
		}
	}
	return false
}

func objectOfValues(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}
