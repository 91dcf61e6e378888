package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/engine"
	"github.com/vmflow/vmflow/core/event"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/core/lang"
	"github.com/vmflow/vmflow/internal/fsx"
)

// Completion scripts ask `VMFLOW __complete WORDS…` for candidates, so they
// always complete the tasks of the task file in the current directory.
// VMFLOW is the command as the user typed it (bin/vmflow, ./vmflow,
// ~/go/bin/vmflow), so completion works when vmflow is not on PATH; when
// that word does not run (an alias), the binary that wrote the script.
// @EXE@ is that binary's path, @NAME@ its name.
const bashCompletion = `# vmflow bash completion: source <(vmflow completion bash)
_vmflow() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local prog="${COMP_WORDS[0]}"
    prog="${prog/#\~/$HOME}"
    if ! type -P "$prog" >/dev/null 2>&1; then prog=@EXE@; fi
    local IFS=$'\n'
    COMPREPLY=($("$prog" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null | cut -f1))
}
complete -o default -F _vmflow @NAME@ @EXE@
`

const zshCompletion = `#compdef @NAME@
# vmflow zsh completion: source <(vmflow completion zsh)
_vmflow() {
    local -a items
    local line prog="${~words[1]}"
    (( $+commands[$prog] )) || [[ -x $prog ]] || prog=@EXE@
    for line in "${(@f)$("$prog" __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}"; do
        [[ -z $line ]] && continue
        items+=("${line%%$'\t'*}:${line#*$'\t'}")
    done
    _describe 'vmflow' items
}
compdef _vmflow @NAME@ @EXE@
`

const fishCompletion = `# vmflow fish completion: vmflow completion fish | source
function __vmflow_complete
    set -l words (commandline -opc)
    set -l prog $words[1]
    command -q $prog; or set prog @EXE@
    set -e words[1]
    $prog __complete $words (commandline -ct) 2>/dev/null
end
complete -c @NAME@ -f -a '(__vmflow_complete)'
complete -c @EXE@ -f -a '(__vmflow_complete)'
`

// completionScript fills in the binary's path and name.
func completionScript(script string) string {
	exe, err := os.Executable()
	if err != nil {
		exe = "vmflow"
	}
	name := filepath.Base(exe)
	return strings.NewReplacer("@EXE@", shellQuote(exe), "@NAME@", shellQuote(name)).Replace(script)
}

func (a *app) cmdCompletion(c *cli.Context) error {
	switch c.Args().First() {
	case "bash":
		fmt.Fprint(a.stdout, completionScript(bashCompletion))
	case "zsh":
		fmt.Fprint(a.stdout, completionScript(zshCompletion))
	case "fish":
		fmt.Fprint(a.stdout, completionScript(fishCompletion))
	default:
		return usageErr("vmflow completion needs a shell: bash, zsh or fish")
	}
	return nil
}

