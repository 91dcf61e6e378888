package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/huh/v2"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/term"

	"github.com/vmflow/vmflow/core/config"
)

// errWizardAborted is returned when the user leaves the wizard with Ctrl-C
// or Esc: nothing ran.
var errWizardAborted = errors.New("wizard aborted")

// canAsk reports whether vmflow may ask the user for params: stdin and
// stdout are terminals, as the live renderer understands them (TERM is
// not "dumb"), and the terminal has a size to draw the questions in (a
// serial console may report none). --yes and --json never ask (checked
// by the caller).
func (a *app) canAsk() (in, out *os.File, ok bool) {
	in, okIn := a.stdin.(*os.File)
	out, okOut := a.stdout.(*os.File)
	if !okIn || !okOut || os.Getenv("TERM") == "dumb" ||
		!term.IsTerminal(int(in.Fd())) || !term.IsTerminal(int(out.Fd())) {
		return nil, nil, false
	}
	if w, h, err := term.GetSize(int(out.Fd())); err != nil || w == 0 || h == 0 {
		return nil, nil, false
	}
	return in, out, true
}

// wizard asks for the params the command line did not give, when vmflow
// may ask (see canAsk): every one for a task with wizard = true, else the
// missing required ones. It returns no answers when there is nothing to
// ask or no terminal to ask on; Bind then reports what is missing.
func (a *app) wizard(t *config.Task, given map[string]cty.Value) ([]answer, error) {
	params := toAsk(t, given)
	if len(params) == 0 {
		return nil, nil
	}
	in, out, ok := a.canAsk()
	if !ok {
		return nil, nil
	}
	answers, err := askParams(t, params, given, in, out)
	if errors.Is(err, errWizardAborted) {
		return nil, &exitError{code: exitInterrupted, err: fmt.Errorf("task %s: wizard aborted; nothing ran", t.Name)}
	}
	return answers, err
}

// toAsk lists the params to ask for, in declared order: with wizard =
// true every param the command line did not give, else only the missing
// required ones; but not a param with a default whose applies is false
// (a gateway without a static IP, profiles with --var image), nor one
// with ask = false. A param
// whose applies depends on an answer is decided when it comes (askParams).
func toAsk(t *config.Task, given map[string]cty.Value) []*config.Param {
	var out []*config.Param
	asked := map[string]bool{}
	for _, p := range t.Params {
		if _, ok := given[p.Name]; ok {
			continue
		}
		if (!t.Wizard || p.NotAsked) && !p.Required() {
			continue
		}
		if !p.Required() && !dependsOn(p, asked) && !t.ParamApplies(p, given) {
			continue
		}
		asked[p.Name] = true
		out = append(out, p)
	}
	return out
}

// dependsOn reports whether p's applies refers to one of the params in
// names.
func dependsOn(p *config.Param, names map[string]bool) bool {
	if p.Applies == nil {
		return false
	}
	for _, tr := range p.Applies.Variables() {
		if tr.RootName() != "param" || len(tr) < 2 {
			continue
		}
		if a, ok := tr[1].(hcl.TraverseAttr); ok && names[a.Name] {
			return true
		}
	}
	return false
}

// answer is one param's value from the wizard, and that value in
// command-line form (for the command line it shows).
type answer struct {
	param *config.Param
	raw   string
	value cty.Value
}

// askParams runs the wizard: one question per param, its default shown
// and preselected. Answers are read by the command-line rules (so are
// checked the same way) and come back in command-line form.
func askParams(t *config.Task, params []*config.Param, given map[string]cty.Value, in io.Reader, out io.Writer) ([]answer, error) {
	var groups []*huh.Group
	var collect []func() string
	// skipped: a question hidden because its param does not apply with
	// the answers before it.
	skipped := make([]bool, len(params))
	asked := map[string]bool{}
	for i, p := range params {
		f, get := paramField(p)
		g := huh.NewGroup(f)
		if !p.Required() && dependsOn(p, asked) {
			g = g.WithHideFunc(func() bool {
				known := maps.Clone(given)
				for j := 0; j < i; j++ {
					if skipped[j] {
						continue
					}
					if v, err := t.ParseParam(params[j], []string{collect[j]()}); err == nil {
						known[params[j].Name] = v
					}
				}
				skipped[i] = !t.ParamApplies(p, known)
				return skipped[i]
			})
		}
		asked[p.Name] = true
		groups = append(groups, g)
		collect = append(collect, get)
	}
	km := huh.NewDefaultKeyMap()
	km.Quit = key.NewBinding(key.WithKeys("ctrl+c", "esc"), key.WithHelp("esc", "abort"))
	form := huh.NewForm(groups...).WithInput(in).WithOutput(out).WithKeyMap(km)
	if err := form.Run(); err != nil {
		if errors.Is(err, huh.ErrUserAborted) {
			return nil, errWizardAborted
		}
		return nil, err
	}
	var answers []answer
	for i, p := range params {
		if skipped[i] {
			continue
		}
		raw := collect[i]()
		v, err := t.ParseParam(p, []string{raw}) // checked as it was typed
		if err != nil {
			return nil, err
		}
		answers = append(answers, answer{param: p, raw: raw, value: v})
	}
	return answers, nil
}

