package conformance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// How the suite looks inside a volume's filesystem, per target.

// qemuFiles reads a volume on this host the way a user would: qemu-img
// convert to raw, then debugfs lists and prints every file.
func qemuFiles(s *suite, volume string) map[string]fsFile {
	s.T.Helper()
	info := s.Run("volume_info", map[string]any{"name": volume})
	raw := filepath.Join(s.T.TempDir(), "disk.raw")
	if b, err := exec.Command("qemu-img", "convert", "-U", "-O", "raw", str(info, "path"), raw).CombinedOutput(); err != nil {
		s.T.Fatalf("qemu-img convert: %v: %s", err, b)
	}
	out := map[string]fsFile{}
	var walk func(dir string)
	walk = func(dir string) {
		for _, e := range debugfsList(s, raw, dir) {
			p := strings.TrimPrefix(dir+"/"+e.name, "/")
			switch {
			case p == "lost+found":
			case e.mode&0o170000 == 0o040000:
				if e.mode&0o777 != 0o755 || e.owner != "0:0" {
					s.T.Errorf("directory %s in %s: mode %o, owner %s; want 0755, root", p, volume, e.mode&0o7777, e.owner)
				}
				walk("/" + p)
			default:
				if e.owner != "0:0" {
					s.T.Errorf("%s in %s is owned by %s, not root", p, volume, e.owner)
				}
				b, err := exec.Command("debugfs", "-R", "cat "+debugfsWord("/"+p), raw).Output()
				if err != nil {
					s.T.Fatalf("debugfs cat %s: %v", p, err)
				}
				out[p] = fsFile{mode: fmt.Sprintf("%04o", e.mode&0o7777), content: string(b), known: true}
			}
		}
	}
	walk("")
	return out
}

type lsEntry struct {
	name, owner string
	mode        uint64
}

func debugfsWord(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// debugfsList lists a directory with debugfs's ls -p:
// /inode/mode/uid/gid/name/size/.
func debugfsList(s *suite, raw, dir string) []lsEntry {
	if dir == "" {
		dir = "/"
	}
	b, err := exec.Command("debugfs", "-R", "ls -p "+debugfsWord(dir), raw).Output()
	if err != nil {
		s.T.Fatalf("debugfs ls %s: %v", dir, err)
	}
	var out []lsEntry
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(strings.TrimSpace(line), "/")
		if len(f) != 8 || f[5] == "." || f[5] == ".." {
			continue
		}
		mode, _ := strconv.ParseUint(f[2], 8, 32)
		out = append(out, lsEntry{name: f[5], owner: f[3] + ":" + f[4], mode: mode})
	}
	return out
}

// stubFiles reads what the stub records of a volume's files: names and
// modes, in its state file.
func stubFiles(s *suite, volume string) map[string]fsFile {
	s.T.Helper()
	b, err := os.ReadFile(filepath.Join(s.state, "proxmox-stub", "cluster.json"))
	if err != nil {
		s.T.Fatal(err)
	}
	var c struct {
		Volumes map[string]struct {
			Name  string            `json:"name"`
			Files map[string]string `json:"files"`
		} `json:"volumes"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		s.T.Fatal(err)
	}
	for _, v := range c.Volumes {
		if v.Name == volume {
			out := map[string]fsFile{}
			for p, mode := range v.Files {
				out[p] = fsFile{mode: mode}
			}
			return out
		}
	}
	s.T.Fatalf("the stub's state has no volume %s", volume)
	return nil
}

// wantFiles checks the files in a volume's filesystem: their paths and
// modes, and their contents where the target keeps them.
func (s *suite) wantFiles(volume string, want map[string]fsFile) {
	s.T.Helper()
	got := s.tg.filesIn(s, volume)
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		s.T.Fatalf("files in %s: %v, want %v", volume, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for p, w := range want {
		g := got[p]
		if g.mode != w.mode || (g.known && g.content != w.content) {
			s.T.Fatalf("%s in %s: mode %s, content %q (known: %v); want mode %s, content %q", p, volume, g.mode, g.content, g.known, w.mode, w.content)
		}
	}
}

func file(content string) fsFile   { return fsFile{mode: "0644", content: content} }
func secret(content string) fsFile { return fsFile{mode: "0600", content: content} }

func sha256File(s *suite, path string) (string, int64) {
	s.T.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		s.T.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), int64(len(b))
}

// qemuBacking is an image's backing file as qemu-img reads it from the
// image itself.
func qemuBacking(s *suite, path string) string {
	s.T.Helper()
	b, err := exec.Command("qemu-img", "info", "-U", "--output=json", path).Output()
	if err != nil {
		s.T.Fatalf("qemu-img info %s: %v", path, err)
	}
	var info struct {
		Backing string `json:"backing-filename"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		s.T.Fatal(err)
	}
	return info.Backing
}