// cmdComplete prints candidates for the last word, one per line as
// "candidate<TAB>description". words are the words after "vmflow", the
// last one being the word under the cursor (possibly empty).
func (a *app) cmdComplete(c *cli.Context) error {
	if a.listCache != "" && a.proj != nil && !a.projErr.HasErrors() {
		commands := map[string]bool{}
		for _, cmd := range a.builtinCommands() {
			commands[cmd.Name] = true
		}
		writeListCache(a.listCache, a.proj, a.cacheKey, summarize(a.proj, commands))
	}
	words := c.Args().Slice()
	cur := ""
	if len(words) > 0 {
		cur, words = words[len(words)-1], words[:len(words)-1]
	}
	emit := func(cand, desc string) {
		if strings.HasPrefix(cand, cur) {
			fmt.Fprintf(a.stdout, "%s\t%s\n", cand, desc)
		}
	}
	// bash splits --var=NAME at the '=': "--var" "=" cur.
	if n := len(words); n >= 2 && words[n-1] == "=" && takesValueFlag(words[n-2]) {
		words = append(words[:n-2:n-2], words[n-2])
	}
	// ... and --var NAME=VALUE at its '=' too: "--var" "NAME" "=" cur.
	if n := len(words); n >= 3 && words[n-1] == "=" && strings.TrimLeft(words[n-3], "-") == "var" {
		a.completeVarValue(words[n-2], emit)
		return nil
	}
	// Skip global flags before the command; the word after one that
	// takes a value is its value.
	for len(words) > 0 && strings.HasPrefix(words[0], "-") {
		if takesValueFlag(words[0]) && !strings.Contains(words[0], "=") {
			if len(words) == 1 {
				a.completeFlagValue(words[0], cur, emit)
				return nil
			}
			words = words[1:]
		}
		words = words[1:]
	}
	if len(words) == 0 {
		if f, v, ok := strings.Cut(cur, "="); ok && strings.HasPrefix(cur, "-") && takesValueFlag(f) {
			a.completeFlagValue(f, v, func(cand, desc string) { emit(f+"="+cand, desc) })
			return nil
		}
		if strings.HasPrefix(cur, "-") {
			for _, f := range globalFlags {
				emit("--"+f.Names()[0], "")
			}
			return nil
		}
		for _, cmd := range c.App.Commands {
			if !cmd.Hidden {
				emit(cmd.Name, cmd.Usage)
			}
		}
		return nil
	}
	name := words[0]
	switch name {
	case "run", "plan":
		if len(words) == 1 {
			if a.proj != nil {
				for _, t := range a.proj.Runnable() {
					emit(t.Name, t.Description)
				}
			}
			return nil
		}
		name, words = words[1], words[1:]
	case "completion":
		for _, sh := range []string{"bash", "zsh", "fish"} {
			emit(sh, "")
		}
		return nil
	case "resume", "output":
		if len(words) == 1 && !strings.HasPrefix(cur, "-") {
			a.completeRuns(c, emit)
			return nil
		}
	}
	if a.proj == nil {
		return nil
	}
	t := a.proj.Task(name)
	if t == nil || t.Internal {
		return nil
	}
	a.completeTaskWord(c, t, words, cur, emit)
	return nil
}

// completeTaskWord completes a word after a task's name (words[0]): a
// param's or run flag's name or value, or the param a positional word
// fills.
func (a *app) completeTaskWord(c *cli.Context, t *config.Task, words []string, cur string, emit func(cand, desc string)) {
	// --name=VALUE in one word (zsh, fish): complete the value.
	if name, val, ok := splitFlag(cur); ok && strings.HasPrefix(cur, "--") {
		if p := t.Param(name); p != nil {
			for _, o := range a.paramCandidates(c, t, words, p, val) {
				emit("--"+name+"="+o, p.Description)
			}
		} else if takesValueFlag(name) {
			a.completeFlagValue(name, val, func(cand, desc string) { emit("--"+name+"="+cand, desc) })
		}
		return
	}
	if strings.HasPrefix(cur, "-") {
		for _, p := range t.Params {
			emit("--"+p.Name, p.Description)
		}
		for _, f := range []string{"--var", "--keep-on-failure", "--parallelism", "--json", "--verbose", "--yes"} {
			emit(f, "")
		}
		return
	}
	// The word is a flag's value, or names the param it fills by position.
	pos := 0
	var p *config.Param
	isValue := false
	named := map[string]bool{}
	for i := 1; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "-") || w == "-" || isNumber(w) {
			pos++
			continue
		}
		name, _, hasVal := splitFlag(w)
		fp := t.Param(name)
		if fp != nil {
			named[fp.Name] = true
		}
		if hasVal || !((fp != nil && fp.Type != cty.Bool) || (fp == nil && takesValueFlag(w))) {
			continue
		}
		if i+1 < len(words) && words[i+1] == "=" {
			i++ // bash splits --name=value at the '='
		}
		if i+1 == len(words) {
			if fp == nil {
				a.completeFlagValue(w, cur, emit) // a run flag: --var
				return
			}
			p, isValue = fp, true
			break
		}
		i++
	}
	if !isValue {
		// Positional words fill the params not given by name, in order.
		var open []*config.Param
		for _, tp := range t.Params {
			if !named[tp.Name] {
				open = append(open, tp)
			}
		}
		switch {
		case pos < len(open):
			p = open[pos]
		case t.Variadic() && len(t.Params) > 0:
			p = t.Params[len(t.Params)-1]
		}
		if p != nil {
			fmt.Fprintf(a.stderr, "%s: %s\n", strings.ToUpper(p.Name), p.Description)
		}
	}
	if p != nil {
		for _, o := range a.paramCandidates(c, t, words, p, cur) {
			emit(o, p.Description)
		}
	}
}

