package profiles_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The home-manager profile against the real home-manager release-25.05
// module (nixos/default.nix, nixos/common.nix and every module of
// modules/modules.nix, with the real 25.05 lib): what it sets is declared
// there and has the values asked for, and the unit it makes, whose setup
// script hm-setup-env is a login shell (`#! bash -el` in nixos/default.nix),
// is killed after 5 minutes (fault 1 of issue 13).
func TestHomeManager(t *testing.T) {
	var hm struct {
		StateVersion  string            `json:"stateVersion"`
		Bash          bool              `json:"bash"`
		Readline      bool              `json:"readline"`
		Git           bool              `json:"git"`
		Home          string            `json:"home"`
		Username      string            `json:"username"`
		GlobalPkgs    bool              `json:"globalPkgs"`
		UserPackages  bool              `json:"userPackages"`
		Backup        string            `json:"backup"`
		Timeout       string            `json:"timeout"`
		User          string            `json:"user"`
		Env           map[string]string `json:"env"`
		Setup         string            `json:"setup"`
		Failing       []string          `json:"failing"`
		UserWarnings  []string          `json:"userWarnings"`
		UserAsserting []string          `json:"userAsserting"`
	}
	eval(t, "lib", image(`profiles = [ "home-manager" ];`, `let u = cfg.home-manager.users.user; s = cfg.systemd.services.home-manager-user; in {
		stateVersion = u.home.stateVersion; bash = u.programs.bash.enable; readline = u.programs.readline.enable;
		git = u.programs.git.enable; home = u.home.homeDirectory; username = u.home.username;
		globalPkgs = cfg.home-manager.useGlobalPkgs; userPackages = cfg.home-manager.useUserPackages;
		backup = cfg.home-manager.backupFileExtension;
		timeout = s.serviceConfig.TimeoutStartSec; user = s.serviceConfig.User; env = s.environment;
		setup = (builtins.head (builtins.split " " s.serviceConfig.ExecStart));
		failing = map (a: a.message) (builtins.filter (a: !a.assertion) cfg.assertions);
		userWarnings = u.warnings;
		userAsserting = map (a: a.message) (builtins.filter (a: !a.assertion) u.assertions);
	}`), &hm)
	if hm.StateVersion != "25.05" || !hm.Bash || !hm.Readline || !hm.Git || hm.Home != "/home/user" || hm.Username != "user" {
		t.Errorf("home-manager user settings: %+v", hm)
	}
	if !hm.GlobalPkgs || !hm.UserPackages || hm.Backup != "before-home-manager" || hm.Env["HOME_MANAGER_BACKUP_EXT"] != "before-home-manager" {
		t.Errorf("home-manager NixOS settings: %+v", hm)
	}
	if hm.Timeout != "5m" || hm.User != "user" || !strings.HasSuffix(hm.Setup, "-hm-setup-env") {
		t.Errorf("home-manager-user.service: %+v", hm)
	}
	if len(hm.Failing) != 0 || len(hm.UserWarnings) != 0 || len(hm.UserAsserting) != 0 {
		t.Errorf("failing assertions %q, warnings %q, user assertions %q", hm.Failing, hm.UserWarnings, hm.UserAsserting)
	}
	// Broken inputs: home-manager's own types and declarations reject them.
	evalFails(t, "lib", image(`profiles = [ "home-manager" ]; modules = [ ({ lib, ... }: { home-manager.users.user.home.stateVersion = lib.mkForce "25.13"; }) ];`, "cfg.home-manager.users.user.home.stateVersion"),
		"home-manager.users.user.home.stateVersion", "25.13")
	evalFails(t, "lib", image(`profiles = [ "home-manager" ]; modules = [ { home-manager.users.user.programs.gti.enable = true; } ];`, "cfg.home-manager.users.user.programs.git.enable"),
		"programs.gti", "does not exist")
	evalFails(t, "lib", image(`profiles = [ "home-manager" ]; modules = [ { home-manager.backupFileExtension = 1; } ];`, "cfg.home-manager.backupFileExtension"),
		"home-manager.backupFileExtension", "is not of type")
}

