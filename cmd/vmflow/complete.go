package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
)

// Completion scripts ask `vmflow __complete WORDS…` for candidates, so they
// always complete the tasks of the task file in the current directory.
const bashCompletion = `# vmflow bash completion: source <(vmflow completion bash)
_vmflow() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local IFS=$'\n'
    COMPREPLY=($(vmflow __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null | cut -f1))
}
complete -o default -F _vmflow vmflow
`

const zshCompletion = `#compdef vmflow
# vmflow zsh completion: source <(vmflow completion zsh)
_vmflow() {
    local -a items
    local line
    for line in "${(@f)$(vmflow __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}"; do
        [[ -z $line ]] && continue
        items+=("${line%%$'\t'*}:${line#*$'\t'}")
    done
    _describe 'vmflow' items
}
compdef _vmflow vmflow
`

const fishCompletion = `# vmflow fish completion: vmflow completion fish | source
function __vmflow_complete
    set -l words (commandline -opc)
    set -e words[1]
    vmflow __complete $words (commandline -ct) 2>/dev/null
end
complete -c vmflow -f -a '(__vmflow_complete)'
`

func (a *app) cmdCompletion(c *cli.Context) error {
	switch c.Args().First() {
	case "bash":
		fmt.Fprint(a.stdout, bashCompletion)
	case "zsh":
		fmt.Fprint(a.stdout, zshCompletion)
	case "fish":
		fmt.Fprint(a.stdout, fishCompletion)
	default:
		return usageErr("vmflow completion needs a shell: bash, zsh or fish")
	}
	return nil
}

// cmdComplete prints candidates for the last word, one per line as
// "candidate<TAB>description". words are the words after "vmflow", the
// last one being the word under the cursor (possibly empty).
func (a *app) cmdComplete(c *cli.Context) error {
	words := c.Args().Slice()
	cur := ""
	if len(words) > 0 {
		cur, words = words[len(words)-1], words[:len(words)-1]
	}
	// Skip global flags before the command.
	for len(words) > 0 && strings.HasPrefix(words[0], "-") {
		if takesValueFlag(words[0]) && len(words) > 1 {
			words = words[1:]
		}
		words = words[1:]
	}
	emit := func(cand, desc string) {
		if strings.HasPrefix(cand, cur) {
			fmt.Fprintf(a.stdout, "%s\t%s\n", cand, desc)
		}
	}
	if len(words) == 0 {
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
	if name == "run" || name == "plan" {
		if len(words) == 1 {
			if a.proj != nil {
				for _, t := range a.proj.Runnable() {
					emit(t.Name, t.Description)
				}
			}
			return nil
		}
		name, words = words[1], words[1:]
	}
	if name == "completion" {
		for _, sh := range []string{"bash", "zsh", "fish"} {
			emit(sh, "")
		}
		return nil
	}
	if a.proj == nil {
		return nil
	}
	t := a.proj.Task(name)
	if t == nil || t.Internal {
		return nil
	}
	// --name=VALUE in one word (zsh, fish): complete the value.
	if name, val, ok := strings.Cut(strings.TrimLeft(cur, "-"), "="); ok && strings.HasPrefix(cur, "--") {
		if p := t.Param(name); p != nil {
			for _, o := range optionCandidates(p, val) {
				emit("--"+name+"="+o, p.Description)
			}
		}
		return nil
	}
	if strings.HasPrefix(cur, "-") {
		for _, p := range t.Params {
			emit("--"+p.Name, p.Description)
		}
		for _, f := range []string{"--var", "--keep-on-failure", "--parallelism", "--json", "--verbose", "--yes"} {
			emit(f, "")
		}
		return nil
	}
	// The word is a flag's value, or names the param it fills by position.
	pos := 0
	var p *config.Param
	isValue := false
	for i := 1; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "-") || w == "-" || isNumber(w) {
			pos++
			continue
		}
		name, _, hasVal := strings.Cut(strings.TrimLeft(w, "-"), "=")
		fp := t.Param(name)
		if hasVal || !((fp != nil && fp.Type != cty.Bool) || (fp == nil && takesValueFlag(w))) {
			continue
		}
		if i+1 < len(words) && words[i+1] == "=" {
			i++ // bash splits --name=value at the '='
		}
		if i+1 == len(words) {
			p, isValue = fp, true
			break
		}
		i++
	}
	if !isValue {
		switch {
		case pos < len(t.Params):
			p = t.Params[pos]
		case t.Variadic():
			p = t.Params[len(t.Params)-1]
		}
		if p != nil {
			fmt.Fprintf(a.stderr, "%s: %s\n", strings.ToUpper(p.Name), p.Description)
		}
	}
	if p != nil {
		for _, o := range optionCandidates(p, cur) {
			emit(o, p.Description)
		}
	}
	return nil
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

func takesValueFlag(w string) bool {
	switch strings.TrimLeft(w, "-") {
	case "f", "file", "var", "state-dir", "parallelism":
		return true
	}
	return false
}
