package hypervisor

import (
	"context"
	"slices"

	"github.com/vmflow/vmflow/core/sdk"
)

// contract declares every action, in the order plugins list them, bound
// to b's implementations. Each group of actions is declared in a file of
// its own (contract_*.go); what the groups share is in shared.
func contract(b *Backend) []spec {
	c := newShared(b)
	return slices.Concat(
		c.volumesMade(b), c.volumesData(b), c.volumesSeen(b),
		c.domainsDefined(b), c.power(b), c.domainsSeen(b), c.guest(b),
		c.snapshots(b),
	)
}

// shared is what several groups of the contract use: the backend's rules
// for VMs with their defaults filled in, and the inputs, outputs and
// checks that actions of different groups have in common.
type shared struct {
	vmName          NameRule
	minMemory       int64
	macExample      string
	validVM         Func // checks the input name as a VM name
	validOptionalVM Func // checks the input vm, when set, as a VM name
	filesIn         sdk.Attr
	secretFilesIn   sdk.Attr
	volumeIn        sdk.Attr
	volOutputs      []sdk.Attr
	vmIn            sdk.Attr
	snapIn          sdk.Attr
}

// newShared fills in b's defaults and declares what the groups share.
func newShared(b *Backend) *shared {
	vmName := b.VMName
	if vmName.Check == nil {
		vmName = NameRuleFor("VM")
	}
	minMemory := b.MinMemory
	if minMemory == 0 {
		minMemory = 1
	}
	macExample := b.MACExample
	if macExample == "" {
		macExample = "52:54:00:12:34:56"
	}
	validVM := func(ctx context.Context, r *sdk.Request) error {
		if r.Known("name") {
			if err := vmName.Check(r.String("name")); err != nil {
				return sdk.ArgError("name", "%v", err)
			}
		}
		return nil
	}
	validOptionalVM := func(ctx context.Context, r *sdk.Request) error {
		if r.Known("vm") && r.String("vm") != "" {
			if err := vmName.Check(r.String("vm")); err != nil {
				return sdk.ArgError("vm", "%v", err)
			}
		}
		return nil
	}
	filesIn := sdk.StringMap("files", "Files to write into the filesystem: "+FilePathDoc+" → its content. Files are 0644, directories made for them 0755, all owned by root.")
	secretFilesIn := sdk.StringMap("secret_files", "Like files, for secrets (SSH host keys, tokens): mode 0600, and kept out of logs and plans.").Sensitive()

	volumeIn := sdk.String("name", "Volume name: "+NamePatternDoc+".").Required()
	volOutputs := []sdk.Attr{
		sdk.String("name", "The volume's name."),
		sdk.String("path", "Where the volume is on the host: its file, or its storage's volume id. Actions that take a volume take this too."),
		sdk.Number("capacity", "Its size in bytes, as the guest sees it."),
	}
	vmIn := sdk.String("name", "VM name.").Required()
	snapIn := sdk.String("snapshot", "Snapshot name: "+SnapshotPatternDoc+".").Required()

	return &shared{
		vmName:          vmName,
		minMemory:       minMemory,
		macExample:      macExample,
		validVM:         validVM,
		validOptionalVM: validOptionalVM,
		filesIn:         filesIn,
		secretFilesIn:   secretFilesIn,
		volumeIn:        volumeIn,
		volOutputs:      volOutputs,
		vmIn:            vmIn,
		snapIn:          snapIn,
	}
}