// paramField builds the question for one param: a multi-select for a list
// param with options, a select for another param with options, yes/no for
// a bool, else a text input. get returns the answer in command-line form.
func paramField(p *config.Param) (f huh.Field, get func() string) {
	var notes []string
	if p.Prompt != "" && p.Description != "" {
		notes = append(notes, p.Description)
	}
	if !p.Required() {
		notes = append(notes, "default: "+config.FormatArg(p.Default))
	}
	switch {
	case p.MultiSelect():
		elemType := p.Type.ElementType()
		var sel []string
		if !p.Required() {
			for it := p.Default.ElementIterator(); it.Next(); {
				_, ev := it.Element()
				sel = append(sel, config.FormatArg(ev))
			}
		}
		ms := huh.NewMultiSelect[string]().
			Title(p.Question()).
			Description(strings.Join(notes, "\n")).
			Value(&sel).
			Options(huh.NewOptions(p.OptionArgs()...)...).
			Height(fieldHeight(p, notes)).
			Validate(func(s []string) error {
				if p.Required() && len(s) == 0 {
					return errors.New("choose at least one")
				}
				return nil
			})
		return ms, func() string {
			elems := make([]cty.Value, 0, len(sel))
			for _, s := range sel {
				v, err := config.ParseValue(s, elemType)
				if err != nil {
					return s // cannot happen: s is one of the options
				}
				elems = append(elems, v)
			}
			return config.FormatArg(collection(p.Type, elemType, elems))
		}
	case p.Options != nil:
		var v string
		if !p.Required() {
			v = config.FormatArg(p.Default)
		}
		s := huh.NewSelect[string]().
			Title(p.Question()).
			Description(strings.Join(notes, "\n")).
			Value(&v).
			Options(huh.NewOptions(p.OptionArgs()...)...).
			Height(fieldHeight(p, notes))
		return s, func() string { return v }
	case p.Type == cty.Bool:
		b := !p.Required() && p.Default.True()
		c := huh.NewConfirm().
			Title(p.Question()).
			Description(strings.Join(notes, "\n")).
			Value(&b)
		return c, func() string { return config.FormatArg(cty.BoolVal(b)) }
	}
	var v string
	if !p.Required() {
		v = config.FormatArg(p.Default)
	}
	if isList(p.Type) {
		notes = append(notes, "comma-separated")
	}
	in := huh.NewInput().
		Title(p.Question()).
		Description(strings.Join(notes, "\n")).
		Value(&v).
		Validate(func(s string) error {
			if p.Required() && strings.TrimSpace(s) == "" {
				return fmt.Errorf("%s is required", p.Name)
			}
			val, err := config.ParseValue(s, p.Type)
			if err == nil {
				err = p.CheckOptions(val)
			}
			return err
		})
	return in, func() string { return v }
}

// fieldHeight is the height of a (multi-)select: its title, its notes and
// up to 12 options before it scrolls. Without it huh sizes the list of
// options as if the title and notes were part of it, and hides options.
func fieldHeight(p *config.Param, notes []string) int {
	return 1 + len(notes) + min(len(p.Options), 12)
}

// collection makes a list or set value of ty from its elements.
func collection(ty, elemType cty.Type, elems []cty.Value) cty.Value {
	switch {
	case len(elems) == 0 && ty.IsSetType():
		return cty.SetValEmpty(elemType)
	case len(elems) == 0:
		return cty.ListValEmpty(elemType)
	case ty.IsSetType():
		return cty.SetVal(elems)
	}
	return cty.ListVal(elems)
}

// commandLine is the command that runs the same task with the wizard's
// answers and asks nothing: the words vmflow was started with, and
// --name=value for each answer (before a "--", which would make them
// positional), quoted for a POSIX shell. The = form keeps a bool's value
// with its flag.
func commandLine(args []string, answers []answer) string {
	var rest []string
	if len(args) > 1 {
		rest = args[1:]
	}
	cut := len(rest)
	for i, w := range rest {
		if w == "--" {
			cut = i
			break
		}
	}
	words := []string{"vmflow"}
	for _, w := range rest[:cut] {
		words = append(words, shellQuote(w))
	}
	for _, a := range answers {
		words = append(words, "--"+a.param.Name+"="+shellQuote(a.raw))
	}
	for _, w := range rest[cut:] {
		words = append(words, shellQuote(w))
	}
	return strings.Join(words, " ")
}

// shellQuote quotes a word for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,=@%+", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
