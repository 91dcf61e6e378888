package hypervisor

import "github.com/vmflow/vmflow/core/sdk"

// power are the actions that start, stop, pause and resume a VM.
func (c *shared) power(b *Backend) []spec {
	return []spec{
		{
			name:        "start",
			description: "Starts a VM (nothing to do when it runs already). Its undo forces it off again, if this step started it.",
			inputs:      []sdk.Attr{c.vmIn},
			outputs:     []sdk.Attr{sdk.Bool("started", "Whether this step started it."), sdk.String("state", "Its state afterwards.")},
			validate:    []Func{c.validVM},
			undo:        true,
			impl:        &b.Start,
		},
		{
			name: "shutdown",
			description: "Asks the guest to power off (ACPI, the guest agent, or both) and waits; when the step's timeout is near it fails clearly, leaving the VM running. " +
				"A VM that is off already is nothing to do. Its undo starts the VM again, if this step shut it down.",
			inputs: []sdk.Attr{
				c.vmIn,
				sdk.String("mode", "auto (agent, else ACPI), acpi or agent.").Default("auto"),
			},
			outputs:  []sdk.Attr{sdk.String("state", "Its state afterwards."), sdk.Bool("stopped", "Whether this step shut it down.")},
			validate: []Func{c.validVM, validMode},
			undo:     true,
			impl:     &b.Shutdown,
		},
		{
			name:        "destroy",
			description: "Forces a VM off at once, like pulling the plug (nothing to do when it is off).",
			inputs:      []sdk.Attr{c.vmIn},
			outputs:     []sdk.Attr{sdk.Bool("was_running", "Whether it was running.")},
			validate:    []Func{c.validVM},
			impl:        &b.Destroy,
		},
		{
			name:        "reboot",
			description: "Asks the guest to reboot (ACPI or the guest agent).",
			inputs: []sdk.Attr{
				c.vmIn,
				sdk.String("mode", "auto, acpi or agent.").Default("auto"),
			},
			validate: []Func{c.validVM},
			impl:     &b.Reboot,
		},
		{
			name: "suspend",
			description: "Pauses a running VM: its CPUs stop, its memory and devices stay (for a consistent backup of its disks). Nothing to do when it is paused or shut off. " +
				"Its undo resumes it, if this step paused it.",
			inputs:   []sdk.Attr{c.vmIn},
			outputs:  []sdk.Attr{sdk.Bool("suspended", "Whether this step paused it.")},
			validate: []Func{c.validVM},
			undo:     true,
			impl:     &b.Suspend,
		},
		{
			name:        "resume",
			description: "Resumes a paused VM. Nothing to do when it is not paused.",
			inputs:      []sdk.Attr{c.vmIn},
			outputs:     []sdk.Attr{sdk.Bool("resumed", "Whether this step resumed it.")},
			validate:    []Func{c.validVM},
			impl:        &b.Resume,
		},
	}
}
