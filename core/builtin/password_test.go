package builtin

import (
	"strings"
	"testing"

	"github.com/GehirnInc/crypt/sha512_crypt"
)

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("s3cret pass")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$6$") {
		t.Fatalf("hash %q is not SHA-512 crypt", h)
	}
	c := sha512_crypt.New()
	if err := c.Verify(h, []byte("s3cret pass")); err != nil {
		t.Errorf("the hash does not verify its password: %v", err)
	}
	if err := c.Verify(h, []byte("s3cret pas")); err == nil {
		t.Errorf("the hash verifies another password")
	}
	if h2, _ := HashPassword("s3cret pass"); h2 == h {
		t.Errorf("two hashes of one password are equal: the salt is not random")
	}
	if h, _ := HashPassword(""); h != "!" {
		t.Errorf("the empty password hashes to %q, want ! (none)", h)
	}
	if _, err := HashPassword("a\nb"); err == nil {
		t.Errorf("a password with a line break was accepted")
	}
}

func TestPasswordsFromStdin(t *testing.T) {
	ask := stdinLines(strings.NewReader("first\r\n\n"))
	for _, want := range []string{"first", ""} {
		got, err := ask("u")
		if err != nil || got != want {
			t.Errorf("got %q %v, want %q", got, err, want)
		}
	}
	if _, err := ask("admin"); err == nil || !strings.Contains(err.Error(), "no password for admin") {
		t.Errorf("past the end: %v", err)
	}
	for u, ok := range map[string]bool{"admin": true, "_svc": true, "user-2": true, "": false, "Admin": false, "2x": false, "a b": false} {
		if validUser(u) != ok {
			t.Errorf("validUser(%q) = %v", u, !ok)
		}
	}
}
