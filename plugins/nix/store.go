package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// storeMode is how the plugin reaches the nix store; it is decided once,
// before the first nix command (see detectStore), and said in the log.
type storeMode struct {
	// Kind: "local" (the store is writable: root, or a single-user
	// install), "daemon" (through nix-daemon's socket) or "configured"
	// (nix.conf or NIX_REMOTE name another store: left as it is).
	Kind string
	// Args go to every nix command (nix, nix-store, nix-instantiate).
	Args []string
	// Note says which mode and why, for the log.
	Note string
}

// Kinds of storeError, for errors.Is.
var (
	errNoDaemon   = errors.New("no nix-daemon answers")
	errSocketPerm = errors.New("the nix-daemon socket is not open to this user")
)

// storeError is a failure of store detection: its message says what to
// do; kind (errNoDaemon, errSocketPerm) says what it is.
type storeError struct {
	kind error
	msg  string
}

func (e *storeError) Error() string        { return e.msg }
func (e *storeError) Is(target error) bool { return target == e.kind }

func storeErr(kind error, format string, args ...any) error {
	return &storeError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// nixConfig is what `nix show-config --json` says, reduced to the
// settings the plugin reads. It honours nix.conf, NIX_CONF_DIR,
// NIX_USER_CONF_FILES, NIX_CONFIG and NIX_REMOTE as nix itself does.
type nixConfig struct {
	Store           string
	BuildUsersGroup string
}

func showConfig(ctx context.Context) (nixConfig, error) {
	args := append(append([]string{}, nixFeatures...), "show-config", "--json")
	out, err := exec.CommandContext(ctx, "nix", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nixConfig{}, fmt.Errorf("nix show-config: %s", strings.TrimSpace(string(ee.Stderr)))
		}
		return nixConfig{}, fmt.Errorf("nix show-config: %w", err)
	}
	var all map[string]struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(out, &all); err != nil {
		return nixConfig{}, fmt.Errorf("nix show-config printed no JSON: %w", err)
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(all[k].Value, &s)
		return s
	}
	return nixConfig{Store: str("store"), BuildUsersGroup: str("build-users-group")}, nil
}

// nixPaths are nix's state directory and daemon socket, from the same
// environment variables nix reads.
func nixPaths() (stateDir, socket string) {
	stateDir = os.Getenv("NIX_STATE_DIR")
	if stateDir == "" {
		stateDir = "/nix/var/nix"
	}
	socket = os.Getenv("NIX_DAEMON_SOCKET_PATH")
	if socket == "" {
		socket = filepath.Join(stateDir, "daemon-socket", "socket")
	}
	return stateDir, socket
}

// groupExists asks the system's group database (getent, so NSS groups
// count), falling back to /etc/group.
func groupExists(name string) bool {
	if path, err := exec.LookPath("getent"); err == nil {
		err := exec.Command(path, "group", name).Run()
		var ee *exec.ExitError
		if err == nil {
			return true
		}
		if errors.As(err, &ee) && ee.ExitCode() == 2 { // 2: not found
			return false
		}
	}
	_, err := user.LookupGroup(name)
	return err == nil
}

func userName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Geteuid())
}

// detectStore decides how to reach the nix store, as nix's default store
// ("auto") would, and checks that it will work before anything is built:
//
//   - the store's state directory is writable (root; or a single-user
//     install owned by this user): the local store. As root, when the
//     build users group nix is set to use (build-users-group, "nixbld" by
//     default) does not exist, as on a machine where Debian's nix-bin was
//     just installed, nix would refuse every build: the plugin then builds
//     without build users (--option build-users-group ""), as a root-only
//     single-user store does. A group that exists is never overridden.
//   - else, when nix-daemon's socket is there: through the daemon. The
//     socket must be open to this user, and a daemon must answer on it.
//   - else: an error saying to start nix-daemon (or to run as root).
//
// A store named in nix.conf, NIX_REMOTE or the build's extra_args
// (--store, --option store) is used as it is; "daemon" and unix:// stores
// get the same socket checks. So is a build-users-group named in
// extra_args, even one that does not exist.
func detectStore(ctx context.Context, extra []string) (storeMode, error) {
	cfg, err := showConfig(ctx)
	if err != nil {
		return storeMode{}, err
	}
	mode, err := decideStore(ctx, cfg, extra)
	if err != nil {
		return storeMode{}, err
	}
	// A store the build's arguments name goes to every nix command.
	if v, ok := optionValue(extra, "store"); ok {
		mode.Args = append([]string{"--option", "store", v}, mode.Args...)
	}
	return mode, nil
}

