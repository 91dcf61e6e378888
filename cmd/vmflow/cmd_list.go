package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func (a *app) cmdList(c *cli.Context) error {
	proj, err := a.project(c, nil)
	if err != nil {
		return err
	}
	commands := map[string]bool{}
	for _, cmd := range a.builtinCommands() {
		commands[cmd.Name] = true
	}
	tasks := summarize(proj, commands)
	if a.listCache != "" {
		writeListCache(a.listCache, proj, a.cacheKey, tasks)
	}
	if a.usingBuiltin && !c.Bool("json") {
		fmt.Fprintln(a.stderr, builtinNote)
	}
	return printList(a.stdout, tasks, c.Bool("json"))
}
