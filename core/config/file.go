package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/vmflow/vmflow/core/lang"
)

var fileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "plugin", LabelNames: []string{"name"}},
		{Type: "task", LabelNames: []string{"name"}},
		{Type: "include", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "param", LabelNames: []string{"name"}},
	},
}

// loadFile loads one file. stack holds the files that include it, to catch
// include cycles; includeVars pins variables; from is the include block
// and parent the file it is in; workDir, when set, is where its relative
// paths start (else its own directory).
func (l *loader) loadFile(abs, ns string, includeVars map[string]cty.Value, stack []string, from *hcl.Range, parent *File, workDir string) *File {
	for _, s := range stack {
		if s == abs {
			chain := make([]string, 0, len(stack)+1)
			for _, c := range stack {
				chain = append(chain, DisplayPath(c))
			}
			chain = append(chain, DisplayPath(abs))
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Include cycle",
				Detail:   fmt.Sprintf("A task file includes itself: %s.", strings.Join(chain, " → ")),
				Subject:  from,
			})
			return nil
		}
	}
	name := DisplayPath(abs)
	src, err := l.lz.read(abs, l.opts.ReadFile)
	if err != nil {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot read task file",
			Detail:   err.Error(),
			Subject:  from,
		})
		return nil
	}
	hf, diags := hclsyntax.ParseConfig(l.lz.source(abs, src), name, hcl.InitialPos)
	hf.Bytes = src // what diagnostics quote
	if stack == nil {
		l.rootFile = hf
	}
	l.proj.Sources[name] = hf
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	f := &File{Path: abs, Dir: filepath.Dir(abs), WorkDir: workDir, Namespace: ns, Plugins: map[string]*PluginDecl{}, Parent: parent}
	if f.WorkDir == "" {
		f.WorkDir = f.Dir
	}
	sum := sha256.Sum256(src)
	f.Sum = hex.EncodeToString(sum[:])
	f.Funcs = lang.Functions(f.WorkDir, l.proj.Env)
	l.proj.Files = append(l.proj.Files, f)
	l.diags = append(l.diags, unknownFunctions(hf.Body.(*hclsyntax.Body), f.Funcs)...)

	content, diags := hf.Body.Content(fileSchema)
	l.diags = append(l.diags, diags...)

	byType := map[string][]*hcl.Block{}
	for _, b := range content.Blocks {
		byType[b.Type] = append(byType[b.Type], b)
	}
	l.decodeVariables(f, byType["variable"], includeVars)
	f.inheritVariables()
	for _, k := range sortedKeys(includeVars) {
		if !f.declaresVar(k) {
			var names []string
			for _, v := range f.Variables {
				names = append(names, v.Name)
			}
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Include sets an undeclared variable",
				Detail:  fmt.Sprintf("The include's vars set %q, but %s declares no such variable.%s", k, name, Suggest(k, names)),
				Subject: from,
			})
		}
	}
	l.decodeLocals(f, byType["locals"])
	l.lz.checkState(f)
	for _, b := range byType["plugin"] {
		l.decodePlugin(f, b)
	}
	l.decodeSharedParams(f, byType["param"])
	tasks := decodeUnique(l, "task", byType["task"],
		func(b *hcl.Block) *Task { return l.decodeTask(f, b) },
		func(t *Task) (string, hcl.Range) { return t.LocalName, t.DeclRange })
	l.proj.Tasks = append(l.proj.Tasks, tasks...)

	seenInc := map[string]hcl.Range{}
	for _, b := range byType["include"] {
		inc := l.decodeInclude(f, b)
		if inc == nil {
			continue
		}
		if prev, ok := seenInc[inc.Name]; ok {
			l.diags = append(l.diags, duplicate("include", inc.Name, b.DefRange, prev))
			continue
		}
		if find(tasks, func(t *Task) bool { return t.LocalName == inc.Name }) != nil {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Include name clashes with a task",
				Detail:   fmt.Sprintf("A task named %q is declared in this file; give the include another name.", inc.Name),
				Subject:  b.LabelRanges[0].Ptr(),
			})
			continue
		}
		seenInc[inc.Name] = b.DefRange
		if inc.Optional {
			if _, err := l.opts.ReadFile(inc.Path); errors.Is(err, fs.ErrNotExist) {
				continue // an optional include that is not there: nothing to load
			}
		}
		f.Includes = append(f.Includes, inc)
		childNS := inc.Name
		switch {
		case inc.Flatten:
			childNS = ns // its tasks keep their names
		case ns != "":
			childNS = ns + "." + inc.Name
		}
		workDir := ""
		if inc.Shipped {
			// A file vmflow ships takes the user's paths from where
			// they work, not from where it was written out.
			workDir = f.WorkDir
		}
		l.loadFile(inc.Path, childNS, inc.Vars, append(append([]string(nil), stack...), abs), inc.DeclRange.Ptr(), f, workDir)
	}
	return f
}

