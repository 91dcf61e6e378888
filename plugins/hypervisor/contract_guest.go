package hypervisor

import "github.com/vmflow/vmflow/core/sdk"

// guest are the actions that reach into a running guest: its address,
// its commands, its console.
func (c *shared) guest(b *Backend) []spec {
	return []spec{
		{
			name:        "wait_ip",
			description: "Waits for the VM's IPv4 address, found by its MAC, until the step's timeout: then it fails, saying what it looked at; it never returns a placeholder.",
			inputs: []sdk.Attr{
				c.vmIn,
			},
			outputs: []sdk.Attr{
				sdk.String("ip", "The IPv4 address."),
				sdk.String("mac", "The MAC it belongs to."),
				sdk.String("source", "Who told: agent, lease or arp."),
			},
			validate: []Func{c.validVM},
			impl:     &b.WaitIP,
		},
		{
			name: "guest_exec",
			description: "Runs a command inside a running guest through the guest agent (no network or SSH needed) and waits for it; stdout, stderr and the exit code are outputs. " +
				"A non-zero exit fails the step unless allow_failure is set.",
			inputs: []sdk.Attr{
				c.vmIn,
				sdk.StringList("argv", "The command and its arguments, run as they are in the guest.").Required(),
				sdk.String("stdin", "Text fed to the command's standard input."),
				sdk.Bool("allow_failure", "Do not fail on a non-zero exit code.").Default(false),
			},
			outputs: []sdk.Attr{
				sdk.String("stdout", "Standard output."),
				sdk.String("stderr", "Standard error."),
				sdk.Number("exit_code", "The exit status."),
			},
			validate: []Func{c.validVM, validArgv},
			impl:     &b.GuestExec,
		},
		{
			name:        "console",
			description: "Attaches the VM's serial console to your terminal, both ways, until you press Ctrl-] (or the console closes).",
			inputs: []sdk.Attr{
				c.vmIn,
				sdk.Bool("force", "Take the console over from another session.").Default(false),
			},
			validate:    []Func{c.validVM},
			interactive: true,
			impl:        &b.Console,
		},
	}
}
