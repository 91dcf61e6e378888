package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vmflow/vmflow/core/journal"
)

func (a *app) cmdRuns(c *cli.Context) error {
	sd, err := a.stateDir(c)
	if err != nil {
		return err
	}
	runs, err := journal.New(sd).List()
	if err != nil {
		return err
	}
	if n := c.Int("limit"); n > 0 && len(runs) > n {
		runs = runs[:n]
	}
	if c.Bool("json") {
		type jrun struct {
			ID     string    `json:"id"`
			Task   string    `json:"task"`
			Status string    `json:"status"`
			Start  time.Time `json:"start"`
			End    time.Time `json:"end,omitzero"`
			Args   []string  `json:"args"`
			Error  string    `json:"error,omitempty"`
			// Plugins: local name → source and version.
			Plugins map[string]string `json:"plugins,omitempty"`
			// Hosts: local name → the host its plugin block names.
			Hosts map[string]string `json:"hosts,omitempty"`
		}
		out := []jrun{}
		for _, r := range runs {
			out = append(out, jrun{r.Header.ID, r.Header.Task, r.Status, r.Header.Start, r.End, r.Header.Args, r.Error, r.Header.Plugins, r.Header.Hosts})
		}
		return a.printJSON(out)
	}
	if len(runs) == 0 {
		fmt.Fprintf(a.stdout, "No runs recorded in %s.\n", sd)
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tTASK\tSTATUS\tSTARTED\tTOOK\tON\tARGS")
	for _, r := range runs {
		took := "-"
		if !r.End.IsZero() {
			took = r.End.Sub(r.Header.Start).Round(time.Millisecond).String()
		}
		on := pluginList(r.Header.Plugins, r.Header.Hosts, false)
		if on == "" {
			on = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Header.ID, r.Header.Task, r.Status,
			r.Header.Start.Local().Format("2006-01-02 15:04:05"), took, on, strings.Join(r.Header.Args, " "))
	}
	return tw.Flush()
}
