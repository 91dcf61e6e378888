package main

import (
	"fmt"
	"runtime"
	"strconv"

	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/urfave/cli/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/lang"
	"github.com/vmflow/vmflow/core/protocol"
)

func (a *app) builtinCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:   "list",
			Usage:  "list the tasks of the task file, with their params (starts no plugin)",
			Action: a.cmdList,
		},
		{
			Name:            "run",
			Usage:           "run a task: vmflow run TASK [ARGS…] (every task is also a command of its own)",
			ArgsUsage:       "TASK [ARGS…]",
			SkipFlagParsing: true,
			Action: func(c *cli.Context) error {
				return a.cmdTask(c, nil, c.Args().Slice(), false)
			},
		},
		{
			Name:            "plan",
			Usage:           "check a task and print its steps in order with their arguments; runs nothing",
			ArgsUsage:       "TASK [ARGS…]",
			SkipFlagParsing: true,
			Action: func(c *cli.Context) error {
				return a.cmdTask(c, nil, c.Args().Slice(), true)
			},
		},
		{
			Name:   "vars",
			Usage:  "list the task files' variables with their values, where each comes from, and their descriptions (--json)",
			Action: a.cmdVars,
		},
		{
			Name:   "init",
			Usage:  "write a tasks.hcl that includes the default lifecycle, with examples of tasks of your own",
			Action: a.cmdInit,
		},
		{
			Name:      "lock",
			Usage:     "write .vmflow.lock.hcl: the version and sha256 of every plugin the task files use (or of those named), which tasks then must match",
			ArgsUsage: "[SOURCE…]",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "platform", Usage: "also record the hashes of binaries built for another platform: --platform linux_arm64=DIR (DIR/vmflow-plugin-SOURCE)"},
			},
			Action: a.cmdLock,
		},
		{
			Name:   "validate",
			Usage:  "check every task against its plugins' schemas; runs nothing",
			Action: a.cmdValidate,
		},
		{
			Name:      "plugins",
			Usage:     "list the plugins on the plugin path with their actions and arguments",
			ArgsUsage: "[NAME…]",
			Action:    a.cmdPlugins,
		},
		{
			Name:  "runs",
			Usage: "list recorded runs, newest first",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "limit", Value: 20, Usage: "show at most this many runs (0: all)"},
			},
			Action: a.cmdRuns,
		},
		{
			Name:      "resume",
			Usage:     "continue an interrupted or failed run after its last completed step (--undo: undo what it did instead)",
			ArgsUsage: "RUN (an id, a unique prefix, or last)",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "force", Usage: "resume even though the task file changed since the run started"},
				&cli.BoolFlag{Name: "undo", Usage: "roll the run back instead: undo the step it was interrupted in, then its completed steps, in reverse"},
			},
			Action: a.cmdResume,
		},
		{
			Name:      "output",
			Usage:     "print one output of a succeeded run, in clear even when it is sensitive",
			ArgsUsage: "RUN NAME (RUN: an id, a unique prefix, or last)",
			Action:    a.cmdOutput,
		},
		{
			Name:      "completion",
			Usage:     "print a shell completion script: vmflow completion bash|zsh|fish",
			ArgsUsage: "bash|zsh|fish",
			Action:    a.cmdCompletion,
		},
		{
			Name:            "__complete",
			Hidden:          true,
			SkipFlagParsing: true,
			Action:          a.cmdComplete,
		},
		{
			Name:  "version",
			Usage: "print vmflow's version",
			Action: func(c *cli.Context) error {
				if c.Bool("json") {
					return a.printJSON(versionJSON{version, protocol.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH})
				}
				fmt.Fprintf(a.stdout, "vmflow %s (plugin protocol %d, %s %s/%s)\n", version, protocol.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			},
		},
	}
}

func (a *app) taskCommand(t *config.Task) *cli.Command {
	return &cli.Command{
		Name:            t.Name,
		Usage:           t.Description,
		ArgsUsage:       t.Usage(),
		Category:        "tasks",
		SkipFlagParsing: true,
		// Every argument is the task's: no "help"/"h" subcommand takes a
		// VM named h (vmflow create h).
		HideHelp: true,
		// vmflow help TASK shows what TASK --help shows: its params. The
		// text goes through text/template, so it is quoted as one string.
		CustomHelpTemplate: "{{" + strconv.Quote(taskHelp(t)) + "}}",
		Action: func(c *cli.Context) error {
			return a.cmdTask(c, t, append([]string{t.Name}, c.Args().Slice()...), false)
		},
	}
}

func typeLabel(ty cty.Type) string { return typeexpr.TypeString(ty) }

func formatDefault(v cty.Value) string { return lang.FormatValue(v) }
