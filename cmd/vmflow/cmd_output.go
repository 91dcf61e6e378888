package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/core/lang"
)

// cmdOutput prints one output of a succeeded run: the one place a
// sensitive value is shown, because the user asked for it by name. A
// string prints as it is (for scripts), anything else as HCL.
func (a *app) cmdOutput(c *cli.Context) error {
	if c.NArg() != 2 {
		return usageErr("name the run and the output: vmflow output RUN NAME (see vmflow runs; `last` is the newest)")
	}
	store, err := a.journals(c)
	if err != nil {
		return err
	}
	id, err := store.Resolve(c.Args().Get(0))
	if err != nil {
		return usageErr("%v", err)
	}
	st, err := store.Load(id)
	if err != nil {
		return err
	}
	name := c.Args().Get(1)
	if st.Status != journal.Succeeded {
		return usageErr("run %s (task %s) did not succeed (%s): it has no outputs", id, st.Header.Task, st.Status)
	}
	var names []string
	var v cty.Value
	if st.Outputs != nil && st.Outputs.Value != cty.NilVal && st.Outputs.Type().IsObjectType() {
		for n := range st.Outputs.Type().AttributeTypes() {
			names = append(names, n)
		}
		if st.Outputs.Type().HasAttribute(name) {
			v = st.Outputs.GetAttr(name)
		}
	}
	if v == cty.NilVal {
		sort.Strings(names)
		list := strings.Join(names, ", ")
		if list == "" {
			list = "none"
		}
		return usageErr("run %s (task %s) has no output %q.%s Its outputs: %s", id, st.Header.Task, name, config.Suggest(name, names), list)
	}
	if st.Sealed != nil {
		return usageErr("output %s of run %s is sealed with a key that cannot open it here: %v", name, id, st.Sealed)
	}
	v = lang.Unmarked(v)
	if c.Bool("json") {
		return a.printJSON(lang.PlainValue(v))
	}
	if v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
		fmt.Fprintln(a.stdout, v.AsString())
		return nil
	}
	fmt.Fprintln(a.stdout, lang.FormatValue(v))
	return nil
}
