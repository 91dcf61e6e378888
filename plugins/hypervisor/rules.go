package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/sdk"
)

// Func is the shape of an action's Validate, Run and Undo.
type Func = func(ctx context.Context, r *sdk.Request) error

// namePattern is the one rule for VM and volume names: a letter or digit,
// then letters, digits, '.', '_' or '-', at most 128 characters, and never
// "..". No '/', whitespace or shell metacharacters can get through, so a
// name is always safe as a file name and on a command line. (The length
// is checked apart: a bounded repeat such as {0,127} compiles to a
// program of that many copies, which every start of a plugin paid, about
// 1.5 ms, in package init.)
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

const maxName = 128

// NamePatternDoc is how the name rule reads in docs and errors.
const NamePatternDoc = "a letter or digit, then letters, digits, '.', '_' or '-' (at most 128, no '..')"

// CheckName checks a name against the name rule; what says what it names
// (volume, domain, pool, bridge) in the error.
func CheckName(what, name string) error {
	if len(name) > maxName || !namePattern.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("invalid %s name %q: use %s", what, name, NamePatternDoc)
	}
	return nil
}

// snapshotPattern follows Proxmox's rules so that task files carry over
// between backends: a letter, then letters, digits, '_' or '-', at most 40;
// "current" is reserved. (The length is checked apart, as for names.)
var snapshotPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

const maxSnapshotName = 40

// SnapshotPatternDoc is how the snapshot rule reads in docs and errors.
const SnapshotPatternDoc = "a letter, then letters, digits, '_' or '-' (at most 40; \"current\" is reserved)"

// CheckSnapshotName checks a snapshot name against the snapshot rule.
func CheckSnapshotName(name string) error {
	if len(name) > maxSnapshotName || !snapshotPattern.MatchString(name) || name == "current" {
		return fmt.Errorf("invalid snapshot name %q: use %s", name, SnapshotPatternDoc)
	}
	return nil
}

// SizeDoc is how sizes are written, in docs.
const SizeDoc = "512M, 30G, 2T, or a bare number of GiB"

var sizePattern = regexp.MustCompile(`^([1-9][0-9]*)([MGT]?)$`)

// ParseSize reads a disk size: "512M", "30G", "2T", or a bare number of
// GiB ("100"). Anything else is an error.
func ParseSize(s string) (uint64, error) {
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid size %q: write a whole number with M, G or T (512M, 30G), or a bare number of GiB (100)", s)
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %v", s, err)
	}
	shift := map[string]uint{"M": 20, "G": 30, "": 30, "T": 40}[m[2]]
	if n > (1<<63)>>shift {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n << shift, nil
}

// SizeArg reads the size the input field gives (as ParseSize does); an
// invalid one is an argument error.
func SizeArg(r *sdk.Request, field string) (uint64, error) {
	size, err := ParseSize(r.String(field))
	if err != nil {
		return 0, sdk.ArgError(field, "%v", err)
	}
	return size, nil
}

// FormatSize renders bytes the way ParseSize reads them, when exact, and
// else as a number of bytes.
func FormatSize(b uint64) string {
	switch {
	case b%(1<<40) == 0 && b >= 1<<40:
		return fmt.Sprintf("%dT", b>>40)
	case b%(1<<30) == 0:
		return fmt.Sprintf("%dG", b>>30)
	case b%(1<<20) == 0:
		return fmt.Sprintf("%dM", b>>20)
	}
	return fmt.Sprintf("%d bytes", b)
}