// volumeFiles: files written into a new filesystem, edited in place,
// exported and brought back; and two volumes swapped.
func volumeFiles(s *suite) {
	v := s.name("files", "var")
	ext4 := func(name string, files, secrets map[string]string) map[string]any {
		return map[string]any{"name": name, "size": "256M", "filesystem": "ext4", "label": "var", "files": files, "secret_files": secrets}
	}
	// Refused before anything runs, on every backend.
	s.refused("files/needs-ext4", "volume_create", map[string]any{"name": s.name("files", "x"), "size": "64M", "files": map[string]string{"a": "b"}}, "files:", `needs filesystem = "ext4"`)
	s.refused("files/dotdot", "volume_create", ext4(s.name("files", "x"), map[string]string{"../etc/passwd": "x"}, nil), `files["../etc/passwd"]`, `has ".."`)
	s.refused("files/absolute", "volume_create", ext4(s.name("files", "x"), nil, map[string]string{"/etc/shadow": "x"}), `secret_files["/etc/shadow"]`, "is absolute")
	if i := s.Run("volume_info", map[string]any{"name": s.name("files", "x")}); i.GetAttr("exists").True() {
		s.T.Fatal("a refused volume_create made its volume")
	}

	created := map[string]fsFile{
		"identity/hostname":                 file("alpha\n"),
		"vmflow/note":                       file("made by volume_create"),
		"identity/ssh/ssh_host_ed25519_key": secret("KEY-OF-THE-SOURCE"),
	}
	if _, ok := s.check("files/create", "volume_create", ext4(v, map[string]string{"identity/hostname": "alpha\n", "vmflow/note": "made by volume_create"},
		map[string]string{"identity/ssh/ssh_host_ed25519_key": "KEY-OF-THE-SOURCE"})); ok {
		s.wantFiles(v, created)
	} else {
		s.Run("volume_create", map[string]any{"name": v, "size": "256M"}) // to try the rest on
	}

	// A clone's identity: its hostname, its own host key, none of the source's.
	edit := map[string]any{
		"name":         v,
		"files":        map[string]string{"identity/hostname": "beta\n"},
		"secret_files": map[string]string{"identity/ssh/ssh_host_ed25519_key": "KEY-OF-THE-CLONE"},
		"remove":       []string{"identity/ssh/*", "nosuch/*", "identity/nosuch"},
	}
	edited := map[string]fsFile{
		"identity/hostname":                 file("beta\n"),
		"vmflow/note":                       file("made by volume_create"),
		"identity/ssh/ssh_host_ed25519_key": secret("KEY-OF-THE-CLONE"),
	}
	if out, ok := s.check("files/edit", "volume_edit", edit); ok {
		if w, r := strs(out, "written"), strs(out, "removed"); !slices.Equal(w, []string{"identity/hostname", "identity/ssh/ssh_host_ed25519_key"}) ||
			!slices.Equal(r, []string{"identity/ssh/ssh_host_ed25519_key"}) {
			s.T.Fatalf("volume_edit: written %q, removed %q", w, r)
		}
		s.wantFiles(v, edited)
		if i := s.Run("volume_info", map[string]any{"name": v}); num(i, "capacity") != 256<<20 {
			s.T.Fatalf("volume_edit changed the capacity: %#v", i)
		}
		// A file where a directory must go is refused, and changes nothing.
		s.refused("files/edit-file-as-dir", "volume_edit", map[string]any{"name": v, "files": map[string]string{"identity/hostname/x": "y"}}, "identity/hostname is a file")
		// A directory goes with what it holds; nothing to remove is fine.
		out := s.Run("volume_edit", map[string]any{"name": v, "remove": []string{"vmflow", "nosuch"}})
		if w, r := strs(out, "written"), strs(out, "removed"); len(w) != 0 || !slices.Equal(r, []string{"vmflow"}) {
			s.T.Fatalf("volume_edit of a directory: written %q, removed %q", w, r)
		}
		delete(edited, "vmflow/note")
		s.wantFiles(v, edited)
		if out := s.Run("volume_edit", map[string]any{"name": v, "remove": []string{"vmflow"}}); len(strs(out, "removed")) != 0 {
			s.T.Fatalf("volume_edit removed what is not there: %#v", out)
		}
	}
	plain := s.name("files", "plain")
	s.Run("volume_create", map[string]any{"name": plain, "size": "64M"})
	s.refused("files/edit-no-ext4", "volume_edit", map[string]any{"name": plain, "files": map[string]string{"a": "b"}}, "name:", "holds no ext4 filesystem")
	s.refused("files/edit-missing", "volume_edit", map[string]any{"name": s.name("files", "nosuch")}, "name:", "no volume")

	// A backup: the volume's bytes, hashed on the way, and back again.
	exp := filepath.Join(s.files, "var.export")
	args := map[string]any{"name": v, "path": exp}
	if out, ok := s.check("files/export", "volume_export", args); ok {
		sum, size := sha256File(s, exp)
		info := s.Run("volume_info", map[string]any{"name": v})
		if str(out, "sha256") != sum || int64(num(out, "size")) != size || str(out, "path") != exp || str(out, "format") != str(info, "format") {
			s.T.Fatalf("volume_export: %#v; the file has sha256 %s, %d bytes", out, sum, size)
		}
		if s.tg.guest && size >= 64<<20 {
			s.T.Fatalf("the export of a 256M volume holding little is %d bytes: not compact", size)
		}
		s.refused("files/export-exists", "volume_export", args, "path:", "exists")
		restored := s.name("files", "restored")
		if im := s.Run("volume_import", map[string]any{"path": exp, "name": restored}); num(im, "capacity") != 256<<20 {
			s.T.Fatalf("volume_import of the export: %#v", im)
		}
		s.wantFiles(restored, edited)
		s.Run("volume_delete", map[string]any{"name": restored})
		s.Undo("volume_export", args, out)
		if _, err := os.Stat(exp); !os.IsNotExist(err) {
			s.T.Fatalf("volume_export's undo left %s (%v)", exp, err)
		}
	}
	s.refused("files/export-no-dir", "volume_export", map[string]any{"name": v, "path": filepath.Join(s.files, "nosuch", "x")}, "path:", "its directory")
	s.refused("files/export-missing", "volume_export", map[string]any{"name": s.name("files", "nosuch"), "path": filepath.Join(s.files, "x")}, "name:", "no volume")

	// An upgrade's swap: the new overlay under the stable name.
	base, over, other := s.name("swap", "base"), s.name("swap", "over"), s.name("swap", "other")
	s.Run("volume_create", map[string]any{"name": base, "size": "64M"})
	s.Run("volume_overlay", map[string]any{"name": over, "backing": base})
	s.Run("volume_create", map[string]any{"name": other, "size": "128M"})
	oi := s.Run("volume_info", map[string]any{"name": over})
	ti := s.Run("volume_info", map[string]any{"name": other})
	swap := map[string]any{"name": over, "with": other}
	if out, ok := s.check("files/swap", "volume_swap", swap); ok {
		a := s.Run("volume_info", map[string]any{"name": over})
		b := s.Run("volume_info", map[string]any{"name": other})
		if num(a, "capacity") != 128<<20 || str(a, "backing") != "" || str(a, "path") != str(oi, "path") ||
			num(b, "capacity") != 64<<20 || str(b, "backing") != str(oi, "backing") || str(b, "path") != str(ti, "path") {
			s.T.Fatalf("after volume_swap: %s is %#v, %s is %#v", over, a, other, b)
		}
		if s.tg.guest {
			// The overlay keeps the base it was made on: its file names it
			// by absolute path.
			if got := qemuBacking(s, str(b, "path")); got != str(oi, "backing") {
				s.T.Fatalf("the swapped overlay's backing file is %q, want %q", got, str(oi, "backing"))
			}
			if got := qemuBacking(s, str(a, "path")); got != "" {
				s.T.Fatalf("%s has a backing file after the swap: %q", over, got)
			}
		}
		s.Undo("volume_swap", swap, out)
		if a := s.Run("volume_info", map[string]any{"name": over}); num(a, "capacity") != 64<<20 || str(a, "backing") != str(oi, "backing") {
			s.T.Fatalf("volume_swap's undo: %s is %#v", over, a)
		}
	}
	s.refused("files/swap-missing", "volume_swap", map[string]any{"name": over, "with": s.name("swap", "nosuch")}, "with:", "no volume")
	s.refused("files/swap-itself", "volume_swap", map[string]any{"name": over, "with": over}, "with:", "not swapped with itself")
	s.refused("files/swap-base", "volume_swap", map[string]any{"name": base, "with": over}, "with:", "its own base")

	// volume_list finds volumes by the start of their names, and by a
	// pattern the whole name must match.
	if out := s.Run("volume_list", map[string]any{"prefix": s.name("swap", "")}); !slices.Equal(strs(out, "names"), []string{base, other, over}) {
		s.T.Fatalf("volume_list %s: %v", s.name("swap", ""), strs(out, "names"))
	}
	if out := s.Run("volume_list", map[string]any{"prefix": s.name(""), "pattern": ".*-(over|plain)"}); !slices.Equal(strs(out, "names"), []string{plain, over}) {
		s.T.Fatalf("volume_list with a pattern: %v", strs(out, "names"))
	}
	if out := s.Run("volume_list", map[string]any{"prefix": s.name("swap", ""), "pattern": "over"}); len(strs(out, "names")) != 0 {
		s.T.Fatalf("a pattern matches the whole name: %v", strs(out, "names"))
	}
	s.refused("files/list-pattern", "volume_list", map[string]any{"pattern": "(unclosed"}, "pattern:", "not a regular expression")

	for _, n := range []string{v, plain, over, other, base} {
		s.Run("volume_delete", map[string]any{"name": n})
	}
	if out := s.Run("ensure_absent", map[string]any{"volumes": []string{v, plain, over, other, base}}); len(strs(out, "checked")) != 5 {
		s.T.Fatalf("ensure_absent: %#v", out)
	}
}
