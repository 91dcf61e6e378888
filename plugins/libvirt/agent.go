package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/vmflow/vmflow/core/sdk"
)

// agent sends one QEMU guest agent command and decodes its "return".
func agent(conn libvirtConn, dom libvirt.Domain, cmd string, args any, out any) error {
	req, err := json.Marshal(map[string]any{"execute": cmd, "arguments": args})
	if err != nil {
		return err
	}
	res, err := conn.QEMUDomainAgentCommand(dom, string(req), 10, 0)
	if err != nil {
		return fmt.Errorf("guest agent %s: %w", cmd, err)
	}
	if len(res) == 0 {
		return fmt.Errorf("guest agent %s: no answer", cmd)
	}
	var env struct {
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Desc string `json:"desc"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(res[0]), &env); err != nil {
		return fmt.Errorf("guest agent %s: %w", cmd, err)
	}
	if env.Error != nil {
		return fmt.Errorf("guest agent %s: %s", cmd, env.Error.Desc)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(env.Return, out)
}

// guestExec is guest_exec: a command run in the guest through the QEMU
// guest agent, once the agent answers.
func (d *driver) guestExec(ctx context.Context, r *sdk.Request) error {
	name, argv := r.String("name"), r.Strings("argv")
	conn, dom, err := d.domainArg(name)
	if err != nil {
		return err
	}
	args := map[string]any{"path": argv[0], "arg": argv[1:], "capture-output": true}
	if r.IsSet("stdin") {
		args["input-data"] = base64.StdEncoding.EncodeToString([]byte(r.String("stdin")))
	}
	deadline := stepDeadline(r)
	var started struct {
		PID int `json:"pid"`
	}
	// A guest that has just booted may not have its agent up yet:
	// wait for it within the timeout.
	for {
		err := agent(conn, dom, "guest-exec", args, &started)
		if err == nil {
			break
		}
		if !isCode(err, libvirt.ErrAgentUnresponsive) || !time.Now().Before(deadline) {
			return fmt.Errorf("%v (is the guest up and qemu-guest-agent running?)", err)
		}
		if err := sleepUntil(ctx, 250*time.Millisecond, deadline); err != nil {
			return err
		}
	}
	for {
		var st struct {
			Exited   bool   `json:"exited"`
			ExitCode int    `json:"exitcode"`
			Signal   int    `json:"signal"`
			Out      string `json:"out-data"`
			Err      string `json:"err-data"`
		}
		if err := agent(conn, dom, "guest-exec-status", map[string]any{"pid": started.PID}, &st); err != nil {
			return err
		}
		if st.Exited {
			stdout, _ := base64.StdEncoding.DecodeString(st.Out)
			stderr, _ := base64.StdEncoding.DecodeString(st.Err)
			code := st.ExitCode
			if st.Signal != 0 {
				code = 128 + st.Signal
			}
			if err := errors.Join(r.Set("stdout", string(stdout)), r.Set("stderr", string(stderr)), r.Set("exit_code", code)); err != nil {
				return err
			}
			if code != 0 && !r.Bool("allow_failure") {
				return fmt.Errorf("%s exited with status %d in %s: %s", argv[0], code, name, lastLine(string(stderr)))
			}
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%s did not finish within %s in %s (the step's timeout)", argv[0], r.Timeout(), name)
		}
		if err := sleepUntil(ctx, 100*time.Millisecond, deadline); err != nil {
			return err
		}
	}
}

// stepDeadline is when an action that waits (for a guest to stop, an
// address, a command) gives up with its own message: just before vmflow
// cancels the step at its timeout. Without a limit it waits for as long
// as the step is not cancelled.
func stepDeadline(r *sdk.Request) time.Time {
	if d, ok := r.Deadline(); ok {
		return d
	}
	return time.Now().Add(100 * 365 * 24 * time.Hour)
}

// sleepUntil waits d, or until the deadline if that comes first, so that
// a poll loop looks once more right at its deadline and fails with its own
// message; an error when the step is cancelled meanwhile.
func sleepUntil(ctx context.Context, d time.Duration, deadline time.Time) error {
	t := time.NewTimer(max(0, min(d, time.Until(deadline))))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func lastLine(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}