// Fault 1 of issue 13: no npm in login shells. The claude and open-code
// hooks, run as home-manager's unit runs its setup (a login shell, not
// interactive), do nothing; in an interactive shell they only say where
// the install stands. The install is a unit per tool and user with its
// own timeout and retries.
func TestNpmInstallOutOfLoginShells(t *testing.T) {
	need(t, "bash")
	var c struct {
		Login string `json:"login"`
		Units map[string]struct {
			WantedBy []string          `json:"wantedBy"`
			Wants    []string          `json:"wants"`
			After    []string          `json:"after"`
			Env      map[string]string `json:"environment"`
			Service  map[string]any    `json:"serviceConfig"`
			Unit     map[string]any    `json:"unitConfig"`
		} `json:"units"`
		Installer string `json:"installer"`
		Defaults  string `json:"defaults"`
		Config    string `json:"config"`
	}
	eval(t, "lib", image(`profiles = [ "claude" "open-code" "home-manager" ];`, `let
		units = builtins.removeAttrs cfg.systemd.services [ "vmflow-grow-var" "vmflow-network" "home-manager-user"
			"vmflow-egress-allow" "vmflow-egress-allow-reload" "vmflow-egress-dns" "vmflow-egress-dns-reload"
			"vmflow-ports" "vmflow-ports-reload" "vmflow-hosts-cas" ];
		installer = builtins.head (builtins.filter (p: p.name or "" == "vmflow-npm-install") cfg.environment.systemPackages);
	in {
		login = cfg.environment.loginShellInit;
		units = builtins.mapAttrs (_: u: { inherit (u) wantedBy wants after environment serviceConfig unitConfig; }) units;
		installer = installer.text;
		defaults = (builtins.head units.vmflow-npm-opencode-user.serviceConfig.ExecStartPre);
		config = cfg.vmflow.npmCli.opencode.defaultFiles.".config/opencode/config.json".text;
	}`), &c)

	wantUnits := []string{"vmflow-npm-claude-admin", "vmflow-npm-claude-user", "vmflow-npm-opencode-admin", "vmflow-npm-opencode-user"}
	var got []string
	for name := range c.Units {
		got = append(got, name)
	}
	if !slices.Equal(sortedCopy(got), wantUnits) {
		t.Fatalf("units %v, want %v", sortedCopy(got), wantUnits)
	}
	for name, u := range c.Units {
		user := name[strings.LastIndex(name, "-")+1:]
		s := u.Service
		if s["User"] != user || s["Type"] != "exec" || s["RemainAfterExit"] != true || s["Restart"] != "on-failure" ||
			s["RestartSec"] != "30s" || s["RestartMaxDelaySec"] != "15min" || u.Unit["StartLimitIntervalSec"] != float64(0) {
			t.Errorf("%s: serviceConfig %v unitConfig %v", name, s, u.Unit)
		}
		if !slices.Contains(u.WantedBy, "multi-user.target") || !slices.Contains(u.Wants, "network-online.target") || !slices.Contains(u.After, "network-online.target") {
			t.Errorf("%s: wantedBy %v wants %v after %v", name, u.WantedBy, u.Wants, u.After)
		}
		if u.Env["HOME"] != "/home/"+user || u.Env["NPM_CONFIG_PREFIX"] != "/home/"+user+"/.npm-global" || u.Env["VMFLOW_NPM_TIMEOUT"] != "900" {
			t.Errorf("%s: environment %v", name, u.Env)
		}
		tool := strings.TrimSuffix(strings.TrimPrefix(name, "vmflow-npm-"), "-"+user)
		want := map[string]string{"claude": "vmflow-npm-install @anthropic-ai/claude-code claude", "opencode": "vmflow-npm-install opencode-ai opencode"}[tool]
		if !strings.HasSuffix(s["ExecStart"].(string), "/bin/"+want) {
			t.Errorf("%s: ExecStart %v, want …/bin/%s", name, s["ExecStart"], want)
		}
	}
	if !strings.Contains(c.Config, `"autoupdate":false`) || !strings.Contains(c.Config, `"share":"disabled"`) || !strings.HasSuffix(c.Defaults, "-vmflow-npm-opencode-defaults") {
		t.Errorf("open-code defaults: %s %s", c.Defaults, c.Config)
	}

	// Run the hook for real, with an `npm` and an installer that only
	// leave a mark, as uid 1001 (a fake `id`).
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	marks := filepath.Join(dir, "marks")
	os.MkdirAll(bin, 0o755)
	for _, tool := range []string{"npm", "vmflow-npm-install", "node"} {
		os.WriteFile(filepath.Join(bin, tool), []byte("#!/bin/sh\necho "+tool+" >>"+marks+"\n"), 0o755)
	}
	os.WriteFile(filepath.Join(bin, "id"), []byte("#!/bin/sh\necho 1001\n"), 0o755)
	hook := filepath.Join(dir, "profile")
	os.WriteFile(hook, []byte(c.Login), 0o644)
	run := func(flags ...string) (string, time.Duration) {
		args := append([]string{"--noprofile", "--norc"}, flags...)
		args = append(args, "-c", ". "+hook)
		cmd := exec.Command("bash", args...)
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + dir, "USER=user"}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash %v: %v\n%s", flags, err, out)
		}
		return string(out), time.Since(start)
	}
	// As home-manager-user.service runs it: `bash -el`, not interactive.
	if out, took := run("-e", "-l"); out != "" || took > 5*time.Second {
		t.Errorf("the login hook in a non-interactive login shell printed %q and took %v", out, took)
	}
	if b, err := os.ReadFile(marks); err == nil {
		t.Errorf("the login hook ran %s", b)
	}
	// An SSH login: interactive.
	out, _ := run("-i", "-l")
	for _, want := range []string{
		"vmflow: claude is not installed yet; see: systemctl status vmflow-npm-claude-user",
		"vmflow: opencode is not installed yet; see: systemctl status vmflow-npm-opencode-user",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("an interactive login shell printed %q, want %q", out, want)
		}
	}
	if b, err := os.ReadFile(marks); err == nil {
		t.Errorf("the interactive hook ran %s", b)
	}

	// The installer the units run, with a fake npm.
	npmInstall(t, c.Installer)
}