// decodeUnique decodes the blocks in order, keeping the first of each name
// (name gives a decoded block's, and where it was declared): a later one
// is reported as a duplicate of that kind.
func decodeUnique[T any](l *loader, kind string, blocks []*hcl.Block, decode func(*hcl.Block) *T, name func(*T) (string, hcl.Range)) []*T {
	var out []*T
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		x := decode(b)
		if x == nil {
			continue
		}
		n, decl := name(x)
		if prev, ok := seen[n]; ok {
			l.diags = append(l.diags, duplicate(kind, n, b.DefRange, prev))
			continue
		}
		seen[n] = decl
		out = append(out, x)
	}
	return out
}

func duplicate(kind, name string, at, prev hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Duplicate %s %q", kind, name),
		Detail:   fmt.Sprintf("A %s named %q was already declared at %s. Names must be unique.", kind, name, prev),
		Subject:  at.Ptr(),
	}
}

// varContext is the evaluation context with var.* and functions.
func (f *File) varContext() *hcl.EvalContext {
	vars := map[string]cty.Value{"var": f.VarValues}
	if f.LocalValues != cty.NilVal {
		vars["local"] = f.LocalValues
	}
	return &hcl.EvalContext{Variables: vars, Functions: f.Funcs}
}

// EvalContext is the context for step arguments, outputs and locks: var.*,
// local.*, param.* and step.*, plus functions. params and steps may be cty.NilVal.
func (f *File) EvalContext(params, steps cty.Value) *hcl.EvalContext {
	vars := map[string]cty.Value{"var": f.VarValues}
	if f.LocalValues != cty.NilVal {
		vars["local"] = f.LocalValues
	}
	if params != cty.NilVal {
		vars["param"] = params
	}
	if steps != cty.NilVal {
		vars["step"] = steps
	}
	return &hcl.EvalContext{Variables: vars, Functions: f.Funcs}
}

// unknownFunctions finds every call of a function the task language does
// not have, anywhere in a file: without it, a typo in a precondition or
// an output would pass `vmflow validate` and fail only when evaluated.
func unknownFunctions(body *hclsyntax.Body, funcs map[string]function.Function) hcl.Diagnostics {
	names := make([]string, 0, len(funcs))
	for n := range funcs {
		names = append(names, n)
	}
	var diags hcl.Diagnostics
	check := func(n hclsyntax.Node) hcl.Diagnostics {
		call, ok := n.(*hclsyntax.FunctionCallExpr)
		if !ok {
			return nil
		}
		if _, ok := funcs[call.Name]; ok {
			return nil
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Call to unknown function",
			Detail:  fmt.Sprintf("There is no function named %q.%s", call.Name, Suggest(call.Name, names)),
			Subject: call.NameRange.Ptr(),
		})
		return nil
	}
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		for name, a := range b.Attributes {
			// A type (list(string), object({…})) is written like a call
			// but is no expression.
			if name == "type" {
				continue
			}
			_ = hclsyntax.VisitAll(a.Expr, check)
		}
		for _, blk := range b.Blocks {
			walk(blk.Body)
		}
	}
	walk(body)
	sort.Slice(diags, func(i, j int) bool { return diags[i].Subject.Start.Byte < diags[j].Subject.Start.Byte })
	return diags
}
