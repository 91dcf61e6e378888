package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// decodeSharedParams reads the param blocks at file level: definitions
// that several tasks take by name (params = [param.name]), written once.
// They are read as a task's params are, except that applies may use var.*
// only: the tasks that share one have different params of their own.
func (l *loader) decodeSharedParams(f *File, blocks []*hcl.Block) {
	f.Params = map[string]*Param{}
	shared := &Task{File: f}
	for _, b := range blocks {
		p := l.decodeParam(f, shared, b)
		if p == nil {
			continue
		}
		if prev := f.Params[p.Name]; prev != nil {
			l.diags = append(l.diags, duplicate("param", p.Name, b.DefRange, prev.DeclRange))
			continue
		}
		p.Shared = true
		f.Params[p.Name] = p
	}
}

// useSharedParams gives task t the shared params its params attribute
// lists (params = [param.name, param.snapshot]), in that order.
func (l *loader) useSharedParams(f *File, t *Task, a *hcl.Attribute) {
	l.eachRef(a, "param", "Invalid params",
		"params is a list of shared params: params = [param.name, param.snapshot].",
		"Each element of params names a shared param (a param block outside any task): param.NAME.",
		func(name string, e hcl.Expression) {
			p := f.SharedParam(name)
			if p == nil {
				names := f.SharedParamNames()
				d := &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Reference to undeclared shared param",
					Detail:  fmt.Sprintf("No shared param %q: declare it outside any task (param %q { … }) in this file or one that includes it.%s", name, name, Suggest(name, names)),
					Subject: e.Range().Ptr(),
				}
				l.diags = append(l.diags, d)
				l.missing = append(l.missing, missingRef{file: f, kind: "param", name: name, diag: d, typo: Suggest(name, names) != ""})
				return
			}
			c := *p // each task its own copy
			l.addParam(t, &c, e.Range())
		})
}
