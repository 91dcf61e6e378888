// Package hypervisor is the contract every hypervisor plugin of vmflow
// offers (plugins/libvirt, plugins/proxmox-stub): the actions' names,
// descriptions, inputs and outputs, which ones have an undo and which are
// interactive, and the validation rules for names, sizes and snapshot
// names. It is declared once, here, so that a task file written against
// one backend runs on another unchanged.
//
// A plugin calls Actions with its Backend, which gives each action's Run,
// its Undo where the contract has one, and optionally a Validate and a
// Plan of its own and a sentence of its own for the description.
package hypervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/vmflow/vmflow/core/sdk"
)

// Impl is one action as a backend implements it.
type Impl struct {
	// Note is added to the contract's description of the action: what the
	// backend does, in its own terms. Optional.
	Note string
	// Validate runs after the contract's own checks of the inputs, for
	// what only this backend refuses. Optional.
	Validate Func
	// Run does the work.
	Run Func
	// Undo reverses a completed Run. It must be set exactly for the
	// actions the contract declares with an undo.
	Undo Func
	// Plan says what Run would do, in the backend's own terms (vmflow
	// plan). Optional.
	Plan func(ctx context.Context, r *sdk.Request) ([]string, error)
}

// NameRule is a backend's rule for VM names.
type NameRule struct {
	Doc   string                  // how it reads in docs: "a letter or digit, …"
	Check func(name string) error // nil for a valid name
}

// NameRuleFor is the name rule (NamePatternDoc) as a VM name rule; what
// names a VM in the errors ("domain", "VM").
func NameRuleFor(what string) NameRule {
	return NameRule{Doc: NamePatternDoc, Check: func(name string) error { return CheckName(what, name) }}
}

// Backend is a hypervisor plugin: its rules where backends may differ,
// and its implementation of every action.
type Backend struct {
	// VMName is the rule for VM names. Default: NameRuleFor("VM").
	VMName NameRule
	// MinMemory is the least memory a VM may have, in MiB. Default: 1.
	MinMemory int64
	// MACExample is how a MAC address is written, in errors. Default:
	// 52:54:00:12:34:56.
	MACExample string

	VolumeCreate, VolumeOverlay, VolumeResize, VolumeDelete, VolumesDelete, VolumeCopy, VolumeImport, VolumeExport, VolumeEdit, VolumeSwap, VolumeInfo, VolumeList Impl

	Define, Undefine, Start, Shutdown, Destroy, Reboot, Suspend, Resume, State, List, EnsureAbsent, WaitIP, GuestExec, Console, HostCheck Impl

	SnapshotCreate, SnapshotList, SnapshotRevert, SnapshotDelete Impl
}

// spec is one action of the contract.
type spec struct {
	name        string
	description string
	inputs      []sdk.Attr
	outputs     []sdk.Attr
	validate    []Func // the contract's checks of the inputs
	undo        bool
	interactive bool
	impl        *Impl
}

// Default step timeouts (a step's timeout = "…" replaces them). Calls
// that only ask the hypervisor something get minutes, which covers a busy
// host re-probing QEMU; those that move a disk's data get hours, since a
// stalled stream fails on its own long before; waiting for a guest gets
// what a slow boot needs.
const (
	quickTimeout    = 5 * time.Minute
	dataTimeout     = 2 * time.Hour
	snapshotTimeout = 30 * time.Minute
)

// timeouts are the actions whose default is not quickTimeout (0: none).
var timeouts = map[string]time.Duration{
	"volume_create": dataTimeout, "volume_copy": dataTimeout, "volume_import": dataTimeout,
	"volume_export": dataTimeout, "volume_edit": dataTimeout, "volume_resize": dataTimeout,
	"snapshot_create": snapshotTimeout, "snapshot_revert": snapshotTimeout, "snapshot_delete": snapshotTimeout,
	"shutdown": 2 * time.Minute, "wait_ip": 3 * time.Minute, "guest_exec": time.Minute,
	"console": 0, // interactive: as long as the user stays
}

// Timeout is the contract's default timeout of an action.
func Timeout(action string) time.Duration {
	if d, ok := timeouts[action]; ok {
		return d
	}
	return quickTimeout
}

// Actions returns every action of the contract with b's implementations.
// It panics when b leaves an action without Run, or gives an Undo to an
// action the contract declares without one, or none to one that has one:
// a bug in the plugin, found the first time it starts.
func Actions(b Backend) []*sdk.Action {
	specs := contract(&b)
	out := make([]*sdk.Action, len(specs))
	for i, s := range specs {
		switch {
		case s.impl.Run == nil:
			panic(fmt.Sprintf("hypervisor: action %s has no Run", s.name))
		case s.undo && s.impl.Undo == nil:
			panic(fmt.Sprintf("hypervisor: action %s has no Undo; the contract declares one", s.name))
		case !s.undo && s.impl.Undo != nil:
			panic(fmt.Sprintf("hypervisor: action %s has an Undo; the contract declares none", s.name))
		}
		out[i] = s.action()
	}
	return out
}

// Declared returns the contract alone: every action as Actions declares
// it, with a Run (and Undo) that only fail. Tests compare plugins with it.
func Declared() []*sdk.Action {
	notImplemented := func(ctx context.Context, r *sdk.Request) error {
		return fmt.Errorf("the hypervisor contract alone implements nothing")
	}
	specs := contract(&Backend{})
	out := make([]*sdk.Action, len(specs))
	for i, s := range specs {
		s.impl.Run = notImplemented
		if s.undo {
			s.impl.Undo = notImplemented
		}
		out[i] = s.action()
	}
	return out
}

// action builds the sdk.Action: the contract's declaration, the backend's
// note, the contract's checks then the backend's, and its Run and Undo.
func (s spec) action() *sdk.Action {
	description := s.description
	if s.impl.Note != "" {
		description += " " + s.impl.Note
	}
	checks := s.validate
	if s.impl.Validate != nil {
		checks = append(checks[:len(checks):len(checks)], s.impl.Validate)
	}
	var validate Func
	switch len(checks) {
	case 0:
	case 1:
		validate = checks[0]
	default:
		validate = Checks(checks...)
	}
	return &sdk.Action{
		Name:        s.name,
		Description: description,
		Inputs:      s.inputs,
		Outputs:     s.outputs,
		Validate:    validate,
		Run:         s.impl.Run,
		Undo:        s.impl.Undo,
		Plan:        s.impl.Plan,
		Interactive: s.interactive,
		Timeout:     Timeout(s.name),
	}
}
