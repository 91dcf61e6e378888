package profiles_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

var allProfiles = []string{"claude", "core", "dev", "docker", "home-manager", "nvidia", "open-code", "podman", "python", "rust"}

const knownList = "the known profiles are: claude, core, dev, docker, home-manager, nvidia, open-code, podman, python, rust"

// Profile resolution (lib/resolve.nix through the flake's lib.resolve and
// lib.mkImage): core is always first, what a profile requires comes before
// it and is added, each name once; the image's list is sorted, whatever
// order it was asked for in.
func TestResolve(t *testing.T) {
	cases := []struct {
		ask, want []string
	}{
		{nil, []string{"core"}},
		{[]string{"core"}, []string{"core"}},
		{[]string{"docker"}, []string{"core", "docker"}},
		{[]string{"podman"}, []string{"core", "podman"}},
		{[]string{"nvidia"}, []string{"core", "docker", "nvidia"}},
		{[]string{"python"}, []string{"core", "python"}},
		{[]string{"rust"}, []string{"core", "rust"}},
		{[]string{"dev"}, []string{"core", "dev"}},
		{[]string{"home-manager"}, []string{"core", "home-manager"}},
		{[]string{"claude"}, []string{"core", "claude"}},
		{[]string{"open-code"}, []string{"core", "open-code"}},
		{[]string{"nvidia", "dev"}, []string{"core", "docker", "nvidia", "dev"}},
		{[]string{"dev", "nvidia", "docker", "dev"}, []string{"core", "dev", "docker", "nvidia"}},
		{[]string{"claude", "open-code", "home-manager", "podman", "docker"}, []string{"core", "claude", "open-code", "home-manager", "podman", "docker"}},
		{allProfiles, []string{"core", "claude", "dev", "docker", "home-manager", "nvidia", "open-code", "podman", "python", "rust"}},
	}
	// One evaluation for all cases: lib.resolve, and the image's list.
	expr := "lib: map (ask: { resolved = lib.resolve ask; image = (lib.mkImage { profiles = ask; }).passthru.profiles; }) ["
	for _, c := range cases {
		expr += " " + nixList(c.ask)
	}
	var got []struct {
		Resolved []string `json:"resolved"`
		Image    []string `json:"image"`
	}
	eval(t, "lib", expr+" ]", &got)
	if len(got) != len(cases) {
		t.Fatalf("%d results for %d cases", len(got), len(cases))
	}
	for i, c := range cases {
		if !slices.Equal(got[i].Resolved, c.want) {
			t.Errorf("resolve %v = %v, want %v", c.ask, got[i].Resolved, c.want)
		}
		// The image's list: the same set, sorted.
		if sorted := sortedCopy(c.want); !slices.Equal(got[i].Image, sorted) {
			t.Errorf("mkImage %v has profiles %v, want %v", c.ask, got[i].Image, sorted)
		}
	}
	// Asked in another order: the same image name.
	var a, b string
	eval(t, "lib", image(`profiles = [ "nvidia" "claude" ];`, "img.name"), &a)
	eval(t, "lib", image(`profiles = [ "claude" "docker" "nvidia" ];`, "img.name"), &b)
	if a != b || a != "vmflow-image-claude-core-docker-nvidia" {
		t.Errorf("image names %q and %q, want both vmflow-image-claude-core-docker-nvidia", a, b)
	}
}

func TestResolveRejects(t *testing.T) {
	evalFails(t, "lib", `lib: lib.resolve [ "dev" "nope" ]`, `unknown profile "nope"`, knownList)
	evalFails(t, "lib", image(`profiles = [ "dokker" ];`, "img.passthru.profiles"), `unknown profile "dokker"`, knownList)
	evalFails(t, "lib", `lib: lib.resolve "dev"`, "profiles must be a list of names")
	evalFails(t, "lib", `lib: lib.resolve [ 1 ]`, "a profile name must be a string")

	// A cycle and an unknown requirement, in a catalog made for it.
	need(t, "nix-instantiate")
	for expr, want := range map[string]string{
		`import ./lib/resolve.nix { core = { }; a = { requires = [ "b" ]; }; b = { requires = [ "a" ]; }; } [ "a" ]`: "profiles require each other in a cycle: a -> b -> a",
		`import ./lib/resolve.nix { core = { }; x = { requires = [ "ghost" ]; }; } [ "x" ]`:                          `unknown profile "ghost" (required by x); the known profiles are: core, x`,
	} {
		out, err := exec.Command("nix-instantiate", "--eval", "--strict", "--json", "-E", expr).CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("%s: %v %s; want an error with %q", expr, err, out, want)
		}
	}
}