// completeFlagValue completes the value of a flag of vmflow's own: files
// for -f (task files and directories) and --state-dir (directories),
// variable names for --var, then a variable's options.
func (a *app) completeFlagValue(flag, cur string, emit func(cand, desc string)) {
	switch strings.TrimLeft(flag, "-") {
	case "f", "file":
		completeFiles(cur, func(name string) bool { return strings.HasSuffix(name, ".hcl") }, emit)
	case "state-dir":
		completeFiles(cur, func(string) bool { return false }, emit)
	case "var":
		if a.proj == nil {
			return
		}
		if name, _, ok := strings.Cut(cur, "="); ok { // zsh, fish: "NAME=VALUE"
			a.completeVarValue(name, func(cand, desc string) { emit(name+"="+cand, desc) })
			return
		}
		seen := map[string]bool{}
		for _, f := range a.proj.Files {
			for _, v := range f.Variables {
				if !seen[v.Name] {
					seen[v.Name] = true
					emit(v.Name+"=", v.Description)
				}
			}
		}
	}
}

// completeVarValue offers the options of the variable name, if it has
// any. --var sets it in every file that declares it, so a value is offered
// only when each of them accepts it.
func (a *app) completeVarValue(name string, emit func(cand, desc string)) {
	if a.proj == nil {
		return
	}
	var decls []*config.Variable
	for _, f := range a.proj.Files {
		for _, v := range f.Variables {
			if v.Name == name {
				decls = append(decls, v)
			}
		}
	}
	for _, v := range decls {
		for _, o := range v.Options {
			if slices.ContainsFunc(decls, func(d *config.Variable) bool { return !d.IsOption(o) }) {
				continue
			}
			emit(config.FormatArg(o), "")
		}
		if v.Options != nil {
			return // the options of the first file that has any, in its order
		}
	}
}

// completeFiles offers the directories (with a trailing /) and the files
// that keep says yes to, whose path starts with cur.
func completeFiles(cur string, keep func(name string) bool, emit func(cand, desc string)) {
	dir, prefix := filepath.Split(cur)
	read := dir
	if read == "" {
		read = "."
	}
	if strings.HasPrefix(read, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			read = filepath.Join(home, read[2:])
		}
	}
	ents, err := os.ReadDir(read)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, prefix) || (strings.HasPrefix(n, ".") && !strings.HasPrefix(prefix, ".")) {
			continue
		}
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			if st, err := os.Stat(filepath.Join(read, n)); err == nil {
				isDir = st.IsDir()
			}
		}
		switch {
		case isDir:
			emit(dir+n+"/", "")
		case keep(n):
			emit(dir+n, "")
		}
	}
}

// completeRuns offers the recorded runs, newest first, and last.
func (a *app) completeRuns(c *cli.Context, emit func(cand, desc string)) {
	sd, err := a.stateDir(c)
	if err != nil {
		return
	}
	runs, err := journal.New(sd).List()
	if err != nil {
		return
	}
	if len(runs) > 0 {
		emit("last", "the newest run")
	}
	for _, r := range runs {
		emit(r.Header.ID, strings.TrimSpace(fmt.Sprintf("%s %s (%s)", r.Header.Task, strings.Join(r.Header.Args, " "), r.Status)))
	}
}

// paramCandidates are the values offered for a param: its options, or
// what its complete attribute names.
func (a *app) paramCandidates(c *cli.Context, t *config.Task, words []string, p *config.Param, cur string) []string {
	if len(p.Options) > 0 {
		return optionCandidates(p, cur)
	}
	kind, arg, _ := strings.Cut(p.Complete, ":")
	switch kind {
	case "records":
		sd, err := a.stateDir(c)
		if err != nil {
			return nil
		}
		return recordNames(filepath.Join(sd, filepath.FromSlash(arg)))
	case "task":
		return a.taskCandidates(c, t, words, arg)
	}
	return nil
}

