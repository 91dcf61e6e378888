package builtin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/GehirnInc/crypt/sha512_crypt"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/term"

	"github.com/vmflow/vmflow/core/sdk"
)

// noPassword is the crypt(3) field of an account without a password: a
// hash no password matches, so only other ways in (SSH keys) work.
const noPassword = "!"

// passwordAction asks for login passwords and returns their SHA-512 crypt
// hashes, for /var/identity/passwords (profiles/core.nix). The passwords
// never reach an argument, a log or the journal: they are read from the
// terminal without echo (twice each), or, without a terminal, one a line
// from standard input (as chpasswd reads them), and only their hashes,
// marked sensitive, leave the action.
func passwordAction() *sdk.Action {
	return &sdk.Action{
		Name: "password",
		Description: "Asks for the login password of each user (on a terminal without echo, twice each; else one a line from standard input) and returns " +
			"SHA-512 crypt hashes ($6$…), marked sensitive. An empty password means none: the hash is \"!\", which no password matches.",
		Inputs: []sdk.Attr{
			sdk.StringList("users", "Whose passwords, in the order they are asked for.").Required(),
		},
		Outputs: []sdk.Attr{
			sdk.StringMap("hashes", "user → crypt(3) hash, or \"!\" for no password.").Sensitive(),
		},
		Interactive: true,
		Validate: func(ctx context.Context, r *sdk.Request) error {
			if !r.Known("users") {
				return nil
			}
			users := r.Strings("users")
			if len(users) == 0 {
				return sdk.ArgError("users", "name at least one user")
			}
			seen := map[string]bool{}
			for _, u := range users {
				if !validUser(u) {
					return sdk.ArgError("users", "%q is not a user name (lower-case letters, digits, _ and -, starting with a letter or _)", u)
				}
				if seen[u] {
					return sdk.ArgError("users", "%q is named twice", u)
				}
				seen[u] = true
			}
			return nil
		},
		Run: func(ctx context.Context, r *sdk.Request) error {
			ask := stdinLines(os.Stdin)
			if term.IsTerminal(int(os.Stdin.Fd())) {
				ask = terminalAsk(int(os.Stdin.Fd()), os.Stderr)
			}
			hashes := map[string]cty.Value{}
			for _, u := range r.Strings("users") {
				pw, err := ask(u)
				if err != nil {
					return err
				}
				h, err := HashPassword(pw)
				if err != nil {
					return err
				}
				hashes[u] = cty.StringVal(h)
			}
			return r.Set("hashes", cty.MapVal(hashes))
		},
	}
}

// HashPassword is the crypt(3) field for a password: SHA-512 crypt with a
// random salt, or "!" for the empty password.
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return noPassword, nil
	}
	if strings.ContainsAny(pw, "\n\r\x00") {
		return "", errors.New("a password cannot hold a line break or a NUL byte")
	}
	return sha512_crypt.New().Generate([]byte(pw), nil)
}

func validUser(u string) bool {
	if u == "" || len(u) > 32 {
		return false
	}
	for i, c := range u {
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// terminalAsk reads each password twice without echo, until both match.
func terminalAsk(fd int, w io.Writer) func(user string) (string, error) {
	return func(user string) (string, error) {
		for range 3 {
			fmt.Fprintf(w, "Password for %s (empty: none): ", user)
			a, err := term.ReadPassword(fd)
			fmt.Fprintln(w)
			if err != nil {
				return "", fmt.Errorf("reading the password for %s: %w", user, err)
			}
			fmt.Fprintf(w, "Again, for %s: ", user)
			b, err := term.ReadPassword(fd)
			fmt.Fprintln(w)
			if err != nil {
				return "", fmt.Errorf("reading the password for %s: %w", user, err)
			}
			if string(a) == string(b) {
				return string(a), nil
			}
			fmt.Fprintln(w, "The two differ; once more.")
		}
		return "", fmt.Errorf("the password for %s was typed differently three times: nothing changed", user)
	}
}

// stdinLines reads one password a line from r (a pipe or a file).
func stdinLines(r io.Reader) func(user string) (string, error) {
	var once sync.Once
	var sc *bufio.Scanner
	return func(user string) (string, error) {
		once.Do(func() { sc = bufio.NewScanner(r) })
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return "", fmt.Errorf("reading the password for %s from standard input: %w", user, err)
			}
			return "", fmt.Errorf("no password for %s on standard input (one a line; an empty line means none): nothing changed", user)
		}
		return strings.TrimSuffix(sc.Text(), "\r"), nil
	}
}
