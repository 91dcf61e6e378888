package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/urfave/cli/v2"

	"github.com/vmflow/vmflow/core/event"
)

func (a *app) cmdValidate(c *cli.Context) error {
	proj, err := a.project(c, nil)
	if err != nil {
		return err
	}
	if err := a.requireVars(); err != nil {
		return err
	}
	eng, mgr, err := a.newEngine(c, proj, a.logs(c.Bool("verbose"), a.stderr), nil)
	if err != nil {
		return err
	}
	defer mgr.Close()
	var all hcl.Diagnostics
	for _, t := range proj.Tasks {
		_, diags := eng.Prepare(context.Background(), t, t.UnknownParams())
		all = append(all, diags...)
	}
	if err := a.printDiags(all); err != nil {
		return err
	}
	if c.Bool("json") {
		a.jsonMu.Lock()
		defer a.jsonMu.Unlock()
		return json.NewEncoder(a.stdout).Encode(validatedJSON{Time: time.Now(), Kind: event.Validated, File: displayFile(proj), Tasks: len(proj.Tasks)})
	}
	fmt.Fprintf(a.stdout, "%s: %d task(s) valid.\n", displayFile(proj), len(proj.Tasks))
	return nil
}
