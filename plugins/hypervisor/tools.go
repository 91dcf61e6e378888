package hypervisor

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
)

// sbinDirs are where Debian keeps the administration tools a backend runs
// on this machine (mke2fs, debugfs, e2fsck, resize2fs). root's PATH has
// them; a normal user's (/usr/local/bin:/usr/bin:/bin:…) does not, though
// the tools work for any user on files they may write. A variable only so
// that this package's own tests can point it at a temporary directory.
var sbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// toolPackages names the Debian package of each host tool a backend runs,
// for the error about a missing one.
var toolPackages = map[string]string{
	"mke2fs":    "e2fsprogs",
	"debugfs":   "e2fsprogs",
	"e2fsck":    "e2fsprogs",
	"resize2fs": "e2fsprogs",
	"tune2fs":   "e2fsprogs",
	"qemu-img":  "qemu-utils",
}

// ToolError is LookTool's error: the tool is in none of the places
// looked in.
type ToolError struct {
	Tool    string
	Package string   // its Debian package; "" when not known
	Dirs    []string // looked in after PATH
}

func (e *ToolError) Error() string {
	install := "install it"
	if e.Package != "" {
		install = "install Debian package " + e.Package
	}
	return e.Tool + " is not on this machine (looked in PATH and " + strings.Join(e.Dirs, ", ") + "); " + install
}

// LookTool finds a tool a backend runs on this machine (mke2fs, debugfs,
// e2fsck, resize2fs, qemu-img…): in PATH, as exec.LookPath does, and
// then in /usr/local/sbin, /usr/sbin and /sbin, which a normal user's
// PATH lacks on Debian. Every lookup of a host tool goes through here.
// Its error (a *ToolError) names the tool and its Debian package.
func LookTool(name string) (string, error) {
	if strings.ContainsRune(name, '/') {
		return exec.LookPath(name)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range sbinDirs {
		// A path with a slash: LookPath only checks that it is an
		// executable file.
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p, nil
		}
	}
	return "", &ToolError{Tool: name, Package: toolPackages[name], Dirs: append([]string(nil), sbinDirs...)}
}

// ToolCommand is exec.CommandContext for a host tool, found by LookTool.
// The tool sees its own name as argv[0]. When it is missing, the
// command's Run, Output and CombinedOutput fail with LookTool's error.
func ToolCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	path, err := LookTool(name)
	if err != nil {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Err = err
		return cmd
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Args[0] = name
	return cmd
}