// The labels, and core.nix mounting by them.
func TestLabels(t *testing.T) {
	var labels map[string]string
	eval(t, "lib.labels", "", &labels)
	if labels["root"] != "nixos" || labels["esp"] != "ESP" || labels["var"] != "var" || len(labels) != 3 {
		t.Errorf("lib.labels = %v", labels)
	}
	var fs map[string]struct {
		Device  string   `json:"device"`
		FsType  string   `json:"fsType"`
		Options []string `json:"options"`
	}
	eval(t, "nixosConfigurations.core.config.fileSystems", `fs: builtins.mapAttrs (_: f: { inherit (f) device fsType options; }) fs`, &fs)
	if fs["/"].Device != "/dev/disk/by-label/nixos" || fs["/"].FsType != "ext4" || !slices.Equal(fs["/"].Options, []string{"ro"}) {
		t.Errorf("/ is %+v", fs["/"])
	}
	if fs["/var"].Device != "/dev/disk/by-label/var" || fs["/var"].FsType != "ext4" {
		t.Errorf("/var is %+v", fs["/var"])
	}
}

// The outputs: one package and one configuration per profile, `default`
// = core alone; each package is core + that profile + what it requires.
func TestOutputNames(t *testing.T) {
	var pkgs, confs, listed []string
	eval(t, "packages.x86_64-linux", "builtins.attrNames", &pkgs)
	eval(t, "nixosConfigurations", "builtins.attrNames", &confs)
	eval(t, "lib.profiles", "builtins.attrNames", &listed)
	if want := append(slices.Clone(allProfiles), "default"); !slices.Equal(sortedCopy(pkgs), sortedCopy(want)) {
		t.Errorf("packages.x86_64-linux = %v, want %v", pkgs, want)
	}
	if !slices.Equal(confs, allProfiles) || !slices.Equal(listed, allProfiles) {
		t.Errorf("nixosConfigurations = %v, lib.profiles = %v, want %v", confs, listed, allProfiles)
	}
	var each map[string][]string
	eval(t, "packages.x86_64-linux", "ps: builtins.mapAttrs (_: p: p.passthru.profiles) ps", &each)
	want := map[string][]string{"default": {"core"}, "core": {"core"}, "nvidia": {"core", "docker", "nvidia"}}
	for _, p := range allProfiles {
		if want[p] == nil {
			want[p] = sortedCopy([]string{"core", p})
		}
	}
	for name, w := range want {
		if !slices.Equal(each[name], w) {
			t.Errorf("packages.x86_64-linux.%s has profiles %v, want %v", name, each[name], w)
		}
	}
	var release string
	eval(t, "nixosConfigurations.dev.config.environment.etc", `etc: etc."vmflow/image.json".text`, &release)
	if release != `{"nixos":"25.05","profiles":["core","dev"]}` {
		t.Errorf("/etc/vmflow/image.json = %s", release)
	}
}

