// Command vmflow-plugin-testkit is a plugin for vmflow's own tests and
// benchmarks: actions that record what ran and what was undone, fail,
// sleep, crash, report progress, or do nothing at all.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/vmflow/vmflow/core/sdk"
)

// appendLine appends a line to a file (the tests read it back).
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, line)
	return err
}

var record = &sdk.Action{
	Name:        "record",
	Description: "Appends \"run TEXT\" to FILE; its undo appends \"undo TEXT\". With fail = true it fails after writing; with sleep it waits first (cancellable, writing \"cancelled TEXT\").",
	Inputs: []sdk.Attr{
		sdk.String("file", "The file to append to.").Required(),
		sdk.String("text", "What to write.").Required(),
		sdk.Bool("fail", "Fail after writing.").Default(false),
		sdk.Number("sleep", "Seconds to wait before writing.").Default(0),
		sdk.String("started", "A file made when the wait starts, so a test knows the step is running.").Default(""),
	},
	Outputs: []sdk.Attr{sdk.String("text", "The text written."), sdk.Number("pid", "The plugin's process id.")},
	Plan: func(ctx context.Context, r *sdk.Request) ([]string, error) {
		text := "(known during the run)"
		if r.Known("text") {
			text = fmt.Sprintf("%q", "run "+r.String("text"))
		}
		return []string{fmt.Sprintf("append %s to %s", text, r.String("file"))}, nil
	},
	Run: func(ctx context.Context, r *sdk.Request) error {
		if d := r.Float("sleep"); d > 0 {
			if f := r.String("started"); f != "" {
				if err := os.WriteFile(f, nil, 0o644); err != nil {
					return err
				}
			}
			select {
			case <-time.After(time.Duration(d * float64(time.Second))):
			case <-ctx.Done():
				_ = appendLine(r.String("file"), "cancelled "+r.String("text"))
				return ctx.Err()
			}
		}
		if err := appendLine(r.String("file"), "run "+r.String("text")); err != nil {
			return err
		}
		if r.Bool("fail") {
			return errors.New("failing as asked: " + r.String("text"))
		}
		if err := r.Set("pid", os.Getpid()); err != nil {
			return err
		}
		return r.Set("text", r.String("text"))
	},
	Undo: func(ctx context.Context, r *sdk.Request) error {
		return appendLine(r.String("file"), "undo "+r.OutputString("text"))
	},
}

