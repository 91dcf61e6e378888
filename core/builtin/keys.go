package builtin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/vmflow/vmflow/core/sdk"
)

// keysAction gathers the SSH public keys a new VM should accept: those
// ssh-agent holds and those in the files named, else ~/.ssh/*.pub (as
// ssh-copy-id does).
func keysAction(env map[string]string) *sdk.Action {
	return &sdk.Action{
		Name: "authorized_keys",
		Description: "Gathers SSH public keys: the ones ssh-agent holds (SSH_AUTH_SOCK) and the ones in files; with neither, ~/.ssh/*.pub. " +
			"Every line is checked to be a public key. The output is an authorized_keys file.",
		Inputs: []sdk.Attr{
			sdk.StringList("files", "Public key files (authorized_keys format); ~ is your home, and a relative path is the task file's."),
			sdk.Bool("agent", "Ask ssh-agent for its keys.").Default(true),
			sdk.Bool("require", "Fail when no key is found (else the VM is reachable by console and guest agent only).").Default(false),
		},
		Outputs: []sdk.Attr{
			sdk.String("keys", "The keys, one a line, each once."),
			sdk.Number("count", "How many keys."),
			sdk.StringList("sources", "Where they came from."),
		},
		Validate: func(ctx context.Context, r *sdk.Request) error {
			if !r.Known("files") {
				return nil
			}
			for _, f := range r.Strings("files") {
				if _, err := os.Stat(localPath(r, expandHome(f, env))); err != nil {
					return sdk.ArgError("files", "%v", err)
				}
			}
			return nil
		},
		Run: func(ctx context.Context, r *sdk.Request) error {
			var lines, sources []string
			seen := map[string]bool{}
			add := func(line, source string) error {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					return nil
				}
				key, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
				if err != nil {
					return fmt.Errorf("%s: not an SSH public key: %q", source, abbreviate(line))
				}
				id := string(key.Marshal())
				if seen[id] {
					return nil
				}
				seen[id] = true
				out := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
				if comment != "" {
					out += " " + comment
				}
				lines = append(lines, out)
				return nil
			}
			if r.Bool("agent") {
				if sock := env["SSH_AUTH_SOCK"]; sock != "" {
					n, err := agentKeys(sock, func(l string) error { return add(l, "ssh-agent") })
					if err != nil {
						r.Log("ssh-agent at %s: %v", sock, err)
					} else if n > 0 {
						sources = append(sources, "ssh-agent")
					}
				}
			}
			files := r.Strings("files")
			if len(files) == 0 && len(lines) == 0 {
				home := env["HOME"]
				if home == "" {
					home, _ = os.UserHomeDir()
				}
				files, _ = filepath.Glob(filepath.Join(home, ".ssh", "*.pub"))
			}
			for _, f := range files {
				path := localPath(r, expandHome(f, env))
				b, err := os.ReadFile(path)
				if err != nil {
					return sdk.ArgError("files", "%v", err)
				}
				sc := bufio.NewScanner(bytes.NewReader(b))
				for sc.Scan() {
					if err := add(sc.Text(), path); err != nil {
						return err
					}
				}
				sources = append(sources, path)
			}
			if len(lines) == 0 {
				if r.Bool("require") {
					return fmt.Errorf("no SSH public key found: ssh-agent holds none and no key file was given (or ~/.ssh/*.pub holds none)")
				}
				r.Log("no SSH public key found: the VM will be reachable by its console and guest agent only")
			}
			if sources == nil {
				sources = []string{}
			}
			keys := strings.Join(lines, "\n")
			if keys != "" {
				keys += "\n"
			}
			return errors.Join(r.Set("keys", keys), r.Set("count", len(lines)), r.Set("sources", sources))
		},
	}
}

func agentKeys(sock string, add func(string) error) (int, error) {
	conn, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	keys, err := agent.NewClient(conn).List()
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		if err := add(k.String()); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

func expandHome(p string, env map[string]string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home := env["HOME"]
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		return filepath.Join(home, p[1:])
	}
	return p
}

func abbreviate(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