// recordNames lists the records of a collection directory: the
// subdirectories that hold a record.json.
func recordNames(dir string) []string {
	names, err := fsx.SubDirs(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, name := range names {
		if _, err := os.Lstat(filepath.Join(dir, name, "record.json")); err == nil {
			out = append(out, name)
		}
	}
	return out
}

// taskCandidates runs a read-only task with the params of the same names
// the command line already gives, and returns its list output: arg is
// "TASK.OUTPUT". Nothing is recorded; a failure offers nothing.
func (a *app) taskCandidates(c *cli.Context, t *config.Task, words []string, arg string) []string {
	name, output, _ := strings.Cut(arg, ".")
	src := a.proj.Task(name)
	if src == nil || !src.ReadOnly {
		return nil
	}
	ta, err := parseTaskArgs(t, words[1:])
	if err != nil {
		return nil
	}
	given, err := t.SortArgs(ta.positional, ta.named)
	if err != nil {
		return nil
	}
	raw := map[string][]string{}
	for _, sp := range src.Params {
		if v, ok := given[sp.Name]; ok {
			raw[sp.Name] = v
		}
	}
	params, err := src.Bind(raw)
	if err != nil {
		return nil
	}
	lg := a.logs(false, io.Discard)
	eng, mgr, err := a.newEngine(c, a.proj, lg, nil)
	if err != nil {
		return nil
	}
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	plan, diags := eng.Prepare(ctx, src, params)
	if diags.HasErrors() {
		return nil
	}
	res, err := eng.Execute(ctx, plan, engine.ExecOptions{RunOptions: engine.RunOptions{Events: event.Discard, UndoContext: ctx}})
	if err != nil || res.Status != journal.Succeeded {
		return nil
	}
	v, ok := res.Outputs[output]
	if !ok || !v.IsWhollyKnown() || v.IsNull() || !(v.Type().IsListType() || v.Type().IsSetType() || v.Type().IsTupleType()) {
		return nil
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.Type() == cty.String && !e.IsNull() {
			out = append(out, lang.Unmarked(e).AsString())
		}
	}
	return out
}

// optionCandidates are the values that complete word for a param with
// options: each option, or for a list param whose word already holds
// "a,b,", that prefix followed by each option not yet in it.
func optionCandidates(p *config.Param, word string) []string {
	opts := p.OptionArgs()
	if !p.MultiSelect() {
		return opts
	}
	i := strings.LastIndex(word, ",")
	if i < 0 {
		return opts
	}
	prefix := word[:i+1]
	chosen := map[string]bool{}
	for _, c := range strings.Split(prefix, ",") {
		chosen[strings.TrimSpace(c)] = true
	}
	var out []string
	for _, o := range opts {
		if !chosen[o] {
			out = append(out, prefix+o)
		}
	}
	return out
}

// fastComplete answers the commonest completion, a task's positional
// param whose values are its options or machine records (vmflow stop
// <TAB>), from the list cache, without parsing the task files: that
// parse is most of a completion's time. It reports false when it cannot
// answer, and the full completion runs.
func (a *app) fastComplete(tasks []listTask, words []string) bool {
	if len(words) < 2 {
		return false
	}
	cur, words := words[len(words)-1], words[:len(words)-1]
	if strings.HasPrefix(cur, "-") {
		return false
	}
	for _, w := range words {
		if strings.HasPrefix(w, "-") || w == "=" {
			return false
		}
	}
	var t *listTask
	for i := range tasks {
		if tasks[i].Command == words[0] {
			t = &tasks[i]
		}
	}
	pos := len(words) - 1
	if t == nil || pos >= len(t.Params) {
		return false
	}
	p := t.Params[pos]
	var cands []string
	kind, arg, _ := strings.Cut(p.Complete, ":")
	switch {
	case strings.HasPrefix(p.Type, "list(") || strings.HasPrefix(p.Type, "set("):
		return false
	case len(p.Options) > 0:
		cands = p.Options
	case kind == "records":
		sd, err := resolveStateDir("")
		if err != nil {
			return false
		}
		cands = recordNames(filepath.Join(sd, filepath.FromSlash(arg)))
	default:
		return false
	}
	fmt.Fprintf(a.stderr, "%s: %s\n", strings.ToUpper(p.Name), p.Description)
	for _, c := range cands {
		if strings.HasPrefix(c, cur) {
			fmt.Fprintf(a.stdout, "%s\t%s\n", c, p.Description)
		}
	}
	return true
}