// make creates a file as a hypervisor plugin creates a volume: claimed
// first, so that the step run again after vmflow was killed removes its
// own leftover and makes it again, while a file it did not claim is
// refused.
var make_ = &sdk.Action{
	Name: "make",
	Description: "Creates FILE holding TEXT, claimed first (sdk.Request.Claim), appending \"made FILE\" to LOG; then waits while the file WAIT_WHILE exists. " +
		"A FILE this run's step made is removed and made again (\"removed leftover FILE\"); any other is refused. Its undo removes FILE (\"unmade FILE\"), after an interrupted Run only if the step claimed it.",
	Inputs: []sdk.Attr{
		sdk.String("file", "The file to create.").Required(),
		sdk.String("text", "What it holds.").Default(""),
		sdk.String("log", "The log to append to.").Required(),
		sdk.String("wait_while", "Wait, after creating, while this file exists.").Default(""),
		sdk.String("pid_file", "Write the plugin's process id here first, for tests that signal it.").Default(""),
	},
	Outputs: []sdk.Attr{sdk.String("file", "The file made.")},
	Run: func(ctx context.Context, r *sdk.Request) error {
		path := r.String("file")
		key := "file " + path
		if pf := r.String("pid_file"); pf != "" {
			if err := os.WriteFile(pf, []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
				return err
			}
		}
		if _, err := os.Stat(path); err == nil {
			if !r.Claimed(key, nil) {
				return sdk.ArgError("file", "%s already exists", path)
			}
			if err := os.Remove(path); err != nil {
				return err
			}
			_ = appendLine(r.String("log"), "removed leftover "+path)
		}
		if err := r.Claim(key, nil); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(r.String("text")), 0o644); err != nil {
			return err
		}
		if err := appendLine(r.String("log"), "made "+path); err != nil {
			return err
		}
		for w := r.String("wait_while"); w != ""; {
			if _, err := os.Stat(w); err != nil {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		return r.Set("file", path)
	},
	Undo: func(ctx context.Context, r *sdk.Request) error {
		path := r.OutputString("file")
		if r.Interrupted() {
			if path = r.String("file"); !r.Claimed("file "+path, nil) {
				return nil
			}
		}
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return appendLine(r.String("log"), "unmade "+path)
	},
}

func main() {
	sdk.Serve(&sdk.Plugin{
		Name:        "testkit",
		Version:     "1.0.0",
		Description: "Actions for vmflow's own tests.",
		Config:      []sdk.Attr{sdk.String("greeting", "A config value echoed by the config action; refuse: Configure fails; hang: Configure never returns (not even when cancelled), as a plugin stuck on something outside vmflow; hang-validate: echo's Validate never returns.").Default("hi")},
		Configure: func(ctx context.Context, r *sdk.Request) error {
			greeting = r.String("greeting")
			switch greeting {
			case "refuse":
				return sdk.ArgError("greeting", "refused by the plugin")
			case "hang":
				select {}
			}
			return nil
		},
		Actions: []*sdk.Action{
			record,
			make_,
			{
				Name:        "noop",
				Description: "Does nothing.",
				Run:         func(ctx context.Context, r *sdk.Request) error { return nil },
			},
			{
				Name:        "echo",
				Description: "Returns its input and the config's greeting.",
				Inputs:      []sdk.Attr{sdk.Attribute("value", sdk.TypeAny, "Anything.").Required(), sdk.Number("size", "Must be positive (checked by Validate).")},
				Outputs:     []sdk.Attr{sdk.Attribute("value", sdk.TypeAny, "The input."), sdk.String("greeting", "The configured greeting.")},
				Validate: func(ctx context.Context, r *sdk.Request) error {
					if greeting == "hang-validate" {
						select {}
					}
					if r.IsSet("size") && r.Known("size") && r.Float("size") <= 0 {
						return sdk.ArgError("size", "must be positive, got %v", r.Float("size"))
					}
					return nil
				},
				Run: func(ctx context.Context, r *sdk.Request) error {
					if err := r.Set("greeting", greeting); err != nil {
						return err
					}
					return r.Set("value", r.Value("value"))
				},
			},
			{
				Name:        "progress",
				Description: "Reports progress from 1 to steps.",
				Inputs:      []sdk.Attr{sdk.Number("steps", "How many.").Default(5)},
				Run: func(ctx context.Context, r *sdk.Request) error {
					n := r.Int("steps")
					for i := int64(1); i <= n; i++ {
						r.Progress(i, n, "counting")
						r.Logger().Debug("tick", "i", i)
						time.Sleep(20 * time.Millisecond)
					}
					r.Logger().Info("counted", "to", n)
					return nil
				},
			},
			{
				Name:        "rendezvous",
				Description: "Creates DIR/NAME, then waits until DIR/PEER exists: two such steps only both finish when they run at the same time.",
				Inputs: []sdk.Attr{
					sdk.String("dir", "Where the files go.").Required(),
					sdk.String("name", "This step's file.").Required(),
					sdk.String("peer", "The file to wait for.").Required(),
					sdk.Number("wait", "Seconds to wait for the peer.").Default(10),
				},
				Run: func(ctx context.Context, r *sdk.Request) error {
					if err := appendLine(r.String("dir")+"/"+r.String("name"), "here"); err != nil {
						return err
					}
					deadline := time.After(time.Duration(r.Float("wait") * float64(time.Second)))
					for {
						if _, err := os.Stat(r.String("dir") + "/" + r.String("peer")); err == nil {
							return nil
						}
						select {
						case <-deadline:
							return fmt.Errorf("%s never arrived: the steps did not run concurrently", r.String("peer"))
						case <-ctx.Done():
							return ctx.Err()
						case <-time.After(10 * time.Millisecond):
						}
					}
				},
			},
			{
				Name:        "crash",
				Description: "Exits the plugin process in the middle of the step.",
				Run: func(ctx context.Context, r *sdk.Request) error {
					// An unrecovered panic on another goroutine takes the
					// whole process down, as a real plugin bug would. The
					// step waits for that and never answers: a deferred
					// signal from the panicking goroutine ran before the
					// process died, and the step could return success first
					// (crash.txtar, seen once in a full run).
					go func() {
						panic("testkit: crashing on purpose")
					}()
					<-ctx.Done()
					return ctx.Err()
				},
			},
		},
	})
}

var greeting string