// npmInstall runs the installer script: a failing npm fails the unit (so
// systemd retries), a slow one is stopped at VMFLOW_NPM_TIMEOUT, and once
// the command is there nothing is done.
func npmInstall(t *testing.T, script string) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	npm := filepath.Join(bin, "npm")
	setNpm := func(body string) { os.WriteFile(npm, []byte("#!/bin/sh\n"+body+"\n"), 0o755) }
	run := func(timeout string) (int, string, time.Duration) {
		cmd := exec.Command("bash", "-c", script, "vmflow-npm-install", "@anthropic-ai/claude-code", "claude")
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + dir, "NPM_CONFIG_PREFIX=" + dir + "/.npm-global", "VMFLOW_NPM_TIMEOUT=" + timeout}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out), time.Since(start)
	}
	setNpm("exit 7")
	if code, out, _ := run("900"); code != 7 || !strings.Contains(out, "installing @anthropic-ai/claude-code failed (exit 7); its unit retries") {
		t.Errorf("failing npm: exit %d, %q", code, out)
	}
	setNpm("sleep 30")
	if code, out, took := run("1"); code != 124 || took > 10*time.Second {
		t.Errorf("slow npm with VMFLOW_NPM_TIMEOUT=1: exit %d after %v, %q", code, took, out)
	}
	setNpm(`case " $* " in *" --global "*) mkdir -p "$NPM_CONFIG_PREFIX/bin" && printf '#!/bin/sh\n' >"$NPM_CONFIG_PREFIX/bin/claude" && chmod +x "$NPM_CONFIG_PREFIX/bin/claude" ;; *) exit 9 ;; esac`)
	if code, out, _ := run("900"); code != 0 || !strings.Contains(out, "@anthropic-ai/claude-code installed") {
		t.Errorf("working npm: exit %d, %q", code, out)
	}
	setNpm("exit 7")
	if code, out, _ := run("900"); code != 0 || out != "" {
		t.Errorf("already installed: exit %d, %q", code, out)
	}
}