// mkImage's own checks, each fired by a broken input, and passing on the
// real profiles.
func TestImageChecks(t *testing.T) {
	for _, p := range append(slices.Clone(allProfiles), "") {
		var names []string
		eval(t, "lib", image("profiles = "+nixList(nonEmpty(p))+";", "img.passthru.profiles"), &names)
	}
	ro := `/ must be mounted read-only (the boot disk is attached read-only): its options must hold "ro" and neither "rw" nor "defaults"`
	// A module adding "rw": NixOS merges it to [ "ro" "rw" ].
	evalFails(t, "lib", image(`profiles = [ "dev" ]; modules = [ { fileSystems."/".options = [ "rw" ]; } ];`, "img.passthru.profiles"),
		ro, `but they are ["ro","rw"]`)
	evalFails(t, "lib", image(`modules = [ { fileSystems."/".options = [ "defaults" ]; } ];`, "img.passthru.profiles"),
		ro, `but they are ["ro","defaults"]`)
	evalFails(t, "lib", image(`modules = [ ({ lib, ... }: { fileSystems."/".options = lib.mkForce [ "noatime" ]; }) ];`, "img.passthru.profiles"),
		ro, `but they are ["noatime"]`)
	labels := "core.nix must mount / from LABEL=nixos and /var from LABEL=var"
	evalFails(t, "lib", image(`modules = [ ({ lib, ... }: { fileSystems."/var".device = lib.mkForce "/dev/disk/by-label/data"; }) ];`, "img.passthru.profiles"), labels)
	evalFails(t, "lib", image(`modules = [ ({ lib, ... }: { fileSystems."/".device = lib.mkForce "/dev/vda2"; }) ];`, "img.passthru.profiles"), labels)
	evalFails(t, "lib", image(`format = "vmdk";`, "img.passthru.profiles"), `format`, `"vmdk"`, `qcow2`)

	// nvidia.nix's assertion: Docker switched off.
	failing := `map (a: a.message) (builtins.filter (a: !a.assertion) cfg.assertions)`
	var msgs []string
	eval(t, "lib", image(`profiles = [ "nvidia" ];`, failing), &msgs)
	if len(msgs) != 0 {
		t.Errorf("nvidia: failing assertions %q", msgs)
	}
	eval(t, "lib", image(`profiles = [ "nvidia" ]; modules = [ ({ lib, ... }: { virtualisation.docker.enable = lib.mkForce false; }) ];`, failing), &msgs)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "vmflow profile `nvidia` requires the `docker` profile") {
		t.Errorf("nvidia without docker: failing assertions %q", msgs)
	}
}

// Agent profiles with docker say at build time that the egress block does
// not hold against a docker group member.
func TestAgentWithDockerWarns(t *testing.T) {
	for _, c := range []struct {
		profiles string
		warn     bool
	}{
		{`[ "claude" ]`, false},
		{`[ "open-code" "podman" ]`, false},
		{`[ "docker" ]`, false},
		{`[ "claude" "docker" ]`, true},
		{`[ "open-code" "nvidia" ]`, true},
	} {
		var warnings []string
		eval(t, "lib", image("profiles = "+c.profiles+";", "cfg.warnings"), &warnings)
		got := slices.ContainsFunc(warnings, func(w string) bool {
			return strings.Contains(w, "the egress block (claude / open-code) is combined with the docker profile") &&
				strings.Contains(w, "can remove the nftables table inet vmflow-egress")
		})
		if got != c.warn {
			t.Errorf("%s: warnings %q, want the docker warning: %v", c.profiles, warnings, c.warn)
		}
	}
}

// Faults 2 and 4 of issue 13: /etc/machine-id is one direct link to
// /var/identity, and activation keeps only the two snippets that exist
// in 25.05, emptied.
func TestReadOnlyRootSettings(t *testing.T) {
	var etc struct {
		Source string `json:"source"`
		Mode   string `json:"mode"`
	}
	eval(t, "nixosConfigurations.core.config.environment.etc", `etc: { inherit (etc."machine-id") source mode; }`, &etc)
	if etc.Source != "/var/identity/machine-id" || etc.Mode != "direct-symlink" {
		t.Errorf("/etc/machine-id: %+v", etc)
	}
	var snippets map[string]string
	eval(t, "nixosConfigurations.core.config.system.activationScripts", "", &snippets)
	if len(snippets) != 2 || snippets["binsh"] != "" || snippets["usrbinenv"] != "" {
		t.Errorf("activation snippets %q, want binsh and usrbinenv, both empty", snippets)
	}
	var ro struct {
		Overlay  map[string]bool `json:"overlay"`
		Userborn bool            `json:"userborn"`
		Initrd   bool            `json:"initrd"`
		Switch   bool            `json:"switch"`
	}
	eval(t, "nixosConfigurations.core.config", `c: { overlay = c.system.etc.overlay; userborn = c.services.userborn.enable; initrd = c.boot.initrd.systemd.enable; switch = c.system.switch.enable; }`, &ro)
	if !ro.Overlay["enable"] || ro.Overlay["mutable"] || !ro.Userborn || !ro.Initrd || ro.Switch {
		t.Errorf("read-only root settings: %+v", ro)
	}
}

func nixList(names []string) string {
	var b strings.Builder
	b.WriteString("[")
	for _, n := range names {
		b.WriteString(` "` + n + `"`)
	}
	b.WriteString(" ]")
	return b.String()
}

func nonEmpty(p string) []string {
	if p == "" {
		return nil
	}
	return []string{p}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
