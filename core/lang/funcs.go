// Package lang holds what task-file expressions can use: the function
// table (cty's standard library plus env, file and a few path helpers) and
// the evaluation contexts for each place an expression can appear.
package lang

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Functions returns the functions available in a task file that lives in
// dir. env is the environment env() reads (the process environment merged
// with the task file's .env).
func Functions(dir string, env map[string]string) map[string]function.Function {
	fs := map[string]function.Function{
		"abs":             stdlib.AbsoluteFunc,
		"ceil":            stdlib.CeilFunc,
		"chomp":           stdlib.ChompFunc,
		"chunklist":       stdlib.ChunklistFunc,
		"coalesce":        stdlib.CoalesceFunc,
		"coalescelist":    stdlib.CoalesceListFunc,
		"compact":         stdlib.CompactFunc,
		"concat":          stdlib.ConcatFunc,
		"contains":        stdlib.ContainsFunc,
		"csvdecode":       stdlib.CSVDecodeFunc,
		"distinct":        stdlib.DistinctFunc,
		"element":         stdlib.ElementFunc,
		"flatten":         stdlib.FlattenFunc,
		"floor":           stdlib.FloorFunc,
		"format":          stdlib.FormatFunc,
		"formatdate":      stdlib.FormatDateFunc,
		"formatlist":      stdlib.FormatListFunc,
		"indent":          stdlib.IndentFunc,
		"index":           stdlib.IndexFunc,
		"join":            stdlib.JoinFunc,
		"jsondecode":      stdlib.JSONDecodeFunc,
		"jsonencode":      stdlib.JSONEncodeFunc,
		"keys":            stdlib.KeysFunc,
		"length":          stdlib.LengthFunc,
		"log":             stdlib.LogFunc,
		"lookup":          stdlib.LookupFunc,
		"lower":           stdlib.LowerFunc,
		"max":             stdlib.MaxFunc,
		"merge":           stdlib.MergeFunc,
		"min":             stdlib.MinFunc,
		"parseint":        stdlib.ParseIntFunc,
		"pow":             stdlib.PowFunc,
		"range":           stdlib.RangeFunc,
		"regex":           stdlib.RegexFunc,
		"regexall":        stdlib.RegexAllFunc,
		"regex_replace":   stdlib.RegexReplaceFunc,
		"replace":         stdlib.ReplaceFunc,
		"reverse":         stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc,
		"setproduct":      stdlib.SetProductFunc,
		"setsubtract":     stdlib.SetSubtractFunc,
		"setunion":        stdlib.SetUnionFunc,
		"signum":          stdlib.SignumFunc,
		"slice":           stdlib.SliceFunc,
		"sort":            stdlib.SortFunc,
		"split":           stdlib.SplitFunc,
		"strlen":          stdlib.StrlenFunc,
		"strrev":          stdlib.ReverseFunc,
		"substr":          stdlib.SubstrFunc,
		"timeadd":         stdlib.TimeAddFunc,
		"title":           stdlib.TitleFunc,
		"trim":            stdlib.TrimFunc,
		"trimprefix":      stdlib.TrimPrefixFunc,
		"trimspace":       stdlib.TrimSpaceFunc,
		"trimsuffix":      stdlib.TrimSuffixFunc,
		"upper":           stdlib.UpperFunc,
		"values":          stdlib.ValuesFunc,
		"zipmap":          stdlib.ZipmapFunc,
		"tostring":        stdlib.MakeToFunc(cty.String),
		"tonumber":        stdlib.MakeToFunc(cty.Number),
		"tobool":          stdlib.MakeToFunc(cty.Bool),
		"tolist":          stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset":           stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tomap":           stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
	}
	fs["env"] = envFunc(env)
	fs["file"] = fileFunc(dir)
	fs["fileexists"] = fileExistsFunc(dir)
	fs["abspath"] = abspathFunc(dir)
	fs["basename"] = pathFunc(filepath.Base)
	fs["dirname"] = pathFunc(filepath.Dir)
	fs["pathexpand"] = pathFunc(expandHome)
	fs["try"] = tryfunc.TryFunc
	fs["can"] = tryfunc.CanFunc
	fs["timestamp"] = timestampFunc
	return fs
}

// timestampFunc: timestamp() is the current time in UTC, RFC 3339, for
// formatdate and names such as a backup's. It is read when the step runs.
var timestampFunc = function.New(&function.Spec{
	Description: "Returns the current time in UTC as an RFC 3339 string.",
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(time.Now().UTC().Format(time.RFC3339)), nil
	},
})

// envFunc: env("NAME") is the variable's value, or "" when unset;
// env("NAME", "fallback") returns the fallback instead.
func envFunc(env map[string]string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable, or the fallback (default \"\") when it is unset.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "fallback", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, function.NewArgErrorf(2, "env takes a name and at most one fallback")
			}
			if v, ok := env[args[0].AsString()]; ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.StringVal(""), nil
		},
	})
}

func resolve(dir, p string) string {
	p = expandHome(p)
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// fileFunc: file("p") is the content of a file, relative to the task file.
func fileFunc(dir string) function.Function {
	return pathArgFunc("Reads a file (relative to the task file) as a string.", cty.String, func(p string) (cty.Value, error) {
		b, err := os.ReadFile(resolve(dir, p))
		if err != nil {
			return cty.NilVal, function.NewArgError(0, err)
		}
		return cty.StringVal(string(b)), nil
	})
}

func fileExistsFunc(dir string) function.Function {
	return pathArgFunc("Whether a file exists (relative to the task file).", cty.Bool, func(p string) (cty.Value, error) {
		_, err := os.Stat(resolve(dir, p))
		return cty.BoolVal(err == nil), nil
	})
}

func abspathFunc(dir string) function.Function {
	return pathArgFunc("The absolute form of a path (relative paths are taken from the task file's directory).", cty.String, func(p string) (cty.Value, error) {
		return cty.StringVal(filepath.Clean(resolve(dir, p))), nil
	})
}

func pathFunc(f func(string) string) function.Function {
	return pathArgFunc("", cty.String, func(p string) (cty.Value, error) {
		return cty.StringVal(f(p)), nil
	})
}

// pathArgFunc is a function of one string, path, that returns a ret.
func pathArgFunc(description string, ret cty.Type, impl func(path string) (cty.Value, error)) function.Function {
	return function.New(&function.Spec{
		Description: description,
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(ret),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return impl(args[0].AsString())
		},
	})
}