func decideStore(ctx context.Context, cfg nixConfig, extra []string) (storeMode, error) {
	uri := cfg.Store
	if v, ok := optionValue(extra, "store"); ok {
		uri = v
	}
	// A group the build's arguments name is the user's choice: kept.
	group, userGroup := optionValue(extra, "build-users-group")
	if !userGroup {
		group = cfg.BuildUsersGroup
	}
	stateDir, socket := nixPaths()
	switch {
	case uri == "daemon" || strings.HasPrefix(uri, "unix://"):
		if p, ok := strings.CutPrefix(uri, "unix://"); ok && p != "" {
			socket, _, _ = strings.Cut(p, "?")
		}
		if err := checkDaemon(ctx, uri, socket); err != nil {
			return storeMode{}, err
		}
		return storeMode{Kind: "daemon", Note: fmt.Sprintf("nix: using the nix-daemon at %s (store %q is configured)", socket, uri)}, nil
	case uri != "" && uri != "auto" && uri != "local" && !strings.HasPrefix(uri, "local?"):
		return storeMode{Kind: "configured", Note: fmt.Sprintf("nix: using the configured store %q", uri)}, nil
	}

	root := os.Geteuid() == 0
	writable := syscall.Access(stateDir, 6 /* R_OK|W_OK */) == nil
	if uri == "auto" || uri == "" {
		if !root && !writable {
			if _, err := os.Lstat(socket); err != nil && errors.Is(err, fs.ErrNotExist) {
				return storeMode{}, storeErr(errNoDaemon, "the nix store (%s) is not writable by %s and no nix-daemon is running (no socket %s). "+
					"Start the daemon as root (with systemd: systemctl start nix-daemon; without: nix-daemon & — vmflow's scripts/nix-setup.sh does it), "+
					"then run again; or run vmflow as root", stateDir, userName(), socket)
			}
			if err := checkDaemon(ctx, "daemon", socket); err != nil {
				return storeMode{}, err
			}
			return storeMode{Kind: "daemon", Args: []string{"--option", "store", "daemon"},
				Note: fmt.Sprintf("nix: using the nix-daemon at %s (the store %s is not writable by %s)", socket, stateDir, userName())}, nil
		}
	}
	mode := storeMode{Kind: "local", Note: fmt.Sprintf("nix: using the local store %s as %s", stateDir, userName())}
	switch {
	case !root || group == "":
	case groupExists(group):
		mode.Note += fmt.Sprintf(", building as the users of group %s", group)
	case userGroup:
		mode.Note += fmt.Sprintf(", build-users-group %s (from the build's arguments; it does not exist)", group)
	default:
		mode.Args = []string{"--option", "build-users-group", ""}
		mode.Note += fmt.Sprintf(", building as root without build users (build-users-group %s does not exist; "+
			"create it with build users to build as them, as vmflow's scripts/nix-setup.sh does)", group)
	}
	return mode, nil
}

// checkDaemon checks that the daemon answers this user (nix store ping,
// a whole handshake), so that a build fails before it starts; when it
// does not, checkSocket says why and what to do.
func checkDaemon(ctx context.Context, uri, socket string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	args := append(append([]string{}, nixFeatures...), "store", "ping", "--store", uri)
	out, err := exec.CommandContext(ctx, "nix", args...).CombinedOutput()
	if err == nil {
		return nil
	}
	if err := checkSocket(socket); err != nil {
		return err
	}
	return fmt.Errorf("the nix-daemon at %s does not serve %s: %s", socket, userName(), nixErrorText(out))
}

// checkSocket checks that this user may open nix-daemon's socket and that
// a daemon listens on it, and says what to do when not.
func checkSocket(socket string) error {
	who := userName()
	start := "start it as root (with systemd: systemctl start nix-daemon; without: nix-daemon & — vmflow's scripts/nix-setup.sh does it)"
	_, err := os.Lstat(socket)
	if errors.Is(err, fs.ErrNotExist) {
		return storeErr(errNoDaemon, "no nix-daemon is running (no socket %s): %s, then run again", socket, start)
	}
	if errors.Is(err, fs.ErrPermission) {
		return socketPermError(socket, who)
	}
	conn, err := net.DialTimeout("unix", socket, 10*time.Second)
	if err == nil {
		conn.Close()
		return nil
	}
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		return socketPermError(socket, who)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return storeErr(errNoDaemon, "the nix-daemon socket %s is there but no daemon answers on it (the daemon stopped): %s, then run again", socket, start)
	}
	return fmt.Errorf("connecting to the nix-daemon at %s: %v", socket, err)
}

// socketPermError names the group that may use the socket: the group of
// the first directory on the way (or the socket itself) closed to us.
func socketPermError(socket, who string) error {
	path := socket
	for dir := filepath.Dir(socket); ; dir = filepath.Dir(dir) {
		if syscall.Access(dir, 1 /* X_OK */) != nil {
			path = dir
		}
		if dir == "/" || dir == "." {
			break
		}
	}
	group := ""
	if st, err := os.Stat(path); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			if g, err := user.LookupGroupId(strconv.Itoa(int(sys.Gid))); err == nil {
				group = g.Name
			} else {
				group = strconv.Itoa(int(sys.Gid))
			}
		}
	}
	if group == "" || group == "root" {
		return storeErr(errSocketPerm, "%s may not open the nix-daemon socket %s (%s is closed to it): run vmflow as root, or ask for access to %s", who, socket, path, path)
	}
	return storeErr(errSocketPerm, "%s may not open the nix-daemon socket %s: %s is open to group %s only. "+
		"Add %s to it (as root: usermod -aG %s %s) and log in again, or run vmflow as root", who, socket, path, group, who, group, who)
}

// optionValue finds a nix setting in command-line arguments: --NAME VALUE
// or --option NAME VALUE. ok is false when args do not set it.
func optionValue(args []string, name string) (string, bool) {
	value, ok := "", false
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--"+name && i+1 < len(args):
			value, ok = args[i+1], true
			i++
		case args[i] == "--option" && i+2 < len(args) && args[i+1] == name:
			value, ok = args[i+2], true
			i += 2
		}
	}
	return value, ok
}