// Checks runs several Validate functions and joins their errors.
func Checks(fns ...Func) Func {
	return func(ctx context.Context, r *sdk.Request) error {
		var errs []error
		for _, f := range fns {
			if err := f(ctx, r); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// ValidName checks that the input field, once known, follows the name
// rule; what says what it names in the error.
func ValidName(field, what string) Func {
	return func(ctx context.Context, r *sdk.Request) error {
		if !r.Known(field) {
			return nil
		}
		if err := CheckName(what, r.String(field)); err != nil {
			return sdk.ArgError(field, "%v", err)
		}
		return nil
	}
}

// ValidSize checks that the input field, when known and set, is a size.
func ValidSize(field string) Func {
	return func(ctx context.Context, r *sdk.Request) error {
		if !r.Known(field) || !r.IsSet(field) {
			return nil
		}
		_, err := SizeArg(r, field)
		return err
	}
}

// ValidSnapshot checks the snapshot input against the snapshot rule.
func ValidSnapshot(ctx context.Context, r *sdk.Request) error {
	if r.Known("snapshot") {
		if err := CheckSnapshotName(r.String("snapshot")); err != nil {
			return sdk.ArgError("snapshot", "%v", err)
		}
	}
	return nil
}

// ValidNetwork checks the network input: nat, none or bridge:<name>.
func ValidNetwork(ctx context.Context, r *sdk.Request) error {
	if !r.Known("network") {
		return nil
	}
	n := r.String("network")
	if n == "nat" || n == "none" {
		return nil
	}
	if br, ok := strings.CutPrefix(n, "bridge:"); ok && CheckName("bridge", br) == nil {
		return nil
	}
	return sdk.ArgError("network", "network must be nat, none or bridge:<name>, got %q", n)
}

// ValidFirmware checks the firmware input (uefi or kernel), and that
// direct kernel boot has a kernel.
func ValidFirmware(ctx context.Context, r *sdk.Request) error {
	if !r.Known("firmware") {
		return nil
	}
	switch r.String("firmware") {
	case "uefi":
	case "kernel":
		if r.Known("kernel") && !r.IsSet("kernel") {
			return sdk.ArgError("kernel", "firmware = \"kernel\" (direct kernel boot) needs kernel, and usually initrd and cmdline")
		}
	default:
		return sdk.ArgError("firmware", "firmware must be uefi or kernel, got %q", r.String("firmware"))
	}
	return nil
}

// ValidMAC checks the mac input, when set: six bytes, not multicast. The
// error shows example as the way to write one.
func ValidMAC(example string) Func {
	return func(ctx context.Context, r *sdk.Request) error {
		if !r.Known("mac") || !r.IsSet("mac") {
			return nil
		}
		if hw, err := net.ParseMAC(r.String("mac")); err != nil || len(hw) != 6 || hw[0]&1 == 1 {
			return sdk.ArgError("mac", "invalid MAC address %q: write six hex bytes, %s, not a multicast address", r.String("mac"), example)
		}
		return nil
	}
}

// ValidUUID checks the uuid input, when set: 32 hex digits, dashes
// anywhere.
func ValidUUID(ctx context.Context, r *sdk.Request) error {
	if !r.Known("uuid") || !r.IsSet("uuid") {
		return nil
	}
	u := strings.ReplaceAll(r.String("uuid"), "-", "")
	if len(u) != 32 || strings.Trim(strings.ToLower(u), "0123456789abcdef") != "" {
		return sdk.ArgError("uuid", "invalid UUID %q", r.String("uuid"))
	}
	return nil
}

// AtLeast checks that the number input field, when known and set, is at
// least least.
func AtLeast(field string, least int64) Func {
	return func(ctx context.Context, r *sdk.Request) error {
		if r.Known(field) && r.IsSet(field) && r.Int(field) < least {
			return sdk.ArgError(field, "must be at least %d", least)
		}
		return nil
	}
}

// Positive checks that the number input field is at least 1.
func Positive(field string) Func { return AtLeast(field, 1) }

// validFilesystem checks volume_create's filesystem ("" or "ext4") and,
// for ext4, its label.
func validFilesystem(ctx context.Context, r *sdk.Request) error {
	if r.Known("filesystem") {
		if fs := r.String("filesystem"); fs != "" && fs != "ext4" {
			return sdk.ArgError("filesystem", "unsupported filesystem %q: use \"ext4\" or \"\"", fs)
		}
	}
	if r.Known("label") && len(r.String("label")) > 16 {
		return sdk.ArgError("label", "an ext4 label has at most 16 characters")
	}
	return nil
}

// validMode checks shutdown's mode.
func validMode(ctx context.Context, r *sdk.Request) error {
	if r.Known("mode") {
		switch r.String("mode") {
		case "auto", "acpi", "agent":
		default:
			return sdk.ArgError("mode", "mode must be auto, acpi or agent")
		}
	}
	return nil
}

// validArgv checks guest_exec's command.
func validArgv(ctx context.Context, r *sdk.Request) error {
	if r.Known("argv") && len(r.Strings("argv")) == 0 {
		return sdk.ArgError("argv", "must name a command")
	}
	return nil
}

// validLocalFile checks that the path input, once known, is a regular
// file on this machine.
func validLocalFile(field string) Func {
	return func(ctx context.Context, r *sdk.Request) error {
		if !r.Known(field) {
			return nil
		}
		if st, err := os.Stat(r.String(field)); err != nil {
			return sdk.ArgError(field, "%v", err)
		} else if !st.Mode().IsRegular() {
			return sdk.ArgError(field, "%s is not a regular file", r.String(field))
		}
		return nil
	}
}

// ValidNames checks that every element of the list input field, once
// known, follows the name rule; what says what they name in the errors.
func ValidNames(field, what string) Func {
	return func(ctx context.Context, r *sdk.Request) error {
		if !r.Known(field) {
			return nil
		}
		var errs []error
		for i, n := range r.Strings(field) {
			if err := CheckName(what, n); err != nil {
				errs = append(errs, sdk.ArgPathError(cty.GetAttrPath(field).IndexInt(i), "%v", err))
			}
		}
		return errors.Join(errs...)
	}
}

// validSwap checks that volume_swap names two different volumes.
func validSwap(ctx context.Context, r *sdk.Request) error {
	if r.Known("name") && r.Known("with") && r.String("name") == r.String("with") {
		return sdk.ArgError("with", "name another volume than name (%q): a volume is not swapped with itself", r.String("name"))
	}
	return nil
}

// validPattern checks volume_list's pattern before anything runs.
func validPattern(ctx context.Context, r *sdk.Request) error {
	if r.Known("pattern") {
		if _, err := MatchNames(r.String("pattern")); err != nil {
			return sdk.ArgError("pattern", "%v", err)
		}
	}
	return nil
}

// MatchNames returns volume_list's filter: names starting with prefix
// and matching pattern as a whole ("" matches any).
func MatchNames(pattern string) (func(prefix, name string) bool, error) {
	var re *regexp.Regexp
	if pattern != "" {
		var err error
		if re, err = regexp.Compile("^(?:" + pattern + ")$"); err != nil {
			return nil, fmt.Errorf("not a regular expression: %v", err)
		}
	}
	return func(prefix, name string) bool {
		return strings.HasPrefix(name, prefix) && (re == nil || re.MatchString(name))
	}, nil
}
